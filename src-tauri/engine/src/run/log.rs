//! The run log: each run writes what happened to it as JSON lines (one object per line: `ts`, `level`, `event` and
//! the event's fields) into `logs/runs/RUN_ID.jsonl` beside the state database, so a person (the console's Runs
//! screen) or a tool (`jq`) can read a run's story after the fact. A resumed run appends to its file. The folder
//! keeps the newest [`KEEP_RUN_LOGS`] logs; a log stops taking page and failed-record lines at [`MAX_LOG_BYTES`]
//! (its end is still written, and the failed records stay in the state database's queue).

use super::RunEvent;
use serde::{Deserialize, Serialize};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// How many run logs the folder keeps (the oldest go first).
pub const KEEP_RUN_LOGS: usize = 200;
/// The size after which a run's log keeps only its warnings and its end.
pub const MAX_LOG_BYTES: u64 = 16 * 1024 * 1024;

/// The folder of run logs for a state database kept in `base_dir`.
pub fn runs_dir(base_dir: &Path) -> PathBuf {
    base_dir.join("logs").join("runs")
}

/// The log file of a run.
pub fn run_log_path(base_dir: &Path, run_id: &str) -> PathBuf {
    runs_dir(base_dir).join(format!("{run_id}.jsonl"))
}

/// One line of a run's log as the console shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ts_rs::TS)]
pub struct LogLine {
    pub ts: String,
    /// info, warn or error
    pub level: String,
    /// What happened: started, page, entity_done, waiting, record_failed, finished, truncated…
    pub event: String,
    /// The line in words.
    pub message: String,
    /// The line as written (every field).
    #[ts(type = "Record<string, unknown>")]
    pub fields: serde_json::Value,
}

/// An open run log; writing never fails the run (a log that cannot be written is reported once, then skipped).
pub struct RunLog {
    file: Mutex<Option<Writer>>,
}

struct Writer {
    out: std::io::BufWriter<std::fs::File>,
    written: u64,
    truncated: bool,
}

impl RunLog {
    /// A log that writes nothing (dry runs, runs without a state folder).
    pub fn none() -> RunLog {
        RunLog {
            file: Mutex::new(None),
        }
    }

    /// Opens (appending) the log of `run_id` and prunes the folder to the newest logs.
    pub fn open(base_dir: &Path, run_id: &str) -> RunLog {
        if base_dir.as_os_str().is_empty() {
            return RunLog::none();
        }
        let dir = runs_dir(base_dir);
        let path = run_log_path(base_dir, run_id);
        let opened = std::fs::create_dir_all(&dir).and_then(|()| {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
        });
        match opened {
            Ok(file) => {
                let written = file.metadata().map(|m| m.len()).unwrap_or(0);
                prune(&dir, KEEP_RUN_LOGS, &path);
                RunLog {
                    file: Mutex::new(Some(Writer {
                        out: std::io::BufWriter::new(file),
                        written,
                        truncated: false,
                    })),
                }
            }
            Err(e) => {
                tracing::warn!("run log {} not written: {e}", path.display());
                RunLog::none()
            }
        }
    }

    /// Writes a run event as a line.
    pub fn event(&self, event: &RunEvent) {
        let (level, name, message) = describe(event);
        let fields = serde_json::to_value(event).unwrap_or_default();
        self.write(level, name, &message, fields, name == "page");
    }

    /// A record that failed: where it was and why (its values stay in the failed-records queue, not in the log).
    pub fn record_failed(&self, entity: &str, page_no: u64, index: u64, stage: &str, why: &str) {
        let fields = serde_json::json!({
            "entity": entity, "page_no": page_no, "record_index": index, "stage": stage, "error": why,
        });
        let message =
            format!("{entity}: record {index} of page {page_no} failed in {stage}: {why}");
        self.write("warn", "record_failed", &message, fields, true);
    }

    /// How the entity's page memo served the pass: pages skipped as unchanged and read in full, or why every page
    /// was read.
    pub fn memo(&self, entity: &str, message: &str, skipped: u64, read: u64) {
        let fields =
            serde_json::json!({ "entity": entity, "pages_skipped": skipped, "pages_read": read });
        self.write("info", "page_memo", message, fields, false);
    }

    fn write(
        &self,
        level: &str,
        event: &str,
        message: &str,
        fields: serde_json::Value,
        droppable: bool,
    ) {
        let mut guard = self.file.lock().unwrap_or_else(|p| p.into_inner());
        let Some(writer) = guard.as_mut() else {
            return;
        };
        if droppable && writer.written >= MAX_LOG_BYTES {
            if !writer.truncated {
                writer.truncated = true;
                let note = line(
                    "warn",
                    "truncated",
                    "the log reached its size limit; page and failed-record lines are no longer written (the failed records are in Failed records)",
                    serde_json::json!({ "max_bytes": MAX_LOG_BYTES }),
                );
                writer.written += note.len() as u64;
                let _ = writer.out.write_all(note.as_bytes());
            }
            return;
        }
        let text = line(level, event, message, fields);
        let result = writer
            .out
            .write_all(text.as_bytes())
            .and_then(|()| writer.out.flush());
        match result {
            Ok(()) => writer.written += text.len() as u64,
            Err(e) => {
                tracing::warn!("run log not written any more: {e}");
                *guard = None;
            }
        }
    }
}

fn line(level: &str, event: &str, message: &str, fields: serde_json::Value) -> String {
    let now = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let mut object =
        serde_json::json!({ "ts": now, "level": level, "event": event, "message": message });
    if let (Some(out), serde_json::Value::Object(extra)) = (object.as_object_mut(), fields) {
        for (key, value) in extra {
            if key != "event" {
                out.entry(key).or_insert(value);
            }
        }
    }
    format!("{object}\n")
}

/// Level, event name and the words for a run event.
fn describe(event: &RunEvent) -> (&'static str, &'static str, String) {
    match event {
        RunEvent::Pending { pipeline } => ("info", "pending", format!("{pipeline} waits for a free job slot")),
        RunEvent::Started {
            pipeline,
            entities,
            resumed,
            ..
        } => (
            "info",
            "started",
            format!(
                "{} {pipeline}: {}",
                if *resumed { "resumed" } else { "started" },
                entities.join(", ")
            ),
        ),
        RunEvent::Page {
            entity,
            page_no,
            records,
            counts,
            target_calls,
            ..
        } => (
            "info",
            "page",
            format!(
                "{entity}: page {page_no}, {records} records; so far {} inserted, {} updated, {} failed{}",
                counts.inserted,
                counts.updated,
                counts.failed,
                target_calls
                    .map(|n| format!(", {n} write calls to the target"))
                    .unwrap_or_default()
            ),
        ),
        RunEvent::EntityDone { entity, counts } => (
            "info",
            "entity_done",
            format!(
                "{entity} done: {} fetched, {} inserted, {} updated, {} deleted, {} failed",
                counts.fetched, counts.inserted, counts.updated, counts.deleted, counts.failed
            ),
        ),
        RunEvent::Waiting {
            entity,
            on,
            message,
            waited_s,
            budget_s,
        } => (
            "warn",
            "waiting",
            format!("{entity}: lost the {on} ({message}); retrying, {waited_s} s of {budget_s} s"),
        ),
        RunEvent::Finished { summary } => {
            let level = match summary.status {
                crate::track::RunStatus::Failed => "error",
                crate::track::RunStatus::Completed => "info",
                _ => "warn",
            };
            let words = match &summary.error {
                Some(error) => format!("{}: {error}", summary.status.as_str()),
                None => summary.status.as_str().to_owned(),
            };
            (level, "finished", format!("run {words}"))
        }
    }
}

/// Deletes the oldest logs beyond `keep` (by modification time), never `current`.
fn prune(dir: &Path, keep: usize, current: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut logs: Vec<(std::time::SystemTime, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "jsonl"))
        .filter_map(|e| Some((e.metadata().ok()?.modified().ok()?, e.path())))
        .collect();
    if logs.len() <= keep {
        return;
    }
    logs.sort();
    let excess = logs.len() - keep;
    for (_, path) in logs.into_iter().take(excess) {
        if path != current {
            if let Err(e) = std::fs::remove_file(&path) {
                tracing::warn!("old run log {} not removed: {e}", path.display());
            }
        }
    }
}

/// The last `limit` lines of a run's log (an unknown run, or one that left no log, has none).
pub fn read_run_log(base_dir: &Path, run_id: &str, limit: usize) -> std::io::Result<Vec<LogLine>> {
    // A run id is a UUID; anything else could name a file elsewhere.
    if uuid::Uuid::parse_str(run_id).is_err() {
        return Ok(Vec::new());
    }
    let text = match std::fs::read_to_string(run_log_path(base_dir, run_id)) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let lines: Vec<&str> = text.lines().collect();
    Ok(lines[lines.len().saturating_sub(limit)..]
        .iter()
        .filter_map(|l| parse_line(l))
        .collect())
}

fn parse_line(text: &str) -> Option<LogLine> {
    let fields: serde_json::Value = serde_json::from_str(text).ok()?;
    let get = |key: &str| {
        fields
            .get(key)
            .and_then(|v| v.as_str())
            .unwrap_or_default()
            .to_owned()
    };
    Some(LogLine {
        ts: get("ts"),
        level: get("level"),
        event: get("event"),
        message: get("message"),
        fields,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_log_is_json_lines_that_read_back_and_old_logs_are_pruned() {
        let dir = tempfile::tempdir().unwrap();
        let id = uuid::Uuid::now_v7().to_string();
        let log = RunLog::open(dir.path(), &id);
        log.record_failed("items", 3, 7, "transform", "price: not a number");
        let lines = read_run_log(dir.path(), &id, 10).unwrap();
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].level, "warn");
        assert_eq!(lines[0].fields["record_index"], 7);
        assert!(lines[0].message.contains("page 3"), "{}", lines[0].message);
        assert!(read_run_log(dir.path(), "../../etc/passwd", 10)
            .unwrap()
            .is_empty());

        for n in 0..5 {
            std::fs::write(runs_dir(dir.path()).join(format!("old-{n}.jsonl")), "{}\n").unwrap();
        }
        prune(&runs_dir(dir.path()), 3, &run_log_path(dir.path(), &id));
        let left = std::fs::read_dir(runs_dir(dir.path())).unwrap().count();
        assert!(
            left <= 4 && run_log_path(dir.path(), &id).exists(),
            "{left} left"
        );
    }
}
