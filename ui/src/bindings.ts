// Generated from the Rust types by syncflow-engine (src/bindings.rs). Do not edit.

export type ErrorKind = "busy" | "invalid_input" | "not_found" | "source" | "target" | "paused" | "cancelled" | "failed" | "needs_review" | "exists";

export type AppError = { kind: ErrorKind, message: string, 
/**
 * The form field the error is about, as the console's form names it (`entities.0.business_key`), so the
 * console shows the message beside that field.
 */
field?: string, };

export type EntityCounts = { fetched: number, inserted: number, updated: number, deleted: number, skipped: number, failed: number, pending: number, conflicts: number, };

export type RunStatus = "pending" | "running" | "paused" | "completed" | "failed" | "cancelled" | "interrupted";

export type RunSummary = { run_id: string, pipeline: string, status: RunStatus, entities: { [key in string]?: EntityCounts }, duration_ms: number, 
/**
 * Why the run failed, when it did.
 */
error: string | null, 
/**
 * The result in words, honest about failed records: "completed", "completed with 3 failed", "failed"…
 */
outcome: string, };

export type RunEvent = { "event": "pending", pipeline: string, } | { "event": "started", run_id: string, pipeline: string, entities: Array<string>, resumed: boolean, } | { "event": "page", entity: string, page_no: number, counts: EntityCounts, rows_per_s: number, 
/**
 * Records the entity has in all, when the source says (progress and ETA).
 */
expected: number | null, 
/**
 * Records fetched in this page (or batch of pages).
 */
records: number, 
/**
 * The time each stage spent on this run's batches of the entity so far, and the records of those batches:
 * `stage_records` / a stage's seconds is that stage's rate (the slowest paces the run).
 */
stages: StageTimes, stage_records: number, 
/**
 * Write calls (POST, PATCH, DELETE) a REST target has had in this run so far; null for a database target.
 */
target_calls: number | null, } | { "event": "entity_done", entity: string, counts: EntityCounts, } | { "event": "finished", summary: RunSummary, } | { "event": "waiting", entity: string, 
/**
 * "target" or "source".
 */
on: string, message: string, waited_s: number, budget_s: number, };

export type LogLine = { ts: string, 
/**
 * info, warn or error
 */
level: string, 
/**
 * What happened: started, page, entity_done, waiting, record_failed, finished, truncated…
 */
event: string, 
/**
 * The line in words.
 */
message: string, 
/**
 * The line as written (every field).
 */
fields: Record<string, unknown>, };

export type WebhookSource = "environment" | "keychain" | "none";

export type PipelineSummary = { name: string, 
/**
 * "rest", "demo", …
 */
source_kind: string, 
/**
 * "postgres" or "sqlite"
 */
target_kind: string, last_run: RunRecord | null, 
/**
 * Switched off: nothing runs it until it is enabled.
 */
disabled: boolean, 
/**
 * Its health at a glance: records in the failed-records queue (still retried, or dead).
 */
failed_records: number, 
/**
 * Children waiting for their parent.
 */
waiting_children: number, 
/**
 * Conflicts waiting for a person.
 */
open_conflicts: number, 
/**
 * When its schedule runs it next (RFC 3339), if it has one and is enabled.
 */
next_run: string | null, };

export type RunRecord = { id: string, status: RunStatus, started_at: string, finished_at: string | null, duration_ms: number, error: string | null, 
/**
 * Rows the run's passes would have deleted but the delete guard held back (0: none held).
 */
held_deletes: number, 
/**
 * When the run's changes to the target were undone (None: they stand).
 */
undone_at: string | null, };

export type LeaseHolder = { 
/**
 * "manual" (the console), "cli" or "schedule".
 */
started_by: string, pid: number, host: string, 
/**
 * RFC 3339.
 */
since: string, };

export type BusyPipeline = { pipeline: string, holder: LeaseHolder, 
/**
 * "syncflow run (process 4242 on host) since 2026-12-03T09:00:00Z"
 */
description: string, };

export type FailedRow = { id: number, run_id: string, entity: string, page_no: number, record_index: number, stage: string, error_type: string, message: string, 
/**
 * The record as fetched (JSON text).
 */
raw: string, 
/**
 * The record as far as it got (JSON text), when it got anywhere.
 */
processed: string | null, status: string, retries: number, created_at: string, 
/**
 * The records that failed the same way share it: entity, stage and the error without this record's values
 * (see [`error_group`]).
 */
group: string, };

export type FailedGroup = { group: string, entity: string, stage: string, 
/**
 * The error with the values of each record taken out.
 */
error: string, 
/**
 * Records still waiting for a retry, and those past their last automatic try.
 */
failed: number, dead: number, };

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
fields: Array<string>, 
/**
 * The business key the entity uses (its default applied).
 */
business_key: Array<string>, 
/**
 * Settings naming a field none of the sampled records holds (business key, parents, rowversion).
 */
missing: Array<MissingField>, 
/**
 * Fields every sampled record holds with a value of its own: the business keys to propose, likeliest first.
 */
key_candidates: Array<string>, };

export type MissingField = { 
/**
 * The entity form's field: `business_key`, `parents` or `rowversion`.
 */
setting: string, field: string, 
/**
 * In words, with the fields to choose from.
 */
message: string, };

export type ConnectionReport = { entities: Array<EntityFound>, 
/**
 * How the connection is protected, for a database source (e.g. "encrypted (TLS), server certificate and
 * host name verified").
 */
tls: string | null, };

export type TargetReport = { 
/**
 * What was reached, e.g. "PostgreSQL 15.8, database erp, schema public (tables can be created)".
 */
detail: string, 
/**
 * How the connection is protected, for a database target.
 */
tls: string | null, };

export type StillFailing = { id: number, entity: string, stage: string, message: string, };

export type RetryOutcome = { retried: number, inserted: number, updated: number, unchanged: number, 
/**
 * Records that passed but whose parent is not in the target yet: they wait with the other children.
 */
waiting: number, 
/**
 * Records that failed again, with their new errors.
 */
still_failing: Array<StillFailing>, };

export type PendingChild = { id: number, pipeline: string, entity: string, key_hash: string, 
/**
 * The reference field.
 */
field: string, parent_entity: string, 
/**
 * The missing parent's key (JSON text).
 */
parent_key: string, 
/**
 * The record as fetched (JSON text).
 */
raw: string, run_id: string, 
/**
 * pending | dead
 */
status: string, tries: number, last_try_at: string | null, created_at: string, };

export type LandOutcome = { 
/**
 * Children checked.
 */
tried: number, 
/**
 * Children written to the target (their parent is there now).
 */
landed: number, 
/**
 * Children still waiting.
 */
waiting: number, 
/**
 * Children that used their last try in this check.
 */
dead: number, 
/**
 * Children that no longer pass the stages (the table changed): moved to the failed records.
 */
failed: number, };

export type FailedRetry = { 
/**
 * The waiting children checked before the retry of all records (None: not checked — a retry of chosen
 * records, or the check could not be made; the warning is logged).
 */
children: LandOutcome | null, retried: number, inserted: number, updated: number, unchanged: number, 
/**
 * Records that passed but whose parent is not in the target yet: they wait with the other children.
 */
waiting: number, 
/**
 * Records that failed again, with their new errors.
 */
still_failing: Array<StillFailing>, };

export type FailedQueue = { 
/**
 * Oldest first.
 */
records: Array<FailedRow>, 
/**
 * Count per distinct error, largest first (retried records not counted).
 */
groups: Array<FailedGroup>, };

export type UndoTable = { table: string, 
/**
 * Rows the run inserted, removed.
 */
removed: number, 
/**
 * Rows the run updated or deleted, put back as they were before it.
 */
restored: number, };

export type Withdrawn = { failed_records: number, waiting_children: number, conflicts: number, };

export type UndoReport = { run_id: string, pipeline: string, 
/**
 * Whether the changes were made (false: a preview, nothing changed).
 */
undone: boolean, 
/**
 * Per table the run changed: rows removed and rows restored.
 */
tables: Array<UndoTable>, 
/**
 * What the run had filed for a person, withdrawn with it.
 */
withdrawn: Withdrawn, };

export type Preview = { summary: RunSummary, entities: Array<PreviewEntity>, };

export type PreviewEntity = { entity: string, table: string, columns: Array<string>, rows: Array<PreviewRow>, };

export type PreviewRow = { action: string, values: Array<unknown>, };

export type ColumnType = "text" | "integer" | "numeric" | "boolean" | "datetime" | "json";

export type TextRule = "trim" | "nfc" | "strip_control" | "newlines" | "uppercase" | "lowercase";

export type Pipeline = { 
/**
 * Format version of the pipeline file; only 1 exists.
 */
version: number, 
/**
 * Unique pipeline name.
 */
name: string, source: SourceConfig, target: TargetConfig, 
/**
 * The entities (resources, types, tables) to sync.
 */
entities?: Array<Entity>, 
/**
 * When the console (or `syncflow daemon`) runs the pipeline by itself.
 */
schedule?: Schedule | null, 
/**
 * How many of the pipeline's latest runs that changed the target can be undone: their before-images stay in
 * the target (tables `_syncflow_undo_runs`, `_syncflow_undo_rows`). 0 keeps none. Default 3.
 */
undo_runs?: number | null, };

export type SourceConfig = { "kind": "rest" } & RestSource | { "kind": "bubble" } & BubbleSource | { "kind": "postgres" } & PostgresSource | { "kind": "demo" } & DemoSource;

export type RestSource = { 
/**
 * Base URL; entity paths are appended to it.
 */
base_url: string, 
/**
 * How to authenticate.
 */
auth: Auth, 
/**
 * Pages in flight at once.
 */
concurrency: number, 
/**
 * Client-side request limit per minute.
 */
requests_per_minute?: number | null, 
/**
 * The largest reply accepted, in bytes (default 256 MiB): a larger one fails its page, read no further.
 */
max_page_bytes?: number | null, };

export type BubbleSource = { 
/**
 * The app's Data API address, up to and including `/api/1.1`
 * (`https://APP.bubbleapps.io/version-test/api/1.1` for development data).
 */
base_url: string, 
/**
 * The API token (an admin token reads everything, privacy rules aside).
 */
token?: Secret | null, 
/**
 * Pages in flight at once.
 */
concurrency: number, 
/**
 * Client-side request limit per minute (legacy plans: 1,000).
 */
requests_per_minute?: number | null, 
/**
 * The largest reply accepted, in bytes (default 256 MiB): a larger one fails its page, read no further.
 */
max_page_bytes?: number | null, 
/**
 * The furthest item a search can page to (Bubble: 50,000; more on Enterprise plans); larger types are read
 * in windows of `Created Date`.
 */
cursor_ceiling: number, };

export type PostgresSource = { 
/**
 * `postgresql://user@host:port/db` — no password in the URL.
 */
url: string, 
/**
 * The password, if the server asks for one.
 */
password?: Secret | null, 
/**
 * Schema of the source tables.
 */
schema: string, 
/**
 * Rows per page.
 */
page_size: number, 
/**
 * TLS and how connections ride out restarts.
 */
connection?: PgConnection, };

export type PgConnection = { 
/**
 * TLS: disable, allow, prefer, require, verify-ca or verify-full. Default: the URL's sslmode, else
 * verify-full for a server on another machine and prefer for one on this machine.
 */
sslmode?: SslMode | null, 
/**
 * The CA certificate(s) to trust (PEM file), e.g. your provider's CA bundle. Default: the system's roots.
 */
sslrootcert?: FilePath | null, 
/**
 * A client certificate (PEM file), for servers that ask for one.
 */
sslcert?: FilePath | null, 
/**
 * The client certificate's private key (PEM file).
 */
sslkey?: FilePath | null, 
/**
 * Seconds a lost connection (a restart, a failover) is retried before the run fails (default 120).
 */
reconnect_s?: number | null, 
/**
 * statement_timeout of the engine's statements, in seconds (default 900; 0 = none).
 */
statement_timeout_s?: number | null, 
/**
 * lock_timeout of the engine's statements, in seconds (default 60; 0 = none).
 */
lock_timeout_s?: number | null, };

export type SslMode = "disable" | "allow" | "prefer" | "require" | "verify-ca" | "verify-full";

export type FilePath = string;

export type DemoSource = { 
/**
 * How many things the demo app has in all.
 */
rows: number, };

export type Auth = { "kind": "none" } | { "kind": "bearer", token: Secret, } | { "kind": "login", path: string, username: string, password: Secret, token_field?: string | null, } | { "kind": "jwt_hs256", secret: Secret, claims?: Record<string, unknown>, ttl_s: number, };

export type Secret = { env: string, } | { keychain: string, };

export type TargetConfig = { "kind": "postgres" } & PostgresTarget | { "kind": "sqlite" } & SqliteTarget | { "kind": "rest" } & RestTarget;

export type PostgresTarget = { 
/**
 * `postgresql://user@host:port/db` — no password in the URL.
 */
url: string, 
/**
 * The password, if the server asks for one.
 */
password?: Secret | null, 
/**
 * Schema of the target tables.
 */
schema: string, 
/**
 * TLS, timeouts and how connections ride out restarts.
 */
connection?: PgConnection, };

export type SqliteTarget = { 
/**
 * Path of the database file (relative paths are relative to the pipeline file).
 */
path: string, };

export type RestTarget = { 
/**
 * Base URL; an entity's resource is `{base_url}/{table}`.
 */
base_url: string, 
/**
 * How to authenticate (the kinds of a REST source).
 */
auth: Auth, 
/**
 * Requests in flight at once.
 */
concurrency: number, 
/**
 * Client-side request limit per minute (429 and 503 honour Retry-After).
 */
requests_per_minute?: number | null, 
/**
 * Records per `POST {resource}/batch`; 0 = one POST per record (also used when the target has no /batch).
 */
batch_size: number, 
/**
 * The field where the target keeps BK_HASH (looked up by it).
 */
key_field: string, 
/**
 * The field where the target keeps DATA_HASH (an equal one means unchanged: no write).
 */
data_hash_field: string, 
/**
 * The field where the target keeps the rowversion.
 */
rowversion_field: string, 
/**
 * The target's record id, made by the target (PATCH and DELETE address it).
 */
id_field: string, };

export type Entity = { 
/**
 * Name of the resource at the source.
 */
name: string, 
/**
 * Target table (default: derived from name).
 */
table?: string | null, 
/**
 * REST: the list endpoint, relative to base_url (default: "/" + name).
 */
path?: string | null, 
/**
 * REST: JSON pointer to the array of records in each reply (default: the reply itself, or "/data").
 */
records?: string | null, 
/**
 * How the list endpoint pages.
 */
pagination?: Pagination | null, 
/**
 * Fields that identify a record (default: ["id"]).
 */
business_key?: Array<string>, 
/**
 * Change detection strategy.
 */
delta: DeltaStrategy, 
/**
 * Field holding the change stamp.
 */
rowversion?: string | null, 
/**
 * REST, with `delta = "rowversion"`: the query parameter asking for records changed since a stamp
 * (`updated_since`); a pass after the first then reads only what changed since the target's highest stamp.
 */
since_param?: string | null, 
/**
 * What happens to target rows whose record disappeared from the source.
 */
deletes: DeleteMode, 
/**
 * The delete guard: a pass that would delete more than this share of the table's live rows deletes none and
 * the run ends failed, until confirmed (`syncflow run --confirm-deletes`, or Confirm deletes in the console).
 * Default 0.5; 1.0 turns the guard off.
 */
max_delete_fraction?: number | null, 
/**
 * Who wins when both sides changed.
 */
conflicts: ConflictStrategy, 
/**
 * Parent references (resolved in a later stage).
 */
parents?: Array<ParentRef>, 
/**
 * The analyst's choices per source field (by its original name): its Prisma name, its type, or leaving it out.
 */
fields?: { [key in string]?: FieldOverride }, 
/**
 * PostgreSQL source: a query to read instead of the table `name` (its business key must be given).
 */
query?: string | null, };

export type Pagination = { "kind": "page", page_param: string, size_param: string, size: number, first: number, } | { "kind": "offset", offset_param: string, limit_param: string, size: number, } | { "kind": "cursor", cursor_param: string, 
/**
 * JSON pointer to the next page's token in each reply.
 */
next: string, size_param: string, size: number, } | { "kind": "link", next?: string | null, };

export type DeltaStrategy = "full" | "hash" | "rowversion";

export type DeleteMode = "none" | "soft" | "hard";

export type ConflictStrategy = "source_wins" | "target_wins" | "last_write_wins" | "manual";

export type ParentRef = { field: string, entity: string, };

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

export type FieldChoice = { key?: boolean, 
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

export type PrismaVersion = "6" | "7";

export type SchemaWritten = { schema: string, config: string | null, config_kept: boolean, };

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
 * Business key fields none of the sampled records holds (a run would stop at its first page).
 */
key_missing: Array<string>, 
/**
 * Every setting naming a field none of the sampled records holds (business key, parents, rowversion), in words.
 */
missing: Array<MissingField>, 
/**
 * Fields every sampled record holds with a value of its own: keys to propose, likeliest first.
 */
key_candidates: Array<string>, 
/**
 * The analyst's overrides as they stand.
 */
overrides: { [key in string]?: FieldChoice }, };

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
 * Whether Apply converts the table's tracking columns to the lean shape (bytea hashes, uuid run id, the key
 * hash as primary key): a table made before that shape existed, which the engine reads as it is until then.
 * The conversion rewrites the table.
 */
converts_tracking: boolean, 
/**
 * The SQL Apply runs for this table.
 */
statements: Array<string>, };

export type SchemaReview = { 
/**
 * The generated schema.prisma for Prisma 7 (None while a field's name stops it).
 */
prisma: string | null, 
/**
 * The prisma.config.ts Prisma 7 needs beside it (the connection URL, from `DATABASE_URL`).
 */
prisma_config: string | null, 
/**
 * The same schema for Prisma 6 (the URL in its datasource), for projects still on Prisma 6.
 */
prisma_6: string | null, 
/**
 * What stops the schema, by entity and field.
 */
errors: Array<string>, tables: Array<TableDrift>, };

export type Schedule = { 
/**
 * Five-field cron (minute hour day-of-month month day-of-week), e.g. "0 19 * * *" or "0,30 8-18 * * 1-5".
 */
cron: string, 
/**
 * IANA time zone the cron and the window are read in (default UTC), e.g. "Europe/Berlin".
 */
timezone: string, 
/**
 * Work only between these local times; a run still going at the end pauses and continues in the next window.
 */
window?: TimeWindow, 
/**
 * Spread each pass over this many windows: each window takes about 1/N of the records, the offset is kept
 * between windows.
 */
days_to_complete?: number, };

export type TimeWindow = { 
/**
 * "HH:MM"
 */
start: string, 
/**
 * "HH:MM"
 */
end: string, };

export type SchedulePreview = { 
/**
 * The cron pattern in words.
 */
description: string, 
/**
 * The next five runs (RFC 3339, in the schedule's time zone); inside a window a fire outside it waits for it.
 */
next_runs: Array<string>, 
/**
 * The window in words, when there is one.
 */
window: string | null, };

export type JobInfo = { pipeline: string, 
/**
 * pending or running
 */
status: RunStatus, 
/**
 * "manual", "cli" or "schedule"
 */
started_by: string, };

export type SchedulerAction = { "action": "started", pipeline: string, resumed: boolean, missed: number, } | { "action": "paused", pipeline: string, reason: string, } | { "action": "retried", pipeline: string, tried: number, recovered: number, dead: number, } | { "action": "children_checked", pipeline: string, tried: number, landed: number, dead: number, 
/**
 * The checks a child gets before it is dead (its parent never came).
 */
checks: number, } | { "action": "ended", pipeline: string, run_id: string | null, status: string, error: string | null, failed: number, };

export type StageTimes = { batches: number, fetch_ms: number, transform_ms: number, ingest_ms: number, };

export type RunHistoryRow = { run: RunRecord, pipeline: string, 
/**
 * "manual", "cli" or "schedule"
 */
started_by: string, counts: EntityCounts, stages: StageTimes, 
/**
 * The result in words ("completed with 3 failed"; see [`crate::track::outcome`]).
 */
outcome: string, };

export type ScheduleState = { 
/**
 * When the schedule last fired (RFC 3339 UTC).
 */
last_fire_at: string | null, 
/**
 * Fires missed while nothing ran (shown, and run once).
 */
missed: number, missed_since: string | null, 
/**
 * The window the quota below counts in.
 */
window_id: string | null, window_rows: number, 
/**
 * A run the scheduler paused; it resumes it in the next window.
 */
paused_run: string | null, 
/**
 * The window whose share of a multi-day pass is done.
 */
quota_window: string | null, };

export type Side = "source" | "target";

export type ConflictField = { column: string, source: unknown, target: unknown, synced: unknown, 
/**
 * Source and target differ here.
 */
differs: boolean, };

export type Resolution = { by: string, at: string, 
/**
 * "source", "target" or "fields"
 */
kind: string, chosen: { [key in string]?: Side }, old_values: Record<string, unknown>, new_values: Record<string, unknown>, };

export type ConflictView = { id: number, pipeline: string, entity: string, table: string, 
/**
 * The business key's columns and values.
 */
key: Record<string, unknown>, fields: Array<ConflictField>, 
/**
 * "open" or "resolved"
 */
status: string, detected_at: string, source_rowversion: string | null, resolution: Resolution | null, };

export type RunsView = { history: Array<RunHistoryRow>, jobs: Array<JobInfo>, };

export type ScheduleView = { schedule: Schedule | null, state: ScheduleState, preview: SchedulePreview | null, };

export type Attention = { 
/**
 * The pipeline counted, or None for all of them.
 */
pipeline: string | null, 
/**
 * Records in Failed records (still retried by themselves, or dead) and children that waited their last check.
 */
failed: number, 
/**
 * Of those, how many are past their last automatic try: only a person brings them in.
 */
dead: number, 
/**
 * Open conflicts.
 */
conflicts: number, };
