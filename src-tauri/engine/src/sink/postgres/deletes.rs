//! Delete detection at the end of a pass (ADR 0009): the pass's seen keys recorded per page, the table's rows counted
//! while the pass runs, its keys read and compared only when a row may be unseen, the unseen rows marked or
//! removed — cancellable within a fraction of a second.

use super::*;

/// The keys of `table` (sorted) that are not in `seen` (sorted), as BK_HASH text.
pub(super) fn unseen_keys(table: &[u128], seen: &[u128]) -> Vec<String> {
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
pub(super) fn every_row_found(page: &PageWrite<'_>) -> Option<u64> {
    let before = page.rows_before?;
    let mut found = page.found_before?.lock().ok()?;
    found.sort_unstable();
    found.dedup();
    (found.len() as u64 == before).then_some(before)
}

/// Rows the end-of-pass deletes removed or marked, or the deletes the guard held back.
pub(super) type Deleted = (u64, Option<crate::sink::HeldDeletes>);

/// Keys one statement of the end-of-pass deletes changes at most.
pub(super) const DELETE_CHUNK: usize = 10_000;

impl PostgresSink {
    /// The table of keys seen in the current pass of one entity (one per pipeline and entity, so that a pass
    /// starts with TRUNCATE): one row per page, its keys as 16-byte BK_HASHes side by side.
    pub(super) fn seen_table(&self, pipeline: &str, entity: &str) -> String {
        let name = format!("{pipeline}\0{entity}");
        self.qualified(&format!(
            "{SEEN_TABLE}keys_{:016x}",
            xxhash_rust::xxh3::xxh3_64(name.as_bytes())
        ))
    }

    /// Records the page's keys (and its held children's) as seen in this pass, in the page's transaction, so that
    /// a resumed pass knows them; the pass's first write forgets an unfinished earlier pass's keys. One row of
    /// binary keys per page costs PostgreSQL next to nothing (the set itself is compared in the engine).
    pub(super) async fn record_seen(
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
    pub(super) async fn apply_deletes(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        page: &PageWrite<'_>,
        writer: &str,
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
        let shape = Shape::of(&mut *tx, table).await?;
        let mut seen = pass_keys.to_vec();
        seen.sort_unstable();
        seen.dedup();
        let hard = page.deletes == crate::config::DeleteMode::Hard;
        let all_rows = hard && !page.dry_run;
        let (unseen, live) = match every_row_found(page) {
            Some(rows) => (Vec::new(), rows),
            None => {
                let table_keys = self.keys_of(&mut *tx, table, shape, all_rows).await?;
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
        // Each row's before-image is kept for undo in the same statement.
        let change = self.delete_keeping_images_sql(table, shape, hard);
        let mut deleted = 0;
        for keys in unseen.chunks(DELETE_CHUNK) {
            let count: i64 = sqlx::query_scalar(&change)
                .bind(keys)
                .bind(writer)
                .bind(page.table)
                .fetch_one(&mut *tx)
                .await?;
            deleted += count.max(0) as u64;
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
    pub(super) async fn keys_of(
        &self,
        conn: &mut sqlx::PgConnection,
        table: &str,
        shape: Shape,
        all_rows: bool,
    ) -> Result<Vec<u128>, sqlx::Error> {
        let live = if all_rows {
            ""
        } else {
            " WHERE \"_bridge_deleted_at\" IS NULL"
        };
        let sql = format!(
            "COPY (SELECT {} FROM {table}{live}) TO STDOUT",
            shape.hex("\"_bridge_key_hash\"")
        );
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
                    .filter_map(crate::sink::key_bits),
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
    pub(super) async fn apply_deletes_interruptibly(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        page: &PageWrite<'_>,
        writer: &str,
    ) -> Result<Deleted, SinkError> {
        let err = write_err(page.table);
        let Some(interrupted) = page.interrupted else {
            return self
                .apply_deletes(tx, table, page, writer)
                .await
                .map_err(&err);
        };
        let pid: i32 = sqlx::query_scalar("SELECT pg_backend_pid()")
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        let deleting = self.apply_deletes(tx, table, page, writer);
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
}
