//! Undo of a run: every table it changed put back as it was before it (inserted rows removed, updated and deleted
//! rows restored with their ids, values and tracking columns, its checkpoints restored), one transaction per
//! target; what it filed for a person (failed records, waiting children, open conflicts) withdrawn with it. Only
//! the latest run of a pipeline that changed its target can be undone.

use super::{AppError, Context, ErrorKind};
use crate::sink::{Sink, UndoRefusal, UndoTable};
use crate::store::Withdrawn;
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What undoing a run changes (a preview) or changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct UndoReport {
    pub run_id: String,
    pub pipeline: String,
    /// Whether the changes were made (false: a preview, nothing changed).
    pub undone: bool,
    /// Per table the run changed: rows removed and rows restored.
    pub tables: Vec<UndoTable>,
    /// What the run had filed for a person, withdrawn with it.
    pub withdrawn: Withdrawn,
}

/// What undoing `run_id` would change; nothing is changed.
pub async fn preview(ctx: &Context, run_id: &str) -> Result<UndoReport, AppError> {
    undo_run(ctx, run_id, false).await
}

/// Undoes `run_id`.
pub async fn undo(ctx: &Context, run_id: &str) -> Result<UndoReport, AppError> {
    undo_run(ctx, run_id, true).await
}

async fn undo_run(ctx: &Context, run_id: &str, apply: bool) -> Result<UndoReport, AppError> {
    let Some((name, run)) = ctx.store().run_by_id(run_id).await? else {
        return Err(AppError::not_found(format!(
            "no run {run_id} in this state database (`syncflow runs list PIPELINE` shows the run ids)"
        )));
    };
    if let Some(at) = &run.undone_at {
        return Err(AppError::invalid(format!(
            "run {run_id} of pipeline \"{name}\" was undone already, at {at}"
        )));
    }
    let pipeline = ctx.pipeline(&name).await?;
    // Undo writes the pipeline's target: not beside a run of it.
    let lease = crate::lease::take(ctx.store(), &name, "undo")
        .await
        .map_err(|e| match e {
            crate::lease::LeaseError::Held { .. } => AppError::new(ErrorKind::Busy, e.to_string()),
            crate::lease::LeaseError::Store(e) => AppError::failed(e),
        })?;
    let undone = undo_under_lease(ctx, &pipeline, run_id, apply).await;
    lease.release().await;
    undone
}

async fn undo_under_lease(
    ctx: &Context,
    pipeline: &crate::config::Pipeline,
    run_id: &str,
    apply: bool,
) -> Result<UndoReport, AppError> {
    let name = &pipeline.name;
    let target = |e: crate::sink::SinkError| AppError::new(ErrorKind::Target, e.to_string());
    let sink = Sink::connect(&pipeline.target, ctx.base_dir())
        .await
        .map_err(target)?;
    let tables = match sink.undo(name, run_id, apply).await.map_err(target)? {
        Ok(tables) => tables,
        // The target was put back, but the state database did not hear of it (a crash in between): record it now.
        Err(UndoRefusal::AlreadyUndone) if apply => Vec::new(),
        Err(refusal) => return Err(refused(name, run_id, pipeline, refusal)),
    };
    let withdrawn = if apply {
        ctx.store().mark_undone(run_id).await?
    } else {
        ctx.store().filed_by_run(run_id).await?
    };
    tracing::info!(pipeline = name, run_id, apply, "undo");
    Ok(UndoReport {
        run_id: run_id.to_owned(),
        pipeline: name.clone(),
        undone: apply,
        tables,
        withdrawn,
    })
}

fn refused(
    name: &str,
    run_id: &str,
    pipeline: &crate::config::Pipeline,
    refusal: UndoRefusal,
) -> AppError {
    let keep = pipeline
        .undo_runs
        .unwrap_or(crate::config::DEFAULT_UNDO_RUNS);
    match refusal {
        UndoRefusal::NoInformation => AppError::invalid(format!(
            "nothing to undo: the target holds no undo information for run {run_id} of \"{name}\" (it changed \
             nothing, or it is older than the last {keep} runs that changed the target, which `undo_runs` keeps)"
        )),
        UndoRefusal::AlreadyUndone => AppError::invalid(format!(
            "run {run_id} of pipeline \"{name}\" was undone already"
        )),
        UndoRefusal::NotLatest { later } => AppError::invalid(format!(
            "run {run_id} is not the latest run of \"{name}\" that changed the target: run {later} changed it \
             since; undo {later} first"
        )),
        UndoRefusal::LateWrites => AppError::invalid(format!(
            "run {run_id} of \"{name}\" cannot be undone: failed records were retried or waiting children landed \
             in its tables since, outside any run"
        )),
        UndoRefusal::Busy(holder) => AppError::new(ErrorKind::Busy, holder),
    }
}
