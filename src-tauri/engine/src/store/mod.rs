//! The console's state database (SQLite via sqlx; migrations/ at the repository root, applied on open): one
//! file per kind of record it keeps.

use crate::config::Pipeline;
use crate::track::{EntityCounts, RunStatus};
use serde::{Deserialize, Serialize};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Row, SqlitePool};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use ts_rs::TS;

mod children;
mod conflicts;
mod evidence;
mod failed;
mod memo;
mod pipelines;
mod runs;
mod schedules;

pub use children::{HeldChild, PendingChild};
pub use conflicts::{ConflictScope, DetectedConflict, StoredConflict};
pub use failed::{
    error_group, error_template, failed_groups, FailedGroup, FailedRecord, FailedRow,
};
pub use memo::{MemoPage, SealedPass};
pub use pipelines::PipelineSummary;
pub use runs::{BatchMetrics, RunHistoryRow, RunRecord, StageTimes, Withdrawn};
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

/// SHA-384 of migrations/0001_init.sql before a comment in it stopped naming a document outside the repository.
const MIGRATION_1_BEFORE_COMMENT_EDIT: &str =
    "2e4e2d3e0ab8a60ec2d68eb9f91e3653f8318252134bb467284c29cc8c9d939f83a9c03447bad8981ce9a7440ea1a311";

/// A state database migrated with migration 1 as it was before that comment edit records the old checksum, which
/// sqlx would refuse as a modified migration; the schema is the same, so the record is moved to the new checksum.
async fn accept_comment_edit_of_migration_1(pool: &SqlitePool) -> Result<(), StoreError> {
    let Some(current) = MIGRATOR.iter().find(|m| m.version == 1) else {
        return Ok(());
    };
    let tracked: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations')",
    )
    .fetch_one(pool)
    .await?;
    if !tracked {
        return Ok(());
    }
    let before: Vec<u8> = (0..MIGRATION_1_BEFORE_COMMENT_EDIT.len() / 2)
        .filter_map(|i| {
            u8::from_str_radix(&MIGRATION_1_BEFORE_COMMENT_EDIT[2 * i..2 * i + 2], 16).ok()
        })
        .collect();
    sqlx::query("UPDATE _sqlx_migrations SET checksum = ? WHERE version = 1 AND checksum = ?")
        .bind(current.checksum.as_ref())
        .bind(before)
        .execute(pool)
        .await?;
    Ok(())
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
        let lock = setup_lock(path)
            .await
            .map_err(|e| open_err(sqlx::Error::Io(e)))?;
        let pool = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(options)
            .await
            .map_err(open_err)?;
        accept_comment_edit_of_migration_1(&pool).await?;
        MIGRATOR.run(&pool).await?;
        drop(lock);
        Ok(Store { pool })
    }

    /// Dead records (failed, or children whose parent never came) and open conflicts over all pipelines (the
    /// console's badges, polled every few seconds).
    /// What waits for a person, for one pipeline or (None) all: records in the failed-records queue (failed or dead)
    /// plus children that waited their last check, how many of those are past their last automatic try, and open
    /// conflicts.
    pub async fn needing_attention(
        &self,
        pipeline: Option<&str>,
    ) -> Result<(u64, u64, u64), StoreError> {
        let (failed, dead, open): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM failed_records WHERE status IN ('failed', 'dead') AND (?1 IS NULL OR pipeline = ?1))
                  + (SELECT count(*) FROM pending_children WHERE status = 'dead' AND (?1 IS NULL OR pipeline = ?1)),
                    (SELECT count(*) FROM failed_records WHERE status = 'dead' AND (?1 IS NULL OR pipeline = ?1))
                  + (SELECT count(*) FROM pending_children WHERE status = 'dead' AND (?1 IS NULL OR pipeline = ?1)),
                    (SELECT count(*) FROM conflicts WHERE status = 'open' AND (?1 IS NULL OR pipeline = ?1))",
        )
        .bind(pipeline)
        .fetch_one(&self.pool)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok((count(failed), count(dead), count(open)))
    }

    /// Gives the pool to tests and tools that inspect the state directly.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }
}

/// An exclusive lock on `<state database>.lock`, held while the state database is created, switched to WAL and
/// migrated: two processes opening a new state database at once (a script's run while the console or the daemon
/// opens it) would otherwise both apply the same migration, and the later one fail ("duplicate column name"), or
/// find the new file locked. Released when dropped.
async fn setup_lock(path: &Path) -> std::io::Result<std::fs::File> {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path.with_file_name(name))?;
    tokio::task::spawn_blocking(move || file.lock().map(|()| file))
        .await
        .map_err(std::io::Error::other)?
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two processes opening one new state database at once (a run started by a script while the console or the
    /// daemon opens it) both get it, migrated once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_openers_of_a_new_state_database_both_get_it() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("state.db");
            let (a, b) = tokio::join!(Store::open(&path), Store::open(&path));
            let (a, b) = (a.unwrap(), b.unwrap());
            assert!(a.list_pipelines().await.unwrap().is_empty());
            assert!(b.list_pipelines().await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn a_state_database_migrated_before_the_comment_edit_still_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.db");
        let store = Store::open(&path).await.unwrap();
        // As a state database migrated with the old text of migration 1 records it.
        sqlx::query("UPDATE _sqlx_migrations SET checksum = unhex(?) WHERE version = 1")
            .bind(MIGRATION_1_BEFORE_COMMENT_EDIT)
            .execute(store.pool())
            .await
            .unwrap();
        store.pool().close().await;
        let reopened = Store::open(&path)
            .await
            .expect("opens after the comment edit");
        assert!(reopened.list_pipelines().await.unwrap().is_empty());
    }
}
