//! The console's commands: each one a call of the engine's use case of the same name (`syncflow_engine::app`), its
//! error crossing as `{kind, message}`; progress streams through a channel. Declared once with [`commands!`]: the
//! Tauri commands and their TypeScript functions (`ui/src/commands.ts`) are generated together.

use crate::ipc::Form;
use std::collections::BTreeMap;
use std::collections::HashMap;
use std::path::PathBuf;
use syncflow_engine::app::alerts::WebhookSource;
use syncflow_engine::app::mapping::SchemaWritten;
use syncflow_engine::app::records::{FailedQueue, FailedRetry};
use syncflow_engine::app::runs::Preview;
use syncflow_engine::app::undo::UndoReport;
use syncflow_engine::app::{self, AppError, Context};
use syncflow_engine::config::{
    DemoSource, Entity, Pipeline, Schedule, SourceConfig, SqliteTarget, TargetConfig,
};
use syncflow_engine::conflicts::{ConflictView, Side};
use syncflow_engine::connect::{ConnectionReport, TargetReport};
use syncflow_engine::jobs::schedule::SchedulePreview;
use syncflow_engine::jobs::scheduler::Scheduler;
use syncflow_engine::jobs::{Attention, RunsView, ScheduleView};
use syncflow_engine::lease::BusyPipeline;
use syncflow_engine::review::{EntityView, Overrides, SchemaReview};
use syncflow_engine::run::log::LogLine;
use syncflow_engine::run::pending::LandOutcome;
use syncflow_engine::run::{RunEvent, RunOptions};
use syncflow_engine::schema::prisma::PrismaVersion;
use syncflow_engine::store::{PendingChild, PipelineSummary};
use syncflow_engine::track::RunSummary;

/// The console's use-case context (its state database in the app-data folder, where relative paths resolve too).
pub struct AppState {
    ctx: Context,
}

/// The least time between two progress updates sent to the window.
const PROGRESS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(200);

/// The demo pipeline every new console starts with: the embedded demo source into an SQLite file.
pub const DEMO_PIPELINE: &str = "Demo";

pub type Answer<T> = Result<T, AppError>;

impl AppState {
    pub async fn open(data_dir: PathBuf) -> anyhow::Result<AppState> {
        let max_jobs = std::env::var("SYNCFLOW_MAX_JOBS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2);
        let ctx = Context::open(&data_dir.join("state.db"), max_jobs).await?;
        if !ctx.store().has_pipeline(DEMO_PIPELINE).await? {
            ctx.store().save_pipeline(&demo_pipeline(&data_dir)).await?;
        }
        let interrupted = ctx.note_interrupted_runs().await?;
        if !interrupted.is_empty() {
            tracing::info!(
                runs = interrupted.len(),
                "runs interrupted by the last close or crash; they resume when run"
            );
        }
        Ok(AppState { ctx })
    }

    /// The scheduler of this window's jobs (started once at setup, ticking in the background).
    pub fn scheduler(&self) -> Scheduler {
        self.ctx.scheduler()
    }
}

/// Where to save a file, asked with the system's save dialog (opened by the backend: the window holds no dialog
/// permission); None when cancelled. A test run (`SYNCFLOW_SAVE_FILE`) answers with that path instead, as
/// `pick_file` does, since a WebDriver session cannot drive the system's dialog.
async fn ask_save_path(
    handle: &tauri::AppHandle,
    title: &str,
    suggested: &str,
) -> Answer<Option<PathBuf>> {
    use tauri_plugin_dialog::DialogExt;
    if let Some(path) = std::env::var_os("SYNCFLOW_SAVE_FILE") {
        return Ok(Some(PathBuf::from(path)));
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    handle
        .dialog()
        .file()
        .set_title(title)
        .set_file_name(suggested)
        .save_file(move |chosen| {
            let _ = tx.send(chosen);
        });
    let chosen = rx.await.map_err(AppError::failed)?;
    Ok(chosen.and_then(|p| p.into_path().ok()))
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
        undo_runs: None,
    }
}

crate::commands! {
    /// The stored pipelines, with their last run.
    fn list_pipelines(state, handle;) -> Vec<PipelineSummary> {
        app::pipelines::list(&state.ctx).await
    }

    /// Runs a stored pipeline to its end, streaming progress events; `confirm_deletes` applies the deletes the
    /// delete guard held back in its last run. Alters no table: a run that needs a schema change stops with a
    /// `needs_review` error (the Schema screen's Apply makes the change).
    fn run_pipeline(state, handle; name: String, confirm_deletes: Option<bool>; channel on_event: RunEvent) -> RunSummary {
        let options = RunOptions {
            apply_schema: false,
            dry_run: false,
            base_dir: PathBuf::new(),
            started_by: "manual",
            budget: None,
            confirm_deletes: confirm_deletes.unwrap_or(false),
            samples: None,
        };
        let progress = throttled(&on_event);
        let outcome = app::runs::run_stored(&state.ctx, &name, options, &progress).await?;
        app::runs::summary_or_review(outcome)
    }

    /// What a run would insert, update, delete and skip per entity, with each entity's first rows and what would
    /// happen to each; nothing is written anywhere (a dry run), no table is created or altered.
    fn preview_pipeline(state, handle; name: String; channel on_event: RunEvent) -> Preview {
        let progress = throttled(&on_event);
        app::runs::preview(&state.ctx, &name, &progress).await
    }

    /// The pipelines a live run holds now — in this window, the CLI, the daemon or another console sharing the
    /// state database — with who holds each (shown on the Run button).
    fn busy_pipelines(state, handle;) -> Vec<BusyPipeline> {
        app::runs::busy(&state.ctx).await
    }

    /// Asks a running pipeline to pause after the pages in hand (run it again to resume).
    fn pause_run(state, handle; name: String) -> () {
        app::runs::pause(&state.ctx, &name)
    }

    /// Cancels a running pipeline after the pages in hand; the next run starts a new pass.
    fn cancel_run(state, handle; name: String) -> () {
        app::runs::cancel(&state.ctx, &name)
    }

    /// What undoing a run would change (per table, rows removed and restored; what it filed, withdrawn); nothing
    /// is changed. Refused, with the reason, when the run cannot be undone.
    fn undo_preview(state, handle; run_id: String) -> UndoReport {
        app::undo::preview(&state.ctx, &run_id).await
    }

    /// Undoes a run: every table it changed put back as it was before it, in one transaction.
    fn undo_run(state, handle; run_id: String) -> UndoReport {
        app::undo::undo(&state.ctx, &run_id).await
    }

    /// The runs screen: history (newest first) and the jobs waiting or running now.
    fn list_runs(state, handle; pipeline: Option<String>) -> RunsView {
        app::runs::list(&state.ctx, pipeline.as_deref()).await
    }

    /// The last lines of a run's log (JSON lines beside the state database), oldest first.
    fn run_log(state, handle; run_id: String) -> Vec<LogLine> {
        app::runs::run_log(&state.ctx, &run_id).await
    }

    /// A pipeline's schedule (if any), the scheduler's memory of it, and the preview of its next runs.
    fn pipeline_schedule(state, handle; name: String) -> ScheduleView {
        app::pipelines::schedule(&state.ctx, &name).await
    }

    /// The schedule editor's live preview: the cron in words and the next runs, or what to fix.
    fn schedule_preview(state, handle; schedule: Schedule) -> SchedulePreview {
        app::pipelines::preview_schedule(&schedule)
    }

    /// Saves (or, with null, removes) a pipeline's schedule.
    fn save_schedule(state, handle; name: String, schedule: Option<Schedule>) -> () {
        app::pipelines::save_schedule(&state.ctx, &name, schedule).await
    }

    /// Conflicts of a pipeline (open ones, or with `all` the resolved ones and their audit trail).
    fn list_conflicts(state, handle; name: String, all: bool) -> Vec<ConflictView> {
        app::records::conflicts(&state.ctx, &name, all).await
    }

    /// Resolves a conflict: `take` for every field except those chosen in `fields`.
    fn resolve_conflict(state, handle; id: i64, take: Side, fields: BTreeMap<String, Side>) -> ConflictView {
        app::records::resolve_conflict(&state.ctx, id, take, &fields).await
    }

    /// What waits for a person in a pipeline (or all, with none): the badges on the tabs.
    fn attention(state, handle; pipeline: Option<String>) -> Attention {
        app::records::attention(&state.ctx, pipeline.as_deref()).await
    }

    /// The JSON Schema the connector forms are rendered from: `{source, target, entity, kinds_naming_entities}`.
    fn connector_schema(state, handle;) -> serde_json::Value {
        Ok(app::connections::connector_schema())
    }

    /// Reads the first page of every entity of a source described by the form, and says what it found; `secrets`
    /// typed into the form are used, not stored.
    fn test_connection(state, handle; source: Form<SourceConfig>, entities: Vec<Form<Entity>>, secrets: BTreeMap<String, String>) -> ConnectionReport {
        let source = source.read("source")?;
        let entities = entities
            .into_iter()
            .enumerate()
            .map(|(i, e)| e.read(&format!("entities.{i}")))
            .collect::<Answer<Vec<Entity>>>()?;
        app::connections::test_source(&source, &entities, &secrets).await
    }

    /// Connects to a target described by the form: what was reached, and whether the connection is encrypted.
    /// `tables`: the tables of the form's entities (a REST target is tested with a lookup in the first one's resource).
    fn test_target(state, handle; target: Form<TargetConfig>, tables: Vec<String>, secrets: BTreeMap<String, String>) -> TargetReport {
        let target = target.read("target")?;
        app::connections::test_target(&state.ctx, &target, &tables, &secrets).await
    }

    /// Asks the user for a file (a path field of a form: a CA bundle, a client certificate); null when
    /// cancelled. A test run (`SYNCFLOW_PICK_FILE`) answers with that path instead of opening the system's dialog,
    /// which a WebDriver session cannot drive.
    fn pick_file(state, handle; title: String) -> Option<String> {
        use tauri_plugin_dialog::DialogExt;
        if let Some(path) = std::env::var_os("SYNCFLOW_PICK_FILE") {
            return Ok(Some(path.to_string_lossy().into_owned()));
        }
        let (tx, rx) = tokio::sync::oneshot::channel();
        handle.dialog()
            .file()
            .set_title(title)
            .pick_file(move |picked| {
                let _ = tx.send(picked);
            });
        let picked = rx.await.map_err(AppError::failed)?;
        Ok(picked
            .and_then(|p| p.into_path().ok())
            .map(|p| p.display().to_string()))
    }

    /// Stores a new pipeline made in the form, once its business keys are found in its source's first page; the
    /// `secrets` typed into the form go to the keychain then.
    fn create_pipeline(state, handle; pipeline: Form<Pipeline>, secrets: BTreeMap<String, String>) -> String {
        let pipeline = pipeline.read("pipeline")?;
        app::pipelines::save_form(&state.ctx, None, pipeline, &secrets).await
    }

    /// A stored pipeline as the form edits it (secret references only), for Edit and Clone.
    fn pipeline_definition(state, handle; name: String) -> Pipeline {
        app::pipelines::definition(&state.ctx, &name).await
    }

    /// Saves an edited pipeline under its name: source, target and entities from the form; its schedule, history
    /// and failed records stay. Refused while a run holds it, and for a changed name.
    fn update_pipeline(state, handle; name: String, pipeline: Form<Pipeline>, secrets: BTreeMap<String, String>) -> String {
        let pipeline = pipeline.read("pipeline")?;
        app::pipelines::save_form(&state.ctx, Some(&name), pipeline, &secrets).await
    }

    /// Writes a secret into the OS keychain (service "syncflow", entry `entry`); it is never read back.
    fn store_secret(state, handle; entry: String, value: String) -> () {
        tauri::async_runtime::spawn_blocking(move || app::connections::store_secret(&entry, &value))
            .await
            .map_err(AppError::failed)?
    }

    /// Where the alert webhook's URL comes from: environment, keychain or none (never the URL).
    fn alert_webhook(state, handle;) -> WebhookSource {
        Ok(app::alerts::webhook_source())
    }

    /// Keeps the alert webhook's URL in the keychain.
    fn save_alert_webhook(state, handle; url: String) -> () {
        tauri::async_runtime::spawn_blocking(move || app::alerts::store_webhook(&url))
            .await
            .map_err(AppError::failed)?
    }

    /// Sends a test alert to the webhook.
    fn test_alert(state, handle;) -> () {
        app::alerts::send_test().await
    }

    /// Whether an environment variable a secret refers to is set for the console (it sees only the environment it
    /// was started with).
    fn env_visible(state, handle; name: String) -> bool {
        Ok(app::connections::env_visible(&name))
    }

    /// Switches a pipeline on or off (off: no Run, no scheduled run, no `syncflow run`; a preview still may).
    fn set_pipeline_enabled(state, handle; name: String, enabled: bool) -> () {
        app::pipelines::set_enabled(&state.ctx, &name, enabled).await
    }

    /// Deletes a pipeline from the console (definition, schedule, history, failed records, conflicts); its target
    /// tables and rows are not touched. Refused while a run holds it.
    fn delete_pipeline(state, handle; name: String) -> () {
        app::pipelines::delete(&state.ctx, &name).await
    }

    /// The pipeline file (TOML, docs/pipeline-file.md) of a stored pipeline: secret references only.
    fn export_pipeline(state, handle; name: String) -> String {
        app::pipelines::export(&state.ctx, &name).await
    }

    /// Saves the pipeline file where the user chooses in the system's save dialog; the path written, or null when
    /// cancelled.
    fn save_pipeline_file(state, handle; name: String) -> Option<String> {
        let text = app::pipelines::export(&state.ctx, &name).await?;
        let Some(path) = ask_save_path(&handle, "Export the pipeline file", &format!("{name}.toml")).await? else {
            return Ok(None);
        };
        std::fs::write(&path, text).map_err(|e| {
            AppError::failed(format!("cannot write {}: {e}; choose a folder you can write to", path.display()))
        })?;
        Ok(Some(path.display().to_string()))
    }

    /// Saves the reviewed schema.prisma (for Prisma 7 with its prisma.config.ts beside it) where the user chooses
    /// in the system's save dialog; what was written, or null when cancelled.
    fn save_schema(state, handle; name: String, prisma: PrismaVersion) -> Option<SchemaWritten> {
        let Some(path) = ask_save_path(&handle, "Export schema.prisma", "schema.prisma").await? else {
            return Ok(None);
        };
        app::mapping::export_schema(&state.ctx, &name, prisma, &path).await.map(Some)
    }

    /// Stores the pipeline a pipeline file describes; one of the same name is replaced only with `replace` (else the
    /// error kind is `exists`). Returns its name.
    fn import_pipeline(state, handle; text: String, replace: bool) -> String {
        app::pipelines::import_text(&state.ctx, &text, replace).await
    }

    /// The pipeline's failed records (the dead-letter queue), oldest first, and their groups by error.
    fn failed_queue(state, handle; name: String) -> FailedQueue {
        app::records::failed_queue(&state.ctx, &name).await
    }

    /// Runs failed records through the stages again: those in `ids` (all when null, after checking the records
    /// waiting for their parent), `edits` replacing the stored text of some.
    fn retry_failed(state, handle; name: String, ids: Option<Vec<i64>>, edits: BTreeMap<i64, String>) -> FailedRetry {
        app::records::retry_failed(&state.ctx, &name, ids.as_deref(), &edits).await
    }

    /// Records waiting for their parent (pending, and dead after their checks), oldest first.
    fn pending_children(state, handle; name: String) -> Vec<PendingChild> {
        app::records::waiting_children(&state.ctx, &name).await
    }

    /// Checks the waiting records now (dead ones too): those whose parent is in the target land.
    fn retry_pending_children(state, handle; name: String) -> LandOutcome {
        app::records::land_waiting_children(&state.ctx, &name).await
    }

    /// Reads the source's first pages and shows how every field will be named and typed.
    fn discover_mapping(state, handle; name: String) -> Vec<EntityView> {
        app::mapping::discover(&state.ctx, &name).await
    }

    /// The mapping as it would be with these overrides (nothing is saved).
    fn preview_mapping(state, handle; name: String, overrides: Overrides) -> Vec<EntityView> {
        app::mapping::preview(&state.ctx, &name, &overrides).await
    }

    /// Stores the overrides in the pipeline (state DB; exported with the pipeline file).
    fn save_overrides(state, handle; name: String, overrides: Overrides) -> Vec<EntityView> {
        app::mapping::save_overrides(&state.ctx, &name, &overrides).await
    }

    /// The generated Prisma schema, the SQL Apply would run and the drift against the target as it is.
    fn schema_review(state, handle; name: String) -> SchemaReview {
        app::mapping::schema_review(&state.ctx, &name).await
    }

    /// Applies the reviewed SQL in one transaction; returns the review afterwards.
    fn apply_schema(state, handle; name: String) -> SchemaReview {
        app::mapping::apply_schema(&state.ctx, &name).await
    }
}

/// The progress callback of a run shown in the window: a steady few updates a second per entity (entities run side
/// by side), whatever the page rate — page events closer than this to the entity's last one sent are dropped
/// (their counts are cumulative, and entity_done/finished always go through).
fn throttled(on_event: &tauri::ipc::Channel<RunEvent>) -> impl Fn(RunEvent) + Send + Sync + '_ {
    let last_page_sent = std::sync::Mutex::new(HashMap::<String, std::time::Instant>::new());
    move |event: RunEvent| {
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
    }
}

/// Runs the scheduler in the background for as long as the window lives: each action goes to the window as a
/// `scheduler` event; what needs a person (a failed or paused scheduled run, records that used their last try) also
/// raises a desktop notification and, when configured, calls the alert webhook.
pub fn start_scheduler(app: tauri::AppHandle, scheduler: Scheduler) {
    use syncflow_engine::jobs::alerts;
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
                let Some(alert) = alerts::alert_for(action) else {
                    return;
                };
                let shown = app
                    .notification()
                    .builder()
                    .title(&alert.title)
                    .body(&alert.text)
                    .show();
                if let Err(e) = shown {
                    tracing::warn!("desktop notification not shown: {e}");
                }
                let action = action.clone();
                tauri::async_runtime::spawn(async move { alerts::announce(&action).await });
            })
            .await;
    });
}
