// The console's commands: thin typed wrappers over Tauri's invoke. Types come from the Rust side (bindings.ts).
import { Channel, invoke as tauriInvoke, type InvokeArgs } from "@tauri-apps/api/core";
import type {
  AppError,
  ErrorKind,
  FailedRetry,
  Attention,
  ConflictView,
  RunsView,
  Schedule,
  SchedulePreview,
  ScheduleView,
  Side,
  ConnectionReport,
  TargetReport,
  EntityView,
  FailedRow,
  FieldOverride,
  LandOutcome,
  PendingChild,
  PipelineSummary,
  BusyPipeline,
  RunEvent,
  RunSummary,
  SchemaReview,
} from "./bindings";

/** A command's failure as the engine typed it: `kind` says what happened (busy, invalid_input, not_found, …),
 * `message` what to do about it. `String(error)` is the message. */
export class CommandError extends Error {
  readonly kind: ErrorKind;

  constructor(error: AppError) {
    super(error.message);
    this.name = "CommandError";
    this.kind = error.kind;
  }

  override toString(): string {
    return this.message;
  }
}

function isAppError(value: unknown): value is AppError {
  return (
    typeof value === "object" &&
    value !== null &&
    typeof (value as { kind?: unknown }).kind === "string" &&
    typeof (value as { message?: unknown }).message === "string"
  );
}

/** Every command goes through here: its typed error becomes a `CommandError`. */
async function invoke<T>(command: string, args?: InvokeArgs): Promise<T> {
  try {
    return await tauriInvoke<T>(command, args);
  } catch (e: unknown) {
    throw isAppError(e) ? new CommandError(e) : e;
  }
}

/** Whether a command failed because the pipeline is being run elsewhere (the message names who). */
export function isBusy(error: unknown): error is CommandError {
  return error instanceof CommandError && error.kind === "busy";
}

/** Overrides per entity, then per source field (the Rust `Overrides`). */
export type Overrides = Record<string, Record<string, FieldOverride>>;

export function listPipelines(): Promise<PipelineSummary[]> {
  return invoke<PipelineSummary[]>("list_pipelines");
}

/** Runs a pipeline; `confirmDeletes` applies the deletes the delete guard held back in its last run. */
export function runPipeline(
  name: string,
  onEvent: (event: RunEvent) => void,
  confirmDeletes = false,
): Promise<RunSummary> {
  const channel = new Channel<RunEvent>();
  channel.onmessage = onEvent;
  return invoke<RunSummary>("run_pipeline", { name, confirmDeletes, onEvent: channel });
}

/** The pipelines a live run holds now (here, in the CLI, the daemon or another console), with who holds them. */
export function busyPipelines(): Promise<BusyPipeline[]> {
  return invoke<BusyPipeline[]>("busy_pipelines");
}

export function discoverMapping(name: string): Promise<EntityView[]> {
  return invoke<EntityView[]>("discover_mapping", { name });
}

export function previewMapping(name: string, overrides: Overrides): Promise<EntityView[]> {
  return invoke<EntityView[]>("preview_mapping", { name, overrides });
}

export function saveOverrides(name: string, overrides: Overrides): Promise<EntityView[]> {
  return invoke<EntityView[]>("save_overrides", { name, overrides });
}

export function schemaReview(name: string): Promise<SchemaReview> {
  return invoke<SchemaReview>("schema_review", { name });
}

export function applySchema(name: string): Promise<SchemaReview> {
  return invoke<SchemaReview>("apply_schema", { name });
}

export function failedRecords(name: string): Promise<FailedRow[]> {
  return invoke<FailedRow[]>("failed_records", { name });
}

/** Retries the records in `ids` (all when null); `edits` replaces the stored text of some, by id. */
export function retryFailed(name: string, ids: number[] | null, edits: Record<number, string>): Promise<FailedRetry> {
  return invoke<FailedRetry>("retry_failed", { name, ids, edits });
}

/** Records waiting for their parent (pending, or dead after five checks). */
export function pendingChildren(name: string): Promise<PendingChild[]> {
  return invoke<PendingChild[]>("pending_children", { name });
}

/** Checks every waiting record now: those whose parent is in the target land. */
export function retryPendingChildren(name: string): Promise<LandOutcome> {
  return invoke<LandOutcome>("retry_pending_children", { name });
}

/** The JSON Schema of the connector forms: `{source, target, entity}`. */
export function connectorSchema(): Promise<Record<string, unknown>> {
  return invoke<Record<string, unknown>>("connector_schema");
}

export function testConnection(source: unknown, entities: unknown[]): Promise<ConnectionReport> {
  return invoke<ConnectionReport>("test_connection", { source, entities });
}

/** Tests a target described by the form: what was reached, and whether the connection is encrypted. */
export function testTarget(target: unknown): Promise<TargetReport> {
  return invoke<TargetReport>("test_target", { target });
}

/** Asks the user for a file through the system's dialog; null when cancelled. */
export function pickFile(title: string): Promise<string | null> {
  return invoke<string | null>("pick_file", { title });
}

export function createPipeline(pipeline: unknown): Promise<string> {
  return invoke<string>("create_pipeline", { pipeline });
}

/** Writes a secret into the OS keychain; it is never read back into the window. */
export function storeSecret(entry: string, value: string): Promise<null> {
  return invoke<null>("store_secret", { entry, value });
}

export function exportPipeline(name: string): Promise<string> {
  return invoke<string>("export_pipeline", { name });
}

export function importPipeline(text: string): Promise<string> {
  return invoke<string>("import_pipeline", { text });
}

/** Asks a running pipeline to pause after the pages in hand (run it again to resume). */
export function pauseRun(name: string): Promise<null> {
  return invoke<null>("pause_run", { name });
}

/** Cancels a running pipeline after the pages in hand (the next run starts a new pass). */
export function cancelRun(name: string): Promise<null> {
  return invoke<null>("cancel_run", { name });
}

export function listRuns(pipeline: string | null): Promise<RunsView> {
  return invoke<RunsView>("list_runs", { pipeline });
}

export function pipelineSchedule(name: string): Promise<ScheduleView> {
  return invoke<ScheduleView>("pipeline_schedule", { name });
}

export function schedulePreview(schedule: Schedule): Promise<SchedulePreview> {
  return invoke<SchedulePreview>("schedule_preview", { schedule });
}

export function saveSchedule(name: string, schedule: Schedule | null): Promise<null> {
  return invoke<null>("save_schedule", { name, schedule });
}

export function listConflicts(name: string, all: boolean): Promise<ConflictView[]> {
  return invoke<ConflictView[]>("list_conflicts", { name, all });
}

/** `take` for every field, except those named in `fields`. */
export function resolveConflict(id: number, take: Side, fields: Record<string, Side>): Promise<ConflictView> {
  return invoke<ConflictView>("resolve_conflict", { id, take, fields });
}

export function attention(): Promise<Attention> {
  return invoke<Attention>("attention");
}
