//! Retrying failed records: each goes through the stages again (as stored, or as the analyst edited it) under the
//! target table's current mapping, and is written without touching the entity's checkpoint. Those that pass leave
//! the queue; those that fail again keep their new error, and are dead after [`TRIES_BEFORE_DEAD`] tries.

use super::entity::transform;
use super::pending::held_child;
use super::replay::{table_mapping, write_late, LateWriter};
use super::{open_source, RunError};
use crate::config::Pipeline;
use crate::sink::Sink;
use crate::store::{FailedRow, HeldChild, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::TS;

/// Tries after which a record is dead (seed 002: three, then an operator decides).
pub const TRIES_BEFORE_DEAD: i64 = 3;

/// What a retry did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct RetryOutcome {
    #[ts(type = "number")]
    pub retried: u64,
    #[ts(type = "number")]
    pub inserted: u64,
    #[ts(type = "number")]
    pub updated: u64,
    #[ts(type = "number")]
    pub unchanged: u64,
    /// Records that passed but whose parent is not in the target yet: they wait with the other children.
    #[ts(type = "number")]
    pub waiting: u64,
    /// Records that failed again, with their new errors.
    pub still_failing: Vec<StillFailing>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StillFailing {
    #[ts(type = "number")]
    pub id: i64,
    pub entity: String,
    pub stage: String,
    pub message: String,
}

/// Retries the failed (not yet retried) records of a pipeline — all of them, or those in `only` — with `edits`
/// replacing the stored record text of some (by id).
pub async fn retry_failed(
    pipeline: &Pipeline,
    store: &Store,
    base_dir: &Path,
    only: Option<&[i64]>,
    edits: &BTreeMap<i64, String>,
) -> Result<RetryOutcome, RunError> {
    let queue: Vec<FailedRow> = store
        .failed_records(&pipeline.name)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?
        .into_iter()
        .filter(|r| r.status != "retried")
        .filter(|r| only.is_none_or(|ids| ids.contains(&r.id)))
        .collect();
    if queue.is_empty() {
        return Ok(RetryOutcome::default());
    }
    // A retry writes the pipeline's target: not beside a run of it (the same lease as a run).
    let lease = crate::lease::take(store, &pipeline.name, "failed retry")
        .await
        .map_err(|e| match e {
            crate::lease::LeaseError::Held { .. } => RunError::Busy(e.to_string()),
            crate::lease::LeaseError::Store(e) => RunError::Failed(e.to_string()),
        })?;
    let retried = retry_queue(pipeline, store, base_dir, &queue, edits).await;
    lease.release().await;
    retried
}

async fn retry_queue(
    pipeline: &Pipeline,
    store: &Store,
    base_dir: &Path,
    queue: &[FailedRow],
    edits: &BTreeMap<i64, String>,
) -> Result<RetryOutcome, RunError> {
    let mut outcome = RetryOutcome::default();
    let writer = LateWriter::outside_runs();
    let opened = open_source(pipeline).await?;
    let sink = Sink::connect_with_state(&pipeline.target, base_dir, store)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let mut by_entity: BTreeMap<&str, Vec<&FailedRow>> = BTreeMap::new();
    for row in queue {
        by_entity.entry(&row.entity).or_default().push(row);
    }
    for (name, rows) in by_entity {
        let entity = opened
            .entities
            .iter()
            .find(|e| e.name == name)
            .ok_or_else(|| {
                RunError::Invalid(format!(
                    "failed records of entity \"{name}\", which the pipeline no longer has"
                ))
            })?;
        let texts: Vec<String> = rows
            .iter()
            .map(|r| edits.get(&r.id).cloned().unwrap_or_else(|| r.raw.clone()))
            .collect();
        // Unreadable (edited) text is a failure of its own, named like the others.
        let mut records: Vec<Value> = texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
            .collect();
        let mapping = table_mapping(&sink, &opened.source, entity, &records).await?;
        // A child whose parent is still missing waits with its record as it was (`held_child`).
        let mut done = transform(
            &mut records,
            &mapping,
            &entity.key_fields(),
            entity.rowversion.as_deref(),
            0,
            false,
        );
        // A retried child whose parent is still missing moves to the queue of waiting children.
        let links =
            crate::parents::parent_links(entity, &opened.entities).map_err(RunError::Invalid)?;
        let (ready, held) = crate::parents::hold_orphans(&sink, &links, &mapping, done.rows)
            .await
            .map_err(|e| RunError::Failed(e.to_string()))?;
        done.rows = ready;
        let held: Vec<HeldChild> = held.into_iter().map(|h| held_child(h, &records)).collect();
        let landed: Vec<&str> = done.rows.iter().map(|r| r.key_hash.as_str()).collect();
        store
            .settle_children(&pipeline.name, name, "retry", &landed, &held)
            .await
            .map_err(|e| RunError::Failed(e.to_string()))?;
        outcome.waiting += held.len() as u64;
        let merged =
            write_late(&sink, &pipeline.name, entity, &mapping, &done.rows, &writer).await?;
        outcome.inserted += merged.inserted;
        outcome.updated += merged.updated;
        outcome.unchanged += merged.skipped;
        for (index, row) in rows.iter().enumerate() {
            let failure = done.failed.iter().find(|f| f.record_index == index as u64);
            let marked = match failure {
                None => {
                    outcome.retried += 1;
                    store.mark_retried(row.id).await
                }
                Some(f) => {
                    outcome.still_failing.push(StillFailing {
                        id: row.id,
                        entity: name.to_owned(),
                        stage: f.stage.to_owned(),
                        message: f.message.clone(),
                    });
                    store
                        .mark_failed_again(
                            row.id,
                            f.stage,
                            &f.message,
                            &texts[index],
                            TRIES_BEFORE_DEAD,
                        )
                        .await
                }
            };
            marked.map_err(|e| RunError::Failed(e.to_string()))?;
        }
    }
    Ok(outcome)
}
