//! A pipeline's schedule (the `[schedule]` of the pipeline file) and its reading into times: cron occurrences in the schedule's time zone, the daily window, and
//! which window an instant belongs to (the unit `days_to_complete` spreads a pass over).

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use croner::Cron;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use ts_rs::TS;

/// A pipeline's schedule: cron times in a time zone, optionally only inside a daily window, optionally spreading
/// a large first sync over several windows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// Five-field cron (minute hour day-of-month month day-of-week), e.g. "0 19 * * *" or "0,30 8-18 * * 1-5".
    pub cron: String,
    /// IANA time zone the cron and the window are read in (default UTC), e.g. "Europe/Berlin".
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// Work only between these local times; a run still going at the end pauses and continues in the next window.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub window: Option<TimeWindow>,
    /// Spread each pass over this many windows: each window takes about 1/N of the records, the offset is kept
    /// between windows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub days_to_complete: Option<u32>,
}

/// A daily window in local time; `end` before `start` crosses midnight (19:00 – 07:00).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct TimeWindow {
    /// "HH:MM"
    pub start: String,
    /// "HH:MM"
    pub end: String,
}

fn default_timezone() -> String {
    "UTC".into()
}

/// A parsed, checked schedule.
#[derive(Debug, Clone)]
pub struct Plan {
    cron: Cron,
    tz: Tz,
    window: Option<(NaiveTime, NaiveTime)>,
    pub days_to_complete: Option<u32>,
}

impl Plan {
    /// Reads a schedule; the error names the key and says what is expected.
    pub fn parse(schedule: &Schedule) -> Result<Plan, String> {
        // croner also reads six fields (seconds first): "0 19 * * * *" would silently mean something else than the
        // five-field pattern the editor and the file ask for.
        let fields = schedule.cron.split_whitespace().count();
        if fields != 5 && !schedule.cron.trim().starts_with('@') {
            return Err(format!(
                "schedule.cron = \"{}\" has {fields} fields; write exactly five: minute hour day-of-month month \
                 day-of-week, e.g. \"0 19 * * *\"",
                schedule.cron
            ));
        }
        let cron = Cron::from_str(schedule.cron.trim()).map_err(|e| {
            format!(
                "schedule.cron = \"{}\" is not a cron pattern ({e}); write five fields: minute hour day-of-month \
                 month day-of-week, e.g. \"0 19 * * *\"",
                schedule.cron
            )
        })?;
        let tz = Tz::from_str(schedule.timezone.trim()).map_err(|_| {
            format!(
                "schedule.timezone = \"{}\" is not an IANA time zone; use e.g. \"Europe/Berlin\" or \"UTC\"",
                schedule.timezone
            )
        })?;
        let window = match &schedule.window {
            None => None,
            Some(w) => {
                let start = clock_time(&w.start, "schedule.window.start")?;
                let end = clock_time(&w.end, "schedule.window.end")?;
                if start == end {
                    return Err("schedule.window: start and end are equal; leave the window out to allow any time".into());
                }
                Some((start, end))
            }
        };
        if schedule.days_to_complete == Some(0) {
            return Err("schedule.days_to_complete must be at least 1".into());
        }
        Ok(Plan {
            cron,
            tz,
            window,
            days_to_complete: schedule.days_to_complete,
        })
    }

    /// The cron pattern in words ("At 19:00 every day" …).
    pub fn describe(&self) -> String {
        self.cron.describe()
    }

    /// The next `n` times the schedule fires after `after`.
    pub fn next_times(&self, after: DateTime<Utc>, n: usize) -> Vec<DateTime<Utc>> {
        self.cron
            .iter_after(after.with_timezone(&self.tz))
            .take(n)
            .map(|t| t.with_timezone(&Utc))
            .collect()
    }

    /// How many times the schedule fired in (`since`, `now`], counting up to `cap`.
    pub fn fires_between(&self, since: DateTime<Utc>, now: DateTime<Utc>, cap: usize) -> usize {
        self.cron
            .iter_after(since.with_timezone(&self.tz))
            .take_while(|t| t.with_timezone(&Utc) <= now)
            .take(cap)
            .count()
    }

    pub fn has_window(&self) -> bool {
        self.window.is_some()
    }

    /// Whether work is allowed at `now`.
    pub fn in_window(&self, now: DateTime<Utc>) -> bool {
        self.window_start(now).is_some()
    }

    /// The start of the window `now` is in (None outside every window). Without a window, the start of the local
    /// day: `days_to_complete` then spreads a pass over days.
    pub fn window_start(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = now.with_timezone(&self.tz);
        let today = local.date_naive();
        let Some((start, end)) = self.window else {
            return self.at(today.and_time(NaiveTime::MIN));
        };
        let time = local.time();
        if start < end {
            return (time >= start && time < end)
                .then(|| self.at(today.and_time(start)))
                .flatten();
        }
        // Crosses midnight: 19:00–07:00 is this evening's window after 19:00, yesterday evening's before 07:00.
        if time >= start {
            self.at(today.and_time(start))
        } else if time < end {
            self.at((today - Duration::days(1)).and_time(start))
        } else {
            None
        }
    }

    /// When the window `now` is in ends (None without a window or outside it).
    pub fn window_end(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let (start, end) = self.window?;
        let opened = self.window_start(now)?.with_timezone(&self.tz);
        let mut day = opened.date_naive();
        if end <= start {
            day += Duration::days(1);
        }
        self.at(day.and_time(end))
    }

    /// A local wall-clock time as an instant (the earlier one when a clock change repeats it, the next valid one
    /// when a clock change skips it).
    fn at(&self, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
        match self.tz.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
            chrono::LocalResult::Ambiguous(early, _) => Some(early.with_timezone(&Utc)),
            chrono::LocalResult::None => self
                .tz
                .from_local_datetime(&(local + Duration::hours(1)))
                .earliest()
                .map(|t| t.with_timezone(&Utc)),
        }
    }
}

/// What the schedule editor shows under the cron field.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct SchedulePreview {
    /// The cron pattern in words.
    pub description: String,
    /// The next five runs (RFC 3339, in the schedule's time zone); inside a window a fire outside it waits for it.
    pub next_runs: Vec<String>,
    /// The window in words, when there is one.
    pub window: Option<String>,
}

/// The editor's preview of a schedule, or the error that names what to fix.
pub fn preview(schedule: &Schedule, now: DateTime<Utc>) -> Result<SchedulePreview, String> {
    let plan = Plan::parse(schedule)?;
    let next_runs = plan
        .next_times(now, 5)
        .into_iter()
        .map(|t| {
            t.with_timezone(&plan.tz)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
        })
        .collect();
    let window = schedule.window.as_ref().map(|w| {
        let days = match schedule.days_to_complete {
            Some(n) if n > 1 => format!("; a pass is spread over {n} windows"),
            _ => String::new(),
        };
        format!(
            "works only between {} and {} ({}); a run still going at {} pauses and continues in the next window{days}",
            w.start, w.end, schedule.timezone, w.end
        )
    });
    Ok(SchedulePreview {
        description: plan.describe(),
        next_runs,
        window,
    })
}

/// [`preview`] from the system clock's now.
pub fn preview_from_now(schedule: &Schedule) -> Result<SchedulePreview, String> {
    preview(schedule, Utc::now())
}

fn clock_time(text: &str, key: &str) -> Result<NaiveTime, String> {
    NaiveTime::parse_from_str(text.trim(), "%H:%M").map_err(|_| {
        format!("{key} = \"{text}\" is not a time of day; write it as HH:MM, e.g. \"19:00\"")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(cron: &str, tz: &str, window: Option<(&str, &str)>) -> Plan {
        Plan::parse(&Schedule {
            cron: cron.into(),
            timezone: tz.into(),
            window: window.map(|(start, end)| TimeWindow {
                start: start.into(),
                end: end.into(),
            }),
            days_to_complete: None,
        })
        .unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn only_five_field_patterns_are_taken() {
        let with = |cron: &str| {
            Plan::parse(&Schedule {
                cron: cron.into(),
                timezone: "UTC".into(),
                window: None,
                days_to_complete: None,
            })
        };
        let six = with("0 19 * * * *").err().unwrap_or_default();
        assert!(
            six.contains("has 6 fields") && six.contains("exactly five"),
            "{six}"
        );
        assert!(with("0 19 * * 1-5").is_ok());
        assert!(with("0 19 * *").is_err());
    }

    #[test]
    fn cron_times_follow_the_time_zone_across_a_clock_change() {
        let p = plan("0 19 * * *", "Europe/Berlin", None);
        // Berlin leaves summer time on 2026-10-25: 19:00 local is 17:00 UTC before, 18:00 UTC after.
        let next = p.next_times(utc("2026-10-24T12:00:00Z"), 2);
        assert_eq!(
            next,
            vec![utc("2026-10-24T17:00:00Z"), utc("2026-10-25T18:00:00Z")]
        );
        assert!(
            p.describe().contains("19:00") || p.describe().contains("7:00"),
            "{}",
            p.describe()
        );
    }

    #[test]
    fn a_window_across_midnight_belongs_to_the_evening_it_opened() {
        let p = plan("0 19 * * *", "UTC", Some(("19:00", "07:00")));
        assert_eq!(
            p.window_start(utc("2026-11-22T23:00:00Z")),
            Some(utc("2026-11-22T19:00:00Z"))
        );
        assert_eq!(
            p.window_start(utc("2026-11-23T06:59:59Z")),
            Some(utc("2026-11-22T19:00:00Z"))
        );
        assert_eq!(
            p.window_end(utc("2026-11-23T06:00:00Z")),
            Some(utc("2026-11-23T07:00:00Z"))
        );
        assert!(!p.in_window(utc("2026-11-23T07:00:00Z")));
        assert!(!p.in_window(utc("2026-11-23T12:00:00Z")));
        assert!(p.in_window(utc("2026-11-23T19:00:00Z")));
    }

    #[test]
    fn missed_fires_are_counted_not_replayed() {
        let p = plan("0 * * * *", "UTC", None);
        assert_eq!(
            p.fires_between(
                utc("2026-11-22T00:30:00Z"),
                utc("2026-11-22T05:10:00Z"),
                100
            ),
            5
        );
        assert_eq!(
            p.fires_between(
                utc("2026-11-22T00:30:00Z"),
                utc("2026-11-22T00:59:00Z"),
                100
            ),
            0
        );
    }

    #[test]
    fn bad_schedules_are_named() {
        let bad = |cron: &str, tz: &str, window: Option<(&str, &str)>| {
            Plan::parse(&Schedule {
                cron: cron.into(),
                timezone: tz.into(),
                window: window.map(|(s, e)| TimeWindow {
                    start: s.into(),
                    end: e.into(),
                }),
                days_to_complete: None,
            })
            .unwrap_err()
        };
        assert!(bad("every night", "UTC", None).contains("schedule.cron"));
        assert!(bad("0 19 * * *", "Mars/Olympus", None).contains("schedule.timezone"));
        assert!(bad("0 19 * * *", "UTC", Some(("7pm", "07:00"))).contains("schedule.window.start"));
    }
}
