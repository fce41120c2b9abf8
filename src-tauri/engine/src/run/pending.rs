//! Children waiting for their parent (RESOLVE's queue) land once the parent is in the target: checked at the
//! end of every completed run, by the scheduler's loop every [`CHECK_EVERY_MINUTES`] minutes (after
//! [`CHECKS_BEFORE_DEAD`] checks of the loop a child is dead and the operator is told), and on request.

use super::entity::transform;
use super::replay::{table_mapping, write_late, LateWriter};
use super::{open_source, RunError};
use crate::config::{Entity, Pipeline};
use crate::parents::Held;
use crate::sink::Sink;
use crate::source::Source;
use crate::store::{FailedRecord, HeldChild, PendingChild, Store};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::TS;

/// The loop's checks after which a child whose parent never came is dead (seeds 003/004: five).
pub const CHECKS_BEFORE_DEAD: i64 = 5;
/// How often the loop checks a waiting child.
pub const CHECK_EVERY_MINUTES: i64 = 5;

/// Who checks the waiting children, which decides which are checked and whether a check counts as a try.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Attempt {
    /// A run completed: its parents may have arrived (pending children; no try counted).
    AfterRun,
    /// The scheduler's loop (pending children; a try counted at this time).
    Loop(chrono::DateTime<chrono::Utc>),
    /// The operator asked (pending and dead children; no try counted).
    Manual,
}

/// What a check did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct LandOutcome {
    /// Children checked.
    #[ts(type = "number")]
    pub tried: u64,
    /// Children written to the target (their parent is there now).
    #[ts(type = "number")]
    pub landed: u64,
    /// Children still waiting.
    #[ts(type = "number")]
    pub waiting: u64,
    /// Children that used their last try in this check.
    #[ts(type = "number")]
    pub dead: u64,
    /// Children that no longer pass the stages (the table changed): moved to the failed records.
    #[ts(type = "number")]
    pub failed: u64,
}

/// A held row as the queue keeps it: with its record as fetched.
pub(super) fn held_child(held: Held, records: &[Value]) -> HeldChild {
    HeldChild {
        key_hash: held.key_hash,
        field: held.field,
        parent_entity: held.parent_entity,
        parent_key: held.parent_key.to_string(),
        raw: records
            .get(held.record_index as usize)
            .map(Value::to_string)
            .unwrap_or_default(),
    }
}

/// Checks the waiting children of a pipeline (all, or those in `only`), connecting to its source and target.
pub async fn land_children(
    pipeline: &Pipeline,
    store: &Store,
    base_dir: &Path,
    only: Option<&[i64]>,
    attempt: Attempt,
) -> Result<LandOutcome, RunError> {
    let queue = waiting(store, &pipeline.name, only, attempt).await?;
    if queue.is_empty() {
        return Ok(LandOutcome::default());
    }
    // Landing writes the pipeline's target: not beside a run of it (the same lease as a run; a run lands its
    // children itself, inside its own lease).
    let lease = crate::lease::take(store, &pipeline.name, "children check")
        .await
        .map_err(|e| match e {
            crate::lease::LeaseError::Held { .. } => RunError::Busy(e.to_string()),
            crate::lease::LeaseError::Store(e) => RunError::Failed(e.to_string()),
        })?;
    let landed = async {
        let opened = open_source(pipeline).await?;
        let sink = Sink::connect_with_state(&pipeline.target, base_dir, store)
            .await
            .map_err(|e| RunError::Failed(e.to_string()))?;
        land_queue(
            &pipeline.name,
            &opened.entities,
            &opened.source,
            &sink,
            store,
            &LateWriter::outside_runs(),
            queue,
            attempt,
        )
        .await
    }
    .await;
    lease.release().await;
    landed
}

/// Checks the waiting children with a source and target already open (the end of a run).
pub(super) async fn land_with(
    pipeline: &str,
    entities: &[Entity],
    source: &Source,
    sink: &Sink,
    store: &Store,
    run_id: &str,
    attempt: Attempt,
) -> Result<LandOutcome, RunError> {
    let queue = waiting(store, pipeline, None, attempt).await?;
    let writer = LateWriter::run(run_id);
    land_queue(
        pipeline, entities, source, sink, store, &writer, queue, attempt,
    )
    .await
}

async fn waiting(
    store: &Store,
    pipeline: &str,
    only: Option<&[i64]>,
    attempt: Attempt,
) -> Result<Vec<PendingChild>, RunError> {
    Ok(store
        .pending_children(pipeline)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?
        .into_iter()
        .filter(|c| attempt == Attempt::Manual || c.status == "pending")
        .filter(|c| only.is_none_or(|ids| ids.contains(&c.id)))
        .collect())
}

#[allow(clippy::too_many_arguments)]
async fn land_queue(
    pipeline: &str,
    entities: &[Entity],
    source: &Source,
    sink: &Sink,
    store: &Store,
    writer: &LateWriter,
    queue: Vec<PendingChild>,
    attempt: Attempt,
) -> Result<LandOutcome, RunError> {
    let mut outcome = LandOutcome::default();
    let mut by_entity: BTreeMap<String, Vec<PendingChild>> = BTreeMap::new();
    for child in queue {
        by_entity
            .entry(child.entity.clone())
            .or_default()
            .push(child);
    }
    for (name, children) in by_entity {
        let Some(entity) = entities.iter().find(|e| e.name == name) else {
            tracing::warn!(
                pipeline,
                entity = name,
                "children waiting for an entity the pipeline no longer has"
            );
            continue;
        };
        let entity_outcome = land_entity(
            pipeline, entities, entity, source, sink, store, writer, &children, attempt,
        )
        .await?;
        outcome.tried += entity_outcome.tried;
        outcome.landed += entity_outcome.landed;
        outcome.waiting += entity_outcome.waiting;
        outcome.dead += entity_outcome.dead;
        outcome.failed += entity_outcome.failed;
    }
    Ok(outcome)
}

#[allow(clippy::too_many_arguments)]
async fn land_entity(
    pipeline: &str,
    entities: &[Entity],
    entity: &Entity,
    source: &Source,
    sink: &Sink,
    store: &Store,
    writer: &LateWriter,
    children: &[PendingChild],
    attempt: Attempt,
) -> Result<LandOutcome, RunError> {
    let fail = |e: String| RunError::Failed(e);
    let mut records: Vec<Value> = children
        .iter()
        .map(|c| serde_json::from_str(&c.raw).unwrap_or(Value::Null))
        .collect();
    let mapping = table_mapping(sink, source, entity, &records).await?;
    // Children still without their parent wait again with their record as it was.
    let mut done = transform(
        &mut records,
        &mapping,
        &entity.key_fields(),
        entity.rowversion.as_deref(),
        0,
        false,
    );
    let links = crate::parents::parent_links(entity, entities).map_err(RunError::Invalid)?;
    let (ready, still) = crate::parents::hold_orphans(sink, &links, &mapping, done.rows)
        .await
        .map_err(|e| fail(e.to_string()))?;
    done.rows = ready;
    let merged = write_late(sink, pipeline, entity, &mapping, &done.rows, writer).await?;
    tracing::info!(
        pipeline,
        entity = entity.name,
        inserted = merged.inserted,
        updated = merged.updated,
        "children landed with their parent"
    );
    let id_at = |index: u32| children.get(index as usize).map(|c| c.id);
    let landed: Vec<i64> = done
        .rows
        .iter()
        .filter_map(|r| id_at(r.record_index))
        .collect();
    store
        .close_children(&landed, "landed")
        .await
        .map_err(|e| fail(e.to_string()))?;
    // A child that no longer passes the stages is a failed record now, with its error; it leaves this queue.
    let failed_ids: Vec<i64> = done
        .failed
        .iter()
        .filter_map(|f| id_at(f.record_index as u32))
        .collect();
    let failures: Vec<FailedRecord> = done
        .failed
        .into_iter()
        // Filed under run "pending", page 0, with the waiting entry's id as the record index: unique per child.
        .map(|f| FailedRecord {
            page_no: 0,
            record_index: id_at(f.record_index as u32).map_or(0, |id| id.unsigned_abs()),
            ..f
        })
        .collect();
    store
        .record_failed("pending", pipeline, &entity.name, &failures)
        .await
        .map_err(|e| fail(e.to_string()))?;
    store
        .close_children(&failed_ids, "failed")
        .await
        .map_err(|e| fail(e.to_string()))?;
    let waiting: Vec<i64> = still.iter().filter_map(|h| id_at(h.record_index)).collect();
    let mut dead = 0;
    if let Attempt::Loop(now) = attempt {
        dead = children
            .iter()
            .filter(|c| waiting.contains(&c.id) && c.tries + 1 >= CHECKS_BEFORE_DEAD)
            .count() as u64;
        store
            .note_child_tries(&waiting, now, CHECKS_BEFORE_DEAD)
            .await
            .map_err(|e| fail(e.to_string()))?;
    }
    Ok(LandOutcome {
        tried: children.len() as u64,
        landed: landed.len() as u64,
        waiting: waiting.len() as u64,
        dead,
        failed: failed_ids.len() as u64,
    })
}
