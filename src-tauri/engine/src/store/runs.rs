//! Runs: their life (started, finished, interrupted), counts, checkpoints, per-batch metrics and history.

use super::*;

/// A run as stored.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RunRecord {
    pub id: String,
    pub status: RunStatus,
    pub started_at: String,
    pub finished_at: Option<String>,
    #[ts(type = "number")]
    pub duration_ms: u64,
    pub error: Option<String>,
    /// Rows the run's passes would have deleted but the delete guard held back (0: none held).
    #[ts(type = "number")]
    pub held_deletes: u64,
    /// When the run's changes to the target were undone (None: they stand).
    pub undone_at: Option<String>,
}

/// What an undone run had filed for a person, withdrawn with it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Withdrawn {
    #[ts(type = "number")]
    pub failed_records: u64,
    #[ts(type = "number")]
    pub waiting_children: u64,
    #[ts(type = "number")]
    pub conflicts: u64,
}

/// One row of the seeds' sync_batches.
#[derive(Debug, Clone, Default)]
pub struct BatchMetrics {
    pub page_no: u64,
    pub records: u64,
    pub inserted: u64,
    pub updated: u64,
    pub skipped: u64,
    pub failed: u64,
    pub fetch_ms: u64,
    pub transform_ms: u64,
    pub ingest_ms: u64,
}

/// A run with its totals over entities and what started it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RunHistoryRow {
    pub run: RunRecord,
    pub pipeline: String,
    /// "manual", "cli" or "schedule"
    pub started_by: String,
    pub counts: EntityCounts,
    pub stages: StageTimes,
    /// The result in words ("completed with 3 failed"; see [`crate::track::outcome`]).
    pub outcome: String,
}

/// Where a run's time went: each stage's time summed over its batches (`sync_batches`). The stages overlap (fetch,
/// transform and ingest work on different pages at once), so the sums may exceed the run's duration; the largest
/// is the one that paced the run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct StageTimes {
    #[ts(type = "number")]
    pub batches: u64,
    #[ts(type = "number")]
    pub fetch_ms: u64,
    #[ts(type = "number")]
    pub transform_ms: u64,
    #[ts(type = "number")]
    pub ingest_ms: u64,
}

fn run_record(r: &sqlx::sqlite::SqliteRow) -> Result<RunRecord, StoreError> {
    let status: String = r.try_get(1)?;
    let duration: i64 = r.try_get(4)?;
    Ok(RunRecord {
        id: r.try_get(0)?,
        status: RunStatus::parse(&status),
        started_at: r.try_get(2)?,
        finished_at: r.try_get(3)?,
        duration_ms: u64::try_from(duration).unwrap_or(0),
        error: r.try_get(5)?,
        held_deletes: u64::try_from(r.try_get::<i64, _>("held_deletes")?).unwrap_or(0),
        undone_at: r.try_get("undone_at")?,
    })
}

impl Store {
    pub async fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, status, started_at, finished_at, duration_ms, error, held_deletes, undone_at FROM runs
             WHERE pipeline = ? AND dry_run = 0 ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| run_record(&r)).transpose()
    }

    /// The run of this pipeline that did not finish (paused, failed or interrupted), if any.
    pub async fn unfinished_run(&self, pipeline: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query(
            "SELECT id FROM runs WHERE pipeline = ? AND dry_run = 0 AND undone_at IS NULL
             AND status IN ('running', 'paused', 'failed', 'interrupted')
             ORDER BY started_at DESC, id DESC LIMIT 1",
        )
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|r| r.try_get(0)).transpose()?)
    }

    pub async fn start_run(
        &self,
        run_id: &str,
        pipeline: &str,
        dry_run: bool,
        started_by: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (id, pipeline, status, dry_run, pid, started_by) VALUES (?, ?, 'running', ?, ?, ?)
             ON CONFLICT(id) DO UPDATE SET status = 'running', error = NULL, finished_at = NULL, pid = excluded.pid,
             started_by = excluded.started_by",
        )
        .bind(run_id)
        .bind(pipeline)
        .bind(dry_run)
        .bind(i64::from(std::process::id()))
        .bind(started_by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn finish_run(
        &self,
        run_id: &str,
        status: RunStatus,
        duration_ms: u64,
        error: Option<&str>,
        held_deletes: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET status = ?, duration_ms = duration_ms + ?, error = ?, held_deletes = ?,
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(n(duration_ms))
        .bind(error)
        .bind(n(held_deletes))
        .bind(run_id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn save_entity_counts(
        &self,
        run_id: &str,
        entity: &str,
        status: &str,
        pages: u64,
        c: &EntityCounts,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO run_entities (run_id, entity, status, pages, fetched, inserted, updated, deleted, skipped,
             failed, pending, conflicts) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
             ON CONFLICT(run_id, entity) DO UPDATE SET status = excluded.status, pages = max(pages, excluded.pages),
             fetched = excluded.fetched, inserted = excluded.inserted, updated = excluded.updated,
             deleted = excluded.deleted, skipped = excluded.skipped, failed = excluded.failed,
             pending = excluded.pending, conflicts = excluded.conflicts",
        )
        .bind(run_id)
        .bind(entity)
        .bind(status)
        .bind(n(pages))
        .bind(n(c.fetched))
        .bind(n(c.inserted))
        .bind(n(c.updated))
        .bind(n(c.deleted))
        .bind(n(c.skipped))
        .bind(n(c.failed))
        .bind(n(c.pending))
        .bind(n(c.conflicts))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn save_checkpoint(
        &self,
        pipeline: &str,
        entity: &str,
        run_id: &str,
        cursor: Option<&str>,
        page_no: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO checkpoints (pipeline, entity, run_id, cursor, page_no) VALUES (?, ?, ?, ?, ?)
             ON CONFLICT(pipeline, entity) DO UPDATE SET run_id = excluded.run_id, cursor = excluded.cursor,
             page_no = excluded.page_no, updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
        )
        .bind(pipeline)
        .bind(entity)
        .bind(run_id)
        .bind(cursor)
        .bind(n(page_no))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn record_batch(
        &self,
        run_id: &str,
        entity: &str,
        m: &BatchMetrics,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT OR REPLACE INTO sync_batches (run_id, entity, page_no, records, inserted, updated, skipped,
             failed, fetch_ms, transform_ms, ingest_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id)
        .bind(entity)
        .bind(n(m.page_no))
        .bind(n(m.records))
        .bind(n(m.inserted))
        .bind(n(m.updated))
        .bind(n(m.skipped))
        .bind(n(m.failed))
        .bind(n(m.fetch_ms))
        .bind(n(m.transform_ms))
        .bind(n(m.ingest_ms))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Runs left 'running' by a process that is gone (the app or the CLI closed or crashed) become 'interrupted';
    /// they resume on request. Returns their ids.
    pub async fn mark_interrupted_runs(&self) -> Result<Vec<String>, StoreError> {
        let rows = sqlx::query("SELECT id, pid FROM runs WHERE status = 'running'")
            .fetch_all(&self.pool)
            .await?;
        let mut marked = Vec::new();
        for row in rows {
            let id: String = row.try_get(0)?;
            let pid: Option<i64> = row.try_get(1)?;
            if pid.is_some_and(crate::process::alive) {
                continue;
            }
            sqlx::query(
                "UPDATE runs SET status = 'interrupted', error = 'interrupted: the process running it ended \
                 (closed or crashed); run it again to resume from its last checkpoint' WHERE id = ? AND status = 'running'",
            )
            .bind(&id)
            .execute(&self.pool)
            .await?;
            marked.push(id);
        }
        Ok(marked)
    }

    /// The runs of a pipeline (or of all), newest first, with their counts: the runs screen's history.
    /// A run by id, with its pipeline (None: no such run, or a dry run).
    pub async fn run_by_id(&self, run_id: &str) -> Result<Option<(String, RunRecord)>, StoreError> {
        let row = sqlx::query(
            "SELECT id, status, started_at, finished_at, duration_ms, error, held_deletes, undone_at, pipeline
             FROM runs WHERE id = ? AND dry_run = 0",
        )
        .bind(run_id)
        .fetch_optional(&self.pool)
        .await?;
        row.map(|r| Ok((r.try_get("pipeline")?, run_record(&r)?)))
            .transpose()
    }

    /// Records that the run was undone, and withdraws what it filed for a person: its failed records, the children
    /// it left waiting and its open conflicts (all of them in one transaction).
    pub async fn mark_undone(&self, run_id: &str) -> Result<Withdrawn, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "UPDATE runs SET undone_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ? AND undone_at IS NULL",
        )
        .bind(run_id)
        .execute(&mut *tx)
        .await?;
        let withdrawn = Withdrawn {
            failed_records: sqlx::query("DELETE FROM failed_records WHERE run_id = ?")
                .bind(run_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
            waiting_children: sqlx::query(
                "DELETE FROM pending_children WHERE run_id = ? AND status IN ('pending', 'dead')",
            )
            .bind(run_id)
            .execute(&mut *tx)
            .await?
            .rows_affected(),
            conflicts: sqlx::query("DELETE FROM conflicts WHERE run_id = ? AND status = 'open'")
                .bind(run_id)
                .execute(&mut *tx)
                .await?
                .rows_affected(),
        };
        tx.commit().await?;
        Ok(withdrawn)
    }

    /// What [`Store::mark_undone`] would withdraw.
    pub async fn filed_by_run(&self, run_id: &str) -> Result<Withdrawn, StoreError> {
        let count = |sql: &'static str| async move {
            let n: i64 = sqlx::query_scalar(sql)
                .bind(run_id)
                .fetch_one(&self.pool)
                .await?;
            Ok::<u64, StoreError>(u64::try_from(n).unwrap_or(0))
        };
        Ok(Withdrawn {
            failed_records: count("SELECT count(*) FROM failed_records WHERE run_id = ?").await?,
            waiting_children: count(
                "SELECT count(*) FROM pending_children WHERE run_id = ? AND status IN ('pending', 'dead')",
            )
            .await?,
            conflicts: count("SELECT count(*) FROM conflicts WHERE run_id = ? AND status = 'open'")
                .await?,
        })
    }

    pub async fn run_history(
        &self,
        pipeline: Option<&str>,
        limit: u32,
    ) -> Result<Vec<RunHistoryRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT r.id, r.status, r.started_at, r.finished_at, r.duration_ms, r.error, r.pipeline, r.started_by,
             coalesce(sum(e.fetched), 0), coalesce(sum(e.inserted), 0), coalesce(sum(e.updated), 0),
             coalesce(sum(e.deleted), 0), coalesce(sum(e.skipped), 0), coalesce(sum(e.failed), 0),
             coalesce(sum(e.conflicts), 0), coalesce(sum(e.pending), 0),
             (SELECT count(*) FROM sync_batches b WHERE b.run_id = r.id),
             (SELECT coalesce(sum(b.fetch_ms), 0) FROM sync_batches b WHERE b.run_id = r.id),
             (SELECT coalesce(sum(b.transform_ms), 0) FROM sync_batches b WHERE b.run_id = r.id),
             (SELECT coalesce(sum(b.ingest_ms), 0) FROM sync_batches b WHERE b.run_id = r.id),
             r.held_deletes AS held_deletes, r.undone_at AS undone_at
             FROM runs r LEFT JOIN run_entities e ON e.run_id = r.id
             WHERE r.dry_run = 0 AND (? IS NULL OR r.pipeline = ?)
             GROUP BY r.id ORDER BY r.started_at DESC, r.id DESC LIMIT ?",
        )
        .bind(pipeline)
        .bind(pipeline)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let count = |i: usize| -> Result<u64, StoreError> {
                    let v: i64 = r.try_get(i)?;
                    Ok(u64::try_from(v).unwrap_or(0))
                };
                let run = run_record(r)?;
                let failed = count(13)?;
                Ok(RunHistoryRow {
                    outcome: crate::track::outcome(run.status, failed),
                    run,
                    pipeline: r.try_get(6)?,
                    started_by: r.try_get(7)?,
                    counts: EntityCounts {
                        fetched: count(8)?,
                        inserted: count(9)?,
                        updated: count(10)?,
                        deleted: count(11)?,
                        skipped: count(12)?,
                        failed,
                        conflicts: count(14)?,
                        pending: count(15)?,
                    },
                    stages: StageTimes {
                        batches: count(16)?,
                        fetch_ms: count(17)?,
                        transform_ms: count(18)?,
                        ingest_ms: count(19)?,
                    },
                })
            })
            .collect()
    }

    /// Each run's counters per entity, for the runs of `pipeline`.
    pub async fn entity_counts(
        &self,
        pipeline: &str,
    ) -> Result<
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, EntityCounts>>,
        StoreError,
    > {
        let rows = sqlx::query(
            "SELECT e.run_id, e.entity, e.fetched, e.inserted, e.updated, e.deleted, e.skipped, e.failed,
             e.pending, e.conflicts
             FROM run_entities e JOIN runs r ON r.id = e.run_id WHERE r.pipeline = ?",
        )
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        let mut runs: std::collections::BTreeMap<
            String,
            std::collections::BTreeMap<String, EntityCounts>,
        > = std::collections::BTreeMap::new();
        for r in &rows {
            let count = |i: usize| -> Result<u64, StoreError> {
                let v: i64 = r.try_get(i)?;
                Ok(u64::try_from(v).unwrap_or(0))
            };
            let counts = EntityCounts {
                fetched: count(2)?,
                inserted: count(3)?,
                updated: count(4)?,
                deleted: count(5)?,
                skipped: count(6)?,
                failed: count(7)?,
                pending: count(8)?,
                conflicts: count(9)?,
            };
            runs.entry(r.try_get(0)?)
                .or_default()
                .insert(r.try_get(1)?, counts);
        }
        Ok(runs)
    }
}
