// Generated from the Rust types by syncflow-engine (src/bindings.rs). Do not edit.

export type EntityCounts = { fetched: number, inserted: number, updated: number, deleted: number, skipped: number, failed: number, pending: number, conflicts: number, };

export type RunStatus = "running" | "paused" | "completed" | "failed" | "cancelled";

export type RunSummary = { run_id: string, pipeline: string, status: RunStatus, entities: { [key in string]?: EntityCounts }, duration_ms: number, 
/**
 * Why the run failed, when it did.
 */
error: string | null, };

export type RunEvent = { "event": "started", runId: string, pipeline: string, entities: Array<string>, resumed: boolean, } | { "event": "page", entity: string, pageNo: number, counts: EntityCounts, rowsPerS: number, } | { "event": "entityDone", entity: string, counts: EntityCounts, } | { "event": "finished", summary: RunSummary, };

export type PipelineSummary = { name: string, 
/**
 * "rest", "demo", …
 */
source_kind: string, 
/**
 * "postgres" or "sqlite"
 */
target_kind: string, last_run: RunRecord | null, };

export type RunRecord = { id: string, status: RunStatus, started_at: string, finished_at: string | null, duration_ms: number, error: string | null, };
