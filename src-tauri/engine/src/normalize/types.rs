//! Layer 1: type coercion of a JSON value to its column's type.

use crate::schema::ColumnType;
use serde_json::Value;

/// Coerces `value` to `ty`, or says why it cannot be. Numbers written as text are read by the numbers layer
/// (`decimal_comma` as configured), date-times by the date-time layer.
pub fn coerce(value: &Value, ty: ColumnType, decimal_comma: bool) -> Result<Value, String> {
    match (ty, value) {
        (_, Value::Null) => Ok(Value::Null),
        (ColumnType::Json, v) => Ok(v.clone()),
        (ColumnType::Text, Value::String(_)) => Ok(value.clone()),
        // A scalar in a text column keeps its JSON spelling (42, true), so nothing is lost.
        (ColumnType::Text, v) => Ok(Value::String(v.to_string())),
        (ColumnType::Numeric, Value::Number(_)) => Ok(value.clone()),
        (ColumnType::Integer, Value::Number(n)) if n.is_i64() => Ok(value.clone()),
        (ColumnType::Numeric, Value::String(text)) => super::numbers::parse_number(text, decimal_comma)
            .map(Value::Number)
            .ok_or_else(|| format!("expected a number but got \"{}\"", shorten(text))),
        (ColumnType::Integer, Value::String(text)) => super::numbers::parse_number(text, decimal_comma)
            .filter(|n| n.is_i64())
            .map(Value::Number)
            .ok_or_else(|| format!("expected a whole number but got \"{}\"", shorten(text))),
        (ColumnType::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (ColumnType::DateTime, Value::String(text)) => super::datetimes::to_utc_iso(text)
            .map(Value::String)
            .ok_or_else(|| {
                format!(
                    "expected a date-time but got \"{}\"; accepted: ISO 8601, RFC 2822, \"YYYY-MM-DD[ HH:MM[:SS]]\", \"DD.MM.YYYY\", \"YYYY/MM/DD\"",
                    shorten(text)
                )
            }),
        (ty, v) => Err(format!(
            "expected {} but got {}",
            describe(ty),
            shorten(&v.to_string())
        )),
    }
}

/// Whether [`coerce`] gives `value` back unchanged for `ty` (so NORMALIZE may move it instead of copying it).
pub fn keeps(value: &Value, ty: ColumnType) -> bool {
    match (ty, value) {
        (_, Value::Null) | (ColumnType::Json, _) => true,
        (ColumnType::Text, Value::String(_)) | (ColumnType::Numeric, Value::Number(_)) => true,
        (ColumnType::Integer, Value::Number(n)) => n.is_i64(),
        (ColumnType::Boolean, Value::Bool(_)) => true,
        // Already written as NORMALIZE writes date-times.
        (ColumnType::DateTime, Value::String(text)) => {
            super::datetimes::canonical_micros(text).is_some()
        }
        _ => false,
    }
}

fn describe(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Numeric => "a number",
        ColumnType::Integer => "a whole number",
        ColumnType::Boolean => "true or false",
        ColumnType::Text => "text",
        ColumnType::DateTime => "a date-time",
        ColumnType::Json => "JSON",
    }
}

fn shorten(text: &str) -> String {
    match text.char_indices().nth(40) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn what_coerce_keeps_is_what_it_gives_back_unchanged() {
        let values = [
            json!(null),
            json!("text"),
            json!(""),
            json!(42),
            json!(-7),
            json!(1.5),
            json!(18446744073709551615u64),
            json!(true),
            json!([1, "a"]),
            json!({"a": 1}),
            json!("2024-01-02T03:04:05Z"),
            json!("12,5"),
        ];
        let types = [
            ColumnType::Text,
            ColumnType::Numeric,
            ColumnType::Integer,
            ColumnType::Boolean,
            ColumnType::DateTime,
            ColumnType::Json,
        ];
        for value in &values {
            for ty in types {
                if keeps(value, ty) {
                    assert_eq!(
                        coerce(value, ty, false).as_ref(),
                        Ok(value),
                        "{value} as {ty:?}"
                    );
                }
            }
        }
        assert!(keeps(&json!("a"), ColumnType::Text) && !keeps(&json!(1), ColumnType::Text));
        assert!(
            !keeps(&json!(1.5), ColumnType::Integer) && !keeps(&json!("1"), ColumnType::Numeric)
        );
        assert!(!keeps(&json!("2024-01-02T03:04:05Z"), ColumnType::DateTime));
    }

    #[test]
    fn scalars_in_text_keep_their_spelling() {
        assert_eq!(
            coerce(&json!(42), ColumnType::Text, false).unwrap(),
            json!("42")
        );
        assert_eq!(
            coerce(&json!(true), ColumnType::Text, false).unwrap(),
            json!("true")
        );
    }

    #[test]
    fn text_in_a_number_column_is_an_error_naming_the_value() {
        let err = coerce(&json!("abc"), ColumnType::Numeric, false).unwrap_err();
        assert!(err.contains("a number") && err.contains("abc"), "{err}");
    }

    #[test]
    fn numbers_written_as_text_become_numbers_in_number_columns() {
        assert_eq!(
            coerce(&json!("10,000"), ColumnType::Numeric, false)
                .unwrap()
                .to_string(),
            "10000"
        );
        assert_eq!(
            coerce(&json!("1.000,50"), ColumnType::Numeric, true)
                .unwrap()
                .to_string(),
            "1000.50"
        );
        assert!(coerce(&json!("1.5"), ColumnType::Integer, false).is_err());
        assert_eq!(
            coerce(&json!("2026-03-04 05:06"), ColumnType::DateTime, false).unwrap(),
            json!("2026-03-04T05:06:00.000Z")
        );
    }

    #[test]
    fn null_passes_every_type() {
        for ty in [
            ColumnType::Text,
            ColumnType::Numeric,
            ColumnType::Boolean,
            ColumnType::Json,
        ] {
            assert_eq!(coerce(&Value::Null, ty, false).unwrap(), Value::Null);
        }
    }
}
