//! Layer 4: date-times. Text in any of the accepted formats becomes ISO 8601 UTC with milliseconds
//! (`2026-03-04T05:06:07.120Z`; microseconds are kept when the source has them), so equal instants written
//! differently hash alike and compare alike in the target.
//!
//! Accepted: RFC 3339 / ISO 8601 with `Z` or an offset (`+02:00`, `+0200`, `+02`), ISO without a zone (`T` or a
//! space between date and time, seconds and fractions optional), a date alone, RFC 2822 (`Wed, 04 Mar 2026
//! 05:06:07 +0000`), `DD.MM.YYYY[ HH:MM[:SS]]`, `YYYY/MM/DD[ HH:MM[:SS]]`, `Mar 4, 2026` and `4 Mar 2026`.
//! A time without a zone is taken as UTC. Slash dates with the day first or the month first (`03/04/2026`) are
//! refused, because they are ambiguous.

use chrono::{DateTime, NaiveDate, NaiveDateTime, SecondsFormat, Utc};

const ZONED: [&str; 3] = [
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M%#z",
];

const NAIVE: [&str; 8] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%d %H:%M",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
];

const DATES: [&str; 5] = ["%Y-%m-%d", "%d.%m.%Y", "%Y/%m/%d", "%b %d, %Y", "%d %b %Y"];

/// The instant `text` names, as ISO 8601 UTC; None when it is not a date-time in an accepted format.
pub fn to_utc_iso(text: &str) -> Option<String> {
    let text = text.trim();
    if canonical_micros(text).is_some() {
        return Some(text.to_owned());
    }
    parse(text).map(format)
}

/// Whether `text` names an instant in an accepted format (what [`to_utc_iso`] checks, without writing the result:
/// type inference asks this of every text value of a page).
pub fn is_datetime(text: &str) -> bool {
    let text = text.trim();
    canonical_micros(text).is_some() || parse(text).is_some()
}

/// The instant `text` names when it is already written as [`to_utc_iso`] writes it (`2026-03-04T05:06:07.120Z`, or
/// six fraction digits where the microseconds are not whole milliseconds; years 1 to 9999), in microseconds since
/// 1970; None for any other text, which the parser reads. Most date-times a sync meets come so (a source that
/// writes ISO 8601 with milliseconds, a target written by a sync): these are read without the parser, and
/// normalising them keeps them as they are.
pub fn canonical_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    let fraction = match b.len() {
        24 => 3,
        27 => 6,
        _ => return None,
    };
    let separators = [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ];
    if separators.iter().any(|&(at, c)| b[at] != c) || b[b.len() - 1] != b'Z' {
        return None;
    }
    let number = |from: usize, to: usize| -> Option<i64> {
        b[from..to].iter().try_fold(0i64, |n, &d| {
            d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
        })
    };
    let (year, month, day) = (number(0, 4)?, number(5, 7)?, number(8, 10)?);
    let (hour, minute, second) = (number(11, 13)?, number(14, 16)?, number(17, 19)?);
    let digits = number(20, 20 + fraction)?;
    let micros = match fraction {
        3 => digits * 1000,
        // Whole milliseconds are written with three digits.
        _ if digits % 1000 == 0 => return None,
        _ => digits,
    };
    let valid = year >= 1
        && (1..=12).contains(&month)
        && (1..=days_in_month(year, month)).contains(&day)
        && hour < 24
        && minute < 60
        && second < 60;
    if !valid {
        return None;
    }
    let seconds = days_from_civil(year, month, day) * 86_400 + hour * 3_600 + minute * 60 + second;
    Some(seconds * 1_000_000 + micros)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a date of the proleptic Gregorian calendar (H. Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

fn parse(text: &str) -> Option<DateTime<Utc>> {
    if text.is_empty() || text.len() > 64 {
        return None;
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = ZONED
        .iter()
        .find_map(|f| DateTime::parse_from_str(text, f).ok())
    {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_rfc2822(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Some(t) = NAIVE
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(text, f).ok())
    {
        return Some(t.and_utc());
    }
    DATES
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(text, f).ok())
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
}

fn format(t: DateTime<Utc>) -> String {
    let precision = if t.timestamp_subsec_nanos().is_multiple_of(1_000_000) {
        SecondsFormat::Millis
    } else {
        SecondsFormat::Micros
    };
    t.to_rfc3339_opts(precision, true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eight_formats_name_the_same_instant_alike() {
        let same = [
            "2026-03-04T05:06:07Z",
            "2026-03-04T05:06:07.000Z",
            "2026-03-04T07:06:07+02:00",
            "2026-03-04 05:06:07+00",
            "2026-03-04T05:06:07",
            "2026-03-04 05:06:07",
            "Wed, 04 Mar 2026 05:06:07 +0000",
            "04.03.2026 05:06:07",
            "2026/03/04 05:06:07",
            "  2026-03-04T00:06:07-05:00 ",
        ];
        for text in same {
            assert_eq!(
                to_utc_iso(text).as_deref(),
                Some("2026-03-04T05:06:07.000Z"),
                "{text}"
            );
        }
    }

    #[test]
    fn dates_alone_are_midnight_utc() {
        for text in [
            "2026-03-04",
            "04.03.2026",
            "2026/03/04",
            "Mar 4, 2026",
            "4 Mar 2026",
        ] {
            assert_eq!(
                to_utc_iso(text).as_deref(),
                Some("2026-03-04T00:00:00.000Z"),
                "{text}"
            );
        }
    }

    #[test]
    fn milliseconds_are_kept_and_microseconds_too() {
        assert_eq!(
            to_utc_iso("2022-12-22T09:45:37.369Z").as_deref(),
            Some("2022-12-22T09:45:37.369Z")
        );
        assert_eq!(
            to_utc_iso("2022-12-22 09:45:37.369001").as_deref(),
            Some("2022-12-22T09:45:37.369001Z")
        );
    }

    #[test]
    fn text_written_as_normalised_is_read_without_the_parser_as_the_parser_reads_it() {
        // The days around each year's turn and February's end in every year, and every day of 1999 to 2001.
        let mut days: Vec<NaiveDate> = (1..=9999)
            .flat_map(|year| {
                [
                    (year, 1, 1),
                    (year, 2, 28),
                    (year, 2, 29),
                    (year, 3, 1),
                    (year, 12, 31),
                ]
            })
            .filter_map(|(y, m, d)| NaiveDate::from_ymd_opt(y, m, d))
            .collect();
        let first = NaiveDate::from_ymd_opt(1999, 1, 1).unwrap();
        days.extend((0..1096).map(|n| first + chrono::Duration::days(n)));
        let mut checked = 0;
        for day in days {
            for (seconds, micros) in [
                (0, 0),
                (86_399, 999_000),
                (45_296, 120_000),
                (3_723, 123_456),
                (59, 999_999),
            ] {
                let t = (day.and_hms_opt(0, 0, 0).unwrap() + chrono::Duration::seconds(seconds))
                    .and_utc()
                    + chrono::Duration::microseconds(micros);
                let written = format(t);
                assert_eq!(
                    canonical_micros(&written),
                    Some(t.timestamp_micros()),
                    "{written}"
                );
                assert_eq!(to_utc_iso(&written).as_deref(), Some(written.as_str()));
                checked += 1;
            }
        }
        assert!(checked > 200_000, "{checked}");
    }

    #[test]
    fn text_not_written_as_normalised_goes_to_the_parser() {
        for text in [
            "2026-03-04T05:06:07Z",
            "2026-03-04T05:06:07.12Z",
            "2026-03-04T05:06:07.120000Z",
            "2026-03-04t05:06:07.120Z",
            "2026-03-04T05:06:07.120z",
            "2026-03-04 05:06:07.120Z",
            "2026-03-04T05:06:07.120+00",
            "2026-02-29T05:06:07.120Z",
            "2100-02-29T05:06:07.120Z",
            "2026-04-31T05:06:07.120Z",
            "2026-00-10T05:06:07.120Z",
            "2026-13-10T05:06:07.120Z",
            "2026-03-00T05:06:07.120Z",
            "2026-03-04T24:00:00.000Z",
            "2026-03-04T05:60:07.120Z",
            "2026-03-04T05:06:60.120Z",
            "0000-03-04T05:06:07.120Z",
            "2026-03-04T05:06:07.1a0Z",
            "+026-03-04T05:06:07.120Z",
            " 2026-03-04T05:06:07.120Z",
        ] {
            assert_eq!(canonical_micros(text), None, "{text}");
        }
        assert_eq!(
            canonical_micros("2000-02-29T23:59:59.999Z"),
            Some(951_868_799_999_000)
        );
    }

    #[test]
    fn ambiguous_and_invalid_text_is_refused() {
        for text in [
            "03/04/2026",
            "2026-02-30",
            "yesterday",
            "",
            "12",
            "2026-13-01",
        ] {
            assert_eq!(to_utc_iso(text), None, "{text}");
        }
    }
}
