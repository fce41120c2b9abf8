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
    parse(text.trim()).map(format)
}

/// Whether `text` names an instant in an accepted format (what [`to_utc_iso`] checks, without writing the result:
/// type inference asks this of every text value of a page).
pub fn is_datetime(text: &str) -> bool {
    parse(text.trim()).is_some()
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
