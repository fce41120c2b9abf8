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
            "SELECT id, status, started_at, finished_at, duration_ms, error FROM runs
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
            "SELECT id FROM runs WHERE pipeline = ? AND dry_run = 0 AND status IN ('running', 'paused', 'failed')
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
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO runs (id, pipeline, status, dry_run) VALUES (?, ?, 'running', ?)
             ON CONFLICT(id) DO UPDATE SET status = 'running', error = NULL, finished_at = NULL",
        )
        .bind(run_id)
        .bind(pipeline)
        .bind(dry_run)
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
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE runs SET status = ?, duration_ms = duration_ms + ?, error = ?,
             finished_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
        )
        .bind(status.as_str())
        .bind(n(duration_ms))
        .bind(error)
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

    /// Gives the pool to tests and tools that inspect the state directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
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
    })
}
