// The console's commands: thin typed wrappers over Tauri's invoke. Types come from the Rust side (bindings.ts).
import { Channel, invoke } from "@tauri-apps/api/core";
import type { PipelineSummary, RunEvent, RunSummary } from "./bindings";

export function listPipelines(): Promise<PipelineSummary[]> {
  return invoke<PipelineSummary[]>("list_pipelines");
}

export function runPipeline(name: string, onEvent: (event: RunEvent) => void): Promise<RunSummary> {
  const channel = new Channel<RunEvent>();
  channel.onmessage = onEvent;
  return invoke<RunSummary>("run_pipeline", { name, onEvent: channel });
}
