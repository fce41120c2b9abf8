//! Undo information, and undo. Every write records, in the transaction of its page, what undoing it needs: once per
//! run and entity a mark with the entity's checkpoint as it was before the run, and the before-image of each row
//! the run updates or deletes (the first time the run touches it; later touches keep the first image). Rows the
//! run inserted carry its id in `_bridge_run_id`. Undo removes the run's rows, puts the images back (ids, values and
//! tracking columns as they were) and the checkpoints, in one transaction.

use super::*;
use crate::sink::{UndoRefusal, UndoTable};

pub const UNDO_RUNS_TABLE: &str = "_syncflow_undo_runs";
pub const UNDO_ROWS_TABLE: &str = "_syncflow_undo_rows";

/// The two tables of undo information, made where the checkpoints are; the last statement adds a column tables made
/// by an older version lack, and is run only when it is missing (see [`PostgresSink::lacks_swapped_column`]).
pub(super) fn create_undo_tables_sql(runs: &str, rows: &str) -> [String; 3] {
    [
        format!(
            "CREATE TABLE IF NOT EXISTS {runs} (seq bigserial PRIMARY KEY, run_id text NOT NULL,
             pipeline text NOT NULL, entity text NOT NULL, tbl text NOT NULL,
             late boolean NOT NULL DEFAULT false, changed boolean NOT NULL DEFAULT false,
             checkpoint_before jsonb, marked_at timestamptz NOT NULL DEFAULT now(), undone_at timestamptz,
             swapped boolean NOT NULL DEFAULT false, UNIQUE (run_id, entity))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {rows} (run_id text NOT NULL, tbl text NOT NULL, key_hash text NOT NULL,
             image jsonb NOT NULL, PRIMARY KEY (run_id, tbl, key_hash))"
        ),
        // Made before full refreshes could be undone.
        format!("ALTER TABLE {runs} ADD COLUMN IF NOT EXISTS swapped boolean NOT NULL DEFAULT false"),
    ]
}

impl PostgresSink {
    fn undo_runs(&self) -> String {
        self.qualified(UNDO_RUNS_TABLE)
    }

    /// Whether the undo table predates full-refresh undo. Asked first because ALTER TABLE takes the table's
    /// exclusive lock even when the column exists: every connection (a review, a Test target, a run's start) would
    /// queue behind whichever run of any pipeline is writing a page into this database, for up to lock_timeout.
    pub(super) async fn lacks_swapped_column(&self) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = to_regclass($1)
             AND attname = 'swapped' AND NOT attisdropped)",
        )
        .bind(self.undo_runs())
        .fetch_one(&self.pool)
        .await
    }

    fn undo_rows(&self) -> String {
        self.qualified(UNDO_ROWS_TABLE)
    }

    /// Marks the writer's first write of an entity, keeping the entity's checkpoint as it was before it.
    pub(super) async fn mark_writer(
        &self,
        tx: &mut sqlx::PgConnection,
        page: &PageWrite<'_>,
        writer: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO {runs} (run_id, pipeline, entity, tbl, late, checkpoint_before)
             SELECT $1, $2, $3, $4, $5, (SELECT checkpoint FROM {cp} WHERE pipeline = $2 AND entity = $3)
             ON CONFLICT (run_id, entity) DO NOTHING",
            runs = self.undo_runs(),
            cp = self.qualified(CHECKPOINT_TABLE),
        );
        sqlx::query(&sql)
            .bind(writer)
            .bind(page.pipeline)
            .bind(page.entity)
            .bind(page.table)
            .bind(page.late)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Notes that the writer changed the entity's table (a run that changed nothing does not stand in the way of
    /// undoing the one before it), and whether it swapped a full refresh in (undoing it swaps the previous table
    /// back).
    pub(super) async fn mark_changed(
        &self,
        tx: &mut sqlx::PgConnection,
        page: &PageWrite<'_>,
        writer: &str,
        swapped: bool,
    ) -> Result<(), sqlx::Error> {
        let sql = format!(
            "UPDATE {} SET changed = true, swapped = swapped OR $3
             WHERE run_id = $1 AND entity = $2 AND (NOT changed OR $3)",
            self.undo_runs()
        );
        sqlx::query(&sql)
            .bind(writer)
            .bind(page.entity)
            .bind(swapped)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// Keeps the before-image of the rows the staged batch will change (updates, revived soft-deletes, and rows a
    /// conflict strategy touches), unless this writer already kept one or wrote the row itself.
    pub(super) async fn keep_images_of_staged(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        shape: Shape,
        page: &PageWrite<'_>,
        writer: &str,
    ) -> Result<(), sqlx::Error> {
        let sql = format!(
            "INSERT INTO {rows} (run_id, tbl, key_hash, image)
             SELECT $1, $2, {key}, to_jsonb(t) FROM {table} t
             JOIN _syncflow_stage s ON s.\"_bridge_key_hash\" = t.\"_bridge_key_hash\"
             WHERE t.{RUN_ID_TEXT} <> $1
               AND (t.\"_bridge_data_hash\" IS DISTINCT FROM s.\"_bridge_data_hash\"
                    OR t.\"_bridge_deleted_at\" IS NOT NULL)
             ON CONFLICT DO NOTHING",
            rows = self.undo_rows(),
            key = shape.hex("t.\"_bridge_key_hash\""),
        );
        sqlx::query(&sql)
            .bind(writer)
            .bind(page.table)
            .execute(&mut *tx)
            .await?;
        Ok(())
    }

    /// The statement that deletes (hard) or marks deleted (soft) the rows whose keys are in `$1`, keeping their
    /// before-images under writer `$2` and table `$3` first. Its first column counts the rows deleted.
    pub(super) fn delete_keeping_images_sql(
        &self,
        table: &str,
        shape: Shape,
        hard: bool,
    ) -> String {
        let keep = |from: &str, filter: &str| {
            format!(
                "INSERT INTO {rows} (run_id, tbl, key_hash, image)
                 SELECT $2, $3, {key}, to_jsonb(d) FROM {from} d {filter} ON CONFLICT DO NOTHING",
                rows = self.undo_rows(),
                key = shape.hex("d.\"_bridge_key_hash\""),
            )
        };
        let listed = shape.hash_in("\"_bridge_key_hash\"", "$1");
        if hard {
            format!(
                "WITH gone AS (DELETE FROM {table} WHERE {listed} RETURNING *),
                      kept AS ({keep})
                 SELECT count(*) FROM gone",
                keep = keep("gone", "")
            )
        } else {
            // The statements of one WITH see the table as it was: the images are taken before the mark.
            format!(
                "WITH kept AS ({keep}),
                      marked AS (UPDATE {table} SET \"_bridge_deleted_at\" = now()
                                 WHERE {listed} AND \"_bridge_deleted_at\" IS NULL RETURNING 1)
                 SELECT count(*) FROM marked",
                keep = keep(
                    table,
                    &format!(
                        "WHERE {} AND d.\"_bridge_deleted_at\" IS NULL",
                        shape.hash_in("d.\"_bridge_key_hash\"", "$1")
                    )
                )
            )
        }
    }

    /// Keeps undo information for the pipeline's last `keep` runs that changed the target (and anything written
    /// after the oldest of them); older information goes.
    pub async fn prune_undo(&self, pipeline: &str, keep: u32) -> Result<(), SinkError> {
        let err = write_err(UNDO_RUNS_TABLE);
        let runs = self.undo_runs();
        let boundary: Option<i64> = if keep == 0 {
            Some(i64::MAX)
        } else {
            sqlx::query_scalar(&format!(
                "SELECT min(first) FROM (SELECT min(seq) AS first FROM {runs}
                   WHERE pipeline = $1 AND NOT late GROUP BY run_id
                   HAVING bool_or(changed) AND bool_and(undone_at IS NULL)
                   ORDER BY min(seq) DESC LIMIT $2) AS kept"
            ))
            .bind(pipeline)
            .bind(i64::from(keep))
            .fetch_one(&self.pool)
            .await
            .map_err(&err)?
        };
        let Some(boundary) = boundary else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await.map_err(&err)?;
        sqlx::query(&format!(
            "DELETE FROM {rows} WHERE run_id IN (SELECT run_id FROM {runs} WHERE pipeline = $1 AND seq < $2)",
            rows = self.undo_rows()
        ))
        .bind(pipeline)
        .bind(boundary)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(&format!(
            "DELETE FROM {runs} WHERE pipeline = $1 AND seq < $2"
        ))
        .bind(pipeline)
        .bind(boundary)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(())
    }

    /// Undoes run `run_id` of `pipeline`: its rows removed, the rows it updated or deleted put back as they were,
    /// the checkpoints it moved restored — in one transaction, on `conn` (which holds the pipeline's lock on this
    /// database). With `apply` false the same work is done and rolled back: what undo would change, exactly.
    pub async fn undo(
        &self,
        conn: &mut sqlx::PgConnection,
        pipeline: &str,
        run_id: &str,
        apply: bool,
    ) -> Result<Result<Vec<UndoTable>, UndoRefusal>, SinkError> {
        let err = write_err(UNDO_RUNS_TABLE);
        if !self.has_undo_tables(conn).await.map_err(&err)? {
            return Ok(Err(UndoRefusal::NoInformation));
        }
        let mut tx = sqlx::Connection::begin(&mut *conn).await.map_err(&err)?;
        as_engine_writer(&mut tx).await.map_err(&err)?;
        let marks = self
            .marks_of(&mut tx, pipeline, run_id)
            .await
            .map_err(&err)?;
        if let Some(refusal) = self
            .refusal(&mut tx, pipeline, run_id, &marks)
            .await
            .map_err(&err)?
        {
            return Ok(Err(refusal));
        }
        let mut tables: Vec<UndoTable> = Vec::new();
        for mark in &marks {
            if tables.iter().any(|t| t.table == mark.table) {
                continue;
            }
            tables.push(self.undo_table(&mut tx, run_id, mark).await?);
        }
        for mark in &marks {
            self.restore_checkpoint(&mut tx, pipeline, mark)
                .await
                .map_err(write_err(CHECKPOINT_TABLE))?;
        }
        sqlx::query(&format!(
            "UPDATE {} SET undone_at = now() WHERE run_id = $1 AND pipeline = $2",
            self.undo_runs()
        ))
        .bind(run_id)
        .bind(pipeline)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(&format!(
            "DELETE FROM {} WHERE run_id = $1",
            self.undo_rows()
        ))
        .bind(run_id)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        if apply {
            tx.commit().await.map_err(&err)?;
        } else {
            tx.rollback().await.map_err(&err)?;
        }
        Ok(Ok(tables))
    }

    async fn has_undo_tables(&self, conn: &mut sqlx::PgConnection) -> Result<bool, sqlx::Error> {
        sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL AND to_regclass($2) IS NOT NULL")
            .bind(self.undo_runs())
            .bind(self.undo_rows())
            .fetch_one(&mut *conn)
            .await
    }

    async fn marks_of(
        &self,
        tx: &mut sqlx::PgConnection,
        pipeline: &str,
        run_id: &str,
    ) -> Result<Vec<UndoMark>, sqlx::Error> {
        let sql = format!(
            "SELECT entity, tbl, checkpoint_before::text, undone_at IS NOT NULL, seq, swapped FROM {}
             WHERE run_id = $1 AND pipeline = $2 ORDER BY seq FOR UPDATE",
            self.undo_runs()
        );
        let rows = sqlx::query(&sql)
            .bind(run_id)
            .bind(pipeline)
            .fetch_all(&mut *tx)
            .await?;
        rows.iter()
            .map(|r| {
                Ok(UndoMark {
                    entity: r.try_get(0)?,
                    table: r.try_get(1)?,
                    checkpoint_before: r.try_get(2)?,
                    undone: r.try_get(3)?,
                    seq: r.try_get(4)?,
                    swapped: r.try_get(5)?,
                })
            })
            .collect()
    }

    /// Why the run cannot be undone, if it cannot: no information, undone already, or a later write changed the
    /// target since (a later run — undo that first — or a retry or children check outside any run).
    async fn refusal(
        &self,
        tx: &mut sqlx::PgConnection,
        pipeline: &str,
        run_id: &str,
        marks: &[UndoMark],
    ) -> Result<Option<UndoRefusal>, sqlx::Error> {
        let Some(first) = marks.iter().map(|m| m.seq).min() else {
            return Ok(Some(UndoRefusal::NoInformation));
        };
        if marks.iter().any(|m| m.undone) {
            return Ok(Some(UndoRefusal::AlreadyUndone));
        }
        let sql = format!(
            "SELECT run_id, late FROM {} WHERE pipeline = $1 AND seq > $2 AND run_id <> $3 AND changed
             AND undone_at IS NULL ORDER BY seq DESC LIMIT 1",
            self.undo_runs()
        );
        let later: Option<(String, bool)> = sqlx::query_as(&sql)
            .bind(pipeline)
            .bind(first)
            .bind(run_id)
            .fetch_optional(&mut *tx)
            .await?;
        Ok(later.map(|(run, late)| {
            if late {
                UndoRefusal::LateWrites
            } else {
                UndoRefusal::NotLatest { later: run }
            }
        }))
    }

    async fn undo_table(
        &self,
        tx: &mut sqlx::PgConnection,
        run_id: &str,
        mark: &UndoMark,
    ) -> Result<UndoTable, SinkError> {
        let err = write_err(&mark.table);
        let table = self.qualified(&mark.table);
        let exists: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&table)
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        if !exists {
            return Err(SinkError::MissingTable {
                table: mark.table.clone(),
            });
        }
        // A refresh the run did not get to swap in leaves its shadow, which goes.
        sqlx::query(&format!(
            "DROP TABLE IF EXISTS {}",
            self.qualified(&super::refresh::shadow_of(&mark.table))
        ))
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        if mark.swapped {
            return self.swap_back(tx, mark).await;
        }
        let rows = self.undo_rows();
        let shape = Shape::of(&mut *tx, &table).await.map_err(&err)?;
        // Rows with an image go whoever wrote them last (a row's image is its state before the run, whatever the
        // run did to it); the rest of the run's rows are the ones it inserted.
        let replaced = sqlx::query(&format!(
            "DELETE FROM {table} t USING {rows} u
             WHERE u.run_id = $1 AND u.tbl = $2 AND t.\"_bridge_key_hash\" = {}",
            shape.hash("u.key_hash")
        ))
        .bind(run_id)
        .bind(&mark.table)
        .execute(&mut *tx)
        .await
        .map_err(&err)?
        .rows_affected();
        let removed = sqlx::query(&format!("DELETE FROM {table} WHERE {RUN_ID_TEXT} = $1"))
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(&err)?
            .rows_affected();
        let restored = sqlx::query(&format!(
            "INSERT INTO {table} SELECT (jsonb_populate_record(NULL::{table}, u.image)).*
             FROM {rows} u WHERE u.run_id = $1 AND u.tbl = $2"
        ))
        .bind(run_id)
        .bind(&mark.table)
        .execute(&mut *tx)
        .await
        .map_err(&err)?
        .rows_affected();
        tracing::info!(
            table = mark.table,
            removed,
            restored,
            replaced,
            "undo: the run's rows removed, their previous versions restored"
        );
        Ok(UndoTable {
            table: mark.table.clone(),
            removed,
            restored,
        })
    }

    /// Undoes a full refresh: the table it swapped in goes, the one it replaced comes back.
    async fn swap_back(
        &self,
        tx: &mut sqlx::PgConnection,
        mark: &UndoMark,
    ) -> Result<UndoTable, SinkError> {
        let err = write_err(&mark.table);
        let table = self.qualified(&mark.table);
        let previous = self.qualified(&super::refresh::previous_of(&mark.table));
        let kept: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&previous)
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        if !kept {
            return Err(SinkError::Write {
                table: mark.table.clone(),
                message: "the table as it was before this full refresh is gone (a later refresh replaced it);                           it cannot be swapped back"
                    .into(),
            });
        }
        let removed = sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {table}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        let restored = sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM {previous}"))
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query(&format!("DROP TABLE {table}"))
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        sqlx::query(&format!(
            "ALTER TABLE {previous} RENAME TO {}",
            quote_ident(&mark.table)
        ))
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tracing::info!(
            table = mark.table,
            "undo: the table before the full refresh swapped back"
        );
        Ok(UndoTable {
            table: mark.table.clone(),
            removed: removed.max(0) as u64,
            restored: restored.max(0) as u64,
        })
    }

    async fn restore_checkpoint(
        &self,
        tx: &mut sqlx::PgConnection,
        pipeline: &str,
        mark: &UndoMark,
    ) -> Result<(), sqlx::Error> {
        let cp = self.qualified(CHECKPOINT_TABLE);
        match &mark.checkpoint_before {
            None => {
                sqlx::query(&format!(
                    "DELETE FROM {cp} WHERE pipeline = $1 AND entity = $2"
                ))
                .bind(pipeline)
                .bind(&mark.entity)
                .execute(&mut *tx)
                .await?;
            }
            Some(before) => {
                sqlx::query(&format!(
                    "INSERT INTO {cp} (pipeline, entity, checkpoint) VALUES ($1, $2, $3::jsonb)
                     ON CONFLICT (pipeline, entity) DO UPDATE SET checkpoint = EXCLUDED.checkpoint,
                     updated_at = now()"
                ))
                .bind(pipeline)
                .bind(&mark.entity)
                .bind(before)
                .execute(&mut *tx)
                .await?;
            }
        }
        Ok(())
    }
}

/// A run's first write of an entity, as its mark records it.
struct UndoMark {
    entity: String,
    table: String,
    checkpoint_before: Option<String>,
    undone: bool,
    seq: i64,
    /// The run swapped a full refresh in: the previous table is swapped back.
    swapped: bool,
}
