//! The PostgreSQL sink: each page is COPYed into a temporary staging table and merged with one set-based
//! statement that skips rows whose `_bridge_data_hash` is unchanged; the checkpoint is upserted in the same
//! transaction.

use super::{
    checkpoint_json, parse_checkpoint, required_tracking_columns, Checkpoint, DetectedConflict,
    MergeCounts, PageWrite, PreparedRow, SinkError, CHECKPOINT_TABLE, SEEN_TABLE,
};
use crate::config::{ConflictStrategy, PostgresTarget};
use crate::pgconn::{self, Side};
use crate::schema::{quote_ident, ColumnType, Mapping, SchemaChange, ROW_ID_COLUMN};
use serde_json::Value;
use sqlx::{PgPool, Row};

mod binary;
mod changes;
mod conflicts;
mod copy;
mod ddl;
mod deferred;
mod deletes;
mod merge;
mod refresh;
mod shape;
mod undo;

pub use binary::CopyStream;

pub use changes::memo_owner;
pub use conflicts::RowResolution;
use conflicts::*;
use copy::*;
pub use deferred::DEFERRED_TABLE;
use merge::*;
use shape::*;
pub use undo::{UNDO_ROWS_TABLE, UNDO_RUNS_TABLE};

pub struct PostgresSink {
    pool: PgPool,
    schema: String,
    sslmode: crate::config::SslMode,
    reconnect: std::time::Duration,
    /// Seen-key tables this process has made sure exist.
    seen_tables: std::sync::Mutex<std::collections::HashSet<String>>,
    /// Tables this process found without deferred indexes (a fresh pass's, built at its end).
    indexed_tables: std::sync::Mutex<std::collections::HashSet<String>>,
    /// (run, entity) pairs whose undo mark committed as written by, and as having changed the table in, that run:
    /// its later batches need not write it again (two statements of every batch's ten).
    marked_changed: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
}

/// What this process is called in `pg_stat_activity` (and so in a "the pipeline is busy" message elsewhere).
fn application_name() -> String {
    // PostgreSQL keeps 63 bytes of it.
    format!(
        "syncflow {}@{}",
        std::process::id(),
        crate::process::host_name()
    )
    .chars()
    .filter(char::is_ascii)
    .take(63)
    .collect()
}

fn write_err(table: &str) -> impl Fn(sqlx::Error) -> SinkError + '_ {
    move |e| {
        let table = table.to_owned();
        let message = e.to_string();
        if pgconn::is_connection_lost(&e) {
            SinkError::ConnectionLost { table, message }
        } else if super::is_refused_data(&e) {
            SinkError::Rejected { table, message }
        } else {
            SinkError::Write { table, message }
        }
    }
}
impl PostgresSink {
    /// Connects with a pool for `parallel` entities written side by side (each holds a connection only while it
    /// writes; a wait for a free one is queueing, not an error, so it may last as long as a reconnect).
    pub async fn connect(
        config: &PostgresTarget,
        parallel: usize,
        create_tables: bool,
    ) -> Result<PostgresSink, SinkError> {
        let connected = pgconn::connect(
            &config.url,
            config.password.as_ref(),
            &config.connection,
            Side::Target,
            &application_name(),
            (parallel as u32 + 2).clamp(3, 20),
        )
        .await
        .map_err(|e| match e {
            pgconn::PgConnectError::Secret(s) => SinkError::Secret(s),
            other => SinkError::Connect(other.to_string()),
        })?;
        let sink = PostgresSink {
            pool: connected.pool,
            schema: config.schema.clone(),
            sslmode: connected.sslmode,
            reconnect: connected.reconnect,
            seen_tables: Default::default(),
            indexed_tables: Default::default(),
            marked_changed: Default::default(),
        };
        if create_tables {
            sink.ensure_checkpoint_table().await?;
        }
        Ok(sink)
    }

    /// Takes the pipeline's lock on this database for the run (a session advisory lock on a connection of its
    /// own, so that runs with different state databases cannot write one target at once); None when another
    /// session holds it, with who that is.
    pub async fn lock_pipeline(
        &self,
        pipeline: &str,
    ) -> Result<Result<sqlx::PgConnection, String>, SinkError> {
        let err = write_err(CHECKPOINT_TABLE);
        let mut conn = self.pool.acquire().await.map_err(&err)?.detach();
        let key = format!("syncflow pipeline {pipeline}");
        let locked: bool =
            sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut conn)
                .await
                .map_err(&err)?;
        if locked {
            return Ok(Ok(conn));
        }
        let holder: Option<(String, Option<String>, String)> = sqlx::query_as(
            "SELECT a.application_name, host(a.client_addr), to_char(a.backend_start AT TIME ZONE 'UTC', \
             'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid \
             WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 \
             AND ((l.classid::bigint << 32) | l.objid::bigint) = hashtextextended($1, 0) LIMIT 1",
        )
        .bind(&key)
        .fetch_optional(&mut conn)
        .await
        .unwrap_or(None);
        let _ = sqlx::Connection::close(conn).await;
        Ok(Err(match holder {
            Some((application, from, since)) => format!(
                "another SyncFlow ({application}{}) holds pipeline \"{pipeline}\"'s lock on the target database \
                 since {since}",
                from.map(|f| format!(" from {f}")).unwrap_or_default()
            ),
            None => format!(
                "another SyncFlow holds pipeline \"{pipeline}\"'s lock on the target database"
            ),
        }))
    }

    /// How long a lost connection is retried before the run fails.
    pub fn reconnect_budget(&self) -> std::time::Duration {
        self.reconnect
    }

    /// Whether the connection is encrypted, in words (for Test connection).
    pub async fn tls(&self) -> Result<String, SinkError> {
        let encrypted = pgconn::encrypted(&self.pool)
            .await
            .map_err(write_err(CHECKPOINT_TABLE))?;
        Ok(pgconn::describe_tls(self.sslmode, encrypted))
    }

    fn qualified(&self, table: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(table))
    }

    /// The engine's own tables in the target: checkpoints and undo information.
    async fn ensure_checkpoint_table(&self) -> Result<(), SinkError> {
        let checkpoints = format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline text NOT NULL, entity text NOT NULL, checkpoint jsonb NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, entity))",
            self.qualified(CHECKPOINT_TABLE)
        );
        let [undo_runs, undo_rows, swapped] = undo::create_undo_tables_sql(
            &self.qualified(UNDO_RUNS_TABLE),
            &self.qualified(UNDO_ROWS_TABLE),
        );
        let deferred = deferred::create_deferred_table_sql(&self.qualified(DEFERRED_TABLE));
        for sql in [checkpoints, undo_runs, undo_rows, deferred] {
            sqlx::query(&sql)
                .execute(&self.pool)
                .await
                .map_err(write_err(CHECKPOINT_TABLE))?;
        }
        if self
            .lacks_swapped_column()
            .await
            .map_err(write_err(UNDO_RUNS_TABLE))?
        {
            sqlx::query(&swapped)
                .execute(&self.pool)
                .await
                .map_err(write_err(UNDO_RUNS_TABLE))?;
        }
        Ok(())
    }

    pub async fn read_checkpoint(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        let sql = format!(
            "SELECT checkpoint::text FROM {} WHERE pipeline = $1 AND entity = $2",
            self.qualified(CHECKPOINT_TABLE)
        );
        let row = sqlx::query(&sql)
            .bind(pipeline)
            .bind(entity)
            .fetch_optional(&self.pool)
            .await
            .map_err(write_err(CHECKPOINT_TABLE))?;
        match row {
            None => Ok(None),
            Some(r) => {
                let text: String = r.try_get(0).map_err(write_err(CHECKPOINT_TABLE))?;
                parse_checkpoint(&text).map(Some)
            }
        }
    }

    pub async fn write_page(
        &self,
        page: &PageWrite<'_>,
        run_id: &str,
    ) -> Result<MergeCounts, SinkError> {
        // Into a table that was empty when the pass began every key is new: the rows are COPYed straight into
        // it, with no staging table and no merge. A key the source repeats across batches makes that COPY fail
        // on the unique key; the batch is then written again through the merge.
        // A probe for refused rows (a dry run) of such a pass goes the same way: the table's unique keys may be
        // deferred (ADR 0012), and a merge needs them.
        if !page.skip_unchanged && !page.rows.is_empty() {
            if let Some(counts) = self.write_page_as(page, run_id, Ingest::Copy).await? {
                return Ok(counts);
            }
            tracing::info!(
                table = page.table,
                "a key repeated in a fresh pass: batch merged instead"
            );
        }
        self.write_page_as(page, run_id, Ingest::Merge)
            .await?
            .ok_or_else(|| SinkError::Write {
                table: page.table.to_owned(),
                message: "the merge reported a repeated key".into(),
            })
    }

    /// Writes the page's batch; None when a straight COPY met a key the table holds already (nothing written).
    async fn write_page_as(
        &self,
        page: &PageWrite<'_>,
        run_id: &str,
        ingest: Ingest,
    ) -> Result<Option<MergeCounts>, SinkError> {
        let err = write_err(page.table);
        // A full refresh writes its pass into the shadow, swapped in by the pass's last write.
        let full_refresh = page.full_refresh.filter(|_| !page.dry_run).is_some();
        let table = if full_refresh {
            self.qualified(&refresh::shadow_of(page.table))
        } else {
            self.qualified(page.table)
        };
        let mut tx = self.pool.begin().await.map_err(&err)?;
        changes::as_page_writer(&mut tx, &memo_owner(page.pipeline, page.entity))
            .await
            .map_err(&err)?;
        let mark = (run_id.to_owned(), page.entity.to_owned());
        // A late write's undo mark stands for no run of its own: written every time.
        let marked = !page.late
            && self
                .marked_changed
                .lock()
                .is_ok_and(|marked| marked.contains(&mark));
        if !page.dry_run && !marked {
            self.mark_writer(&mut tx, page, run_id)
                .await
                .map_err(write_err(UNDO_RUNS_TABLE))?;
        }
        if full_refresh {
            self.prepare_shadow(&mut tx, page).await.map_err(&err)?;
        }
        // A pass into a table that was empty as it began loads without index maintenance (built at its end); any
        // other write first builds the indexes such a pass left deferred (it was cut short).
        let fresh_pass = !page.dry_run && !full_refresh && page.checkpoint.is_some_and(|c| c.fresh);
        let table_checked = self
            .indexed_tables
            .lock()
            .is_ok_and(|t| t.contains(page.table));
        if !page.dry_run && !fresh_pass && !table_checked {
            self.build_deferred_indexes(&mut tx, &table, page.table)
                .await
                .map_err(&err)?;
        }
        if fresh_pass && page.starts_pass && ingest == Ingest::Copy {
            self.defer_indexes(&mut tx, &table, page.table)
                .await
                .map_err(&err)?;
        }
        // The lock COPY would take anyway, taken before the table's column types are read: a schema change from
        // the transform stage (a column widened mid-pass) waits for this batch instead of slipping between the
        // check and the COPY.
        sqlx::query(&format!("LOCK TABLE {table} IN ROW EXCLUSIVE MODE"))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        let types = binary::column_types(&mut tx, &table).await.map_err(&err)?;
        let shape = Shape::of_types(&types);
        let mut counts = MergeCounts::default();
        let rows = if page.skip_unchanged {
            changed_rows(&mut tx, &table, shape, page, run_id)
                .await
                .map_err(&err)?
        } else {
            page.rows.iter().collect()
        };
        counts.skipped = (page.rows.len() - rows.len()) as u64;
        if !rows.is_empty() {
            let columns = column_list(page.mapping);
            let into = match ingest {
                Ingest::Copy => table.clone(),
                Ingest::Merge => {
                    sqlx::query(&format!(
                        "CREATE TEMP TABLE _syncflow_stage (LIKE {table} INCLUDING DEFAULTS) ON COMMIT DROP"
                    ))
                    .execute(&mut *tx)
                    .await
                    .map_err(&err)?;
                    "_syncflow_stage".to_owned()
                }
            };
            let now = chrono::Utc::now();
            let binary = if binary::takes_binary(&types, page.mapping, shape) {
                // Encoded ahead by the transform stage when its rows are this write's, else here.
                let ahead = page
                    .copy
                    .filter(|_| shape == Shape::Lean)
                    .and_then(|stream| stream.of(&rows));
                match ahead {
                    Some(bytes) => Some(std::borrow::Cow::Borrowed(bytes)),
                    None => binary::encode_rows(&rows, page.mapping, shape, now, run_id)
                        .ok()
                        .map(std::borrow::Cow::Owned),
                }
            } else {
                None
            };
            let format = if binary.is_some() {
                " WITH (FORMAT binary)"
            } else {
                ""
            };
            let mut copy = tx
                .copy_in_raw(&format!("COPY {into} ({columns}) FROM STDIN{format}"))
                .await
                .map_err(&err)?;
            if let Some(bytes) = binary {
                copy.send(bytes).await.map_err(&err)?;
            } else {
                let synced_at = now.to_rfc3339();
                let tracking = CopyTracking {
                    shape,
                    synced_at: &synced_at,
                    run_id,
                };
                let mut buffer = String::with_capacity(64 * 1024);
                for row in &rows {
                    write_copy_row(&mut buffer, row, page.mapping, &tracking);
                    if buffer.len() >= 1 << 20 {
                        copy.send(std::mem::take(&mut buffer).into_bytes())
                            .await
                            .map_err(&err)?;
                    }
                }
                if !buffer.is_empty() {
                    copy.send(buffer.into_bytes()).await.map_err(&err)?;
                }
            }
            match copy.finish().await {
                Err(e) if ingest == Ingest::Copy && is_unique_violation(&e) => return Ok(None),
                other => other.map_err(&err)?,
            };
            if ingest == Ingest::Copy {
                counts.inserted = rows.len() as u64;
            }
        }
        if !rows.is_empty() && ingest == Ingest::Merge {
            if !page.dry_run && !full_refresh {
                self.keep_images_of_staged(&mut tx, &table, shape, page, run_id)
                    .await
                    .map_err(&err)?;
            }
            let held = if page.edits_tracked && page.conflicts != ConflictStrategy::SourceWins {
                hold_conflicts(&mut tx, &table, shape, page).await?
            } else {
                0
            };
            let (inserted, updated) = merge(
                &mut tx,
                &table,
                page.mapping,
                page.edits_tracked,
                page.never_older,
            )
            .await
            .map_err(&err)?;
            counts.inserted = inserted;
            counts.updated = updated;
            counts.conflicts = held;
            counts.skipped += rows.len() as u64 - inserted - updated - held;
        }
        if page.tracks_seen() && !page.dry_run {
            self.record_seen(&mut tx, page).await.map_err(&err)?;
        }
        if page.applies_deletes() {
            (counts.deleted, counts.held_deletes) = self
                .apply_deletes_interruptibly(&mut tx, &table, page, run_id)
                .await?;
        }
        if fresh_pass && page.ends_pass() {
            counts.repeated = self
                .build_deferred_indexes(&mut tx, &table, page.table)
                .await
                .map_err(&err)?;
        }
        if full_refresh && page.ends_pass() {
            (counts.deleted, counts.held_deletes) = self
                .swap_in_shadow(&mut tx, page, run_id)
                .await
                .map_err(&err)?;
        }
        let changed = !page.dry_run && counts.changes_target();
        if changed && !marked {
            self.mark_changed(&mut tx, page, run_id, false)
                .await
                .map_err(write_err(UNDO_RUNS_TABLE))?;
        }
        // A dry run's transaction rolls back anyway, and its target may not even have the checkpoint table.
        if let Some(checkpoint) = page.checkpoint.filter(|_| !page.dry_run) {
            let sql = format!(
                "INSERT INTO {} (pipeline, entity, checkpoint) VALUES ($1, $2, $3::jsonb)
                 ON CONFLICT (pipeline, entity) DO UPDATE SET checkpoint = EXCLUDED.checkpoint, updated_at = now()",
                self.qualified(CHECKPOINT_TABLE)
            );
            sqlx::query(&sql)
                .bind(page.pipeline)
                .bind(page.entity)
                .bind(checkpoint_json(checkpoint, counts)?)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        if page.dry_run {
            tx.rollback().await.map_err(&err)?;
        } else {
            tx.commit().await.map_err(&err)?;
            if changed && !page.late {
                if let Ok(mut marked) = self.marked_changed.lock() {
                    marked.insert(mark);
                }
            }
            if !fresh_pass && !full_refresh {
                if let Ok(mut tables) = self.indexed_tables.lock() {
                    tables.insert(page.table.to_owned());
                }
            }
            if page.tracks_seen() {
                // Known to exist once committed (a CREATE in a transaction that rolled back is made again).
                if let Ok(mut tables) = self.seen_tables.lock() {
                    tables.insert(self.seen_table(page.pipeline, page.entity));
                }
            }
        }
        Ok(Some(counts))
    }
}

/// How a batch reaches its table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ingest {
    /// COPY straight into the table (every key new).
    Copy,
    /// COPY into a staging table, then one set-based merge.
    Merge,
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    e.as_database_error()
        .and_then(|d| d.code())
        .is_some_and(|code| code == "23505")
}
