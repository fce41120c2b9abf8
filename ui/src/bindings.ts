// Generated from the Rust types by syncflow-engine (src/bindings.rs). Do not edit.

export type EntityCounts = { fetched: number, inserted: number, updated: number, deleted: number, skipped: number, failed: number, pending: number, conflicts: number, };

export type RunStatus = "running" | "paused" | "completed" | "failed" | "cancelled";

export type RunSummary = { run_id: string, pipeline: string, status: RunStatus, entities: { [key in string]?: EntityCounts }, duration_ms: number, 
/**
 * Why the run failed, when it did.
 */
error: string | null, };

export type RunEvent = { "event": "started", runId: string, pipeline: string, entities: Array<string>, resumed: boolean, } | { "event": "page", entity: string, pageNo: number, counts: EntityCounts, rowsPerS: number, 
/**
 * Records the entity has in all, when the source says (progress and ETA).
 */
expected: number | null, } | { "event": "entityDone", entity: string, counts: EntityCounts, } | { "event": "finished", summary: RunSummary, };

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

export type FailedRow = { id: number, run_id: string, entity: string, page_no: number, record_index: number, stage: string, error_type: string, message: string, 
/**
 * The record as fetched (JSON text).
 */
raw: string, 
/**
 * The record as far as it got (JSON text), when it got anywhere.
 */
processed: string | null, status: string, retries: number, created_at: string, };

export type EntityFound = { name: string, 
/**
 * Records on the first page.
 */
sampled: number, 
/**
 * Records in all, when the source says.
 */
total: number | null, 
/**
 * Field names seen (declared by the source, or in the first page's records).
 */
fields: Array<string>, };

export type ConnectionReport = { entities: Array<EntityFound>, };

export type StillFailing = { id: number, entity: string, stage: string, message: string, };

export type RetryOutcome = { retried: number, inserted: number, updated: number, unchanged: number, 
/**
 * Records that failed again, with their new errors.
 */
still_failing: Array<StillFailing>, };

export type ColumnType = "text" | "integer" | "numeric" | "boolean" | "datetime" | "json";

export type TextRule = "trim" | "nfc" | "strip_control" | "newlines" | "uppercase" | "lowercase";

export type FieldOverride = { 
/**
 * The Prisma field name to use instead of the sanitised one.
 */
name?: string | null, 
/**
 * The type to use instead of the inferred one.
 */
type?: ColumnType | null, 
/**
 * Leave the field out of the target and the schema.
 */
exclude?: boolean, 
/**
 * Part of the business key, as chosen in the editor; saving moves it into the entity's `business_key`, so a
 * pipeline file never holds it.
 */
key?: boolean, 
/**
 * Text rules, applied in order to the field's text values (nothing is changed unless asked for).
 */
text?: Array<TextRule>, 
/**
 * Numbers written as text use a decimal comma (`1.000,50`).
 */
decimal_comma?: boolean, 
/**
 * The value (as text, read as the field's type) for records that omit the field or send null.
 */
default?: string | null, 
/**
 * Records without a value (after the default) fail validation, naming the field.
 */
required?: boolean, };

export type Change = "transliterated" | "symbols_spelled" | "characters_removed" | "numeric_prefix" | "reserved_word" | "truncated" | "fallback" | "collision" | "renamed" | "bubble_id";

export type FieldReport = { source: string, field: string, column: string, type: string, collides_with: Array<string>, note: string, 
/**
 * What the sanitiser did, for badges.
 */
changes: Array<Change>, 
/**
 * Why the field's name cannot be used, if it cannot.
 */
error: string | null, };

export type IndexReport = { name: string, fields: Array<string>, unique: boolean, };

export type EntityReport = { entity: string, table: string, model: string, fields: Array<FieldReport>, 
/**
 * The table's indexes (business key, references), by Prisma field name.
 */
indexes: Array<IndexReport>, };

export type EntityView = { report: EntityReport, 
/**
 * A few values of each field as text, by source name.
 */
samples: { [key in string]?: Array<string> }, 
/**
 * What the sampled values look like, by source name ("120 sampled: 118 whole numbers; 2 empty").
 */
evidence: { [key in string]?: string }, 
/**
 * Fields the analyst left out.
 */
excluded: Array<string>, business_key: Array<string>, 
/**
 * The analyst's overrides as they stand.
 */
overrides: { [key in string]?: FieldOverride }, };

export type TableDrift = { table: string, exists: boolean, 
/**
 * Fields with no column yet (added on Apply).
 */
added: Array<string>, 
/**
 * Columns no field maps to any more (kept: data is never dropped).
 */
removed: Array<string>, 
/**
 * Fields whose type changed (widened on Apply when lossless).
 */
retyped: Array<string>, 
/**
 * The SQL Apply runs for this table.
 */
statements: Array<string>, };

export type SchemaReview = { 
/**
 * The generated schema.prisma (None while a field's name stops it).
 */
prisma: string | null, 
/**
 * What stops the schema, by entity and field.
 */
errors: Array<string>, tables: Array<TableDrift>, };
