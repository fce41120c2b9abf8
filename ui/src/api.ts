// The console's commands. Every command and its types are generated from the Rust declarations (commands.ts,
// bindings.ts); this module re-exports them and adds the few conveniences the screens share.
import { Channel } from "@tauri-apps/api/core";
import type { FieldChoice, Preview, RunEvent, RunSummary } from "./bindings";
import * as commands from "./commands";

export { alreadyExists, CommandError, isBusy, needsReview } from "./invoke";
export {
  alertWebhook,
  applySchema,
  attention,
  busyPipelines,
  cancelRun,
  connectorSchema,
  createPipeline,
  deletePipeline,
  discoverMapping,
  envVisible,
  exportPipeline,
  failedQueue,
  importPipeline,
  listConflicts,
  listPipelines,
  listRuns,
  pauseRun,
  pendingChildren,
  pickFile,
  pipelineDefinition,
  pipelineSchedule,
  previewMapping,
  resolveConflict,
  retryFailed,
  retryPendingChildren,
  runLog,
  saveAlertWebhook,
  saveOverrides,
  savePipelineFile,
  saveSchema,
  saveSchedule,
  schedulePreview,
  schemaReview,
  setPipelineEnabled,
  storeSecret,
  testConnection,
  testAlert,
  testTarget,
  undoPreview,
  undoRun,
  updatePipeline,
} from "./commands";

/** The mapping editor's choices per entity, then per source field (the Rust `Overrides`). */
export type Overrides = Record<string, Record<string, FieldChoice>>;

/** Runs a pipeline, calling `onEvent` with its progress; `confirmDeletes` applies the deletes the delete guard held
 * back in its last run. */
export function runPipeline(
  name: string,
  onEvent: (event: RunEvent) => void,
  confirmDeletes = false,
): Promise<RunSummary> {
  const channel = new Channel<RunEvent>();
  channel.onmessage = onEvent;
  return commands.runPipeline(name, confirmDeletes, channel);
}

/** Previews a pipeline (a dry run: nothing is written), calling `onEvent` with its progress. */
export function previewPipeline(name: string, onEvent: (event: RunEvent) => void): Promise<Preview> {
  const channel = new Channel<RunEvent>();
  channel.onmessage = onEvent;
  return commands.previewPipeline(name, channel);
}
