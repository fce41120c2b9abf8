//! How the PostgreSQL source reads a column: selected in the protocol's binary format and turned into the JSON value
//! `row_to_json` writes for it — the same value to the last character, so records and their hashes are what they
//! were when rows came as JSON text (ADR 0016). PostgreSQL then only sends the columns (it spent 2.1–3.0 s of CPU
//! per 1M rows of the bench table writing them as JSON, against 0.7 s for the typed columns), and the engine reads
//! integers, booleans, text, uuids and times without parsing. Numbers come as their text (`numeric_out` and
//! `float8out` spell them as `row_to_json` does); every other type comes as `to_json(column)`, so PostgreSQL writes
//! it exactly as before and the engine parses that one value.

use serde_json::{Number, Value};
use std::str::FromStr;

/// How one column is selected and decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnRead {
    /// smallint, integer, bigint: big-endian two's complement.
    Integer,
    Boolean,
    /// text, varchar, char(n) (with its padding, as `bpcharout` writes it), name: the text's bytes.
    Text,
    /// 16 bytes, written in lowercase with hyphens (as `uuid_out`).
    Uuid,
    /// numeric, real, double precision: selected as text; a JSON number when it spells one, else a string
    /// (`NaN`, `Infinity`), as `row_to_json` decides.
    Number,
    /// timestamp (with `zoned`: timestamptz in a UTC session): microseconds since 2000-01-01.
    Timestamp {
        zoned: bool,
    },
    /// Days since 2000-01-01.
    Date,
    /// Anything else: `to_json(column)`, parsed.
    Json,
}

impl ColumnRead {
    /// The read for a column of `sql_type` (as `format_type` or the driver names it); `utc_session` says
    /// whether the session's TimeZone is UTC, the only zone whose spelling is written here.
    pub fn of(sql_type: &str, utc_session: bool) -> ColumnRead {
        let t = sql_type.to_ascii_lowercase();
        if t.ends_with(']') {
            // An array of any type (`numeric(12,2)[]`, `character(3)[]`) is nested JSON.
            return ColumnRead::Json;
        }
        match t.as_str() {
            "smallint" | "integer" | "bigint" | "int2" | "int4" | "int8" => ColumnRead::Integer,
            "boolean" | "bool" => ColumnRead::Boolean,
            "text" | "varchar" | "bpchar" | "name" | "character varying" | "character" => {
                ColumnRead::Text
            }
            _ if t.starts_with("character varying(") || t.starts_with("character(") => {
                ColumnRead::Text
            }
            "uuid" => ColumnRead::Uuid,
            "real" | "double precision" | "float4" | "float8" | "numeric" => ColumnRead::Number,
            _ if t.starts_with("numeric(") => ColumnRead::Number,
            "timestamp without time zone" | "timestamp" => ColumnRead::Timestamp { zoned: false },
            _ if t.starts_with("timestamp(") && t.ends_with("without time zone") => {
                ColumnRead::Timestamp { zoned: false }
            }
            "timestamp with time zone" | "timestamptz" if utc_session => {
                ColumnRead::Timestamp { zoned: true }
            }
            _ if utc_session && t.starts_with("timestamp(") && t.ends_with("with time zone") => {
                ColumnRead::Timestamp { zoned: true }
            }
            "date" => ColumnRead::Date,
            _ => ColumnRead::Json,
        }
    }

    /// The select-list expression that sends `column` (already quoted, e.g. `r."price"`) for this read.
    pub fn select(self, column: &str) -> String {
        match self {
            ColumnRead::Number => format!("{column}::text"),
            ColumnRead::Json => format!("to_json({column})"),
            _ => column.to_owned(),
        }
    }

    /// The JSON value of a non-null column's bytes.
    pub fn decode(self, raw: &[u8]) -> Result<Value, String> {
        match self {
            ColumnRead::Integer => integer(raw).map(|i| Value::Number(i.into())),
            ColumnRead::Boolean => match raw {
                [b] => Ok(Value::Bool(*b != 0)),
                _ => Err(wrong_length("a boolean", raw)),
            },
            ColumnRead::Text => text(raw).map(|t| Value::String(t.to_owned())),
            ColumnRead::Uuid => uuid::Uuid::from_slice(raw)
                .map(|u| Value::String(u.hyphenated().to_string()))
                .map_err(|_| wrong_length("a uuid", raw)),
            ColumnRead::Number => text(raw).map(number_or_string),
            ColumnRead::Timestamp { zoned } => {
                let micros = fixed::<8>(raw, "a timestamp").map(i64::from_be_bytes)?;
                Ok(Value::String(timestamp(micros, zoned)))
            }
            ColumnRead::Date => {
                let days = fixed::<4>(raw, "a date").map(i32::from_be_bytes)?;
                Ok(Value::String(date(days)))
            }
            ColumnRead::Json => serde_json::from_slice(raw)
                .map_err(|e| format!("PostgreSQL's JSON for it does not parse ({e})")),
        }
    }
}

fn wrong_length(what: &str, raw: &[u8]) -> String {
    format!("{} bytes are not {what}", raw.len())
}

fn fixed<const N: usize>(raw: &[u8], what: &str) -> Result<[u8; N], String> {
    raw.try_into().map_err(|_| wrong_length(what, raw))
}

fn integer(raw: &[u8]) -> Result<i64, String> {
    match raw.len() {
        2 => fixed::<2>(raw, "").map(|b| i16::from_be_bytes(b).into()),
        4 => fixed::<4>(raw, "").map(|b| i32::from_be_bytes(b).into()),
        8 => fixed::<8>(raw, "").map(i64::from_be_bytes),
        _ => Err(wrong_length("an integer", raw)),
    }
}

fn text(raw: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(raw).map_err(|e| format!("the text is not UTF-8 ({e})"))
}

/// `row_to_json` writes a number's text bare when it is a valid JSON number, quoted otherwise.
fn number_or_string(spelled: &str) -> Value {
    match Number::from_str(spelled) {
        Ok(n) => Value::Number(n),
        Err(_) => Value::String(spelled.to_owned()),
    }
}

/// Days from 1970-01-01 to PostgreSQL's epoch, 2000-01-01.
const EPOCH_DAYS: i64 = 10_957;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// A date as `row_to_json` writes it (XSD style): `YYYY-MM-DD`, ` BC` after years before 1, `infinity`.
fn date(days: i32) -> String {
    match days {
        i32::MAX => "infinity".into(),
        i32::MIN => "-infinity".into(),
        _ => {
            let (year, month, day) = civil_from_days(i64::from(days) + EPOCH_DAYS);
            let mut out = String::with_capacity(16);
            push_year(&mut out, year);
            push_two(&mut out, '-', month);
            push_two(&mut out, '-', day);
            if year <= 0 {
                out.push_str(" BC");
            }
            out
        }
    }
}

/// A timestamp as `row_to_json` writes it (XSD style): `YYYY-MM-DDTHH:MM:SS[.ffffff]`, trailing zeros of the
/// fraction dropped, `+00:00` for a timestamptz in a UTC session, ` BC` last, `infinity` for the infinities.
fn timestamp(micros: i64, zoned: bool) -> String {
    match micros {
        i64::MAX => return "infinity".into(),
        i64::MIN => return "-infinity".into(),
        _ => {}
    }
    let days = micros.div_euclid(MICROS_PER_DAY);
    let in_day = micros.rem_euclid(MICROS_PER_DAY);
    let (year, month, day) = civil_from_days(days + EPOCH_DAYS);
    let seconds = in_day / 1_000_000;
    let fraction = in_day % 1_000_000;
    let mut out = String::with_capacity(32);
    push_year(&mut out, year);
    push_two(&mut out, '-', month);
    push_two(&mut out, '-', day);
    push_two(&mut out, 'T', seconds / 3600);
    push_two(&mut out, ':', seconds / 60 % 60);
    push_two(&mut out, ':', seconds % 60);
    if fraction != 0 {
        let digits = format!("{fraction:06}");
        out.push('.');
        out.push_str(digits.trim_end_matches('0'));
    }
    if zoned {
        out.push_str("+00:00");
    }
    if year <= 0 {
        out.push_str(" BC");
    }
    out
}

/// The year as PostgreSQL numbers it for display: at least four digits, years before 1 counted back from 1 BC.
fn push_year(out: &mut String, year: i64) {
    let shown = if year > 0 { year } else { 1 - year };
    out.push_str(&format!("{shown:04}"));
}

fn push_two(out: &mut String, separator: char, value: i64) {
    out.push(separator);
    if value < 10 {
        out.push('0');
    }
    out.push_str(&value.to_string());
}

/// The proleptic Gregorian date of a day count from 1970-01-01 (year 0 is 1 BC), as PostgreSQL counts dates
/// (Howard Hinnant's `civil_from_days`, exact over every date PostgreSQL stores).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 {
        shifted_month + 3
    } else {
        shifted_month - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(days: i64, seconds: i64, fraction: i64) -> i64 {
        days * MICROS_PER_DAY + seconds * 1_000_000 + fraction
    }

    #[test]
    fn timestamps_are_spelled_as_row_to_json_spells_them() {
        assert_eq!(timestamp(0, true), "2000-01-01T00:00:00+00:00");
        assert_eq!(timestamp(0, false), "2000-01-01T00:00:00");
        assert_eq!(
            timestamp(micros(9_497, 3_723, 500_000), true),
            "2026-01-01T01:02:03.5+00:00"
        );
        assert_eq!(
            timestamp(micros(0, 0, 1), false),
            "2000-01-01T00:00:00.000001"
        );
        assert_eq!(timestamp(-1, false), "1999-12-31T23:59:59.999999");
        assert_eq!(timestamp(i64::MAX, true), "infinity");
        assert_eq!(timestamp(i64::MIN, false), "-infinity");
        // 0001-01-01 BC is 730,485 days before 2000-01-01 (1 AD starts 366 days later: 1 BC is a leap year)
        assert_eq!(
            timestamp(micros(-730_485, 0, 0), true),
            "0001-01-01T00:00:00+00:00 BC"
        );
        assert_eq!(
            timestamp(micros(-730_119, 0, 0), false),
            "0001-01-01T00:00:00"
        );
        assert_eq!(date(2_921_940), "10000-01-01");
        assert_eq!(date(2_921_939), "9999-12-31");
        assert_eq!(date(-730_120), "0001-12-31 BC");
        assert_eq!(date(60), "2000-03-01");
        assert_eq!(date(59), "2000-02-29");
        assert_eq!(date(i32::MAX), "infinity");
        assert_eq!(date(i32::MIN), "-infinity");
    }

    #[test]
    fn numbers_are_bare_when_json_spells_them_and_strings_otherwise() {
        for spelled in [
            "12.50",
            "-0",
            "1e-07",
            "1.5e+100",
            "0.000",
            "123456789012345678901234567890.5",
        ] {
            let parsed: Value = serde_json::from_str(spelled).unwrap();
            assert_eq!(number_or_string(spelled), parsed, "{spelled}");
            assert_eq!(number_or_string(spelled).to_string(), spelled);
        }
        for spelled in ["NaN", "Infinity", "-Infinity"] {
            assert_eq!(number_or_string(spelled), Value::String(spelled.into()));
        }
    }

    #[test]
    fn binary_columns_decode_to_their_json_values() {
        assert_eq!(
            ColumnRead::Integer.decode(&(-5i16).to_be_bytes()),
            Ok(Value::from(-5))
        );
        assert_eq!(
            ColumnRead::Integer.decode(&7i32.to_be_bytes()),
            Ok(Value::from(7))
        );
        assert_eq!(
            ColumnRead::Integer.decode(&i64::MIN.to_be_bytes()),
            Ok(Value::from(i64::MIN))
        );
        assert!(ColumnRead::Integer.decode(&[1, 2, 3]).is_err());
        assert_eq!(ColumnRead::Boolean.decode(&[1]), Ok(Value::Bool(true)));
        assert_eq!(
            ColumnRead::Text.decode("ü  ".as_bytes()),
            Ok(Value::from("ü  "))
        );
        assert!(ColumnRead::Text.decode(&[0xff, 0xfe]).is_err());
        let id = [0x12u8; 16];
        assert_eq!(
            ColumnRead::Uuid.decode(&id),
            Ok(Value::from("12121212-1212-1212-1212-121212121212"))
        );
        assert_eq!(
            ColumnRead::Json.decode(br#"{"b": [1, "x"]}"#),
            Ok(serde_json::json!({"b": [1, "x"]}))
        );
    }

    #[test]
    fn catalog_types_choose_their_reads() {
        assert_eq!(ColumnRead::of("bigint", true), ColumnRead::Integer);
        assert_eq!(
            ColumnRead::of("character varying(20)", true),
            ColumnRead::Text
        );
        assert_eq!(ColumnRead::of("character(3)", true), ColumnRead::Text);
        assert_eq!(ColumnRead::of("numeric(12,2)", true), ColumnRead::Number);
        assert_eq!(
            ColumnRead::of("timestamp(3) with time zone", true),
            ColumnRead::Timestamp { zoned: true }
        );
        assert_eq!(ColumnRead::of("timestamptz", false), ColumnRead::Json);
        assert_eq!(
            ColumnRead::of("timestamp without time zone", false),
            ColumnRead::Timestamp { zoned: false }
        );
        assert_eq!(ColumnRead::of("text[]", true), ColumnRead::Json);
        assert_eq!(ColumnRead::of("numeric(12,2)[]", true), ColumnRead::Json);
        assert_eq!(ColumnRead::of("character(3)[]", true), ColumnRead::Json);
        assert_eq!(
            ColumnRead::of("character varying(9)[]", true),
            ColumnRead::Json
        );
        assert_eq!(
            ColumnRead::of("timestamp(3) without time zone[]", true),
            ColumnRead::Json
        );
        assert_eq!(ColumnRead::of("interval", true), ColumnRead::Json);
        assert_eq!(ColumnRead::of("\"char\"", true), ColumnRead::Json);
        assert_eq!(ColumnRead::Number.select("r.\"p\""), "r.\"p\"::text");
        assert_eq!(ColumnRead::Json.select("r.\"t\""), "to_json(r.\"t\")");
    }
}
