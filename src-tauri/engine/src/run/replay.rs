//! Records that arrive late — failed records retried, children whose parent came — go through the stages again
//! outside a pass: under the target table's current mapping, written without touching the entity's checkpoint.

use super::RunError;
use crate::config::{ConflictStrategy, DeleteMode, Entity};
use crate::schema::Mapping;
use crate::sink::{MergeCounts, PageWrite, PreparedRow, Sink};
use crate::source::Source;
use serde_json::Value;

/// The mapping late records are read with: the table's columns, claimed for the records' fields. It must not add
/// or retype a column (a late record changes no schema): what does not fit fails, naming the field.
pub(super) async fn table_mapping(
    sink: &Sink,
    source: &Source,
    entity: &Entity,
    records: &[Value],
) -> Result<Mapping, RunError> {
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
        .with_declared(source.declared(entity))
        .with_fold_case(sink.folds_case());
    if sink.schemaless() {
        // A REST target has no columns to hold late records to: their fields go as learnt.
        mapping.learn(records);
        return Ok(mapping);
    }
    let (known, types): (usize, Vec<_>) = (
        mapping.fields.len(),
        mapping.fields.iter().map(|f| f.ty).collect(),
    );
    mapping.learn(records);
    mapping.fields.truncate(known);
    for (field, ty) in mapping.fields.iter_mut().zip(types) {
        field.ty = ty;
    }
    Ok(mapping)
}

/// Who writes late rows: a run (the children landing at its end are part of it, undone with it), or nobody (a
/// retry, a children check: an id of its own, marked late in the undo information).
pub struct LateWriter {
    id: String,
    in_run: bool,
}

impl LateWriter {
    pub(super) fn run(run_id: &str) -> LateWriter {
        LateWriter {
            id: run_id.to_owned(),
            in_run: true,
        }
    }

    pub(super) fn outside_runs() -> LateWriter {
        LateWriter {
            id: uuid::Uuid::now_v7().to_string(),
            in_run: false,
        }
    }
}

/// Writes late rows in one transaction, without a checkpoint.
pub(super) async fn write_late(
    sink: &Sink,
    pipeline: &str,
    entity: &Entity,
    mapping: &Mapping,
    rows: &[PreparedRow],
    writer: &LateWriter,
) -> Result<MergeCounts, RunError> {
    let table = entity.table_name();
    let write = PageWrite {
        pipeline,
        entity: &entity.name,
        table,
        mapping,
        rows,
        checkpoint: None,
        dry_run: false,
        skip_unchanged: true,
        deletes: DeleteMode::None,
        starts_pass: false,
        // A late record does not overwrite an outside edit either, except that a manual conflict is decided in
        // the queue, not here.
        conflicts: match entity.conflicts {
            ConflictStrategy::Manual => ConflictStrategy::TargetWins,
            other => other,
        },
        edits_tracked: sink
            .prepare_edit_tracking(table, false, false)
            .await
            .map_err(|e| RunError::Failed(e.to_string()))?,
        conflict_log: None,
        page_keys: &[],
        pass_keys: None,
        rows_before: None,
        found_before: None,
        interrupted: None,
        never_older: true,
        delete_guard: None,
        late: !writer.in_run,
        full_refresh: None,
        copy: None,
    };
    sink.write_page(&write, &writer.id)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))
}
