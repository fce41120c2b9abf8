//! TRACK: what a run did — per-entity counters, run status and the summary the CLI prints (README, "The CLI").

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// Counters of one entity in one run. They add up: fetched = inserted + updated + skipped + failed + pending +
/// conflicts (rows kept as edited in the target).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EntityCounts {
    #[ts(type = "number")]
    pub fetched: u64,
    #[ts(type = "number")]
    pub inserted: u64,
    #[ts(type = "number")]
    pub updated: u64,
    #[ts(type = "number")]
    pub deleted: u64,
    #[ts(type = "number")]
    pub skipped: u64,
    #[ts(type = "number")]
    pub failed: u64,
    #[ts(type = "number")]
    pub pending: u64,
    #[ts(type = "number")]
    pub conflicts: u64,
}

impl EntityCounts {
    pub fn add(&mut self, other: &EntityCounts) {
        self.fetched += other.fetched;
        self.inserted += other.inserted;
        self.updated += other.updated;
        self.deleted += other.deleted;
        self.skipped += other.skipped;
        self.failed += other.failed;
        self.pending += other.pending;
        self.conflicts += other.conflicts;
    }

    /// Whether every fetched record is accounted for.
    pub fn adds_up(&self) -> bool {
        self.fetched
            == self.inserted
                + self.updated
                + self.skipped
                + self.failed
                + self.pending
                + self.conflicts
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum RunStatus {
    /// Waiting for a free job slot.
    Pending,
    Running,
    Paused,
    Completed,
    Failed,
    Cancelled,
    /// Was running when the app or the CLI closed or crashed; resumes on request.
    Interrupted,
}

impl RunStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Pending => "pending",
            RunStatus::Running => "running",
            RunStatus::Paused => "paused",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
            RunStatus::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> RunStatus {
        match text {
            "running" => RunStatus::Running,
            "paused" => RunStatus::Paused,
            "completed" => RunStatus::Completed,
            "cancelled" => RunStatus::Cancelled,
            "pending" => RunStatus::Pending,
            "interrupted" => RunStatus::Interrupted,
            _ => RunStatus::Failed,
        }
    }
}

/// The result of a run: the CLI's `--json` line.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct RunSummary {
    pub run_id: String,
    pub pipeline: String,
    pub status: RunStatus,
    pub entities: BTreeMap<String, EntityCounts>,
    #[ts(type = "number")]
    pub duration_ms: u64,
    /// Why the run failed, when it did.
    pub error: Option<String>,
    /// The result in words, honest about failed records: "completed", "completed with 3 failed", "failed"…
    #[serde(default)]
    pub outcome: String,
}

/// A run's result in words: a completed run that left failed records says how many ("completed with 3 failed"),
/// so it never reads as a clean success.
pub fn outcome(status: RunStatus, failed: u64) -> String {
    match status {
        RunStatus::Completed if failed > 0 => format!("completed with {failed} failed"),
        other => other.as_str().to_owned(),
    }
}

impl RunSummary {
    /// Failed records over every entity.
    pub fn failed(&self) -> u64 {
        self.entities.values().map(|c| c.failed).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_has_the_contract_shape() {
        let mut entities = BTreeMap::new();
        entities.insert(
            "items".to_owned(),
            EntityCounts {
                fetched: 3,
                inserted: 3,
                ..Default::default()
            },
        );
        let s = RunSummary {
            run_id: "r".into(),
            pipeline: "erp-items".into(),
            status: RunStatus::Completed,
            entities,
            duration_ms: 5,
            error: None,
            outcome: outcome(RunStatus::Completed, 0),
        };
        let v: serde_json::Value = serde_json::to_value(&s).unwrap();
        assert_eq!(v["status"], "completed");
        let items = v["entities"]["items"].as_object().unwrap();
        let keys: Vec<&str> = items.keys().map(String::as_str).collect();
        for k in [
            "fetched",
            "inserted",
            "updated",
            "deleted",
            "skipped",
            "failed",
            "pending",
            "conflicts",
        ] {
            assert!(keys.contains(&k), "missing {k}");
        }
        assert!(v["error"].is_null());
    }
}
