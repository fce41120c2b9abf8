//! Runs: start (as a job of the context: one per pipeline, a bounded number at once), pause, cancel, history.

use super::{AppError, Context};
use crate::config::Pipeline;
use crate::jobs::RunsView;
use crate::lease::BusyPipeline;
use crate::run::{Progress, RunOptions, RunOutcome, StopSignal};

/// Claims the pipeline's job (pending until a slot is free) and returns the signal that pauses or cancels it — for
/// a face that must be able to stop the run before it starts (the CLI's SIGTERM).
pub fn claim(ctx: &Context, name: &str, started_by: &'static str) -> Result<StopSignal, AppError> {
    Ok(ctx.jobs().register(name, started_by)?)
}

/// Runs a pipeline claimed with [`claim`] to its end, pause or failure. Relative paths of a pipeline stored before
/// they were made absolute resolve against the context's folder.
pub async fn run_claimed(
    ctx: &Context,
    pipeline: &Pipeline,
    mut options: RunOptions,
    progress: Progress<'_>,
    stop: &StopSignal,
) -> Result<RunOutcome, AppError> {
    options.base_dir = ctx.base_dir().to_path_buf();
    Ok(ctx
        .jobs()
        .run_claimed(pipeline, &options, progress, stop)
        .await?)
}

/// Runs a pipeline as a job: waits for a free slot, then runs it to its end, pause or failure.
pub async fn run(
    ctx: &Context,
    pipeline: &Pipeline,
    options: RunOptions,
    progress: Progress<'_>,
) -> Result<RunOutcome, AppError> {
    let stop = claim(ctx, &pipeline.name, options.started_by)?;
    run_claimed(ctx, pipeline, options, progress, &stop).await
}

/// Runs a stored pipeline (see [`run`]).
pub async fn run_stored(
    ctx: &Context,
    name: &str,
    options: RunOptions,
    progress: Progress<'_>,
) -> Result<RunOutcome, AppError> {
    let pipeline = ctx.pipeline(name).await?;
    run(ctx, &pipeline, options, progress).await
}

/// A console run's summary; a run that stopped for the schema review is the error that says so (its kind lets the
/// console offer the review).
pub fn summary_or_review(outcome: RunOutcome) -> Result<crate::track::RunSummary, AppError> {
    if outcome.needs_review {
        let message = outcome
            .summary
            .error
            .unwrap_or_else(|| "schema review needed".to_owned());
        return Err(AppError::new(super::ErrorKind::NeedsReview, message));
    }
    Ok(outcome.summary)
}

/// Pauses a running pipeline: the pages in hand are finished and checkpointed; running it again resumes.
pub fn pause(ctx: &Context, name: &str) -> Result<(), AppError> {
    Ok(ctx.jobs().pause(name)?)
}

/// Cancels a running pipeline: it stops after the pages in hand; the next run starts a new pass.
pub fn cancel(ctx: &Context, name: &str) -> Result<(), AppError> {
    Ok(ctx.jobs().cancel(name)?)
}

/// The run history (newest first; of one pipeline, or all) and the jobs waiting or running in this context.
pub async fn list(ctx: &Context, pipeline: Option<&str>) -> Result<RunsView, AppError> {
    if let Some(name) = pipeline {
        ctx.pipeline(name).await?;
    }
    Ok(crate::jobs::runs_view(ctx.jobs(), pipeline).await?)
}

/// A run as `syncflow runs list` shows it (the CLI's contract): newest first, with its counters per entity.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RunListed {
    pub run_id: String,
    pub status: crate::track::RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    /// "manual" (the console), "cli" or "schedule".
    pub by: String,
    pub entities: std::collections::BTreeMap<String, crate::track::EntityCounts>,
    pub error: Option<String>,
    /// When the run's changes were undone (`syncflow undo`); None: they stand.
    pub undone_at: Option<String>,
}

/// The run history of a pipeline, newest first, with each run's counters per entity.
pub async fn history(ctx: &Context, pipeline: &str) -> Result<Vec<RunListed>, AppError> {
    ctx.pipeline(pipeline).await?;
    let mut per_entity = ctx.store().entity_counts(pipeline).await?;
    let runs = ctx.store().run_history(Some(pipeline), u32::MAX).await?;
    Ok(runs
        .into_iter()
        .map(|row| RunListed {
            entities: per_entity.remove(&row.run.id).unwrap_or_default(),
            run_id: row.run.id,
            status: row.run.status,
            started_at: row.run.started_at,
            finished_at: row.run.finished_at,
            by: row.started_by,
            error: row.run.error,
            undone_at: row.run.undone_at,
        })
        .collect())
}

/// The pipelines a live run holds now — here, in a CLI, the daemon or another console on this state database.
pub async fn busy(ctx: &Context) -> Result<Vec<BusyPipeline>, AppError> {
    crate::lease::busy_pipelines(ctx.store())
        .await
        .map_err(AppError::failed)
}
