// Generated from src-tauri/src/commands.rs (the `commands!` declarations) by src-tauri/src/ipc.rs. Do not edit.
// Every command of the console, typed: its error is a `CommandError` ({kind, message}).

import type { Channel } from "@tauri-apps/api/core";
import { invoke } from "./invoke";
import type { Attention, BusyPipeline, ConflictView, ConnectionReport, Entity, EntityView, FailedQueue, FailedRetry, FieldChoice, LandOutcome, LogLine, PendingChild, Pipeline, PipelineSummary, Preview, PrismaVersion, RunEvent, RunSummary, RunsView, Schedule, SchedulePreview, ScheduleView, SchemaReview, SchemaWritten, Side, SourceConfig, TargetConfig, TargetReport, UndoReport, WebhookSource } from "./bindings";

/**
 * The stored pipelines, with their last run.
 */
export function listPipelines(): Promise<Array<PipelineSummary>> {
  return invoke<Array<PipelineSummary>>("list_pipelines", {});
}

/**
 * Runs a stored pipeline to its end, streaming progress events; `confirm_deletes` applies the deletes the
 * delete guard held back in its last run. Alters no table: a run that needs a schema change stops with a
 * `needs_review` error (the Schema screen's Apply makes the change).
 */
export function runPipeline(name: string, confirmDeletes: boolean | null, onEvent: Channel<RunEvent>): Promise<RunSummary> {
  return invoke<RunSummary>("run_pipeline", { name, confirmDeletes, onEvent });
}

/**
 * What a run would insert, update, delete and skip per entity, with each entity's first rows and what would
 * happen to each; nothing is written anywhere (a dry run), no table is created or altered.
 */
export function previewPipeline(name: string, onEvent: Channel<RunEvent>): Promise<Preview> {
  return invoke<Preview>("preview_pipeline", { name, onEvent });
}

/**
 * The pipelines a live run holds now — in this window, the CLI, the daemon or another console sharing the
 * state database — with who holds each (shown on the Run button).
 */
export function busyPipelines(): Promise<Array<BusyPipeline>> {
  return invoke<Array<BusyPipeline>>("busy_pipelines", {});
}

/**
 * Asks a running pipeline to pause after the pages in hand (run it again to resume).
 */
export function pauseRun(name: string): Promise<null> {
  return invoke<null>("pause_run", { name });
}

/**
 * Cancels a running pipeline after the pages in hand; the next run starts a new pass.
 */
export function cancelRun(name: string): Promise<null> {
  return invoke<null>("cancel_run", { name });
}

/**
 * What undoing a run would change (per table, rows removed and restored; what it filed, withdrawn); nothing
 * is changed. Refused, with the reason, when the run cannot be undone.
 */
export function undoPreview(runId: string): Promise<UndoReport> {
  return invoke<UndoReport>("undo_preview", { runId });
}

/**
 * Undoes a run: every table it changed put back as it was before it, in one transaction.
 */
export function undoRun(runId: string): Promise<UndoReport> {
  return invoke<UndoReport>("undo_run", { runId });
}

/**
 * The runs screen: history (newest first) and the jobs waiting or running now.
 */
export function listRuns(pipeline: string | null): Promise<RunsView> {
  return invoke<RunsView>("list_runs", { pipeline });
}

/**
 * The last lines of a run's log (JSON lines beside the state database), oldest first.
 */
export function runLog(runId: string): Promise<Array<LogLine>> {
  return invoke<Array<LogLine>>("run_log", { runId });
}

/**
 * A pipeline's schedule (if any), the scheduler's memory of it, and the preview of its next runs.
 */
export function pipelineSchedule(name: string): Promise<ScheduleView> {
  return invoke<ScheduleView>("pipeline_schedule", { name });
}

/**
 * The schedule editor's live preview: the cron in words and the next runs, or what to fix.
 */
export function schedulePreview(schedule: Schedule): Promise<SchedulePreview> {
  return invoke<SchedulePreview>("schedule_preview", { schedule });
}

/**
 * Saves (or, with null, removes) a pipeline's schedule.
 */
export function saveSchedule(name: string, schedule: Schedule | null): Promise<null> {
  return invoke<null>("save_schedule", { name, schedule });
}

/**
 * Conflicts of a pipeline (open ones, or with `all` the resolved ones and their audit trail).
 */
export function listConflicts(name: string, all: boolean): Promise<Array<ConflictView>> {
  return invoke<Array<ConflictView>>("list_conflicts", { name, all });
}

/**
 * Resolves a conflict: `take` for every field except those chosen in `fields`.
 */
export function resolveConflict(id: number, take: Side, fields: Record<string, Side>): Promise<ConflictView> {
  return invoke<ConflictView>("resolve_conflict", { id, take, fields });
}

/**
 * What waits for a person in a pipeline (or all, with none): the badges on the tabs.
 */
export function attention(pipeline: string | null): Promise<Attention> {
  return invoke<Attention>("attention", { pipeline });
}

/**
 * The JSON Schema the connector forms are rendered from: `{source, target, entity, kinds_naming_entities}`.
 */
export function connectorSchema(): Promise<unknown> {
  return invoke<unknown>("connector_schema", {});
}

/**
 * Reads the first page of every entity of a source described by the form, and says what it found; `secrets`
 * typed into the form are used, not stored.
 */
export function testConnection(source: SourceConfig, entities: Array<Entity>, secrets: Record<string, string>): Promise<ConnectionReport> {
  return invoke<ConnectionReport>("test_connection", { source, entities, secrets });
}

/**
 * Connects to a target described by the form: what was reached, and whether the connection is encrypted.
 * `tables`: the tables of the form's entities (a REST target is tested with a lookup in the first one's resource).
 */
export function testTarget(target: TargetConfig, tables: Array<string>, secrets: Record<string, string>): Promise<TargetReport> {
  return invoke<TargetReport>("test_target", { target, tables, secrets });
}

/**
 * Asks the user for a file (a path field of a form: a CA bundle, a client certificate); null when
 * cancelled. A test run (`SYNCFLOW_PICK_FILE`) answers with that path instead of opening the system's dialog,
 * which a WebDriver session cannot drive.
 */
export function pickFile(title: string): Promise<string | null> {
  return invoke<string | null>("pick_file", { title });
}

/**
 * Stores a new pipeline made in the form, once its business keys are found in its source's first page; the
 * `secrets` typed into the form go to the keychain then.
 */
export function createPipeline(pipeline: Pipeline, secrets: Record<string, string>): Promise<string> {
  return invoke<string>("create_pipeline", { pipeline, secrets });
}

/**
 * A stored pipeline as the form edits it (secret references only), for Edit and Clone.
 */
export function pipelineDefinition(name: string): Promise<Pipeline> {
  return invoke<Pipeline>("pipeline_definition", { name });
}

/**
 * Saves an edited pipeline under its name: source, target and entities from the form; its schedule, history
 * and failed records stay. Refused while a run holds it, and for a changed name.
 */
export function updatePipeline(name: string, pipeline: Pipeline, secrets: Record<string, string>): Promise<string> {
  return invoke<string>("update_pipeline", { name, pipeline, secrets });
}

/**
 * Writes a secret into the OS keychain (service "syncflow", entry `entry`); it is never read back.
 */
export function storeSecret(entry: string, value: string): Promise<null> {
  return invoke<null>("store_secret", { entry, value });
}

/**
 * Where the alert webhook's URL comes from: environment, keychain or none (never the URL).
 */
export function alertWebhook(): Promise<WebhookSource> {
  return invoke<WebhookSource>("alert_webhook", {});
}

/**
 * Keeps the alert webhook's URL in the keychain.
 */
export function saveAlertWebhook(url: string): Promise<null> {
  return invoke<null>("save_alert_webhook", { url });
}

/**
 * Sends a test alert to the webhook.
 */
export function testAlert(): Promise<null> {
  return invoke<null>("test_alert", {});
}

/**
 * Whether an environment variable a secret refers to is set for the console (it sees only the environment it
 * was started with).
 */
export function envVisible(name: string): Promise<boolean> {
  return invoke<boolean>("env_visible", { name });
}

/**
 * Switches a pipeline on or off (off: no Run, no scheduled run, no `syncflow run`; a preview still may).
 */
export function setPipelineEnabled(name: string, enabled: boolean): Promise<null> {
  return invoke<null>("set_pipeline_enabled", { name, enabled });
}

/**
 * Deletes a pipeline from the console (definition, schedule, history, failed records, conflicts); its target
 * tables and rows are not touched. Refused while a run holds it.
 */
export function deletePipeline(name: string): Promise<null> {
  return invoke<null>("delete_pipeline", { name });
}

/**
 * The pipeline file (TOML, docs/pipeline-file.md) of a stored pipeline: secret references only.
 */
export function exportPipeline(name: string): Promise<string> {
  return invoke<string>("export_pipeline", { name });
}

/**
 * Saves the pipeline file where the user chooses in the system's save dialog; the path written, or null when
 * cancelled.
 */
export function savePipelineFile(name: string): Promise<string | null> {
  return invoke<string | null>("save_pipeline_file", { name });
}

/**
 * Saves the reviewed schema.prisma (for Prisma 7 with its prisma.config.ts beside it) where the user chooses
 * in the system's save dialog; what was written, or null when cancelled.
 */
export function saveSchema(name: string, prisma: PrismaVersion): Promise<SchemaWritten | null> {
  return invoke<SchemaWritten | null>("save_schema", { name, prisma });
}

/**
 * Stores the pipeline a pipeline file describes; one of the same name is replaced only with `replace` (else the
 * error kind is `exists`). Returns its name.
 */
export function importPipeline(text: string, replace: boolean): Promise<string> {
  return invoke<string>("import_pipeline", { text, replace });
}

/**
 * The pipeline's failed records (the dead-letter queue), oldest first, and their groups by error.
 */
export function failedQueue(name: string): Promise<FailedQueue> {
  return invoke<FailedQueue>("failed_queue", { name });
}

/**
 * Runs failed records through the stages again: those in `ids` (all when null, after checking the records
 * waiting for their parent), `edits` replacing the stored text of some.
 */
export function retryFailed(name: string, ids: Array<number> | null, edits: Record<number, string>): Promise<FailedRetry> {
  return invoke<FailedRetry>("retry_failed", { name, ids, edits });
}

/**
 * Records waiting for their parent (pending, and dead after their checks), oldest first.
 */
export function pendingChildren(name: string): Promise<Array<PendingChild>> {
  return invoke<Array<PendingChild>>("pending_children", { name });
}

/**
 * Checks the waiting records now (dead ones too): those whose parent is in the target land.
 */
export function retryPendingChildren(name: string): Promise<LandOutcome> {
  return invoke<LandOutcome>("retry_pending_children", { name });
}

/**
 * Reads the source's first pages and shows how every field will be named and typed.
 */
export function discoverMapping(name: string): Promise<Array<EntityView>> {
  return invoke<Array<EntityView>>("discover_mapping", { name });
}

/**
 * The mapping as it would be with these overrides (nothing is saved).
 */
export function previewMapping(name: string, overrides: Record<string, Record<string, FieldChoice>>): Promise<Array<EntityView>> {
  return invoke<Array<EntityView>>("preview_mapping", { name, overrides });
}

/**
 * Stores the overrides in the pipeline (state DB; exported with the pipeline file).
 */
export function saveOverrides(name: string, overrides: Record<string, Record<string, FieldChoice>>): Promise<Array<EntityView>> {
  return invoke<Array<EntityView>>("save_overrides", { name, overrides });
}

/**
 * The generated Prisma schema, the SQL Apply would run and the drift against the target as it is.
 */
export function schemaReview(name: string): Promise<SchemaReview> {
  return invoke<SchemaReview>("schema_review", { name });
}

/**
 * Applies the reviewed SQL in one transaction; returns the review afterwards.
 */
export function applySchema(name: string): Promise<SchemaReview> {
  return invoke<SchemaReview>("apply_schema", { name });
}
