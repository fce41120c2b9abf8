//! The console's state database (SQLite via sqlx; migrations/ at the repository root, applied on open): one
//! file per kind of record it keeps.

use crate::config::Pipeline;
use crate::track::{EntityCounts, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use ts_rs::TS;

mod children;
mod conflicts;
mod failed;
mod pipelines;
mod runs;
mod schedules;

pub use children::{HeldChild, PendingChild};
pub use conflicts::{ConflictScope, DetectedConflict, StoredConflict};
pub use failed::{FailedRecord, FailedRow};
pub use pipelines::PipelineSummary;
pub use runs::{BatchMetrics, RunHistoryRow, RunRecord, StageTimes};
pub use schedules::ScheduleState;

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

    /// Gives the pool to tests and tools that inspect the state directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}
