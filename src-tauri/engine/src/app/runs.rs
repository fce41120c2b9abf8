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

/// What a run would do, written nowhere: the counts per entity (a dry run) and each entity's first rows as they
/// would be written, each with what would happen to it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct Preview {
    pub summary: crate::track::RunSummary,
    pub entities: Vec<PreviewEntity>,
}

/// One entity's sample rows in a [`Preview`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct PreviewEntity {
    pub entity: String,
    pub table: String,
    pub columns: Vec<String>,
    pub rows: Vec<PreviewRow>,
}

/// A sample row: "insert" (its key is not in the table), "update" (it is, with other values) or "unchanged"; its
/// values in column order, as normalised.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct PreviewRow {
    pub action: String,
    #[ts(type = "Array<unknown>")]
    pub values: Vec<serde_json::Value>,
}

/// Previews a stored pipeline: a dry run (nothing written in the target or beside it, no table created or
/// altered) that also keeps each entity's first rows and says for each what the run would do.
pub async fn preview(
    ctx: &Context,
    name: &str,
    progress: Progress<'_>,
) -> Result<Preview, AppError> {
    let pipeline = ctx.pipeline(name).await?;
    let samples = std::sync::Arc::new(crate::run::Samples::default());
    let options = RunOptions {
        // As if the review were applied (a dry run alters nothing): a new table's rows count as inserts.
        apply_schema: true,
        dry_run: true,
        started_by: "manual",
        samples: Some(samples.clone()),
        ..RunOptions::default()
    };
    let outcome = run(ctx, &pipeline, options, progress).await?;
    let sink = crate::sink::Sink::connect_for_run(
        &pipeline.target,
        ctx.base_dir(),
        1,
        true,
        Some(ctx.store()),
    )
    .await
    .map_err(|e| AppError::new(super::ErrorKind::Target, e.to_string()))?;
    let mut entities = Vec::new();
    for (entity, sample) in samples.taken() {
        let keys: Vec<String> = sample.rows.iter().map(|(k, _, _)| k.clone()).collect();
        let exists = sink
            .columns(&sample.table)
            .await
            .map_err(|e| AppError::new(super::ErrorKind::Target, e.to_string()))?
            .is_some();
        let stored = match exists {
            true => sink
                .stored_data_hashes(&sample.table, &keys)
                .await
                .map_err(|e| AppError::new(super::ErrorKind::Target, e.to_string()))?,
            false => Default::default(),
        };
        let rows = sample
            .rows
            .into_iter()
            .map(|(key, data, values)| PreviewRow {
                action: match stored.get(&key) {
                    None => "insert",
                    Some(held) if *held == data => "unchanged",
                    Some(_) => "update",
                }
                .to_owned(),
                values,
            })
            .collect();
        entities.push(PreviewEntity {
            entity,
            table: sample.table,
            columns: sample.columns,
            rows,
        });
    }
    Ok(Preview {
        summary: outcome.summary,
        entities,
    })
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
    /// The result in words: "completed with 3 failed" where records failed.
    pub outcome: String,
}

/// The run history of a pipeline, newest first, with each run's counters per entity.
pub async fn history(ctx: &Context, pipeline: &str) -> Result<Vec<RunListed>, AppError> {
    ctx.pipeline(pipeline).await?;
    let mut per_entity = ctx.store().entity_counts(pipeline).await?;
    let runs = ctx.store().run_history(Some(pipeline), u32::MAX).await?;
    Ok(runs
        .into_iter()
        .map(|row| RunListed {
            outcome: row.outcome,
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

/// The last 2,000 lines of a run's log (JSON lines in `logs/runs/` beside the state database); none for a run
/// that left no log (a dry run, or one whose log was pruned).
pub async fn run_log(
    ctx: &Context,
    run_id: &str,
) -> Result<Vec<crate::run::log::LogLine>, AppError> {
    let base = ctx.base_dir().to_path_buf();
    let id = run_id.to_owned();
    tokio::task::spawn_blocking(move || crate::run::log::read_run_log(&base, &id, 2000))
        .await
        .map_err(AppError::failed)?
        .map_err(|e| AppError::failed(format!("cannot read the log of run {run_id}: {e}")))
}
