//! INGEST: sinks write pages of prepared rows, each page together with its checkpoint in one transaction.

pub mod postgres;
pub mod rest;
pub mod sqlite;

pub use postgres::memo_owner;

use crate::config::TargetConfig;
use crate::schema::{ColumnType, Mapping, SchemaChange};
use crate::track::EntityCounts;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::path::Path;

/// A row ready for the target: values in mapping order plus the tracking values.
#[derive(Debug, Clone)]
pub struct PreparedRow {
    pub id: uuid::Uuid,
    pub values: Vec<Value>,
    pub key_hash: String,
    pub data_hash: String,
    pub rowversion: Option<String>,
    /// The record's position in the page it came from (RESOLVE holds children back by it).
    pub record_index: u32,
}

/// Where an entity's sync stands, stored in the target beside the data it describes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub run_id: String,
    /// Where the next page starts; None once the entity is done.
    pub cursor: Option<crate::source::PageCursor>,
    pub page_no: u64,
    pub counts: EntityCounts,
    /// Pages of this pass that could not be fetched; the pass is complete only once they have been.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_pages: Vec<FailedPage>,
    /// The pass began into an empty table: every row in it came from this pass, so there is nothing to delete
    /// at its end and no key needs recording as seen.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub fresh: bool,
    /// How many keys the pass has recorded as seen, committed with each page: at the end of the pass the seen
    /// table must hold exactly that many, or deletes are not inferred (a lost record of seen keys must never
    /// read as "every row is gone"). None in checkpoints written before it was kept.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_keys: Option<u64>,
    /// The pass ended complete but would have deleted more than the delete guard allows: nothing was deleted,
    /// its seen keys are kept, and the deletes wait for a confirmation (or a new pass).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub held_deletes: Option<HeldDeletes>,
}

/// Deletes the delete guard held back: `rows` of the table's `live` rows would have gone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldDeletes {
    pub rows: u64,
    pub live: u64,
}

impl HeldDeletes {
    /// What the run's error says: how many rows would go, and the two ways on.
    pub fn explain(&self, table: &str, fraction: f64) -> String {
        format!(
            "the pass would delete {} of the {} rows of {table} ({:.0} %), more than max_delete_fraction = {fraction} \
             allows, so nothing was deleted. If the source really lost them, confirm: `syncflow run FILE \
             --confirm-deletes` or Confirm deletes on this run in the console; if the source was wrong, fix it and run \
             again (a new pass re-reads it)",
            self.rows,
            self.live,
            100.0 * self.rows as f64 / self.live.max(1) as f64
        )
    }
}

/// A page the pass went on without, kept in the checkpoint so that the next run of the pipeline fetches it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailedPage {
    /// The number the page had in its pass.
    pub page_no: u64,
    pub cursor: crate::source::PageCursor,
    pub error: String,
}

/// What a merge did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeCounts {
    pub inserted: u64,
    pub updated: u64,
    pub skipped: u64,
    /// Rows marked deleted (soft) or removed (hard) after a complete pass.
    pub deleted: u64,
    /// Rows left as the target has them because they were edited there (target_wins, last_write_wins with the
    /// later edit, manual).
    pub conflicts: u64,
    /// The end-of-pass deletes the delete guard held back.
    pub held_deletes: Option<HeldDeletes>,
    /// Rows of earlier pages of a fresh pass that a later copy of their key replaced as the pass's indexes were
    /// built: counted as inserted when they came, they are updates.
    pub repeated: u64,
}

impl MergeCounts {
    /// Whether the write changed rows of the table (kept conflicts count: some strategies update their hashes).
    pub fn changes_target(&self) -> bool {
        self.inserted + self.updated + self.deleted + self.conflicts > 0
    }
}

/// What undoing a run does (or did) to one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ts_rs::TS)]
pub struct UndoTable {
    pub table: String,
    /// Rows the run inserted, removed.
    #[ts(type = "number")]
    pub removed: u64,
    /// Rows the run updated or deleted, put back as they were before it.
    #[ts(type = "number")]
    pub restored: u64,
}

/// Why a run cannot be undone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UndoRefusal {
    /// The target holds no undo information for the run (it wrote nothing, or it is older than the runs kept).
    NoInformation,
    AlreadyUndone,
    /// A later run changed the target: it must be undone first.
    NotLatest {
        later: String,
    },
    /// Records were retried or waiting children landed after the run, outside any run.
    LateWrites,
    /// Another process holds the pipeline's lock on the target database (who, in words).
    Busy(String),
}

pub use crate::store::DetectedConflict;

/// Files a page's manual conflicts before the page commits (so a crash cannot lose one: the page and its
/// conflicts are processed again together).
pub type ConflictLog<'a> = &'a (dyn Fn(Vec<DetectedConflict>) -> futures_util::future::BoxFuture<'a, Result<(), String>>
         + Send
         + Sync);

/// The page a sink writes, with the context the tracking columns need.
pub struct PageWrite<'a> {
    pub pipeline: &'a str,
    pub entity: &'a str,
    pub table: &'a str,
    pub mapping: &'a Mapping,
    pub rows: &'a [PreparedRow],
    /// The checkpoint committed with the page; None for writes outside a pass (retrying failed records).
    pub checkpoint: Option<&'a Checkpoint>,
    pub dry_run: bool,
    /// Look up stored hashes first so unchanged rows are not even copied (pointless into a table that was empty
    /// when the run started).
    pub skip_unchanged: bool,
    /// What happens to rows the source no longer has: with soft or hard, every page's keys are recorded as seen
    /// (in the same transaction), and the page that ends a complete pass applies the deletes.
    pub deletes: crate::config::DeleteMode,
    /// The first write of a pass that starts from the first page (keys seen by an earlier, unfinished pass are
    /// forgotten).
    pub starts_pass: bool,
    /// What to do with rows edited in the target whose source changed too.
    pub conflicts: crate::config::ConflictStrategy,
    /// Whether the table tracks outside edits (`_bridge_edited_at`, kept by a trigger).
    pub edits_tracked: bool,
    /// Where manual conflicts are filed (None in a dry run).
    pub conflict_log: Option<ConflictLog<'a>>,
    /// The keys this write records as seen (its rows' and its held children's), as BK_HASH bits.
    pub page_keys: &'a [u128],
    /// Every key the pass has seen so far, this page's included (PostgreSQL compares the table's keys with them at
    /// the end of the pass); None when the pass does not track deletes.
    pub pass_keys: Option<&'a [u128]>,
    /// How many rows the table held as the pass began (live ones, or every row for hard deletes; PostgreSQL,
    /// counted while the pass ran). None: unknown.
    pub rows_before: Option<u64>,
    /// Where the pass collects the keys its lookups found in rows written before it (PostgreSQL): when as many
    /// distinct keys as `rows_before` were found, every row was seen and the end of the pass reads no keys.
    pub found_before: Option<&'a std::sync::Mutex<Vec<u128>>>,
    /// Whether the run was asked to stop: a long statement (the end-of-pass deletes) is cancelled then, and the
    /// page rolls back, to be written again when the run resumes.
    pub interrupted: Option<&'a (dyn Fn() -> bool + Send + Sync)>,
    /// A late write (a retried failed record, a child whose parent came): a row the target holds in a newer
    /// version (a higher rowversion, written by a later run) is left as it is.
    pub never_older: bool,
    /// The delete guard: the largest share of the table's live rows the end of the pass may delete (None: the
    /// deletes were confirmed).
    pub delete_guard: Option<f64>,
    /// Written outside any run (a retry of failed records, a children check): its undo information only marks
    /// that the table changed, so that no earlier run is undone over it.
    pub late: bool,
    /// A full refresh (PostgreSQL): the pass loads a shadow of the table and its last write swaps it in; the rows
    /// it did not bring are then treated as this deletes mode says. None: not a full refresh.
    pub full_refresh: Option<crate::config::DeleteMode>,
    /// The rows encoded ahead for a lean PostgreSQL table's binary COPY (used only if they are exactly the rows
    /// this write sends).
    pub copy: Option<&'a postgres::CopyStream>,
}

/// The statement ending a pass that deletes: counts (dry run), removes (hard) or marks (soft) the rows of `table`
/// whose key was not seen. `seen` is the seen-keys table as SQL names it, `params` the dialect's two placeholders
/// (pipeline, entity), `now` its current time.
pub(crate) fn unseen_rows_sql(
    page: &PageWrite<'_>,
    table: &str,
    seen: &str,
    params: (&str, &str),
    now: &str,
) -> String {
    let unseen = unseen_condition(table, seen, params);
    let live = "\"_bridge_deleted_at\" IS NULL";
    match (page.dry_run, page.deletes) {
        (true, _) => format!("SELECT count(*) FROM {table} WHERE {live} AND {unseen}"),
        (false, crate::config::DeleteMode::Hard) => format!("DELETE FROM {table} WHERE {unseen}"),
        (false, _) => {
            format!("UPDATE {table} SET \"_bridge_deleted_at\" = {now} WHERE {live} AND {unseen}")
        }
    }
}

/// The condition on a row of `table` that its key was not seen in the pass (see [`unseen_rows_sql`]).
pub(crate) fn unseen_condition(table: &str, seen: &str, params: (&str, &str)) -> String {
    let (pipeline, entity) = params;
    format!(
        "NOT EXISTS (SELECT 1 FROM {seen} s WHERE s.pipeline = {pipeline} AND s.entity = {entity} \
         AND s.key_hash = {table}.\"_bridge_key_hash\")"
    )
}

/// Whether `row` is older than the version the target holds (both rowversions known; they compare as the
/// engine writes them — normalised ISO 8601 UTC date-times, or text).
pub(crate) fn is_older(row: &PreparedRow, stored: Option<&str>) -> bool {
    matches!((row.rowversion.as_deref(), stored), (Some(mine), Some(theirs)) if mine < theirs)
}

/// Whether the database refused the data itself (SQLSTATE class 22, a data exception, or a constraint: 23), as
/// opposed to a failure of the connection, the statement or the schema.
pub(crate) fn is_refused_data(e: &sqlx::Error) -> bool {
    let Some(db) = e.as_database_error() else {
        return false;
    };
    let class_22 = db.code().is_some_and(|c| c.starts_with("22"));
    class_22 || !matches!(db.kind(), sqlx::error::ErrorKind::Other)
}

/// A BK_HASH (32 hex digits) as its 128 bits; None for text that is not one.
pub fn key_bits(key: &str) -> Option<u128> {
    let mut bytes = [0u8; 16];
    crate::identity::decode_hex(key, &mut bytes).then(|| u128::from_be_bytes(bytes))
}

/// The table of keys seen during the current pass of each entity (for delete detection).
pub const SEEN_TABLE: &str = "_syncflow_seen";

impl<'a> PageWrite<'a> {
    /// The same write of other rows, rolled back (to find the rows the database refuses); it files no conflicts.
    pub fn probe<'b>(&'b self, rows: &'b [PreparedRow]) -> PageWrite<'b>
    where
        'a: 'b,
    {
        PageWrite {
            pipeline: self.pipeline,
            entity: self.entity,
            table: self.table,
            mapping: self.mapping,
            rows,
            checkpoint: None,
            dry_run: true,
            skip_unchanged: self.skip_unchanged,
            deletes: self.deletes,
            starts_pass: false,
            conflicts: self.conflicts,
            edits_tracked: self.edits_tracked,
            conflict_log: None,
            page_keys: &[],
            pass_keys: None,
            rows_before: None,
            found_before: None,
            interrupted: self.interrupted,
            never_older: self.never_older,
            delete_guard: None,
            late: self.late,
            full_refresh: None,
            copy: None,
        }
    }

    /// Whether deleting `rows` of `live` goes past the delete guard (then none are deleted).
    pub fn guard_holds(&self, rows: u64, live: u64) -> Option<HeldDeletes> {
        let fraction = self.delete_guard.filter(|f| *f < 1.0)?;
        (rows > 0 && rows as f64 > fraction * live as f64).then_some(HeldDeletes { rows, live })
    }

    /// Whether this write ends a complete pass (no page left, none passed over).
    pub fn ends_pass(&self) -> bool {
        self.checkpoint
            .is_some_and(|c| c.cursor.is_none() && c.failed_pages.is_empty())
    }

    /// Whether this write ends a complete pass that may delete: deletes asked for, no page left, and no record
    /// failed in the pass (a failed record's row must not be taken for deleted).
    pub fn applies_deletes(&self) -> bool {
        self.tracks_seen()
            && self.checkpoint.is_some_and(|c| {
                c.cursor.is_none() && c.counts.failed == 0 && c.failed_pages.is_empty()
            })
    }

    /// Whether the pass records its keys as seen: it deletes, and it began into a table that held rows.
    pub fn tracks_seen(&self) -> bool {
        // A full refresh decides on absent rows as it swaps its table in.
        self.full_refresh.is_none()
            && self.deletes != crate::config::DeleteMode::None
            && self.checkpoint.is_some_and(|c| !c.fresh)
    }

    /// The name the pass's seen keys are filed under: a dry run keeps its own, which it clears at its end, since
    /// its page transactions are rolled back.
    pub fn seen_entity(&self) -> String {
        if self.dry_run {
            format!("{}\u{1}dry-run", self.entity)
        } else {
            self.entity.to_owned()
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("cannot connect to the target: {0}")]
    Connect(String),
    #[error("target table {table} does not exist; run again with --apply-schema to create it")]
    MissingTable { table: String },
    #[error("target table {table} has no column for source field \"{field}\"; run again with --apply-schema to add it")]
    MissingColumn { table: String, field: String },
    #[error("target table {table} lacks the tracking column {column}; add it or let --apply-schema create a new table")]
    MissingTracking { table: String, column: String },
    #[error("target {table}: {message}")]
    Write { table: String, message: String },
    /// The connection to the target was lost (a restart, a failover, a network cut): the transaction did not
    /// commit, and the write can be tried again on a new connection.
    #[error("lost the connection to the target while writing {table}: {message}")]
    ConnectionLost { table: String, message: String },
    /// The database refused a value or a row of the batch (a data exception or a constraint of the table): the
    /// batch rolled back; the rows it refuses can be found by writing parts of it.
    #[error("target {table} refused the batch: {message}")]
    Rejected { table: String, message: String },
    /// The target refused these rows of the page on their own (index in the page, the target's reply); the others
    /// were written, the checkpoint was not: the page is written again without them.
    #[error("target {table} refused {} records", rows.len())]
    RefusedRows {
        table: String,
        rows: Vec<(usize, String)>,
    },
    /// The run was asked to stop while a statement ran; it was cancelled and its transaction rolled back.
    #[error("target {table}: stopped on request")]
    Interrupted { table: String },
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

/// A connected target.
pub enum Sink {
    // Boxed, as the REST sink: the pool's handle and this process's bookkeeping of tables.
    Postgres(Box<postgres::PostgresSink>),
    Sqlite(sqlite::SqliteSink),
    // Boxed: its HTTP client and bookkeeping are several times the size of the database handles.
    Rest(Box<rest::RestSink>),
}

impl Sink {
    /// Whether `delta = "full"` loads a shadow table and swaps it in (PostgreSQL); elsewhere it syncs like
    /// `hash`.
    pub fn swaps_full_refresh(&self) -> bool {
        matches!(self, Sink::Postgres(_))
    }

    /// Whether the target compares column names without ASCII case (SQLite).
    pub fn folds_case(&self) -> bool {
        matches!(self, Sink::Sqlite(_))
    }

    /// Connects; relative SQLite paths are taken from `base_dir` (the pipeline file's folder).
    pub async fn connect(target: &TargetConfig, base_dir: &Path) -> Result<Sink, SinkError> {
        Sink::connect_for(target, base_dir, 1, false).await
    }

    /// [`Sink::connect`] for writing: a REST target keeps its checkpoints in the state database `state`.
    pub async fn connect_with_state(
        target: &TargetConfig,
        base_dir: &Path,
        state: &crate::store::Store,
    ) -> Result<Sink, SinkError> {
        Sink::connect_for_run(target, base_dir, 1, false, Some(state)).await
    }

    /// The write calls a REST target has had from this sink (None for a database, which takes transactions).
    pub fn write_calls(&self) -> Option<u64> {
        match self {
            Sink::Rest(s) => Some(s.write_calls()),
            Sink::Postgres(_) | Sink::Sqlite(_) => None,
        }
    }

    /// Whether the target has no tables to review: the mapping's fields go as they are learnt (REST).
    pub fn schemaless(&self) -> bool {
        matches!(self, Sink::Rest(_))
    }

    /// Connects for a run that writes `parallel` entities side by side; a dry run's connection creates nothing in
    /// the target (not even the engine's own tables).
    pub async fn connect_for(
        target: &TargetConfig,
        base_dir: &Path,
        parallel: usize,
        dry_run: bool,
    ) -> Result<Sink, SinkError> {
        Sink::connect_for_run(target, base_dir, parallel, dry_run, None).await
    }

    /// [`Sink::connect_for`], with the state database a REST target keeps its checkpoints in.
    pub async fn connect_for_run(
        target: &TargetConfig,
        base_dir: &Path,
        parallel: usize,
        dry_run: bool,
        state: Option<&crate::store::Store>,
    ) -> Result<Sink, SinkError> {
        Ok(match target {
            TargetConfig::Rest(rest) => Sink::Rest(Box::new(rest::RestSink::connect(
                rest,
                state.map(|s| s.pool().clone()),
            )?)),
            TargetConfig::Postgres(pg) => Sink::Postgres(Box::new(
                postgres::PostgresSink::connect(pg, parallel, !dry_run).await?,
            )),
            TargetConfig::Sqlite(lite) => Sink::Sqlite(
                sqlite::SqliteSink::connect(&base_dir.join(&lite.path), !dry_run).await?,
            ),
        })
    }

    /// Takes the pipeline's lock on the target for a run: Ok(Err(who)) when another process holds it. SQLite
    /// targets are a file of this machine: the state database's lease covers them.
    pub async fn lock_pipeline(
        &self,
        pipeline: &str,
    ) -> Result<Result<Option<sqlx::PgConnection>, String>, SinkError> {
        match self {
            Sink::Postgres(s) => Ok(s.lock_pipeline(pipeline).await?.map(Some)),
            Sink::Sqlite(_) | Sink::Rest(_) => Ok(Ok(None)),
        }
    }

    /// How long a lost connection is retried before a write fails (an SQLite file is never lost).
    pub fn reconnect_budget(&self) -> std::time::Duration {
        match self {
            Sink::Postgres(s) => s.reconnect_budget(),
            // A REST target's calls are retried one by one.
            Sink::Sqlite(_) | Sink::Rest(_) => std::time::Duration::ZERO,
        }
    }

    /// How many rows the table holds — live ones, or with `all_rows` every one — for a pass that compares its keys
    /// with the table's at its end; None where the comparison is made in SQL (SQLite).
    pub async fn rows_in(&self, table: &str, all_rows: bool) -> Result<Option<u64>, SinkError> {
        match self {
            Sink::Postgres(s) => s.rows_in(table, all_rows).await.map(Some),
            Sink::Sqlite(_) | Sink::Rest(_) => Ok(None),
        }
    }

    /// Whether the target counts the changes of its tables, which a page memo needs (ADR 0015): PostgreSQL.
    pub fn counts_changes(&self) -> bool {
        matches!(self, Sink::Postgres(_))
    }

    /// Whether a batch of new rows can be encoded for the target ahead of its write ([`postgres::CopyStream`]).
    pub fn takes_copy_streams(&self) -> bool {
        matches!(self, Sink::Postgres(_))
    }

    /// The table's change count for `owner`'s page memo (see [`postgres::PostgresSink::change_count`]).
    pub async fn change_count(
        &self,
        table: &str,
        owner: &str,
        create: bool,
    ) -> Result<Option<i64>, SinkError> {
        match self {
            Sink::Postgres(s) => s.change_count(table, owner, create).await,
            Sink::Sqlite(_) | Sink::Rest(_) => Ok(None),
        }
    }

    /// Makes the tables of the pipeline's entities that can keep a page memo count their changes (ADR 0015).
    pub async fn count_changes(&self, pipeline: &crate::config::Pipeline) {
        if !self.counts_changes() {
            return;
        }
        let memo_kinds = pipeline.entities.iter().filter(|e| {
            e.conflicts == crate::config::ConflictStrategy::SourceWins && e.parents.is_empty()
        });
        for entity in memo_kinds {
            let owner = memo_owner(&pipeline.name, &entity.name);
            if let Err(e) = self.change_count(entity.table_name(), &owner, true).await {
                tracing::warn!(
                    entity = entity.name,
                    "the table's changes are not counted: {e}"
                );
            }
        }
    }

    /// Whether the end-of-pass deletes compare the pass's keys in the engine (PostgreSQL), so that a resumed pass
    /// needs [`Sink::recorded_seen`]; SQLite keeps its seen keys in a table and compares them in SQL.
    pub fn keeps_seen_keys(&self) -> bool {
        matches!(self, Sink::Postgres(_) | Sink::Rest(_))
    }

    /// The keys an unfinished pass recorded as seen, to resume it (SQLite keeps its own and compares in SQL).
    pub async fn recorded_seen(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Vec<u128>, SinkError> {
        match self {
            Sink::Postgres(s) => s.recorded_seen(pipeline, entity).await,
            Sink::Rest(s) => s.recorded_seen(pipeline, entity).await,
            Sink::Sqlite(_) => Ok(Vec::new()),
        }
    }

    /// The table's source columns and their types, or None if the table does not exist.
    pub async fn columns(
        &self,
        table: &str,
    ) -> Result<Option<Vec<(String, ColumnType)>>, SinkError> {
        match self {
            Sink::Postgres(s) => s.columns(table).await,
            Sink::Sqlite(s) => s.columns(table).await,
            // A resource takes whatever fields the mapping sends: there is nothing to create or widen.
            Sink::Rest(_) => Ok(Some(Vec::new())),
        }
    }

    /// The SQL that creates the table, or (when it `exists`) adds and widens the columns `change` names.
    pub fn ddl(
        &self,
        table: &str,
        mapping: &Mapping,
        change: &SchemaChange,
        exists: bool,
    ) -> Vec<String> {
        match self {
            Sink::Postgres(s) => s.ddl(table, mapping, change, exists),
            Sink::Sqlite(s) => s.ddl(table, mapping, change, exists),
            Sink::Rest(_) => Vec::new(),
        }
    }

    /// Applies DDL statements in one transaction.
    pub async fn apply(&self, table: &str, statements: &[String]) -> Result<(), SinkError> {
        match self {
            Sink::Postgres(s) => s.apply(table, statements).await,
            Sink::Sqlite(s) => s.apply(table, statements).await,
            Sink::Rest(_) => Ok(()),
        }
    }

    /// The statements that convert `table`'s tracking columns to the lean shape (PostgreSQL tables made before it;
    /// empty for others and for SQLite, which keeps hashes as text).
    pub async fn lean_conversion(&self, table: &str) -> Result<Vec<String>, SinkError> {
        match self {
            Sink::Postgres(s) => s.lean_conversion(table).await,
            Sink::Sqlite(_) | Sink::Rest(_) => Ok(Vec::new()),
        }
    }

    /// Which of `key_hashes` are live rows of `table`; none when the table does not exist (yet).
    pub async fn existing_keys(
        &self,
        table: &str,
        key_hashes: &[String],
    ) -> Result<std::collections::HashSet<String>, SinkError> {
        if key_hashes.is_empty() {
            return Ok(Default::default());
        }
        match self.stored_data_hashes(table, key_hashes).await {
            Ok(found) => Ok(found.into_keys().collect()),
            // Asked only on the unhappy path: a parent table that was never created holds no parents.
            Err(e) => match self.columns(table).await? {
                None => Ok(Default::default()),
                Some(_) => Err(e),
            },
        }
    }

    /// The DATA_HASH stored under each of `keys` (BK_HASHes) that has a live row in `table` (what a preview shows
    /// its sample rows against).
    pub async fn stored_data_hashes(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>, SinkError> {
        match self {
            Sink::Postgres(s) => s.stored_data_hashes(table, keys).await,
            Sink::Sqlite(s) => s.stored_data_hashes(table, keys).await,
            Sink::Rest(s) => s.stored_data_hashes(table, keys).await,
        }
    }

    /// Whether the table has no rows (a first sync: every key is new).
    pub async fn is_empty(&self, table: &str) -> Result<bool, SinkError> {
        match self {
            Sink::Postgres(s) => s.is_empty(table).await,
            Sink::Sqlite(s) => s.is_empty(table).await,
            // Every page of a REST target is looked up before it is written: never a blind first load.
            Sink::Rest(_) => Ok(false),
        }
    }

    /// Whether `table` tracks outside edits, after adding the tracking (when `needed` and `apply`): a table that
    /// does not exist yet will (it is created with it). SQLite targets never do.
    pub async fn prepare_edit_tracking(
        &self,
        table: &str,
        needed: bool,
        apply: bool,
    ) -> Result<bool, SinkError> {
        match self {
            Sink::Postgres(s) => s.prepare_edit_tracking(table, needed, apply).await,
            Sink::Sqlite(_) | Sink::Rest(_) => Ok(false),
        }
    }

    /// The highest rowversion stored in a table (where an incremental pass starts), if any; for a REST target the
    /// highest the pipeline wrote to the entity's resource.
    pub async fn max_rowversion(
        &self,
        pipeline: &str,
        entity: &str,
        table: &str,
    ) -> Result<Option<String>, SinkError> {
        let sql = |quoted: String| format!("SELECT max(\"_bridge_rowversion\") FROM {quoted}");
        match self {
            Sink::Postgres(s) => s.scalar_text(table, &sql(s.quoted(table))).await,
            Sink::Sqlite(s) => {
                s.scalar_text(table, &sql(crate::schema::quote_ident(table)))
                    .await
            }
            Sink::Rest(s) => s.max_rowversion(pipeline, entity).await,
        }
    }

    pub async fn read_checkpoint(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        match self {
            Sink::Postgres(s) => s.read_checkpoint(pipeline, entity).await,
            Sink::Sqlite(s) => s.read_checkpoint(pipeline, entity).await,
            Sink::Rest(s) => s.read_checkpoint(pipeline, entity).await,
        }
    }

    /// Undoes run `run_id` of `pipeline` in one transaction under the pipeline's lock on the target; with `apply`
    /// false, says what it would change and changes nothing.
    pub async fn undo(
        &self,
        pipeline: &str,
        run_id: &str,
        apply: bool,
    ) -> Result<Result<Vec<UndoTable>, UndoRefusal>, SinkError> {
        match self {
            Sink::Postgres(s) => {
                let mut lock = match s.lock_pipeline(pipeline).await? {
                    Ok(conn) => conn,
                    Err(holder) => return Ok(Err(UndoRefusal::Busy(holder))),
                };
                let undone = s.undo(&mut lock, pipeline, run_id, apply).await;
                let _ = sqlx::Connection::close(lock).await;
                undone
            }
            Sink::Sqlite(s) => s.undo(pipeline, run_id, apply).await,
            Sink::Rest(s) => s.undo().await,
        }
    }

    /// Drops undo information older than the pipeline's last `keep` runs that changed the target.
    pub async fn prune_undo(&self, pipeline: &str, keep: u32) -> Result<(), SinkError> {
        match self {
            Sink::Postgres(s) => s.prune_undo(pipeline, keep).await,
            Sink::Sqlite(s) => s.prune_undo(pipeline, keep).await,
            Sink::Rest(_) => Ok(()),
        }
    }

    /// Writes a page and its checkpoint in one transaction (rolled back for a dry run).
    pub async fn write_page(
        &self,
        page: &PageWrite<'_>,
        run_id: &str,
    ) -> Result<MergeCounts, SinkError> {
        match self {
            Sink::Postgres(s) => s.write_page(page, run_id).await,
            Sink::Sqlite(s) => s.write_page(page, run_id).await,
            Sink::Rest(s) => s.write_page(page, run_id).await,
        }
    }
}

/// Columns that must exist in a table the engine writes to, besides the source columns.
pub fn required_tracking_columns() -> impl Iterator<Item = &'static str> {
    std::iter::once(crate::schema::ROW_ID_COLUMN).chain(crate::schema::TRACKING_COLUMNS)
}

pub const CHECKPOINT_TABLE: &str = "_syncflow_checkpoints";

/// The checkpoint as stored: the page's merge counts added to the counts before it.
fn checkpoint_json(c: &Checkpoint, merged: MergeCounts) -> Result<String, SinkError> {
    let mut c = c.clone();
    c.counts.inserted = (c.counts.inserted + merged.inserted).saturating_sub(merged.repeated);
    c.counts.updated += merged.updated + merged.repeated;
    c.counts.skipped += merged.skipped;
    c.counts.deleted += merged.deleted;
    c.counts.conflicts += merged.conflicts;
    if merged.held_deletes.is_some() {
        c.held_deletes = merged.held_deletes;
    }
    serde_json::to_string(&c).map_err(|e| SinkError::Write {
        table: CHECKPOINT_TABLE.into(),
        message: e.to_string(),
    })
}

fn parse_checkpoint(text: &str) -> Result<Checkpoint, SinkError> {
    serde_json::from_str(text).map_err(|e| SinkError::Write {
        table: CHECKPOINT_TABLE.into(),
        message: format!("unreadable checkpoint ({e}); delete its row to start the entity afresh"),
    })
}
