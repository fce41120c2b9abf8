//! Tauri commands: each one a plain call into the engine. Progress streams through a `Channel`.

use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use syncflow_engine::config::Schedule;
use syncflow_engine::config::{DemoSource, Pipeline, SourceConfig, SqliteTarget, TargetConfig};
use syncflow_engine::conflicts::{self, ConflictView, Side};
use syncflow_engine::connect::{self, ConnectionReport, TargetReport};
use syncflow_engine::discover::{self, Discovered};
use syncflow_engine::jobs::schedule::{self, SchedulePreview};
use syncflow_engine::jobs::scheduler::{Scheduler, SchedulerAction};
use syncflow_engine::jobs::{self, Attention, Jobs, RunsView, ScheduleView, SystemClock};
use syncflow_engine::run::pending::{land_children, Attempt, LandOutcome};
use syncflow_engine::run::retry::{retry_failed as engine_retry, RetryOutcome};
use syncflow_engine::run::{RunEvent, RunOptions};
use syncflow_engine::schema::review::{self, EntityView, Overrides, SchemaReview};
use syncflow_engine::store::{FailedRow, PendingChild, PipelineSummary, Store};
use syncflow_engine::track::RunSummary;
use tauri::ipc::Channel;
use tauri::State;
use tokio::sync::Mutex;

pub struct AppState {
    store: Store,
    data_dir: PathBuf,
    /// The last discovery per pipeline, so the editor's previews need no new requests to the source.
    discovered: Mutex<HashMap<String, Arc<Vec<Discovered>>>>,
    /// Every run is a job: one per pipeline, a bounded number at once (the rest pending).
    jobs: Jobs,
}

/// The least time between two progress updates sent to the window.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The demo pipeline every new console starts with: the embedded demo source into an SQLite file.
pub const DEMO_PIPELINE: &str = "Demo";

impl AppState {
    pub async fn open(data_dir: PathBuf) -> anyhow::Result<AppState> {
        let store = Store::open(&data_dir.join("state.db")).await?;
        if !store.has_pipeline(DEMO_PIPELINE).await? {
            store.save_pipeline(&demo_pipeline(&data_dir)).await?;
        }
        let interrupted = store.mark_interrupted_runs().await?;
        if !interrupted.is_empty() {
            tracing::info!(
                runs = interrupted.len(),
                "runs interrupted by the last close or crash; they resume when run"
            );
        }
        let max_jobs = std::env::var("SYNCFLOW_MAX_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        Ok(AppState {
            jobs: Jobs::new(store.clone(), max_jobs),
            store,
            data_dir,
            discovered: Mutex::new(HashMap::new()),
        })
    }

    /// The scheduler of this window's jobs (started once at setup, ticking in the background).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(
            self.jobs.clone(),
            Arc::new(SystemClock),
            self.data_dir.clone(),
        )
    }

    async fn pipeline(&self, name: &str) -> Result<Pipeline, String> {
        self.store.pipeline(name).await.map_err(|e| e.to_string())
    }

    /// The cached discovery of a pipeline, discovering it when there is none (or when `fresh`).
    async fn discovered(&self, name: &str, fresh: bool) -> Result<Arc<Vec<Discovered>>, String> {
        if !fresh {
            if let Some(found) = self.discovered.lock().await.get(name) {
                return Ok(found.clone());
            }
        }
        let pipeline = self.pipeline(name).await?;
        let found = Arc::new(
            discover::discover(&pipeline)
                .await
                .map_err(|e| e.to_string())?,
        );
        self.discovered
            .lock()
            .await
            .insert(name.to_owned(), found.clone());
        Ok(found)
    }
}

fn demo_pipeline(data_dir: &std::path::Path) -> Pipeline {
    Pipeline {
        version: 1,
        name: DEMO_PIPELINE.into(),
        source: SourceConfig::Demo(DemoSource { rows: 2_500 }),
        target: TargetConfig::Sqlite(SqliteTarget {
            path: data_dir.join("demo.db").display().to_string(),
        }),
        entities: Vec::new(),
        schedule: None,
    }
}

#[tauri::command]
pub async fn list_pipelines(state: State<'_, AppState>) -> Result<Vec<PipelineSummary>, String> {
    state
        .store
        .list_pipelines()
        .await
        .map_err(|e| e.to_string())
}

/// Runs a stored pipeline to its end, streaming progress events; creates missing tables (the console's
/// schema review comes before this in the UI).
#[tauri::command]
pub async fn run_pipeline(
    state: State<'_, AppState>,
    name: String,
    confirm_deletes: Option<bool>,
    on_event: Channel<RunEvent>,
) -> Result<RunSummary, String> {
    let pipeline = state.pipeline(&name).await?;
    let options = RunOptions {
        apply_schema: true,
        dry_run: false,
        base_dir: state.data_dir.clone(),
        started_by: "manual",
        budget: None,
        confirm_deletes: confirm_deletes.unwrap_or(false),
    };
    // A steady few updates a second per entity (entities run side by side), whatever the page rate: page events
    // closer than this to the entity's last one sent are dropped (their counts are cumulative, and
    // entityDone/finished always go through).
    let last_page_sent = std::sync::Mutex::new(HashMap::<String, std::time::Instant>::new());
    let progress = |event: RunEvent| {
        if let RunEvent::Page { entity, .. } = &event {
            let mut last = last_page_sent
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if last
                .get(entity)
                .is_some_and(|t| t.elapsed() < PROGRESS_INTERVAL)
            {
                return;
            }
            last.insert(entity.clone(), std::time::Instant::now());
        }
        if let Err(e) = on_event.send(event) {
            tracing::warn!("progress not delivered to the window: {e}");
        }
    };
    let outcome = state.jobs.run(&pipeline, &options, &progress).await;
    Ok(outcome.map_err(|e| e.to_string())?.summary)
}

/// The pipelines a live run holds now — in this window, the CLI, the daemon or another console sharing the state
/// database — with who holds each (shown on the Run button).
#[tauri::command]
pub async fn busy_pipelines(
    state: State<'_, AppState>,
) -> Result<Vec<syncflow_engine::lease::BusyPipeline>, String> {
    syncflow_engine::lease::busy_pipelines(&state.store)
        .await
        .map_err(|e| e.to_string())
}

/// Pauses a running pipeline: the pages in hand are finished and checkpointed, then the run stops as `paused`;
/// running it again resumes from there.
#[tauri::command]
pub async fn pause_run(state: State<'_, AppState>, name: String) -> Result<(), String> {
    state.jobs.pause(&name).map_err(|e| e.to_string())
}

/// Cancels a running pipeline: it stops after the pages in hand and ends as `cancelled`; the target keeps what was
/// committed, and the next run starts a new pass.
#[tauri::command]
pub async fn cancel_run(state: State<'_, AppState>, name: String) -> Result<(), String> {
    state.jobs.cancel(&name).map_err(|e| e.to_string())
}

/// The runs screen: history (newest first) and the jobs waiting or running now.
#[tauri::command]
pub async fn list_runs(
    state: State<'_, AppState>,
    pipeline: Option<String>,
) -> Result<RunsView, String> {
    jobs::runs_view(&state.jobs, pipeline.as_deref())
        .await
        .map_err(|e| e.to_string())
}

/// A pipeline's schedule (if any), the scheduler's memory of it, and the preview of its next runs.
#[tauri::command]
pub async fn pipeline_schedule(
    state: State<'_, AppState>,
    name: String,
) -> Result<ScheduleView, String> {
    jobs::schedule_view(&state.store, &name)
        .await
        .map_err(|e| e.to_string())
}

/// The editor's live preview: the cron in words and the next five runs, or what to fix.
#[tauri::command]
pub fn schedule_preview(schedule: Schedule) -> Result<SchedulePreview, String> {
    schedule::preview_from_now(&schedule)
}

/// Saves (or, with none, removes) a pipeline's schedule.
#[tauri::command]
pub async fn save_schedule(
    state: State<'_, AppState>,
    name: String,
    schedule: Option<Schedule>,
) -> Result<(), String> {
    let mut pipeline = state.pipeline(&name).await?;
    pipeline.schedule = schedule;
    pipeline.validate()?;
    state
        .store
        .save_pipeline(&pipeline)
        .await
        .map_err(|e| e.to_string())
}

/// Conflicts of a pipeline (open ones, or with `all` the resolved ones and their audit trail).
#[tauri::command]
pub async fn list_conflicts(
    state: State<'_, AppState>,
    name: String,
    all: bool,
) -> Result<Vec<ConflictView>, String> {
    conflicts::list(&state.store, &name, all)
        .await
        .map_err(|e| e.to_string())
}

/// Resolves a conflict: `take` for every field except those chosen in `fields`.
#[tauri::command]
pub async fn resolve_conflict(
    state: State<'_, AppState>,
    id: i64,
    take: Side,
    fields: BTreeMap<String, Side>,
) -> Result<ConflictView, String> {
    conflicts::resolve(&state.store, id, take, &fields, &conflicts::current_user())
        .await
        .map_err(|e| e.to_string())
}

/// Dead records and open conflicts over all pipelines: the badges on the tabs.
#[tauri::command]
pub async fn attention(state: State<'_, AppState>) -> Result<Attention, String> {
    jobs::attention(&state.store)
        .await
        .map_err(|e| e.to_string())
}

/// Runs the scheduler in the background for as long as the window lives: each action goes to the window as a
/// `scheduler` event; records that used their last try also raise a desktop notification.
pub fn start_scheduler(app: tauri::AppHandle, scheduler: Scheduler) {
    use tauri::Emitter;
    use tauri_plugin_notification::NotificationExt;
    let every = std::env::var("SYNCFLOW_SCHEDULER_TICK_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(30_000);
    tauri::async_runtime::spawn(async move {
        scheduler
            .run_forever(std::time::Duration::from_millis(every), |action| {
                if let Err(e) = app.emit("scheduler", action) {
                    tracing::warn!("scheduler event not delivered: {e}");
                }
                let body = match action {
                    SchedulerAction::Retried { pipeline, dead, .. } if *dead > 0 => Some(format!(
                        "{dead} failed record(s) of {pipeline} used their last automatic try; \
                         open Failed records to fix and retry them."
                    )),
                    SchedulerAction::ChildrenChecked { pipeline, dead, .. } if *dead > 0 => {
                        Some(format!(
                            "{dead} record(s) of {pipeline} waited 5 checks for a parent that never came; \
                             open Failed records to see them and retry."
                        ))
                    }
                    _ => None,
                };
                if let Some(body) = body {
                    let shown = app
                        .notification()
                        .builder()
                        .title("SyncFlow: records need you")
                        .body(body)
                        .show();
                    if let Err(e) = shown {
                        tracing::warn!("desktop notification not shown: {e}");
                    }
                }
            })
            .await;
    });
}

/// The JSON Schema the connector forms are rendered from.
#[tauri::command]
pub fn connector_schema() -> serde_json::Value {
    connect::connector_schema()
}

/// Reads the first page of every entity of a source described by the form, and says what it found.
#[tauri::command]
pub async fn test_connection(
    source: serde_json::Value,
    entities: serde_json::Value,
) -> Result<ConnectionReport, String> {
    let source: SourceConfig =
        serde_json::from_value(source).map_err(|e| format!("source: {e}"))?;
    let entities: Vec<syncflow_engine::config::Entity> =
        serde_json::from_value(entities).map_err(|e| format!("entities: {e}"))?;
    connect::test_connection(&source, &entities).await
}

/// Connects to a target described by the form and says what it reached and whether the connection is encrypted.
#[tauri::command]
pub async fn test_target(
    state: State<'_, AppState>,
    target: serde_json::Value,
) -> Result<TargetReport, String> {
    let target: TargetConfig =
        serde_json::from_value(target).map_err(|e| format!("target: {e}"))?;
    connect::test_target(&target, &state.data_dir).await
}

/// Asks the user for a file (a path field of a form: a CA bundle, a client certificate); None when cancelled.
/// A test run (`SYNCFLOW_PICK_FILE`) answers with that path instead of opening the system's dialog, which a
/// WebDriver session cannot drive.
#[tauri::command]
pub async fn pick_file(app: tauri::AppHandle, title: String) -> Result<Option<String>, String> {
    use tauri_plugin_dialog::DialogExt;
    if let Some(path) = std::env::var_os("SYNCFLOW_PICK_FILE") {
        return Ok(Some(path.to_string_lossy().into_owned()));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    app.dialog()
        .file()
        .set_title(title)
        .pick_file(move |picked| {
            let _ = tx.send(picked);
        });
    let picked = rx.await.map_err(|e| e.to_string())?;
    Ok(picked
        .and_then(|p| p.into_path().ok())
        .map(|p| p.display().to_string()))
}

/// Stores a new pipeline made in the console (its secrets are already in the keychain, referenced by name).
#[tauri::command]
pub async fn create_pipeline(
    state: State<'_, AppState>,
    pipeline: serde_json::Value,
) -> Result<String, String> {
    let pipeline: Pipeline = serde_json::from_value(pipeline).map_err(|e| e.to_string())?;
    pipeline.validate()?;
    let exists = state
        .store
        .has_pipeline(&pipeline.name)
        .await
        .map_err(|e| e.to_string())?;
    if exists {
        return Err(format!(
            "a pipeline named \"{}\" exists already; choose another name",
            pipeline.name
        ));
    }
    state
        .store
        .save_pipeline(&pipeline)
        .await
        .map_err(|e| e.to_string())?;
    Ok(pipeline.name)
}

/// Writes a secret into the OS keychain (service "syncflow", entry `entry`); it is never sent back.
#[tauri::command]
pub async fn store_secret(entry: String, value: String) -> Result<(), String> {
    if entry.trim().is_empty() || value.is_empty() {
        return Err("a keychain entry needs a name and a value".into());
    }
    tauri::async_runtime::spawn_blocking(move || {
        syncflow_engine::secrets::keychain_set(&entry, &value).map_err(|e| e.to_string())
    })
    .await
    .map_err(|e| e.to_string())?
}

/// The pipeline file (TOML, as README documents it) of a stored pipeline: secret references only.
#[tauri::command]
pub async fn export_pipeline(state: State<'_, AppState>, name: String) -> Result<String, String> {
    state
        .pipeline(&name)
        .await?
        .to_toml()
        .map_err(|e| e.to_string())
}

/// Stores the pipeline a pipeline file describes (replacing one of the same name); returns its name.
#[tauri::command]
pub async fn import_pipeline(state: State<'_, AppState>, text: String) -> Result<String, String> {
    let pipeline = Pipeline::from_toml(&text, "the imported file").map_err(|e| e.to_string())?;
    state
        .store
        .save_pipeline(&pipeline)
        .await
        .map_err(|e| e.to_string())?;
    state.discovered.lock().await.remove(&pipeline.name);
    Ok(pipeline.name)
}

/// The pipeline's failed records (the dead-letter queue), oldest first.
#[tauri::command]
pub async fn failed_records(
    state: State<'_, AppState>,
    name: String,
) -> Result<Vec<FailedRow>, String> {
    state
        .store
        .failed_records(&name)
        .await
        .map_err(|e| e.to_string())
}

/// Runs failed records through the stages again: those in `ids` (all when None), `edits` replacing the stored
/// text of some.
#[tauri::command]
pub async fn retry_failed(
    state: State<'_, AppState>,
    name: String,
    ids: Option<Vec<i64>>,
    edits: std::collections::BTreeMap<i64, String>,
) -> Result<RetryOutcome, String> {
    let pipeline = state.pipeline(&name).await?;
    engine_retry(
        &pipeline,
        &state.store,
        &state.data_dir,
        ids.as_deref(),
        &edits,
    )
    .await
    .map_err(|e| e.to_string())
}

/// Records waiting for their parent (pending, and dead after five checks), oldest first.
#[tauri::command]
pub async fn pending_children(
    state: State<'_, AppState>,
    name: String,
) -> Result<Vec<PendingChild>, String> {
    state
        .store
        .pending_children(&name)
        .await
        .map_err(|e| e.to_string())
}

/// Checks the waiting records now (dead ones too): those whose parent is in the target land.
#[tauri::command]
pub async fn retry_pending_children(
    state: State<'_, AppState>,
    name: String,
) -> Result<LandOutcome, String> {
    let pipeline = state.pipeline(&name).await?;
    land_children(
        &pipeline,
        &state.store,
        &state.data_dir,
        None,
        Attempt::Manual,
    )
    .await
    .map_err(|e| e.to_string())
}

/// Reads the source's first pages and shows how every field will be named and typed.
#[tauri::command]
pub async fn discover_mapping(
    state: State<'_, AppState>,
    name: String,
) -> Result<Vec<EntityView>, String> {
    let found = state.discovered(&name, true).await?;
    Ok(review::mapping_view(&found, None))
}

/// The mapping as it would be with these overrides (nothing is saved).
#[tauri::command]
pub async fn preview_mapping(
    state: State<'_, AppState>,
    name: String,
    overrides: Overrides,
) -> Result<Vec<EntityView>, String> {
    let found = state.discovered(&name, false).await?;
    Ok(review::mapping_view(&found, Some(&overrides)))
}

/// Stores the overrides in the pipeline (state DB; exported with the pipeline file).
#[tauri::command]
pub async fn save_overrides(
    state: State<'_, AppState>,
    name: String,
    overrides: Overrides,
) -> Result<Vec<EntityView>, String> {
    let before = state.pipeline(&name).await?;
    let found = state.discovered(&name, false).await?;
    let mut pipeline = before.clone();
    discover::set_overrides(&mut pipeline, &overrides, &found);
    pipeline.validate()?;
    review::check_key_changes(&before, &pipeline, &found, &state.data_dir).await?;
    state
        .store
        .save_pipeline(&pipeline)
        .await
        .map_err(|e| e.to_string())?;
    let updated: Vec<Discovered> = found
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if let Some(e) = pipeline.entities.iter().find(|e| e.name == d.entity.name) {
                d.entity.fields = e.fields.clone();
                d.entity.business_key = e.business_key.clone();
            }
            d
        })
        .collect();
    let view = review::mapping_view(&updated, None);
    state
        .discovered
        .lock()
        .await
        .insert(name, Arc::new(updated));
    Ok(view)
}

/// The generated Prisma schema, the SQL Apply would run and the drift against the target as it is.
#[tauri::command]
pub async fn schema_review(
    state: State<'_, AppState>,
    name: String,
) -> Result<SchemaReview, String> {
    let pipeline = state.pipeline(&name).await?;
    let found = state.discovered(&name, false).await?;
    review::review(&pipeline, &found, &state.data_dir)
        .await
        .map_err(|e| e.to_string())
}

/// Applies the reviewed SQL in one transaction; returns the review afterwards.
#[tauri::command]
pub async fn apply_schema(
    state: State<'_, AppState>,
    name: String,
) -> Result<SchemaReview, String> {
    let pipeline = state.pipeline(&name).await?;
    let found = state.discovered(&name, false).await?;
    review::apply(&pipeline, &found, &state.data_dir)
        .await
        .map_err(|e| e.to_string())
}
