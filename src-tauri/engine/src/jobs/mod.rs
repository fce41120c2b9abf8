//! Jobs: every run goes through here — one job per pipeline at a time, a bounded number across pipelines (the
//! rest wait as pending), pause and cancel by pipeline — and the scheduler that starts jobs by itself.

pub use crate::schedule;
pub mod alerts;
pub mod scheduler;

use crate::config::Pipeline;
use crate::run::{run_pipeline, Progress, RunError, RunEvent, RunOptions, RunOutcome, StopSignal};
use crate::store::Store;
use crate::track::RunStatus;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;
use ts_rs::TS;

/// Where "now" comes from: the system clock, or a hand-set one in tests of windows and retries.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until told otherwise.
#[derive(Clone)]
pub struct ManualClock(Arc<Mutex<DateTime<Utc>>>);

impl ManualClock {
    pub fn at(now: DateTime<Utc>) -> ManualClock {
        ManualClock(Arc::new(Mutex::new(now)))
    }

    pub fn set(&self, now: DateTime<Utc>) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = now;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("{0} is running already; pause or cancel it first")]
    Busy(String),
    #[error("{0} is not running")]
    NotRunning(String),
    #[error(transparent)]
    Run(#[from] RunError),
}

/// A job the console shows: waiting for a slot or running.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct JobInfo {
    pub pipeline: String,
    /// pending or running
    pub status: RunStatus,
    /// "manual", "cli" or "schedule"
    pub started_by: String,
}

#[derive(Clone)]
struct Active {
    stop: StopSignal,
    status: RunStatus,
    started_by: &'static str,
}

/// The job table of one process (the app or `syncflow daemon`).
#[derive(Clone)]
pub struct Jobs {
    store: Store,
    slots: Arc<Semaphore>,
    active: Arc<Mutex<HashMap<String, Active>>>,
}

impl Jobs {
    /// `max_parallel` jobs run at once across pipelines (at least one).
    pub fn new(store: Store, max_parallel: usize) -> Jobs {
        Jobs {
            store,
            slots: Arc::new(Semaphore::new(max_parallel.max(1))),
            active: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    fn table(&self) -> std::sync::MutexGuard<'_, HashMap<String, Active>> {
        self.active.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs a pipeline as a job: waits (pending) for a free slot, then runs it to its end, pause or cancel.
    pub async fn run(
        &self,
        pipeline: &Pipeline,
        options: &RunOptions,
        progress: Progress<'_>,
    ) -> Result<RunOutcome, JobError> {
        let stop = self.register(&pipeline.name, options.started_by)?;
        self.run_claimed(pipeline, options, progress, &stop).await
    }

    /// Runs a job [`Jobs::register`]ed before; it leaves the table when it ends.
    pub async fn run_claimed(
        &self,
        pipeline: &Pipeline,
        options: &RunOptions,
        progress: Progress<'_>,
        stop: &StopSignal,
    ) -> Result<RunOutcome, JobError> {
        let result = self.run_registered(pipeline, options, progress, stop).await;
        self.table().remove(&pipeline.name);
        result
    }

    /// Claims the pipeline's job slot in the table (pending until it runs); the stop signal pauses or cancels it.
    pub fn register(&self, name: &str, started_by: &'static str) -> Result<StopSignal, JobError> {
        let mut table = self.table();
        if table.contains_key(name) {
            return Err(JobError::Busy(name.to_owned()));
        }
        let stop = StopSignal::default();
        table.insert(
            name.to_owned(),
            Active {
                stop: stop.clone(),
                status: RunStatus::Pending,
                started_by,
            },
        );
        Ok(stop)
    }

    async fn run_registered(
        &self,
        pipeline: &Pipeline,
        options: &RunOptions,
        progress: Progress<'_>,
        stop: &StopSignal,
    ) -> Result<RunOutcome, JobError> {
        let permit = match self.slots.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                progress(RunEvent::Pending {
                    pipeline: pipeline.name.clone(),
                });
                tracing::info!(pipeline = pipeline.name, "waiting for a free job slot");
                loop {
                    if stop.requested() {
                        return Err(JobError::NotRunning(pipeline.name.clone()));
                    }
                    if let Ok(permit) = self.slots.clone().try_acquire_owned() {
                        break permit;
                    }
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
            }
        };
        if let Some(job) = self.table().get_mut(&pipeline.name) {
            job.status = RunStatus::Running;
        }
        let outcome = run_pipeline(pipeline, &self.store, options, progress, stop).await;
        drop(permit);
        Ok(outcome?)
    }

    /// Asks a running (or pending) job to pause after the pages in hand.
    pub fn pause(&self, name: &str) -> Result<(), JobError> {
        self.signal(name, StopSignal::request)
    }

    /// Asks a running (or pending) job to stop and end as cancelled.
    pub fn cancel(&self, name: &str) -> Result<(), JobError> {
        self.signal(name, StopSignal::cancel)
    }

    fn signal(&self, name: &str, send: fn(&StopSignal)) -> Result<(), JobError> {
        let table = self.table();
        let job = table
            .get(name)
            .ok_or_else(|| JobError::NotRunning(name.to_owned()))?;
        send(&job.stop);
        Ok(())
    }

    pub fn is_active(&self, name: &str) -> bool {
        self.table().contains_key(name)
    }

    pub fn started_by(&self, name: &str) -> Option<&'static str> {
        self.table().get(name).map(|j| j.started_by)
    }

    /// The jobs waiting or running now.
    pub fn list(&self) -> Vec<JobInfo> {
        let mut jobs: Vec<JobInfo> = self
            .table()
            .iter()
            .map(|(name, job)| JobInfo {
                pipeline: name.clone(),
                status: job.status,
                started_by: job.started_by.to_owned(),
            })
            .collect();
        jobs.sort_by(|a, b| a.pipeline.cmp(&b.pipeline));
        jobs
    }
}

/// The runs screen's data: history (newest first) and the jobs waiting or running now.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct RunsView {
    pub history: Vec<crate::store::RunHistoryRow>,
    pub jobs: Vec<JobInfo>,
}

pub async fn runs_view(
    jobs: &Jobs,
    pipeline: Option<&str>,
) -> Result<RunsView, crate::store::StoreError> {
    Ok(RunsView {
        history: jobs.store.run_history(pipeline, 200).await?,
        jobs: jobs.list(),
    })
}

/// A pipeline's schedule, the scheduler's memory of it (last fire, missed fires) and its next runs.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct ScheduleView {
    pub schedule: Option<crate::config::Schedule>,
    pub state: crate::store::ScheduleState,
    pub preview: Option<schedule::SchedulePreview>,
}

pub async fn schedule_view(
    store: &Store,
    name: &str,
) -> Result<ScheduleView, crate::store::StoreError> {
    let pipeline = store.pipeline(name).await?;
    let preview = pipeline
        .schedule
        .as_ref()
        .and_then(|s| schedule::preview_from_now(s).ok());
    Ok(ScheduleView {
        state: store.schedule_state(name).await?,
        schedule: pipeline.schedule,
        preview,
    })
}

/// What needs a person in one pipeline (or all): the tabs' badges, and what they count in words.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct Attention {
    /// The pipeline counted, or None for all of them.
    pub pipeline: Option<String>,
    /// Records in Failed records (still retried by themselves, or dead) and children that waited their last check.
    #[ts(type = "number")]
    pub failed: u64,
    /// Of those, how many are past their last automatic try: only a person brings them in.
    #[ts(type = "number")]
    pub dead: u64,
    /// Open conflicts.
    #[ts(type = "number")]
    pub conflicts: u64,
}

pub async fn attention(
    store: &Store,
    pipeline: Option<&str>,
) -> Result<Attention, crate::store::StoreError> {
    let (failed, dead, conflicts) = store.needing_attention(pipeline).await?;
    Ok(Attention {
        pipeline: pipeline.map(str::to_owned),
        failed,
        dead,
        conflicts,
    })
}
