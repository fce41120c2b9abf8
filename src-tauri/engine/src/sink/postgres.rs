//! The PostgreSQL sink: each page is COPYed into a temporary staging table and merged with one set-based
//! statement that skips rows whose `_bridge_data_hash` is unchanged; the checkpoint is upserted in the same
//! transaction.

use super::{
    checkpoint_json, parse_checkpoint, required_tracking_columns, Checkpoint, DetectedConflict,
    MergeCounts, PageWrite, SinkError, CHECKPOINT_TABLE, SEEN_TABLE,
};
use crate::config::{ConflictStrategy, PostgresTarget};
use crate::pgconn::{self, Side};
use crate::schema::{quote_ident, ColumnType, Mapping, SchemaChange, ROW_ID_COLUMN};
use serde_json::Value;
use sqlx::{PgPool, Row};

pub struct PostgresSink {
    pool: PgPool,
    schema: String,
    sslmode: crate::config::SslMode,
    reconnect: std::time::Duration,
    /// Seen-key tables this process has made sure exist.
    seen_tables: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// The advisory lock key schema changes take ("syncflow" in ASCII).
const DDL_LOCK: i64 = 0x73_79_6e_63_66_6c_6f_77;

/// The keys of `table` (sorted) that are not in `seen` (sorted), as BK_HASH text.
fn unseen_keys(table: &[u128], seen: &[u128]) -> Vec<String> {
    let mut unseen = Vec::new();
    let mut seen = seen.iter().peekable();
    for key in table {
        while seen.next_if(|s| *s < key).is_some() {}
        if seen.peek() != Some(&key) {
            unseen.push(format!("{key:032x}"));
        }
    }
    unseen
}

/// The rows the table held as the pass began, when the pass's lookups found every one of them (so none is
/// unseen and the table's keys need not be read): the keys found are a subset of those rows (written before the
/// pass, so in the table as it began), so as many distinct keys as rows means all of them.
fn every_row_found(page: &PageWrite<'_>) -> Option<u64> {
    let before = page.rows_before?;
    let mut found = page.found_before?.lock().ok()?;
    found.sort_unstable();
    found.dedup();
    (found.len() as u64 == before).then_some(before)
}

/// Rows the end-of-pass deletes removed or marked, or the deletes the guard held back.
type Deleted = (u64, Option<super::HeldDeletes>);

/// Keys one statement of the end-of-pass deletes changes at most.
const DELETE_CHUNK: usize = 10_000;

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

    async fn ensure_checkpoint_table(&self) -> Result<(), SinkError> {
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline text NOT NULL, entity text NOT NULL, checkpoint jsonb NOT NULL,
             updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, entity))",
            self.qualified(CHECKPOINT_TABLE)
        );
        sqlx::query(&sql)
            .execute(&self.pool)
            .await
            .map_err(write_err(CHECKPOINT_TABLE))?;
        Ok(())
    }

    /// The table of keys seen in the current pass of one entity (one per pipeline and entity, so that a pass
    /// starts with TRUNCATE): one row per page, its keys as 16-byte BK_HASHes side by side.
    fn seen_table(&self, pipeline: &str, entity: &str) -> String {
        let name = format!("{pipeline}\0{entity}");
        self.qualified(&format!(
            "{SEEN_TABLE}keys_{:016x}",
            xxhash_rust::xxh3::xxh3_64(name.as_bytes())
        ))
    }

    /// Records the page's keys (and its held children's) as seen in this pass, in the page's transaction, so that
    /// a resumed pass knows them; the pass's first write forgets an unfinished earlier pass's keys. One row of
    /// binary keys per page costs PostgreSQL next to nothing (the set itself is compared in the engine).
    async fn record_seen(
        &self,
        tx: &mut sqlx::PgConnection,
        page: &PageWrite<'_>,
    ) -> Result<(), sqlx::Error> {
        let seen = self.seen_table(page.pipeline, page.entity);
        // Created (if need be) once per table and process, not on every page.
        let known = self
            .seen_tables
            .lock()
            .map(|t| t.contains(&seen))
            .unwrap_or(false);
        if !known {
            sqlx::query(&format!(
                "CREATE TABLE IF NOT EXISTS {seen} (keys bytea NOT NULL)"
            ))
            .execute(&mut *tx)
            .await?;
        }
        if page.starts_pass {
            sqlx::query(&format!("TRUNCATE {seen}"))
                .execute(&mut *tx)
                .await?;
        }
        let keys: Vec<u8> = page
            .page_keys
            .iter()
            .flat_map(|k| k.to_be_bytes())
            .collect();
        if keys.is_empty() {
            return Ok(());
        }
        sqlx::query(&format!("INSERT INTO {seen} (keys) VALUES ($1)"))
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The keys an unfinished pass of `entity` recorded as seen (to resume it).
    pub async fn recorded_seen(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Vec<u128>, SinkError> {
        let seen = self.seen_table(pipeline, entity);
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&seen)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(SEEN_TABLE))?;
        if !exists {
            return Ok(Vec::new());
        }
        let pages: Vec<Vec<u8>> = sqlx::query_scalar(&format!("SELECT keys FROM {seen}"))
            .fetch_all(&self.pool)
            .await
            .map_err(write_err(SEEN_TABLE))?;
        Ok(pages
            .iter()
            .flat_map(|page| page.chunks_exact(16))
            .filter_map(|k| <[u8; 16]>::try_from(k).ok().map(u128::from_be_bytes))
            .collect())
    }

    /// At the end of a complete pass: rows whose key was not seen are marked deleted (soft) or removed (hard),
    /// or in a dry run counted; the pass's seen keys are cleared. Returns how many rows.
    ///
    /// The pass's keys are in the engine's memory (`page.pass_keys`, sorted here), so PostgreSQL only streams the
    /// table's keys once — no anti-join to plan (the first design's nested loop over an unanalysed seen table was
    /// quadratic: 50k rows took 51 s) and no per-page COPY of keys; the few unseen rows are then changed by key.
    async fn apply_deletes(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        page: &PageWrite<'_>,
    ) -> Result<Deleted, sqlx::Error> {
        let Some(pass_keys) = page.pass_keys else {
            return Ok((0, None));
        };
        if page.checkpoint.and_then(|c| c.seen_keys).is_none() {
            tracing::warn!(
                table,
                "the pass's record of seen keys is not whole (the target lost it, or the pass began under an \
                 older version): no deletes inferred from this pass"
            );
            return Ok((0, None));
        }
        let started = std::time::Instant::now();
        let mut seen = pass_keys.to_vec();
        seen.sort_unstable();
        seen.dedup();
        let hard = page.deletes == crate::config::DeleteMode::Hard;
        let all_rows = hard && !page.dry_run;
        let (unseen, live) = match every_row_found(page) {
            Some(rows) => (Vec::new(), rows),
            None => {
                let table_keys = self.keys_of(&mut *tx, table, all_rows).await?;
                (unseen_keys(&table_keys, &seen), table_keys.len() as u64)
            }
        };
        tracing::info!(
            table,
            seen = seen.len(),
            unseen = unseen.len(),
            ms = started.elapsed().as_millis() as u64,
            "end of pass: the table's keys compared with the pass's"
        );
        if let Some(held) = page.guard_holds(unseen.len() as u64, live) {
            tracing::warn!(
                table,
                would = held.rows,
                live,
                "delete guard: the pass's deletes are held for a confirmation"
            );
            return Ok((0, Some(held)));
        }
        if page.dry_run {
            return Ok((unseen.len() as u64, None));
        }
        let change = if hard {
            format!("DELETE FROM {table} WHERE \"_bridge_key_hash\" = ANY($1)")
        } else {
            format!(
                "UPDATE {table} SET \"_bridge_deleted_at\" = now() WHERE \"_bridge_key_hash\" = ANY($1) \
                 AND \"_bridge_deleted_at\" IS NULL"
            )
        };
        let mut deleted = 0;
        for keys in unseen.chunks(DELETE_CHUNK) {
            deleted += sqlx::query(&change)
                .bind(keys)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        }
        sqlx::query(&format!(
            "TRUNCATE {}",
            self.seen_table(page.pipeline, page.entity)
        ))
        .execute(&mut *tx)
        .await?;
        Ok((deleted, None))
    }

    /// The table's keys, sorted: every row's, or only the live ones'. COPY TO streams them as plain lines, without
    /// the cost of decoding a million result rows; a key the engine cannot read is not one it wrote, and is left out
    /// (never taken for deleted).
    async fn keys_of(
        &self,
        conn: &mut sqlx::PgConnection,
        table: &str,
        all_rows: bool,
    ) -> Result<Vec<u128>, sqlx::Error> {
        let live = if all_rows {
            ""
        } else {
            " WHERE \"_bridge_deleted_at\" IS NULL"
        };
        let sql = format!("COPY (SELECT \"_bridge_key_hash\" FROM {table}{live}) TO STDOUT");
        let mut stored = conn.copy_out_raw(&sql).await?;
        let mut keys = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        while let Some(chunk) = futures_util::TryStreamExt::try_next(&mut stored).await? {
            pending.extend_from_slice(&chunk);
            let mut lines = pending.split(|b| *b == b'\n');
            let last = lines.next_back().map(<[u8]>::to_vec).unwrap_or_default();
            keys.extend(
                lines
                    .filter_map(|line| std::str::from_utf8(line).ok())
                    .filter_map(super::key_bits),
            );
            pending = last;
        }
        keys.sort_unstable();
        Ok(keys)
    }

    /// How many rows the table holds as a pass begins (live ones, or every one), counted on a connection of its
    /// own while the pass runs.
    pub async fn rows_in(&self, table: &str, all_rows: bool) -> Result<u64, SinkError> {
        let live = if all_rows {
            ""
        } else {
            " WHERE \"_bridge_deleted_at\" IS NULL"
        };
        let sql = format!("SELECT count(*) FROM {}{live}", self.qualified(table));
        let rows: i64 = sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))?;
        Ok(rows.max(0) as u64)
    }

    /// Runs the end-of-pass deletes so that a stop request cancels them within a fraction of a second: the
    /// statement in flight is cancelled from another connection (PostgreSQL answers 57014) and the page rolls
    /// back, to be written again, deletes and all, when the run resumes.
    async fn apply_deletes_interruptibly(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        page: &PageWrite<'_>,
    ) -> Result<Deleted, SinkError> {
        let err = write_err(page.table);
        let Some(interrupted) = page.interrupted else {
            return self.apply_deletes(tx, table, page).await.map_err(&err);
        };
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        let deleting = self.apply_deletes(tx, table, page);
        tokio::pin!(deleting);
        let mut cancelled = false;
        loop {
            tokio::select! {
                done = &mut deleting => {
                    return match done {
                        Err(_) if cancelled => Err(SinkError::Interrupted { table: page.table.to_owned() }),
                        other => other.map_err(&err),
                    };
                }
                _ = tokio::time::sleep(std::time::Duration::from_millis(100)), if !cancelled => {
                    if interrupted() {
                        cancelled = true;
                        tracing::info!(table, "stop requested during the deletes: cancelling the statement");
                        sqlx::query("SELECT pg_cancel_backend($1)")
                            .bind(pid)
                            .execute(&self.pool)
                            .await
                            .map_err(&err)?;
                    }
                }
            }
        }
    }

    pub async fn columns(
        &self,
        table: &str,
    ) -> Result<Option<Vec<(String, ColumnType)>>, SinkError> {
        let rows = sqlx::query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&self.schema)
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .map_err(write_err(table))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0).map_err(write_err(table))?;
            let ty: String = row.try_get(1).map_err(write_err(table))?;
            all.push((name, ColumnType::from_sql(&ty)));
        }
        for column in required_tracking_columns() {
            if !all.iter().any(|(n, _)| n == column) {
                return Err(SinkError::MissingTracking {
                    table: self.qualified(table),
                    column: column.into(),
                });
            }
        }
        Ok(Some(
            all.into_iter().filter(|(n, _)| !is_tracking(n)).collect(),
        ))
    }

    pub fn ddl(
        &self,
        table: &str,
        mapping: &Mapping,
        change: &SchemaChange,
        exists: bool,
    ) -> Vec<String> {
        let qualified = self.qualified(table);
        if exists {
            let mut statements = Vec::new();
            for f in &mapping.fields {
                let column = quote_ident(&f.column);
                if change.added.contains(&f.source) {
                    statements.push(format!(
                        "ALTER TABLE {qualified} ADD COLUMN {column} {}",
                        f.ty.postgres()
                    ));
                } else if change.retyped.contains(&f.source) {
                    // Widening only (to text or jsonb): every stored value converts without loss.
                    let using = match f.ty {
                        ColumnType::Json => format!("to_jsonb({column})"),
                        ColumnType::Numeric => format!("{column}::numeric"),
                        // Text keeps the ISO spelling the values arrived in, not PostgreSQL's output format.
                        ColumnType::Text if change.was.get(&f.source) == Some(&ColumnType::DateTime) => format!(
                            "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                        ),
                        _ => format!("{column}::text"),
                    };
                    statements.push(format!(
                        "ALTER TABLE {qualified} ALTER COLUMN {column} TYPE {} USING {using}",
                        f.ty.postgres()
                    ));
                }
            }
            statements.extend(crate::schema::index_statements_for_added(
                &qualified,
                table,
                mapping,
                &change.added,
            ));
            return statements;
        }
        let mut columns = vec![format!("{} uuid PRIMARY KEY", quote_ident(ROW_ID_COLUMN))];
        columns.extend(mapping.fields.iter().map(|f| {
            let required = if mapping.key.contains(&f.source) {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{required}", quote_ident(&f.column), f.ty.postgres())
        }));
        columns.push("\"_bridge_key_hash\" text NOT NULL UNIQUE".into());
        columns.push("\"_bridge_data_hash\" text NOT NULL".into());
        columns.push("\"_bridge_rowversion\" text".into());
        columns.push("\"_bridge_synced_at\" timestamptz NOT NULL".into());
        columns.push("\"_bridge_run_id\" text NOT NULL".into());
        columns.push("\"_bridge_deleted_at\" timestamptz".into());
        columns.push("\"_bridge_edited_at\" timestamptz".into());
        columns.push("\"_bridge_synced\" jsonb".into());
        let mut statements = vec![format!(
            "CREATE TABLE {qualified} (\n  {}\n)",
            columns.join(",\n  ")
        )];
        statements.extend(crate::schema::index_statements(&qualified, table, mapping));
        statements.extend(self.edit_trigger_statements(table));
        statements
    }

    /// The trigger that notes edits made outside the engine: the first one keeps the row as the engine wrote it
    /// (`_bridge_synced`), every one stamps `_bridge_edited_at`. The engine's own writes set `syncflow.writer`
    /// for their transaction and pass untouched.
    fn edit_trigger_statements(&self, table: &str) -> Vec<String> {
        let function = format!("{}.\"_syncflow_note_edit\"", quote_ident(&self.schema));
        vec![
            format!(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $syncflow$
BEGIN
  IF current_setting('syncflow.writer', true) IS NOT DISTINCT FROM 'engine' OR to_jsonb(NEW) = to_jsonb(OLD) THEN
    RETURN NEW;
  END IF;
  IF OLD.\"_bridge_edited_at\" IS NULL THEN
    NEW.\"_bridge_synced\" := {synced};
  END IF;
  NEW.\"_bridge_edited_at\" := clock_timestamp();
  RETURN NEW;
END
$syncflow$",
                synced = values_json("OLD")
            ),
            format!(
                "DROP TRIGGER IF EXISTS \"_syncflow_edit\" ON {}",
                self.qualified(table)
            ),
            format!(
                "CREATE TRIGGER \"_syncflow_edit\" BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {function}()",
                self.qualified(table)
            ),
        ]
    }

    /// See [`super::Sink::prepare_edit_tracking`].
    pub async fn prepare_edit_tracking(
        &self,
        table: &str,
        needed: bool,
        apply: bool,
    ) -> Result<bool, SinkError> {
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2",
        )
        .bind(&self.schema)
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .map_err(write_err(table))?;
        if present.is_empty() {
            return Ok(true);
        }
        let tracked = crate::schema::EDIT_COLUMNS
            .iter()
            .all(|c| present.iter().any(|p| p == c));
        if tracked || !needed {
            return Ok(tracked);
        }
        if !apply {
            return Err(SinkError::MissingTracking {
                table: self.qualified(table),
                column: "_bridge_edited_at (conflict detection; run with --apply-schema to add it)"
                    .into(),
            });
        }
        let qualified = self.qualified(table);
        let mut statements = vec![
            format!("ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS \"_bridge_edited_at\" timestamptz"),
            format!("ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS \"_bridge_synced\" jsonb"),
        ];
        statements.extend(self.edit_trigger_statements(table));
        self.apply(table, &statements).await?;
        Ok(true)
    }

    pub async fn apply(&self, table: &str, statements: &[String]) -> Result<(), SinkError> {
        let mut tx = self.pool.begin().await.map_err(write_err(table))?;
        // Entities run side by side, and their DDL shares objects (the edit-trigger function): one schema change
        // at a time per database, or PostgreSQL fails one with "tuple concurrently updated".
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DDL_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(write_err(table))?;
        for statement in statements {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(write_err(table))?;
        }
        tx.commit().await.map_err(write_err(table))
    }

    /// The table as SQL names it (schema-qualified, quoted).
    pub fn quoted(&self, table: &str) -> String {
        self.qualified(table)
    }

    /// One nullable text value of a query about `table`.
    pub async fn scalar_text(&self, table: &str, sql: &str) -> Result<Option<String>, SinkError> {
        sqlx::query_scalar::<_, Option<String>>(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))
    }

    /// Which of `key_hashes` are live rows of `table` (not soft-deleted).
    pub async fn existing_keys(
        &self,
        table: &str,
        key_hashes: &[String],
    ) -> Result<Vec<String>, SinkError> {
        let sql = format!(
            "SELECT \"_bridge_key_hash\" FROM {} WHERE \"_bridge_key_hash\" = ANY($1)
             AND \"_bridge_deleted_at\" IS NULL",
            self.qualified(table)
        );
        sqlx::query_scalar(&sql)
            .bind(key_hashes)
            .fetch_all(&self.pool)
            .await
            .map_err(write_err(table))
    }

    pub async fn is_empty(&self, table: &str) -> Result<bool, SinkError> {
        let sql = format!(
            "SELECT NOT EXISTS (SELECT 1 FROM {})",
            self.qualified(table)
        );
        sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))
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
        if !page.skip_unchanged && !page.dry_run && !page.rows.is_empty() {
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
        let table = self.qualified(page.table);
        let err = write_err(page.table);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        as_engine_writer(&mut tx).await.map_err(&err)?;
        let mut counts = MergeCounts::default();
        let rows = if page.skip_unchanged {
            changed_rows(&mut tx, &table, page, run_id)
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
            let mut copy = tx
                .copy_in_raw(&format!("COPY {into} ({columns}) FROM STDIN"))
                .await
                .map_err(&err)?;
            let synced_at = chrono::Utc::now().to_rfc3339();
            let mut buffer = String::with_capacity(64 * 1024);
            for row in &rows {
                write_copy_row(&mut buffer, row, page.mapping, &synced_at, run_id);
                if buffer.len() >= 1 << 20 {
                    copy.send(std::mem::take(&mut buffer).into_bytes())
                        .await
                        .map_err(&err)?;
                }
            }
            if !buffer.is_empty() {
                copy.send(buffer.into_bytes()).await.map_err(&err)?;
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
            let held = if page.edits_tracked && page.conflicts != ConflictStrategy::SourceWins {
                hold_conflicts(&mut tx, &table, page).await?
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
                .apply_deletes_interruptibly(&mut tx, &table, page)
                .await?;
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

/// What a conflict's resolution writes into the row.
pub struct RowResolution {
    /// The row's new values by column.
    pub values: Value,
    pub data_hash: String,
    pub rowversion: Option<String>,
    /// Whether the row now holds exactly the source's values (no outside edit left to protect).
    pub matches_source: bool,
}

impl PostgresSink {
    /// Applies a conflict's resolution to one row in a transaction: `decide` sees the row as it is now (locked) and
    /// says what it becomes. Returns the values before and after. The engine's own write: the trigger keeps out.
    pub async fn resolve_row(
        &self,
        table: &str,
        key_hash: &str,
        decide: impl FnOnce(&Value) -> RowResolution,
    ) -> Result<(Value, Value), SinkError> {
        let err = write_err(table);
        let qualified = self.qualified(table);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        as_engine_writer(&mut tx).await.map_err(&err)?;
        let sql = format!(
            "SELECT {} FROM {qualified} t WHERE \"_bridge_key_hash\" = $1 FOR UPDATE",
            values_json("t")
        );
        let before: Option<Value> = sqlx::query_scalar(&sql)
            .bind(key_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        let Some(before) = before else {
            return Err(SinkError::Write {
                table: qualified,
                message: "the row is no longer in the target (deleted since the conflict was found); nothing to resolve"
                    .into(),
            });
        };
        let resolution = decide(&before);
        let columns: Vec<String> = resolution
            .values
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|c| !is_tracking(c))
                    .map(|c| quote_ident(c))
                    .collect()
            })
            .unwrap_or_default();
        if columns.is_empty() {
            return Err(SinkError::Write {
                table: qualified,
                message: "the resolution names no column".into(),
            });
        }
        let edit = if resolution.matches_source {
            "\"_bridge_edited_at\" = NULL, \"_bridge_synced\" = NULL"
        } else {
            "\"_bridge_edited_at\" = coalesce(\"_bridge_edited_at\", clock_timestamp())"
        };
        let sql = format!(
            "UPDATE {qualified} AS t SET ({list}) = (SELECT {list} FROM jsonb_populate_record(NULL::{qualified}, $1)),
                 \"_bridge_data_hash\" = $2, \"_bridge_rowversion\" = $3, \"_bridge_synced_at\" = now(), {edit}
             WHERE \"_bridge_key_hash\" = $4
             RETURNING {values}",
            list = columns.join(", "),
            values = values_json("t"),
        );
        let after: Value = sqlx::query_scalar(&sql)
            .bind(&resolution.values)
            .bind(&resolution.data_hash)
            .bind(resolution.rowversion.as_deref())
            .bind(key_hash)
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok((before, after))
    }
}

/// The rows whose key is new or whose DATA_HASH differs from the stored one (one indexed lookup per page, which
/// PostgreSQL runs cheaper than a probe per row), so an unchanged page is neither copied nor merged. The stored
/// hashes are compared as they stream in, without copying them.
async fn changed_rows<'a>(
    tx: &mut sqlx::PgConnection,
    table: &str,
    page: &PageWrite<'a>,
    run_id: &str,
) -> Result<Vec<&'a super::PreparedRow>, sqlx::Error> {
    let rows = page.rows;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let position: std::collections::HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key_hash.as_str(), i))
        .collect();
    // The third column says whether the row was written before this run: only such rows count as found for the
    // end of the pass (a row the pass inserted and its source repeated later was not in the table as it began).
    if let Some((sql, keys)) = business_key_lookup(tx, table, page.mapping, rows).await? {
        let stored = sqlx::query(&sql).bind(keys).bind(run_id).fetch(&mut *tx);
        return matched(stored, rows, &position, page.found_before).await;
    }
    let keys: Vec<&str> = rows.iter().map(|r| r.key_hash.as_str()).collect();
    let sql = format!(
        "SELECT \"_bridge_key_hash\", \"_bridge_data_hash\", \"_bridge_run_id\" <> $2 FROM {table}
         WHERE \"_bridge_key_hash\" = ANY($1) AND \"_bridge_deleted_at\" IS NULL"
    );
    let stored = sqlx::query(&sql).bind(keys).bind(run_id).fetch(&mut *tx);
    matched(stored, rows, &position, page.found_before).await
}

/// The rows of `rows` not found unchanged among the stored (key hash, data hash, written before this run) rows
/// `stored` streams; the keys found that were written before go to `found`. A stored row counts only when both its
/// hashes match, so a lookup that finds extra rows or misses some is still exact.
async fn matched<'a, 'q>(
    mut stored: futures_util::stream::BoxStream<'q, Result<sqlx::postgres::PgRow, sqlx::Error>>,
    rows: &'a [super::PreparedRow],
    position: &std::collections::HashMap<&str, usize>,
    found: Option<&std::sync::Mutex<Vec<u128>>>,
) -> Result<Vec<&'a super::PreparedRow>, sqlx::Error> {
    use futures_util::TryStreamExt;
    let mut unchanged = vec![false; rows.len()];
    let mut found_here = Vec::new();
    while let Some(row) = stored.try_next().await? {
        let key: &str = row.try_get(0)?;
        let hash: &str = row.try_get(1)?;
        let before: bool = row.try_get(2)?;
        if let Some(&i) = position.get(key) {
            unchanged[i] = rows[i].data_hash == hash;
            if before && found.is_some() {
                found_here.extend(super::key_bits(key));
            }
        }
    }
    if let Some(mut found) = found.and_then(|f| f.lock().ok()) {
        found.append(&mut found_here);
    }
    Ok(rows
        .iter()
        .zip(unchanged)
        .filter(|(_, same)| !same)
        .map(|(row, _)| row)
        .collect())
}

/// With a one-field business key whose column leads an index, the lookup goes through that index by the key's
/// values: sources mostly list records in key order, so a page's keys sit side by side in that index (and in the
/// table), where BK_HASHes are scattered over the whole of theirs. Twice as cheap for PostgreSQL here.
async fn business_key_lookup(
    tx: &mut sqlx::PgConnection,
    table: &str,
    mapping: &Mapping,
    rows: &[super::PreparedRow],
) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
    let [key] = mapping.key.as_slice() else {
        return Ok(None);
    };
    let Some(at) = mapping.fields.iter().position(|f| &f.source == key) else {
        return Ok(None);
    };
    let field = &mapping.fields[at];
    // Text and whole-number keys (the usual ids), in a column of that type that leads a full index.
    let sql_type = match field.ty {
        ColumnType::Text | ColumnType::Integer => field.ty.postgres(),
        _ => return Ok(None),
    };
    // Asked on every page, in its transaction: a schema change during the run may retype or drop the column.
    let indexed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = $1::regclass AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL
             AND format_type(a.atttypid, NULL) = $3)",
    )
    .bind(table)
    .bind(&field.column)
    .bind(sql_type)
    .fetch_one(&mut *tx)
    .await?;
    if !indexed {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        match (row.values.get(at), field.ty) {
            (Some(Value::String(s)), ColumnType::Text) => keys.push(s.clone()),
            (Some(Value::Number(n)), ColumnType::Integer) => keys.push(n.to_string()),
            // Not a value of the column's type (normalisation makes that rare): the BK_HASH lookup then.
            _ => return Ok(None),
        }
    }
    let sql = format!(
        "SELECT \"_bridge_key_hash\", \"_bridge_data_hash\", \"_bridge_run_id\" <> $2 FROM {table}
         WHERE {} = ANY($1::text[]::{sql_type}[]) AND \"_bridge_deleted_at\" IS NULL",
        quote_ident(&field.column)
    );
    Ok(Some((sql, keys)))
}

/// RESOLVE for rows edited in the target whose source changed too: decides per row by the entity's strategy,
/// takes the rows the target keeps out of the staging table (their stored hash moves on to the source's, except
/// for manual ones, which wait in the queue — filed before the page commits). Returns how many rows were held.
async fn hold_conflicts(
    tx: &mut sqlx::PgConnection,
    table: &str,
    page: &PageWrite<'_>,
) -> Result<u64, SinkError> {
    let err = write_err(page.table);
    let sql = format!(
        "SELECT s.\"_bridge_key_hash\", s.\"_bridge_data_hash\", s.\"_bridge_rowversion\",
                (extract(epoch FROM t.\"_bridge_edited_at\") * 1000)::float8,
                {source}, {target}, t.\"_bridge_synced\"
         FROM _syncflow_stage s JOIN {table} t ON t.\"_bridge_key_hash\" = s.\"_bridge_key_hash\"
         WHERE t.\"_bridge_edited_at\" IS NOT NULL
           AND t.\"_bridge_data_hash\" IS DISTINCT FROM s.\"_bridge_data_hash\"
         FOR UPDATE OF t",
        source = values_json("s"),
        target = values_json("t"),
    );
    let rows = sqlx::query(&sql).fetch_all(&mut *tx).await.map_err(&err)?;
    let mut kept = Vec::new();
    let mut manual = Vec::new();
    for row in rows {
        let key_hash: String = row.try_get(0).map_err(&err)?;
        let rowversion: Option<String> = row.try_get(2).map_err(&err)?;
        let edited_ms: f64 = row.try_get(3).map_err(&err)?;
        let target_keeps = match page.conflicts {
            ConflictStrategy::SourceWins => false,
            ConflictStrategy::TargetWins | ConflictStrategy::Manual => true,
            ConflictStrategy::LastWriteWins => {
                // Without a readable source time, the source change is the one seen last (now).
                source_written_ms(rowversion.as_deref()).is_some_and(|source| source <= edited_ms)
            }
        };
        if !target_keeps {
            continue;
        }
        if page.conflicts == ConflictStrategy::Manual {
            manual.push(DetectedConflict {
                source_hash: row.try_get(1).map_err(&err)?,
                source_rowversion: rowversion,
                source: row.try_get(4).map_err(&err)?,
                target: row.try_get(5).map_err(&err)?,
                synced: row.try_get(6).map_err(&err)?,
                key_hash: key_hash.clone(),
            });
        }
        kept.push(key_hash);
    }
    if kept.is_empty() {
        return Ok(0);
    }
    tracing::info!(
        table = page.table,
        rows = kept.len(),
        strategy = page.conflicts.as_str(),
        "rows edited in the target kept"
    );
    if page.conflicts != ConflictStrategy::Manual {
        // The target's version stands for this source version: the next sync skips the row until the source
        // changes again.
        let sql = format!(
            "UPDATE {table} t SET \"_bridge_data_hash\" = s.\"_bridge_data_hash\",
                    \"_bridge_rowversion\" = s.\"_bridge_rowversion\"
             FROM _syncflow_stage s WHERE t.\"_bridge_key_hash\" = s.\"_bridge_key_hash\" AND s.\"_bridge_key_hash\" = ANY($1)"
        );
        sqlx::query(&sql)
            .bind(&kept)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    sqlx::query("DELETE FROM _syncflow_stage WHERE \"_bridge_key_hash\" = ANY($1)")
        .bind(&kept)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    if let (Some(log), false) = (page.conflict_log, manual.is_empty()) {
        log(manual).await.map_err(|message| SinkError::Write {
            table: page.table.to_owned(),
            message: format!("could not file the page's conflicts: {message}"),
        })?;
    }
    Ok(kept.len() as u64)
}

/// When the source wrote a row, from its rowversion (an RFC 3339 time, e.g. Bubble's `Modified Date`), in ms.
fn source_written_ms(rowversion: Option<&str>) -> Option<f64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(rowversion?.trim()).ok()?;
    Some(parsed.timestamp_millis() as f64)
}

/// One set-based statement: insert new keys, update changed hashes (or revived soft-deletes), skip the rest.
async fn merge(
    tx: &mut sqlx::PgConnection,
    table: &str,
    mapping: &Mapping,
    edits_tracked: bool,
    never_older: bool,
) -> Result<(u64, u64), sqlx::Error> {
    let columns = column_list(mapping);
    let mut updates: Vec<String> = mapping
        .fields
        .iter()
        .map(|f| format!("{c} = EXCLUDED.{c}", c = quote_ident(&f.column)))
        .collect();
    for c in [
        "_bridge_data_hash",
        "_bridge_rowversion",
        "_bridge_synced_at",
        "_bridge_run_id",
    ] {
        updates.push(format!("\"{c}\" = EXCLUDED.\"{c}\""));
    }
    updates.push("\"_bridge_deleted_at\" = NULL".into());
    if edits_tracked {
        // The source's values replace an outside edit (source_wins, or the source's later write).
        updates.push("\"_bridge_edited_at\" = NULL, \"_bridge_synced\" = NULL".into());
    }
    let sql = format!(
        "WITH m AS (
           INSERT INTO {table} AS t ({columns}) SELECT {columns} FROM _syncflow_stage
           ON CONFLICT (\"_bridge_key_hash\") DO UPDATE SET {updates}
           WHERE (t.\"_bridge_data_hash\" IS DISTINCT FROM EXCLUDED.\"_bridge_data_hash\"
              OR t.\"_bridge_deleted_at\" IS NOT NULL){newer_kept}
           RETURNING (xmax = 0) AS inserted)
         SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m",
        updates = updates.join(", "),
        // A late write never replaces a version a later run wrote.
        newer_kept = if never_older {
            " AND NOT coalesce(t.\"_bridge_rowversion\" > EXCLUDED.\"_bridge_rowversion\", false)"
        } else {
            ""
        }
    );
    let row = sqlx::query(&sql).fetch_one(&mut *tx).await?;
    let inserted: i64 = row.try_get(0)?;
    let updated: i64 = row.try_get(1)?;
    Ok((inserted.max(0) as u64, updated.max(0) as u64))
}

fn column_list(mapping: &Mapping) -> String {
    let mut columns = vec![quote_ident(ROW_ID_COLUMN)];
    columns.extend(mapping.fields.iter().map(|f| quote_ident(&f.column)));
    for c in [
        "_bridge_key_hash",
        "_bridge_data_hash",
        "_bridge_rowversion",
        "_bridge_synced_at",
        "_bridge_run_id",
    ] {
        columns.push(quote_ident(c));
    }
    columns.join(", ")
}

fn is_tracking(column: &str) -> bool {
    column == ROW_ID_COLUMN
        || crate::schema::TRACKING_COLUMNS.contains(&column)
        || crate::schema::EDIT_COLUMNS.contains(&column)
}

/// `to_jsonb(row)` without the engine's own columns: the row's values keyed by column.
fn values_json(alias: &str) -> String {
    let tracking: Vec<String> = std::iter::once(ROW_ID_COLUMN)
        .chain(crate::schema::TRACKING_COLUMNS)
        .chain(crate::schema::EDIT_COLUMNS)
        .map(|c| format!("'{c}'"))
        .collect();
    format!(
        "(to_jsonb({alias}) - ARRAY[{}]::text[])",
        tracking.join(", ")
    )
}

/// Marks the transaction's writes as the engine's, so the edit-tracking trigger leaves them alone.
pub(crate) async fn as_engine_writer(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('syncflow.writer', 'engine', true)")
        .execute(&mut *tx)
        .await?;
    Ok(())
}

/// Appends one row in COPY's text format.
fn write_copy_row(
    out: &mut String,
    row: &super::PreparedRow,
    mapping: &Mapping,
    synced_at: &str,
    run_id: &str,
) {
    out.push_str(&row.id.to_string());
    for (field, value) in mapping.fields.iter().zip(&row.values) {
        out.push('\t');
        write_copy_value(out, value, field.ty);
    }
    for text in [
        Some(row.key_hash.as_str()),
        Some(row.data_hash.as_str()),
        row.rowversion.as_deref(),
        Some(synced_at),
        Some(run_id),
    ] {
        out.push('\t');
        match text {
            Some(t) => escape_copy_text(out, t),
            None => out.push_str("\\N"),
        }
    }
    out.push('\n');
}

fn write_copy_value(out: &mut String, value: &Value, ty: ColumnType) {
    match (value, ty) {
        (Value::Null, _) => out.push_str("\\N"),
        (Value::String(s), ColumnType::Text | ColumnType::DateTime) => escape_copy_text(out, s),
        (Value::Bool(b), ColumnType::Boolean) => out.push(if *b { 't' } else { 'f' }),
        (Value::Number(n), ColumnType::Numeric | ColumnType::Integer) => {
            out.push_str(&n.to_string())
        }
        (other, ColumnType::Json) => escape_copy_text(out, &other.to_string()),
        // Normalisation guarantees the pairs above; anything else is written as its JSON text.
        (other, _) => escape_copy_text(out, &other.to_string()),
    }
}

/// COPY text format: backslash, tab, newline and carriage return are escaped; everything else is literal.
pub fn escape_copy_text(out: &mut String, text: &str) {
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_escaping_covers_the_special_bytes() {
        let mut out = String::new();
        escape_copy_text(&mut out, "a\\b\tc\nd\re \\N");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re \\\\N");
    }
}
