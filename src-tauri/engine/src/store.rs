//! The console's state database (SQLite via sqlx; migrations/ at the repository root, applied on open).

use crate::config::Pipeline;
use crate::track::{EntityCounts, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use ts_rs::TS;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state database {path}: {source}")]
    Open { path: String, source: sqlx::Error },
    #[error("state database migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("state database: {0}")]
    Query(#[from] sqlx::Error),
    #[error("pipeline \"{0}\" is not in the state database")]
    NoPipeline(String),
    #[error("stored pipeline is unreadable: {0}")]
    Corrupt(String),
}

/// A pipeline as the pipelines screen lists it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PipelineSummary {
    pub name: String,
    /// "rest", "demo", …
    pub source_kind: String,
    /// "postgres" or "sqlite"
    pub target_kind: String,
    pub last_run: Option<RunRecord>,
}

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

/// A record that did not make it, with where and why.
#[derive(Debug, Clone)]
pub struct FailedRecord {
    pub page_no: u64,
    pub record_index: u64,
    pub stage: &'static str,
    pub error_type: &'static str,
    pub message: String,
    pub raw: String,
    pub processed: Option<String>,
}

/// A child RESOLVE held back, as the queue keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldChild {
    pub key_hash: String,
    pub field: String,
    pub parent_entity: String,
    /// The missing parent's key (JSON).
    pub parent_key: String,
    /// The record as fetched (JSON).
    pub raw: String,
}

/// A child waiting for its parent, as the console and `syncflow failed list` show it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PendingChild {
    #[ts(type = "number")]
    pub id: i64,
    pub pipeline: String,
    pub entity: String,
    pub key_hash: String,
    /// The reference field.
    pub field: String,
    pub parent_entity: String,
    /// The missing parent's key (JSON text).
    pub parent_key: String,
    /// The record as fetched (JSON text).
    pub raw: String,
    pub run_id: String,
    /// pending | dead
    pub status: String,
    #[ts(type = "number")]
    pub tries: i64,
    pub last_try_at: Option<String>,
    pub created_at: String,
}

/// A failed record as the dead-letter browser and `syncflow failed list` show it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FailedRow {
    #[ts(type = "number")]
    pub id: i64,
    pub run_id: String,
    pub entity: String,
    #[ts(type = "number")]
    pub page_no: i64,
    #[ts(type = "number")]
    pub record_index: i64,
    pub stage: String,
    pub error_type: String,
    pub message: String,
    /// The record as fetched (JSON text).
    pub raw: String,
    /// The record as far as it got (JSON text), when it got anywhere.
    pub processed: Option<String>,
    pub status: String,
    #[ts(type = "number")]
    pub retries: i64,
    pub created_at: String,
}

#[derive(Clone)]
pub struct Store {
    pool: SqlitePool,
}

fn n(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

impl Store {
    /// The console's own state database in the OS app-data folder (shared by the GUI and the CLI).
    pub fn default_path() -> PathBuf {
        dirs::data_dir()
            .unwrap_or_else(std::env::temp_dir)
            .join(crate::APP_IDENTIFIER)
            .join("state.db")
    }

    /// Opens (creating if needed) and migrates the state database.
    pub async fn open(path: &Path) -> Result<Store, StoreError> {
        let open_err = |source| StoreError::Open {
            path: path.display().to_string(),
            source,
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| open_err(sqlx::Error::Io(e)))?;
        }
        let options = SqliteConnectOptions::from_str(&format!("sqlite://{}", path.display()))
            .map_err(open_err)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10))
            .foreign_keys(true);
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        MIGRATOR.run(&pool).await?;
        Ok(Store { pool })
    }

    pub async fn save_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let text = pipeline
            .to_toml()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO pipelines (name, definition) VALUES (?, ?)
             ON CONFLICT(name) DO UPDATE SET definition = excluded.definition,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE definition <> excluded.definition",
        )
        .bind(&pipeline.name)
        .bind(text)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pipeline(&self, name: &str) -> Result<Pipeline, StoreError> {
        let row = sqlx::query("SELECT definition FROM pipelines WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NoPipeline(name.to_owned()))?;
        let text: String = row.try_get(0)?;
        Pipeline::from_toml(&text, name).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub async fn has_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM pipelines WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub async fn list_pipelines(&self) -> Result<Vec<PipelineSummary>, StoreError> {
        let rows = sqlx::query("SELECT name FROM pipelines ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0)?;
            let pipeline = self.pipeline(&name).await?;
            out.push(PipelineSummary {
                source_kind: kind_of(&pipeline.source),
                target_kind: kind_of(&pipeline.target),
                last_run: self.last_run(&name).await?,
                name,
            });
        }
        Ok(out)
    }

    pub async fn last_run(&self, pipeline: &str) -> Result<Option<RunRecord>, StoreError> {
        let row = sqlx::query(
            "SELECT id, status, started_at, finished_at, duration_ms, error, held_deletes FROM runs
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
            "SELECT id FROM runs WHERE pipeline = ? AND dry_run = 0 AND status IN ('running', 'paused', 'failed', 'interrupted')
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

    /// Records failed records idempotently (a page processed again after a crash adds nothing twice).
    pub async fn record_failed(
        &self,
        run_id: &str,
        pipeline: &str,
        entity: &str,
        records: &[FailedRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // The same record failing again (in a later run) stays one entry of the queue, with the latest error.
        // Looked up before the write transaction: a transaction that reads first and then writes cannot wait for
        // another writer in SQLite (it fails "database is locked" at once).
        let mut known = Vec::with_capacity(records.len());
        for f in records {
            let id: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM failed_records WHERE pipeline = ? AND entity = ? AND raw = ?
                 AND status IN ('failed', 'dead') ORDER BY id LIMIT 1",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(&f.raw)
            .fetch_optional(&self.pool)
            .await?;
            known.push(id);
        }
        let mut tx = self.pool.begin().await?;
        for (f, known) in records.iter().zip(known) {
            if let Some(id) = known {
                sqlx::query(
                    "UPDATE failed_records SET run_id = ?, page_no = ?, record_index = ?, stage = ?, error_type = ?,
                     message = ?, processed = ? WHERE id = ?",
                )
                .bind(run_id)
                .bind(n(f.page_no))
                .bind(n(f.record_index))
                .bind(f.stage)
                .bind(f.error_type)
                .bind(&f.message)
                .bind(f.processed.as_deref())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                continue;
            }
            sqlx::query(
                "INSERT OR IGNORE INTO failed_records (run_id, pipeline, entity, page_no, record_index, stage,
                 error_type, message, raw, processed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(pipeline)
            .bind(entity)
            .bind(n(f.page_no))
            .bind(n(f.record_index))
            .bind(f.stage)
            .bind(f.error_type)
            .bind(&f.message)
            .bind(&f.raw)
            .bind(f.processed.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn failed_count(&self, pipeline: &str) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) FROM failed_records WHERE pipeline = ? AND status = 'failed'",
        )
        .bind(pipeline)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Failed records of a pipeline, oldest first.
    pub async fn failed_records(&self, pipeline: &str) -> Result<Vec<FailedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, entity, page_no, record_index, stage, error_type, message, raw, processed, status,
             retries, created_at FROM failed_records WHERE pipeline = ? ORDER BY id",
        )
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FailedRow {
                    id: r.try_get(0)?,
                    run_id: r.try_get(1)?,
                    entity: r.try_get(2)?,
                    page_no: r.try_get(3)?,
                    record_index: r.try_get(4)?,
                    stage: r.try_get(5)?,
                    error_type: r.try_get(6)?,
                    message: r.try_get(7)?,
                    raw: r.try_get(8)?,
                    processed: r.try_get(9)?,
                    status: r.try_get(10)?,
                    retries: r.try_get(11)?,
                    created_at: r.try_get(12)?,
                })
            })
            .collect()
    }

    /// A retried record went through: it leaves the queue (kept, marked `retried`, for the record).
    pub async fn mark_retried(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE failed_records SET status = 'retried', retries = retries + 1 WHERE id = ?",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A retried record failed again: its error and (possibly edited) record are kept; after `dead_after` tries
    /// it is dead — no automatic retry any more, a manual one still works.
    pub async fn mark_failed_again(
        &self,
        id: i64,
        stage: &str,
        message: &str,
        raw: &str,
        dead_after: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE failed_records SET stage = ?, message = ?, raw = ?, retries = retries + 1,
             status = CASE WHEN retries + 1 >= ? THEN 'dead' ELSE 'failed' END WHERE id = ?",
        )
        .bind(stage)
        .bind(message)
        .bind(raw)
        .bind(dead_after)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Files manual conflicts: a row already waiting keeps its id and gets the newest values.
    pub async fn record_conflicts(
        &self,
        scope: &ConflictScope<'_>,
        found: &[crate::sink::DetectedConflict],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for c in found {
            let business_key: serde_json::Map<String, serde_json::Value> = scope
                .key_columns
                .iter()
                .map(|k| {
                    let value = c.source.get(k).cloned().unwrap_or_default();
                    (k.clone(), value)
                })
                .collect();
            sqlx::query(
                "INSERT INTO conflicts (pipeline, entity, target_table, key_hash, business_key, source, target, synced,
                 source_hash, source_rowversion, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (pipeline, entity, key_hash) WHERE status = 'open' DO UPDATE SET
                 source = excluded.source, target = excluded.target, synced = coalesce(excluded.synced, synced),
                 source_hash = excluded.source_hash, source_rowversion = excluded.source_rowversion,
                 run_id = excluded.run_id, detected_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(scope.pipeline)
            .bind(scope.entity)
            .bind(scope.table)
            .bind(&c.key_hash)
            .bind(serde_json::Value::Object(business_key).to_string())
            .bind(c.source.to_string())
            .bind(c.target.to_string())
            .bind(c.synced.as_ref().map(|v| v.to_string()))
            .bind(&c.source_hash)
            .bind(c.source_rowversion.as_deref())
            .bind(scope.run_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Conflicts of a pipeline (open ones, or all with their resolutions), oldest first.
    pub async fn conflicts(
        &self,
        pipeline: &str,
        include_resolved: bool,
    ) -> Result<Vec<StoredConflict>, StoreError> {
        let rows = sqlx::query(&format!(
            "{CONFLICT_COLUMNS} WHERE pipeline = ? AND (status = 'open' OR ?) ORDER BY id"
        ))
        .bind(pipeline)
        .bind(include_resolved)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_conflict).collect()
    }

    pub async fn conflict(&self, id: i64) -> Result<Option<StoredConflict>, StoreError> {
        let row = sqlx::query(&format!("{CONFLICT_COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_conflict).transpose()
    }

    /// The audit trail of a resolution: who, when, what was chosen, the row before and after.
    pub async fn resolve_conflict(
        &self,
        id: i64,
        by: &str,
        resolution: &str,
        chosen: &serde_json::Value,
        old_values: &serde_json::Value,
        new_values: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE conflicts SET status = 'resolved', resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
             resolved_by = ?, resolution = ?, chosen = ?, old_values = ?, new_values = ? WHERE id = ?",
        )
        .bind(by)
        .bind(resolution)
        .bind(chosen.to_string())
        .bind(old_values.to_string())
        .bind(new_values.to_string())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Dead records (failed, or children whose parent never came) and open conflicts over all pipelines (the
    /// console's badges, polled every few seconds).
    pub async fn needing_attention(&self) -> Result<(u64, u64), StoreError> {
        let (dead, open): (i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM failed_records WHERE status = 'dead')
                  + (SELECT count(*) FROM pending_children WHERE status = 'dead'),
                    (SELECT count(*) FROM conflicts WHERE status = 'open')",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok((
            u64::try_from(dead).unwrap_or(0),
            u64::try_from(open).unwrap_or(0),
        ))
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
            if pid.is_some_and(process_alive) {
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
             r.held_deletes AS held_deletes
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
                Ok(RunHistoryRow {
                    run: run_record(r)?,
                    pipeline: r.try_get(6)?,
                    started_by: r.try_get(7)?,
                    counts: EntityCounts {
                        fetched: count(8)?,
                        inserted: count(9)?,
                        updated: count(10)?,
                        deleted: count(11)?,
                        skipped: count(12)?,
                        failed: count(13)?,
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

    pub async fn schedule_state(&self, pipeline: &str) -> Result<ScheduleState, StoreError> {
        let row = sqlx::query(
            "SELECT last_fire_at, missed, missed_since, window_id, window_rows, paused_run, quota_window FROM schedule_state
             WHERE pipeline = ?",
        )
        .bind(pipeline)
        .fetch_optional(&self.pool)
        .await?;
        let Some(r) = row else {
            return Ok(ScheduleState::default());
        };
        let missed: i64 = r.try_get(1)?;
        let rows: i64 = r.try_get(4)?;
        Ok(ScheduleState {
            last_fire_at: r.try_get(0)?,
            missed: u64::try_from(missed).unwrap_or(0),
            missed_since: r.try_get(2)?,
            window_id: r.try_get(3)?,
            window_rows: u64::try_from(rows).unwrap_or(0),
            paused_run: r.try_get(5)?,
            quota_window: r.try_get(6)?,
        })
    }

    pub async fn save_schedule_state(
        &self,
        pipeline: &str,
        state: &ScheduleState,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO schedule_state (pipeline, last_fire_at, missed, missed_since, window_id, window_rows, paused_run,
             quota_window) VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(pipeline) DO UPDATE SET
             last_fire_at = excluded.last_fire_at, missed = excluded.missed, missed_since = excluded.missed_since,
             window_id = excluded.window_id, window_rows = excluded.window_rows, paused_run = excluded.paused_run,
             quota_window = excluded.quota_window",
        )
        .bind(pipeline)
        .bind(state.last_fire_at.as_deref())
        .bind(n(state.missed))
        .bind(state.missed_since.as_deref())
        .bind(state.window_id.as_deref())
        .bind(n(state.window_rows))
        .bind(state.paused_run.as_deref())
        .bind(state.quota_window.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Failed records whose next automatic try is due at `now` (3 tries, 60/120/240 s apart), by pipeline.
    pub async fn failed_due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        tries: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT pipeline, id, retries, coalesce(last_try_at, created_at) FROM failed_records
             WHERE status = 'failed' AND retries < ? ORDER BY id",
        )
        .bind(tries)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        for r in rows {
            let retries: i64 = r.try_get(2)?;
            let last: String = r.try_get(3)?;
            let Ok(last) = chrono::DateTime::parse_from_rfc3339(&last) else {
                continue;
            };
            let wait = chrono::Duration::seconds(60 << retries.clamp(0, 10));
            if last.with_timezone(&chrono::Utc) + wait <= now {
                due.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(due)
    }

    pub async fn note_tries(
        &self,
        ids: &[i64],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for id in ids {
            sqlx::query("UPDATE failed_records SET last_try_at = ? WHERE id = ?")
                .bind(&at)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Children of an entity still waiting for their parent (pending or dead).
    pub async fn open_children(&self, pipeline: &str, entity: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pending_children WHERE pipeline = ? AND entity = ?
             AND status IN ('pending', 'dead')",
        )
        .bind(pipeline)
        .bind(entity)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One page's RESOLVE outcome, in one transaction: the keys written to the target leave the queue (a newer
    /// version landed), the held children join it or replace their older version. Called before the page commits
    /// in the target, so a crash cannot lose a held child: the page is processed again and says the same.
    pub async fn settle_children(
        &self,
        pipeline: &str,
        entity: &str,
        run_id: &str,
        landed: &[&str],
        held: &[HeldChild],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if !landed.is_empty() {
            let keys = serde_json::to_string(landed).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "UPDATE pending_children SET status = 'landed',
                 landed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE pipeline = ? AND entity = ? AND status IN ('pending', 'dead')
                 AND key_hash IN (SELECT value FROM json_each(?))",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        }
        for child in held {
            sqlx::query(
                "INSERT INTO pending_children (pipeline, entity, key_hash, field, parent_entity, parent_key, raw,
                 run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (pipeline, entity, key_hash) WHERE status IN ('pending', 'dead')
                 DO UPDATE SET field = excluded.field, parent_entity = excluded.parent_entity,
                 parent_key = excluded.parent_key, raw = excluded.raw, run_id = excluded.run_id",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(&child.key_hash)
            .bind(&child.field)
            .bind(&child.parent_entity)
            .bind(&child.parent_key)
            .bind(&child.raw)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The children of a pipeline waiting for their parent (pending and dead), oldest first.
    pub async fn pending_children(&self, pipeline: &str) -> Result<Vec<PendingChild>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, pipeline, entity, key_hash, field, parent_entity, parent_key, raw, run_id, status, tries,
             last_try_at, created_at FROM pending_children
             WHERE pipeline = ? AND status IN ('pending', 'dead') ORDER BY id",
        )
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingChild {
                    id: r.try_get(0)?,
                    pipeline: r.try_get(1)?,
                    entity: r.try_get(2)?,
                    key_hash: r.try_get(3)?,
                    field: r.try_get(4)?,
                    parent_entity: r.try_get(5)?,
                    parent_key: r.try_get(6)?,
                    raw: r.try_get(7)?,
                    run_id: r.try_get(8)?,
                    status: r.try_get(9)?,
                    tries: r.try_get(10)?,
                    last_try_at: r.try_get(11)?,
                    created_at: r.try_get(12)?,
                })
            })
            .collect()
    }

    /// Pending children whose next check is due at `now` (`every` after the last try or since they were held),
    /// with fewer than `tries` tries, by pipeline.
    pub async fn children_due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        every: chrono::Duration,
        tries: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT pipeline, id, coalesce(last_try_at, created_at) FROM pending_children
             WHERE status = 'pending' AND tries < ? ORDER BY id",
        )
        .bind(tries)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        for r in rows {
            let last: String = r.try_get(2)?;
            let Ok(last) = chrono::DateTime::parse_from_rfc3339(&last) else {
                continue;
            };
            if last.with_timezone(&chrono::Utc) + every <= now {
                due.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(due)
    }

    /// Children that left the queue: `landed` in the target, or `failed` (moved to the failed records); kept for
    /// the record.
    pub async fn close_children(&self, ids: &[i64], status: &str) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "UPDATE pending_children SET status = ?,
                 landed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            )
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// A check of the loop found the parent still missing: after `dead_after` tries the child is dead (no more
    /// automatic checks; a manual retry still works).
    pub async fn note_child_tries(
        &self,
        ids: &[i64],
        at: chrono::DateTime<chrono::Utc>,
        dead_after: i64,
    ) -> Result<(), StoreError> {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for id in ids {
            sqlx::query(
                "UPDATE pending_children SET tries = tries + 1, last_try_at = ?,
                 status = CASE WHEN tries + 1 >= ? THEN 'dead' ELSE status END WHERE id = ?",
            )
            .bind(&at)
            .bind(dead_after)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// Dead records per pipeline (the dead-letter badge): failed records and children whose parent never came.
    pub async fn dead_count(&self, pipeline: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM failed_records WHERE pipeline = ?1 AND status = 'dead')
                  + (SELECT count(*) FROM pending_children WHERE pipeline = ?1 AND status = 'dead')",
        )
        .bind(pipeline)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn pipeline_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM pipelines ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }

    /// Gives the pool to tests and tools that inspect the state directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// Whether a process still runs (Linux: /proc; elsewhere every recorded process is taken as alive, so a run is
/// marked interrupted only where that can be told).
pub(crate) fn process_alive(pid: i64) -> bool {
    if cfg!(target_os = "linux") {
        std::path::Path::new("/proc").join(pid.to_string()).exists()
    } else {
        true
    }
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

/// The scheduler's memory of one pipeline.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct ScheduleState {
    /// When the schedule last fired (RFC 3339 UTC).
    pub last_fire_at: Option<String>,
    /// Fires missed while nothing ran (shown, and run once).
    #[ts(type = "number")]
    pub missed: u64,
    pub missed_since: Option<String>,
    /// The window the quota below counts in.
    pub window_id: Option<String>,
    #[ts(type = "number")]
    pub window_rows: u64,
    /// A run the scheduler paused; it resumes it in the next window.
    pub paused_run: Option<String>,
    /// The window whose share of a multi-day pass is done.
    pub quota_window: Option<String>,
}

/// Which page's conflicts are filed, and the key columns that name a row to the analyst.
pub struct ConflictScope<'a> {
    pub pipeline: &'a str,
    pub entity: &'a str,
    pub table: &'a str,
    pub run_id: &'a str,
    pub key_columns: &'a [String],
}

/// A conflict as stored (values as JSON text).
#[derive(Debug, Clone)]
pub struct StoredConflict {
    pub id: i64,
    pub pipeline: String,
    pub entity: String,
    pub table: String,
    pub key_hash: String,
    pub business_key: String,
    pub source: String,
    pub target: String,
    pub synced: Option<String>,
    pub source_hash: String,
    pub source_rowversion: Option<String>,
    pub status: String,
    pub detected_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub chosen: Option<String>,
    pub old_values: Option<String>,
    pub new_values: Option<String>,
}

const CONFLICT_COLUMNS: &str = "SELECT id, pipeline, entity, target_table, key_hash, business_key, source, target,
    synced, source_hash, source_rowversion, status, detected_at, resolved_at, resolved_by, resolution, chosen,
    old_values, new_values FROM conflicts";

fn stored_conflict(r: &sqlx::sqlite::SqliteRow) -> Result<StoredConflict, StoreError> {
    Ok(StoredConflict {
        id: r.try_get(0)?,
        pipeline: r.try_get(1)?,
        entity: r.try_get(2)?,
        table: r.try_get(3)?,
        key_hash: r.try_get(4)?,
        business_key: r.try_get(5)?,
        source: r.try_get(6)?,
        target: r.try_get(7)?,
        synced: r.try_get(8)?,
        source_hash: r.try_get(9)?,
        source_rowversion: r.try_get(10)?,
        status: r.try_get(11)?,
        detected_at: r.try_get(12)?,
        resolved_at: r.try_get(13)?,
        resolved_by: r.try_get(14)?,
        resolution: r.try_get(15)?,
        chosen: r.try_get(16)?,
        old_values: r.try_get(17)?,
        new_values: r.try_get(18)?,
    })
}

fn kind_of<T: Serialize>(tagged: &T) -> String {
    serde_json::to_value(tagged)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default()
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
    })
}
