//! The orchestrator: a run is entities × pages through the stages
//! (fetch → normalize → validate → map → identity → delta → resolve → ingest → track).
//!
//! Each page's rows and the checkpoint saying it was done commit in one target transaction; the state DB is
//! written after that (state never before data), so a run killed at any instant resumes without gaps or
//! duplicates.

mod entity;
mod memo;
pub use entity::Transformed;
pub mod log;
pub mod pending;
mod replay;
pub mod retry;
mod tracker;

use crate::config::Entity;
use crate::config::{Pipeline, SourceConfig};
use crate::emulator::bubble::BubbleEmulator;
use crate::source::bubble::BubbleClient;
use crate::source::rest::RestClient;
use crate::source::{Source, SourceError};
pub use crate::stop::StopSignal;
use crate::store::Store;
use crate::track::{EntityCounts, RunStatus, RunSummary};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;
use ts_rs::TS;

/// TRANSFORM of one page as a run does it (NORMALIZE, VALIDATE, IDENTIFY, duplicates dropped; the values of the
/// records that become rows moved out of them), for callers outside a run: the `pages` bench measures the engine's
/// CPU per page with it.
pub fn transform_page(
    records: &mut [serde_json::Value],
    mapping: &crate::schema::Mapping,
    key_fields: &[String],
    rowversion: Option<&str>,
) -> Transformed {
    entity::transform(records, mapping, key_fields, rowversion, 1, true)
}

/// How to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// Create missing tables and add missing columns.
    pub apply_schema: bool,
    /// Count what would change, write nothing to the target.
    pub dry_run: bool,
    /// Folder that relative paths in the pipeline are taken from.
    pub base_dir: PathBuf,
    /// Who started the run: "manual" (the console), "cli" or "schedule"; kept with the run.
    pub started_by: &'static str,
    /// Records the run may still take before it pauses (a scheduled window's share of a multi-day pass).
    pub budget: Option<Arc<RowBudget>>,
    /// Apply deletes the delete guard held (`--confirm-deletes`), and let this run's passes delete past it.
    pub confirm_deletes: bool,
    /// A preview (with `dry_run`) keeps each entity's first rows here, as they would be written.
    pub samples: Option<Arc<Samples>>,
}

/// The first rows of each entity as a preview would write them (see [`RunOptions::samples`]).
#[derive(Debug, Default)]
pub struct Samples(std::sync::Mutex<BTreeMap<String, EntitySample>>);

/// One entity's sample: the table, its columns and the rows (BK_HASH, DATA_HASH, values in column order).
#[derive(Debug, Clone, Default)]
pub struct EntitySample {
    pub table: String,
    pub columns: Vec<String>,
    pub rows: Vec<(String, String, Vec<serde_json::Value>)>,
}

/// Rows kept per entity by a preview.
pub const SAMPLE_ROWS: usize = 5;

impl Samples {
    /// Keeps `rows` of `entity` while it has fewer than [`SAMPLE_ROWS`].
    pub fn offer(
        &self,
        entity: &str,
        table: &str,
        mapping: &crate::schema::Mapping,
        rows: &[crate::sink::PreparedRow],
    ) {
        let Ok(mut all) = self.0.lock() else {
            return;
        };
        let sample = all.entry(entity.to_owned()).or_default();
        if sample.rows.len() >= SAMPLE_ROWS || rows.is_empty() {
            return;
        }
        if sample.columns.is_empty() {
            sample.table = table.to_owned();
            sample.columns = mapping.fields.iter().map(|f| f.column.clone()).collect();
        }
        let room = SAMPLE_ROWS - sample.rows.len();
        sample.rows.extend(
            rows.iter()
                .take(room)
                .map(|r| (r.key_hash.clone(), r.data_hash.clone(), r.values.clone())),
        );
    }

    /// What was kept, by entity.
    pub fn taken(&self) -> BTreeMap<String, EntitySample> {
        self.0.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// Records a run may still take, shared by the entities running side by side: a batch is cut to what is left,
/// and the run pauses (on whole pages) when nothing is.
#[derive(Debug, Default)]
pub struct RowBudget(AtomicU64);

impl RowBudget {
    pub fn new(records: u64) -> RowBudget {
        RowBudget(AtomicU64::new(records))
    }

    pub fn left(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }

    /// Takes a page of `records` while anything is left (whole pages: the last may take more than is left).
    fn take_page(&self, records: u64) -> bool {
        self.take_if(records, |left| left > 0)
    }

    /// Takes `records` for a page joining a batch, only if they fit.
    fn take_fitting(&self, records: u64) -> bool {
        self.take_if(records, |left| left >= records)
    }

    fn take_if(&self, records: u64, allowed: impl Fn(u64) -> bool) -> bool {
        self.0
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |left| {
                allowed(left).then(|| left.saturating_sub(records))
            })
            .is_ok()
    }
}

/// What a run reports while it goes; the GUI receives these through a Tauri Channel, the CLI prints them.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// Every job slot is taken: the run waits (pending) until one is free.
    Pending {
        pipeline: String,
    },
    Started {
        run_id: String,
        pipeline: String,
        entities: Vec<String>,
        resumed: bool,
    },
    /// A page was committed; `counts` are the entity's totals so far.
    Page {
        entity: String,
        #[ts(type = "number")]
        page_no: u64,
        counts: EntityCounts,
        rows_per_s: f64,
        /// Records the entity has in all, when the source says (progress and ETA).
        #[ts(type = "number | null")]
        expected: Option<u64>,
        /// Records fetched in this page (or batch of pages).
        #[ts(type = "number")]
        records: u64,
        /// The time each stage spent on this run's batches of the entity so far, and the records of those batches:
        /// `stage_records` / a stage's seconds is that stage's rate (the slowest paces the run).
        stages: crate::store::StageTimes,
        #[ts(type = "number")]
        stage_records: u64,
        /// Write calls (POST, PATCH, DELETE) a REST target has had in this run so far; null for a database target.
        #[ts(type = "number | null")]
        target_calls: Option<u64>,
    },
    EntityDone {
        entity: String,
        counts: EntityCounts,
    },
    Finished {
        summary: RunSummary,
    },
    /// The connection to the target (or the source) was lost: the page is tried again on a new connection until
    /// the reconnect budget is spent.
    Waiting {
        entity: String,
        /// "target" or "source".
        on: String,
        message: String,
        #[ts(type = "number")]
        waited_s: u64,
        #[ts(type = "number")]
        budget_s: u64,
    },
}

/// A run that could not start or that hit bad input; the CLI's exit code follows from it.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// Bad input: the pipeline, a secret reference, the target's schema (exit code 2).
    #[error("{0}")]
    Invalid(String),
    /// The run could not be carried out (exit code 1).
    #[error("{0}")]
    Failed(String),
    /// Another run of the pipeline holds it (exit code 4); the message says who and since when.
    #[error("{0}")]
    Busy(String),
}

impl RunError {
    pub fn exit_code(&self) -> i32 {
        match self {
            RunError::Invalid(_) => 2,
            RunError::Failed(_) => 1,
            RunError::Busy(_) => 4,
        }
    }
}

/// The end of a run: its summary, and whether a failure came from bad input.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    pub summary: RunSummary,
    pub invalid_input: bool,
    /// The run stopped before a change of the target's schema that was not applied (the schema review's Apply or
    /// `--apply-schema` lets it).
    pub needs_review: bool,
}

impl RunOutcome {
    /// The CLI's exit codes (README): 0 completed · 1 run failed · 2 invalid input · 3 paused.
    pub fn exit_code(&self) -> i32 {
        match self.summary.status {
            RunStatus::Completed => 0,
            RunStatus::Paused => 3,
            _ if self.invalid_input => 2,
            _ => 1,
        }
    }
}

pub type Progress<'a> = &'a (dyn Fn(RunEvent) + Send + Sync);

/// Runs every entity of a pipeline to completion (or pause, or failure), resuming an unfinished run. One run of a
/// pipeline at a time: the run holds the pipeline's lease (and its lock on a PostgreSQL target) while it goes, and
/// a start that finds either held ends at once with [`RunError::Busy`]. A dry run writes nothing and takes neither.
pub async fn run_pipeline(
    pipeline: &Pipeline,
    store: &Store,
    options: &RunOptions,
    progress: Progress<'_>,
    stop: &StopSignal,
) -> Result<RunOutcome, RunError> {
    // The schedule is not needed to run (a stored one the scheduler cannot read must not block a run by hand).
    pipeline.validate_definition().map_err(RunError::Invalid)?;
    if options.dry_run {
        return run_leased(pipeline, store, options, progress, stop).await;
    }
    // A pipeline stored before (the CLI imports it on the way) and switched off in the console does not run.
    let disabled = match store.pipeline_disabled(&pipeline.name).await {
        Ok(disabled) => disabled,
        // Not stored (a run of a pipeline built in code): nobody switched it off.
        Err(crate::store::StoreError::NoPipeline(_)) => false,
        Err(e) => return Err(RunError::Failed(e.to_string())),
    };
    if disabled {
        return Err(RunError::Invalid(format!(
            "pipeline \"{}\" is disabled; enable it in the console (Pipelines → Enable) to run it",
            pipeline.name
        )));
    }
    let lease = crate::lease::take(store, &pipeline.name, options.started_by)
        .await
        .map_err(|e| match e {
            crate::lease::LeaseError::Held { .. } => RunError::Busy(e.to_string()),
            crate::lease::LeaseError::Store(e) => fail(e),
        })?;
    let (done, finished) = tokio::sync::oneshot::channel::<()>();
    let work = async {
        let result = run_leased(pipeline, store, options, progress, stop).await;
        let _ = done.send(());
        result
    };
    let heartbeat = lease.keep_alive(
        async {
            let _ = finished.await;
        },
        || stop.request(),
    );
    let (result, ()) = tokio::join!(work, heartbeat);
    lease.release().await;
    if let Err(error @ (RunError::Invalid(_) | RunError::Failed(_))) = &result {
        note_failed_start(pipeline, store, options, error).await;
    }
    result
}

/// A run that failed before its first page (the source or target unreachable, a secret missing) still goes into
/// the history — and its log — with its error, so "Last run" never says "never" after a failed attempt. It is noted
/// on the pipeline's unfinished run when there is one (that run's checkpoints stay the place to resume from).
async fn note_failed_start(
    pipeline: &Pipeline,
    store: &Store,
    options: &RunOptions,
    error: &RunError,
) {
    let noted = async {
        store.save_pipeline(pipeline).await?;
        let run_id = match store.unfinished_run(&pipeline.name).await? {
            Some(id) => id,
            None => uuid::Uuid::now_v7().to_string(),
        };
        let message = error.to_string();
        store
            .start_run(&run_id, &pipeline.name, false, options.started_by)
            .await?;
        store
            .finish_run(&run_id, RunStatus::Failed, 0, Some(&message), 0)
            .await?;
        log::RunLog::open(&options.base_dir, &run_id).event(&RunEvent::Finished {
            summary: RunSummary {
                run_id: run_id.clone(),
                pipeline: pipeline.name.clone(),
                status: RunStatus::Failed,
                entities: BTreeMap::new(),
                duration_ms: 0,
                error: Some(message),
                outcome: crate::track::outcome(RunStatus::Failed, 0),
            },
        });
        Ok::<(), crate::store::StoreError>(())
    };
    if let Err(e) = noted.await {
        tracing::warn!(
            pipeline = pipeline.name,
            "the failed start was not noted in the history: {e}"
        );
    }
}

async fn run_leased(
    pipeline: &Pipeline,
    store: &Store,
    options: &RunOptions,
    progress: Progress<'_>,
    stop: &StopSignal,
) -> Result<RunOutcome, RunError> {
    let started = Instant::now();
    let opened = open_source(pipeline).await?;
    let (source, entities) = (&opened.source, &opened.entities);
    let order = crate::parents::parents_first(entities).map_err(RunError::Invalid)?;
    let parallel = crate::parents::levels(&order)
        .iter()
        .map(Vec::len)
        .max()
        .unwrap_or(1);
    let sink = crate::sink::Sink::connect_for_run(
        &pipeline.target,
        &options.base_dir,
        parallel,
        options.dry_run,
        Some(store),
    )
    .await
    .map_err(|e| match e {
        crate::sink::SinkError::Secret(s) => RunError::Invalid(s.to_string()),
        other => RunError::Failed(other.to_string()),
    })?;
    // Held until the run ends (dropping the connection releases it).
    let _target_lock = if options.dry_run {
        None
    } else {
        sink.lock_pipeline(&pipeline.name)
            .await
            .map_err(fail)?
            .map_err(RunError::Busy)?
    };
    let links: Vec<Vec<crate::parents::ParentLink>> = entities
        .iter()
        .map(|e| crate::parents::parent_links(e, entities))
        .collect::<Result<_, _>>()
        .map_err(RunError::Invalid)?;
    let links_of = |entity: &Entity| -> &[crate::parents::ParentLink] {
        entities
            .iter()
            .position(|e| e.name == entity.name)
            .and_then(|i| links.get(i))
            .map_or(&[], Vec::as_slice)
    };
    store
        .save_pipeline(pipeline)
        .await
        .map_err(|e| RunError::Failed(e.to_string()))?;
    let resumable = if options.dry_run {
        None
    } else {
        store.unfinished_run(&pipeline.name).await.map_err(fail)?
    };
    let resumed = resumable.is_some();
    let run_id = resumable.unwrap_or_else(|| uuid::Uuid::now_v7().to_string());
    store
        .start_run(&run_id, &pipeline.name, options.dry_run, options.started_by)
        .await
        .map_err(fail)?;
    tracing::info!(run_id, pipeline = pipeline.name, resumed, "run started");
    let run_log = if options.dry_run {
        log::RunLog::none()
    } else {
        log::RunLog::open(&options.base_dir, &run_id)
    };
    let logged = |event: RunEvent| {
        run_log.event(&event);
        progress(event);
    };
    let progress: Progress<'_> = &logged;
    progress(RunEvent::Started {
        run_id: run_id.clone(),
        pipeline: pipeline.name.clone(),
        entities: order.iter().map(|e| e.name.clone()).collect(),
        resumed,
    });

    let mut counts: BTreeMap<String, EntityCounts> = BTreeMap::new();
    let mut status = RunStatus::Completed;
    let mut error = None;
    let mut invalid_input = false;
    let mut needs_review = false;
    let mut held_deletes = 0u64;
    // Entities that do not depend on each other run side by side; a level starts when its parents are done.
    'levels: for level in crate::parents::levels(&order) {
        let jobs = level.iter().map(|entity| {
            let job = entity::EntityRun {
                pipeline: &pipeline.name,
                run_id: &run_id,
                entity,
                parents: links_of(entity),
                source,
                declared: source.declared(entity),
                sink: &sink,
                store,
                options,
                progress,
                stop,
                log: &run_log,
            };
            async move { (*entity, job.run().await) }
        });
        let mut stopped_here = false;
        for (entity, (entity_counts, stopped)) in futures_util::future::join_all(jobs).await {
            counts.insert(entity.name.clone(), entity_counts);
            match stopped {
                None => progress(RunEvent::EntityDone {
                    entity: entity.name.clone(),
                    counts: entity_counts,
                }),
                Some(entity::Stop::Paused) => {
                    if status == RunStatus::Completed {
                        status = if stop.cancelled() {
                            RunStatus::Cancelled
                        } else {
                            RunStatus::Paused
                        };
                    }
                    stopped_here = true;
                }
                Some(entity::Stop::Failed { message, invalid }) => {
                    tracing::error!(run_id, entity = entity.name, "{message}");
                    if error.is_none() {
                        status = RunStatus::Failed;
                        error = Some(format!("entity \"{}\": {message}", entity.name));
                        invalid_input = invalid;
                    }
                    stopped_here = true;
                }
                Some(entity::Stop::NeedsReview { message }) => {
                    tracing::error!(run_id, entity = entity.name, "{message}");
                    if error.is_none() {
                        status = RunStatus::Failed;
                        error = Some(format!("entity \"{}\": {message}", entity.name));
                        invalid_input = true;
                        needs_review = true;
                    }
                    stopped_here = true;
                }
                Some(entity::Stop::RefusedRows { rows }) => {
                    let message = format!(
                        "the target refused {} records outside a page write",
                        rows.len()
                    );
                    tracing::error!(run_id, entity = entity.name, "{message}");
                    if error.is_none() {
                        status = RunStatus::Failed;
                        error = Some(format!("entity \"{}\": {message}", entity.name));
                    }
                    stopped_here = true;
                }
                Some(entity::Stop::Refused { message }) => {
                    let message = format!("the target refused a batch: {message}");
                    tracing::error!(run_id, entity = entity.name, "{message}");
                    if error.is_none() {
                        status = RunStatus::Failed;
                        error = Some(format!("entity \"{}\": {message}", entity.name));
                    }
                    stopped_here = true;
                }
                Some(entity::Stop::DeletesHeld { message, rows }) => {
                    tracing::error!(run_id, entity = entity.name, "{message}");
                    held_deletes += rows;
                    if error.is_none() {
                        status = RunStatus::Failed;
                        error = Some(format!("entity \"{}\": {message}", entity.name));
                    }
                    // The other entities of the level went on; the levels after wait for the confirmation.
                    stopped_here = true;
                }
            }
        }
        if stopped_here {
            break 'levels;
        }
    }
    if status == RunStatus::Completed && !options.dry_run && links.iter().any(|l| !l.is_empty()) {
        // Parents that arrived in this run take their waiting children with them.
        let landing = pending::land_with(
            &pipeline.name,
            entities,
            source,
            &sink,
            store,
            &run_id,
            pending::Attempt::AfterRun,
        );
        match landing.await {
            Ok(landed) if landed.tried > 0 => tracing::info!(
                run_id,
                tried = landed.tried,
                landed = landed.landed,
                "children waiting for their parent"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(run_id, "waiting children not checked: {e}"),
        }
    }
    if status == RunStatus::Completed && !options.dry_run {
        // Whatever a stopped run needed is in the tables now.
        if let Err(e) = store.clear_schema_evidence(&pipeline.name).await {
            tracing::warn!(
                run_id,
                "records kept for the schema review not cleared: {e}"
            );
        }
    }
    if !options.dry_run {
        let keep = pipeline
            .undo_runs
            .unwrap_or(crate::config::DEFAULT_UNDO_RUNS);
        if let Err(e) = sink.prune_undo(&pipeline.name, keep).await {
            tracing::warn!(run_id, "undo information of older runs not pruned: {e}");
        }
    }
    let duration_ms = started.elapsed().as_millis() as u64;
    store
        .finish_run(&run_id, status, duration_ms, error.as_deref(), held_deletes)
        .await
        .map_err(fail)?;
    let failed: u64 = counts.values().map(|c| c.failed).sum();
    let summary = RunSummary {
        run_id,
        pipeline: pipeline.name.clone(),
        status,
        entities: counts,
        duration_ms,
        error,
        outcome: crate::track::outcome(status, failed),
    };
    progress(RunEvent::Finished {
        summary: summary.clone(),
    });
    Ok(RunOutcome {
        summary,
        invalid_input,
        needs_review,
    })
}

fn fail(e: impl std::fmt::Display) -> RunError {
    RunError::Failed(e.to_string())
}

/// A connected source and the entities to read from it; keeps the demo's emulator running while it lives.
pub struct OpenSource {
    pub source: Source,
    pub entities: Vec<Entity>,
    _demo: Option<BubbleEmulator>,
}

/// Connects a pipeline's source: the demo starts its emulated Bubble app first; Bubble reads `/meta` and lists
/// every type when the pipeline names none.
pub async fn open_source(pipeline: &Pipeline) -> Result<OpenSource, RunError> {
    match &pipeline.source {
        SourceConfig::Rest(rest) => Ok(OpenSource {
            source: Source::Rest(Box::new(RestClient::new(rest).map_err(source_error)?)),
            entities: pipeline.entities.clone(),
            _demo: None,
        }),
        SourceConfig::Bubble(bubble) => open_bubble(bubble, &pipeline.entities, None).await,
        SourceConfig::Postgres(pg) => {
            let source = crate::source::postgres::PgSource::connect(pg, &pipeline.entities)
                .await
                .map_err(source_error)?;
            let entities = source
                .entities(&pipeline.entities)
                .map_err(RunError::Invalid)?;
            Ok(OpenSource {
                source: Source::Postgres(Box::new(source)),
                entities,
                _demo: None,
            })
        }
        SourceConfig::Demo(demo) => {
            let emulator = crate::source::demo::start(demo.rows)
                .await
                .map_err(|e| RunError::Failed(format!("demo app: {e}")))?;
            let config = crate::source::demo::source_of(&emulator);
            open_bubble(&config, &pipeline.entities, Some(emulator)).await
        }
    }
}

async fn open_bubble(
    config: &crate::config::BubbleSource,
    listed: &[Entity],
    demo: Option<BubbleEmulator>,
) -> Result<OpenSource, RunError> {
    let client = BubbleClient::connect(config).await.map_err(source_error)?;
    let entities = client.entities(listed).map_err(RunError::Invalid)?;
    Ok(OpenSource {
        source: Source::Bubble(Box::new(client)),
        entities,
        _demo: demo,
    })
}

/// A missing secret is bad input (exit 2); anything else from the source fails the run.
fn source_error(e: SourceError) -> RunError {
    match e {
        SourceError::Secret(s) => RunError::Invalid(s.to_string()),
        SourceError::Unauthorized { .. } => RunError::Invalid(e.to_string()),
        other => RunError::Failed(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DemoSource, SqliteTarget, TargetConfig};

    #[test]
    fn values_moved_out_of_records_make_the_rows_copies_make_and_failures_keep_their_records() {
        let good = serde_json::json!([
            {"id": 1, "name": "a", "price": 1.5, "at": "2024-01-02T03:04:05Z", "tags": ["x"], "n": 10},
            {"n": 20, "tags": null, "at": "2024-01-02 03:04", "price": "2,5", "name": "b", "id": 2},
            {"id": 3, "name": "c", "extra": true, "price": 3, "n": 30},
        ]);
        let mapping = crate::schema::Mapping::infer(good.as_array().unwrap());
        let bad = serde_json::json!([
            {"id": 4, "name": "d", "price": 4, "at": "not a date", "n": 40},
            {"name": "no key", "price": 5, "n": 50},
            "not an object",
            {"id": 6, "name": "e", "price": 6, "n": "sixty"},
        ]);
        let mut page: Vec<serde_json::Value> = good.as_array().unwrap().clone();
        page.extend(bad.as_array().unwrap().iter().cloned());
        let key = vec!["id".to_owned()];
        let mut copied = page.clone();
        let by_copy = entity::transform(&mut copied, &mapping, &key, None, 1, false);
        let mut moved = page.clone();
        let by_move = transform_page(&mut moved, &mapping, &key, None);
        assert_eq!(copied, page, "copying leaves the records as they came");
        assert_eq!(by_move.rows.len(), 3);
        for (a, b) in by_copy.rows.iter().zip(&by_move.rows) {
            assert_eq!(
                (&a.values, &a.key_hash, &a.data_hash, a.record_index),
                (&b.values, &b.key_hash, &b.data_hash, b.record_index)
            );
        }
        assert_eq!(by_move.failed.len(), 4);
        for (a, b) in by_copy.failed.iter().zip(&by_move.failed) {
            assert_eq!(
                (a.record_index, a.stage, &a.message, &a.raw, &a.processed),
                (b.record_index, b.stage, &b.message, &b.raw, &b.processed)
            );
        }
        // Failed records are given every value back, in their order; rows' records are emptied.
        assert_eq!(&moved[3..], &page[3..]);
        assert!(moved[..3]
            .iter()
            .all(|r| r.as_object().is_some_and(|o| o.is_empty())));
    }

    #[test]
    fn records_read_as_rows_make_the_rows_and_failed_records_the_same_records_as_objects_make() {
        use crate::records::{object_of, Records};
        let mapping = crate::schema::Mapping::infer(
            serde_json::json!([
                {"id": 1, "name": "a", "price": 1.5, "at": "2024-01-02T03:04:05Z", "tags": ["x"], "n": 10}
            ])
            .as_array()
            .unwrap(),
        );
        // Another order than the mapping's, and without `tags` (null in every row).
        let fields: std::sync::Arc<[String]> =
            ["n", "id", "name", "price", "at"].map(String::from).into();
        let rows: Vec<Vec<serde_json::Value>> = serde_json::json!([
            [10, 1, "a", 1.5, "2024-01-02T03:04:05Z"],
            [20, 2, "b", "2.5", "2024-01-02 03:04"],
            [40, 4, "d", 4, "not a date"],
            [50, null, "no key", 5, null],
            ["sixty", 6, "e", 6, null],
            [30, 1, "a again", 3, null],
        ])
        .as_array()
        .unwrap()
        .iter()
        .map(|row| row.as_array().unwrap().clone())
        .collect();
        let objects: Vec<serde_json::Value> = rows
            .iter()
            .map(|row| object_of(&fields, row.clone()))
            .collect();
        let key = vec!["id".to_owned()];
        let by_objects = entity::transform(&mut objects.clone(), &mapping, &key, None, 1, true);
        let mut records = Records::Rows {
            fields: fields.clone(),
            rows,
        };
        let by_rows = entity::transform_records(&mut records, &mapping, &key, None, 1, true);
        assert_eq!(by_rows.rows.len(), 2, "two rows, the repeated key once");
        assert_eq!(by_rows.duplicates, by_objects.duplicates);
        assert_eq!(by_rows.rows.len(), by_objects.rows.len());
        for (a, b) in by_objects.rows.iter().zip(&by_rows.rows) {
            assert_eq!(
                (&a.values, &a.key_hash, &a.data_hash, a.record_index),
                (&b.values, &b.key_hash, &b.data_hash, b.record_index)
            );
        }
        assert_eq!(by_rows.failed.len(), 3);
        assert_eq!(by_rows.failed.len(), by_objects.failed.len());
        for (a, b) in by_objects.failed.iter().zip(&by_rows.failed) {
            assert_eq!(
                (a.record_index, a.stage, &a.message, &a.raw, &a.processed),
                (b.record_index, b.stage, &b.message, &b.raw, &b.processed)
            );
        }
        // A failed record's raw JSON is the record as sent, its fields in their order.
        assert_eq!(by_rows.failed[0].raw, objects[2].to_string());
        assert!(by_rows.failed[0].raw.starts_with(r#"{"n":40,"id":4"#));
        // Rows that failed keep every value.
        assert_eq!(&records.into_objects()[2..5], &objects[2..5]);
    }

    #[tokio::test]
    async fn a_cancelled_run_ends_cancelled_and_the_next_run_starts_a_new_pass() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("state.db")).await.unwrap();
        let pipeline = Pipeline {
            version: 1,
            name: "cancel-me".into(),
            source: SourceConfig::Demo(DemoSource { rows: 300 }),
            target: TargetConfig::Sqlite(SqliteTarget {
                path: "t.db".into(),
            }),
            entities: Vec::new(),
            schedule: None,
            undo_runs: None,
        };
        let options = RunOptions {
            apply_schema: true,
            dry_run: false,
            base_dir: dir.path().to_path_buf(),
            started_by: "manual",
            budget: None,
            confirm_deletes: false,
            samples: None,
        };
        let stop = StopSignal::default();
        stop.cancel();
        let first = run_pipeline(&pipeline, &store, &options, &|_| {}, &stop)
            .await
            .unwrap();
        assert_eq!(first.summary.status, RunStatus::Cancelled);
        let second = run_pipeline(&pipeline, &store, &options, &|_| {}, &StopSignal::default())
            .await
            .unwrap();
        assert_eq!(second.summary.status, RunStatus::Completed);
        assert_ne!(
            second.summary.run_id, first.summary.run_id,
            "a cancelled run is not resumed"
        );
        assert_eq!(second.summary.entities["invoice"].fetched, 120);
    }
}
