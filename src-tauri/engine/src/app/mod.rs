//! The use cases, once for every face of the product: the console's commands, the `syncflow` CLI and the daemon
//! are thin wrappers of these functions, so they cannot disagree. Each takes the [`Context`] (the state database,
//! the jobs, the clock, where relative paths resolve) and returns a typed result or an [`AppError`].

pub mod alerts;
pub mod connections;
mod error;
pub mod mapping;
pub mod pipelines;
pub mod records;
pub mod runs;
pub mod undo;

pub use error::{AppError, ErrorKind};

use crate::config::Pipeline;
use crate::discover::Discovered;
use crate::jobs::scheduler::Scheduler;
use crate::jobs::{Clock, Jobs, SystemClock};
use crate::store::Store;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// What every use case works against.
pub struct Context {
    store: Store,
    /// Where a relative path of a stored pipeline resolves: the state database's folder (the console's app-data
    /// folder by default). Pipelines are stored with absolute paths; this is for those stored before.
    base_dir: PathBuf,
    jobs: Jobs,
    clock: Arc<dyn Clock>,
    /// The last discovery per pipeline, so the mapping editor's previews need no new requests to the source.
    discovered: tokio::sync::Mutex<HashMap<String, Arc<Vec<Discovered>>>>,
}

impl Context {
    /// Opens (creating and migrating) the state database at `state`; `max_jobs` runs go at once.
    pub async fn open(state: &Path, max_jobs: usize) -> Result<Context, AppError> {
        let store = Store::open(state).await?;
        let base_dir = state
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        Ok(Context::new(
            store,
            base_dir,
            max_jobs,
            Arc::new(SystemClock),
        ))
    }

    pub fn new(store: Store, base_dir: PathBuf, max_jobs: usize, clock: Arc<dyn Clock>) -> Context {
        Context {
            jobs: Jobs::new(store.clone(), max_jobs),
            store,
            base_dir: absolute(&base_dir),
            clock,
            discovered: tokio::sync::Mutex::new(HashMap::new()),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn jobs(&self) -> &Jobs {
        &self.jobs
    }

    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// The scheduler over this context's jobs (the console's and the daemon's).
    pub fn scheduler(&self) -> Scheduler {
        Scheduler::new(self.jobs.clone(), self.clock.clone(), self.base_dir.clone())
    }

    /// Marks the runs a crash or a closed window left `running` as interrupted (they resume when next run);
    /// returns their ids. The console and the daemon call it as they start.
    pub async fn note_interrupted_runs(&self) -> Result<Vec<String>, AppError> {
        Ok(self.store.mark_interrupted_runs().await?)
    }

    /// A stored pipeline, or what to do when there is none by that name.
    pub async fn pipeline(&self, name: &str) -> Result<Pipeline, AppError> {
        if !self.store.has_pipeline(name).await? {
            return Err(AppError::not_found(format!(
                "no pipeline named \"{name}\" in the state database; import it (or `syncflow run` its file) first, \
                 or point --state at the database that has it"
            )));
        }
        Ok(self.store.pipeline(name).await?)
    }
}

/// `path` made absolute against the current directory (as it is now, so a later change of directory does not move
/// it).
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_path_buf();
    }
    std::env::current_dir()
        .map(|cwd| cwd.join(path))
        .unwrap_or_else(|_| path.to_path_buf())
}
