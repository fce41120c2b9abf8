//! Retrying failed records: each goes through the stages again (as stored, or as the analyst edited it) under the
//! target table's current mapping, and is written without touching the entity's checkpoint. Those that pass leave
//! the queue; those that fail again keep their new error, and are dead after [`DEAD_AFTER`] tries.

use super::entity::transform;
use super::{open_source, RunError};
use crate::config::Pipeline;
use crate::schema::Mapping;
use crate::sink::{PageWrite, Sink};
use crate::store::{FailedRow, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::TS;

/// Tries after which a record is dead (seed 002: three, then an operator decides).
pub const DEAD_AFTER: i64 = 3;

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
    let mut outcome = RetryOutcome::default();
    if queue.is_empty() {
        return Ok(outcome);
    }
    let opened = open_source(pipeline).await?;
    let sink = Sink::connect(&pipeline.target, base_dir)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let mut by_entity: BTreeMap<&str, Vec<&FailedRow>> = BTreeMap::new();
    for row in &queue {
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
        let table = entity.table_name();
        let columns = sink
            .columns(table)
            .await
            .map_err(|e| RunError::Failed(e.to_string()))?
            .ok_or_else(|| {
                RunError::Invalid(format!(
                    "target table {table} does not exist; run the pipeline with --apply-schema first"
                ))
            })?;
        let mut mapping = Mapping::from_columns(columns, entity)
            .with_declared(opened.source.declared(entity))
            .with_fold_case(sink.folds_case());
        let texts: Vec<String> = rows
            .iter()
            .map(|r| edits.get(&r.id).cloned().unwrap_or_else(|| r.raw.clone()))
            .collect();
        // Unreadable (edited) text is a failure of its own, named like the others.
        let records: Vec<Value> = texts
            .iter()
            .map(|t| serde_json::from_str(t).unwrap_or(Value::Null))
            .collect();
        // Learning claims the table's columns for the records' fields; it must not add or retype any (a retry
        // changes no schema): what does not fit fails again, naming the field.
        let (known, types): (usize, Vec<_>) = (
            mapping.fields.len(),
            mapping.fields.iter().map(|f| f.ty).collect(),
        );
        mapping.learn(&records);
        mapping.fields.truncate(known);
        for (field, ty) in mapping.fields.iter_mut().zip(types) {
            field.ty = ty;
        }
        let done = transform(
            &records,
            &mapping,
            &entity.key_fields(),
            entity.rowversion.as_deref(),
            0,
        );
        let write = PageWrite {
            pipeline: &pipeline.name,
            entity: name,
            table,
            mapping: &mapping,
            rows: &done.rows,
            checkpoint: None,
            dry_run: false,
            skip_unchanged: true,
            deletes: crate::config::DeleteMode::None,
            starts_pass: false,
            // A retried record is a source record arriving late: it does not overwrite an outside edit either,
            // except that a manual conflict is decided in the queue, not here.
            conflicts: match entity.conflicts {
                crate::config::ConflictStrategy::Manual => {
                    crate::config::ConflictStrategy::TargetWins
                }
                other => other,
            },
            edits_tracked: sink
                .prepare_edit_tracking(table, false, false)
                .await
                .map_err(|e| RunError::Failed(e.to_string()))?,
            conflict_log: None,
        };
        let merged = sink
            .write_page(&write, "retry")
            .await
            .map_err(|e| RunError::Failed(e.to_string()))?;
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
                        .mark_failed_again(row.id, f.stage, &f.message, &texts[index], DEAD_AFTER)
                        .await
                }
            };
            marked.map_err(|e| RunError::Failed(e.to_string()))?;
        }
    }
    Ok(outcome)
}
