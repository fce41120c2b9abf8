//! The scheduler: on each tick it starts the pipelines whose cron fired (once, however many fires were missed),
//! pauses scheduled jobs when their window closes or their share of a multi-day pass is done and resumes them in
//! the next window, and retries failed records whose wait is over. Decisions use an injectable [`Clock`].

use super::schedule::Plan;
use super::{Clock, JobError, Jobs};
use crate::config::Pipeline;
use crate::run::{RowBudget, RunError, RunEvent, RunOptions};
use crate::store::{ScheduleState, StoreError};
use crate::track::RunStatus;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use ts_rs::TS;

/// What a tick did (the console turns some into notifications).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum SchedulerAction {
    /// A scheduled job started (`resumed`: it continues a paused pass); `missed` fires were folded into it.
    Started {
        pipeline: String,
        resumed: bool,
        #[ts(type = "number")]
        missed: u64,
    },
    /// A scheduled job was asked to pause.
    Paused { pipeline: String, reason: String },
    /// Failed records were tried again; `dead` of them have used their last try.
    Retried {
        pipeline: String,
        #[ts(type = "number")]
        tried: u64,
        #[ts(type = "number")]
        recovered: u64,
        #[ts(type = "number")]
        dead: u64,
    },
    /// Children waiting for their parent were checked; `landed` went in, `dead` have used their last try.
    ChildrenChecked {
        pipeline: String,
        #[ts(type = "number")]
        tried: u64,
        #[ts(type = "number")]
        landed: u64,
        #[ts(type = "number")]
        dead: u64,
        /// The checks a child gets before it is dead (its parent never came).
        #[ts(type = "number")]
        checks: i64,
    },
    /// A scheduled run ended (reported at the next tick): its status and, when it failed, why.
    Ended {
        pipeline: String,
        run_id: Option<String>,
        status: String,
        error: Option<String>,
        #[ts(type = "number")]
        failed: u64,
    },
}

pub struct Scheduler {
    jobs: Jobs,
    clock: Arc<dyn Clock>,
    base_dir: PathBuf,
    /// Jobs this scheduler paused (window end or quota), so their pause is its own and not the analyst's.
    pausing: Arc<Mutex<HashMap<String, Arc<AtomicBool>>>>,
    running: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// Scheduled runs that ended since the last tick, reported by it.
    ended: Arc<Mutex<Vec<SchedulerAction>>>,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn parse_time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

impl Scheduler {
    /// `base_dir`: where relative SQLite paths of pipelines are taken from.
    pub fn new(jobs: Jobs, clock: Arc<dyn Clock>, base_dir: PathBuf) -> Scheduler {
        Scheduler {
            jobs,
            clock,
            base_dir,
            pausing: Arc::new(Mutex::new(HashMap::new())),
            running: Mutex::new(Vec::new()),
            ended: Arc::new(Mutex::new(Vec::new())),
        }
    }

    /// One round of decisions at the clock's current time.
    pub async fn tick(&self) -> Result<Vec<SchedulerAction>, StoreError> {
        let mut actions: Vec<SchedulerAction> =
            std::mem::take(&mut *self.ended.lock().unwrap_or_else(|p| p.into_inner()));
        for name in self.jobs.store().pipeline_names().await? {
            let pipeline = match self.jobs.store().pipeline(&name).await {
                Ok(p) => p,
                Err(e) => {
                    tracing::warn!(pipeline = name, "not scheduled: {e}");
                    continue;
                }
            };
            // Switched off: its schedule waits with it (nothing is missed and run later on its account).
            if self
                .jobs
                .store()
                .pipeline_disabled(&name)
                .await
                .unwrap_or(false)
            {
                continue;
            }
            if let Some(action) = self.consider(&pipeline).await? {
                actions.push(action);
            }
        }
        actions.extend(self.retry_failed_records().await?);
        actions.extend(self.check_waiting_children().await?);
        Ok(actions)
    }

    /// Ticks every `every` until the process ends, handing each action to `on_action`.
    pub async fn run_forever(
        &self,
        every: std::time::Duration,
        on_action: impl Fn(&SchedulerAction),
    ) {
        loop {
            match self.tick().await {
                Ok(actions) => actions.iter().for_each(&on_action),
                Err(e) => tracing::error!("scheduler: {e}"),
            }
            tokio::time::sleep(every).await;
        }
    }

    /// Waits until the jobs this scheduler started have ended.
    pub async fn wait_idle(&self) {
        let handles: Vec<_> =
            std::mem::take(&mut *self.running.lock().unwrap_or_else(|p| p.into_inner()));
        for handle in handles {
            if let Err(e) = handle.await {
                tracing::warn!("scheduled job ended abnormally: {e}");
            }
        }
    }

    /// Pauses every job this scheduler started (the daemon's shutdown) and waits for them.
    pub async fn pause_all(&self) {
        for job in self.jobs.list() {
            if job.started_by == "schedule" {
                let _ = self.jobs.pause(&job.pipeline);
            }
        }
        self.wait_idle().await;
    }

    async fn consider(&self, pipeline: &Pipeline) -> Result<Option<SchedulerAction>, StoreError> {
        let Some(schedule) = &pipeline.schedule else {
            return Ok(None);
        };
        let plan = match Plan::parse(schedule) {
            Ok(plan) => plan,
            Err(e) => {
                tracing::warn!(pipeline = pipeline.name, "not scheduled: {e}");
                return Ok(None);
            }
        };
        let name = &pipeline.name;
        let now = self.clock.now();
        if self.jobs.is_active(name) {
            let scheduled = self.jobs.started_by(name) == Some("schedule");
            if scheduled && plan.has_window() && !plan.in_window(now) {
                self.mark_pausing(name);
                let _ = self.jobs.pause(name);
                return Ok(Some(SchedulerAction::Paused {
                    pipeline: name.clone(),
                    reason: "the window closed; it continues in the next one".into(),
                }));
            }
            return Ok(None);
        }
        let store = self.jobs.store();
        let mut state = store.schedule_state(name).await?;
        let Some(last) = state.last_fire_at.as_deref().and_then(parse_time) else {
            // First sight of this schedule: it counts from now, nothing before is "missed".
            state.last_fire_at = Some(rfc3339(now));
            store.save_schedule_state(name, &state).await?;
            return Ok(None);
        };
        let fires = plan.fires_between(last, now, 100_000) as u64;
        let resume = state.paused_run.is_some();
        if fires == 0 && !resume {
            return Ok(None);
        }
        // Outside the window a due fire waits for the window to open.
        let Some(window) = plan.window_start(now) else {
            return Ok(None);
        };
        let window_id = rfc3339(window);
        if state.window_id.as_deref() != Some(window_id.as_str()) {
            state.window_id = Some(window_id.clone());
            state.window_rows = 0;
        }
        if state.quota_window.as_deref() == Some(window_id.as_str()) && fires == 0 {
            return Ok(None);
        }
        if fires > 0 {
            state.missed = fires - 1;
            state.missed_since = (fires > 1).then(|| rfc3339(last));
            state.last_fire_at = Some(rfc3339(now));
        }
        store.save_schedule_state(name, &state).await?;
        let Ok(stop) = self.jobs.register(name, "schedule") else {
            return Ok(None);
        };
        let pausing = self.mark_fresh(name);
        let handle = tokio::spawn(scheduled_job(ScheduledJob {
            jobs: self.jobs.clone(),
            pipeline: pipeline.clone(),
            // A scheduled run alters no table: one that needs a schema change stops and waits for the review.
            options: RunOptions {
                apply_schema: false,
                dry_run: false,
                base_dir: self.base_dir.clone(),
                started_by: "schedule",
                budget: None,
                confirm_deletes: false,
                samples: None,
            },
            stop,
            days_to_complete: plan.days_to_complete,
            window_id,
            window_rows: state.window_rows,
            pausing,
            ended: self.ended.clone(),
        }));
        self.running
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(handle);
        tracing::info!(pipeline = name, resume, fires, "scheduled job started");
        Ok(Some(SchedulerAction::Started {
            pipeline: name.clone(),
            resumed: resume,
            missed: fires.saturating_sub(1),
        }))
    }

    fn mark_fresh(&self, name: &str) -> Arc<AtomicBool> {
        let flag = Arc::new(AtomicBool::new(false));
        self.pausing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(name.to_owned(), flag.clone());
        flag
    }

    fn mark_pausing(&self, name: &str) {
        if let Some(flag) = self
            .pausing
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(name)
        {
            flag.store(true, Ordering::SeqCst);
        }
    }

    /// The retry loop: failed records whose wait (60, 120, 240 s after each try) is over go through the stages
    /// again; after the third try a record is dead (the console notifies and shows a badge).
    async fn retry_failed_records(&self) -> Result<Vec<SchedulerAction>, StoreError> {
        let store = self.jobs.store();
        let now = self.clock.now();
        let due = self.idle_pipelines(
            store
                .failed_due(now, crate::run::retry::TRIES_BEFORE_DEAD)
                .await?,
        );
        let mut actions = Vec::new();
        for (name, ids) in due {
            // A pipeline switched off writes nothing, automatic retries included.
            if store.pipeline_disabled(&name).await.unwrap_or(false) {
                continue;
            }
            let pipeline = store.pipeline(&name).await?;
            let dead_before = store.dead_count(&name).await?;
            let outcome = crate::run::retry::retry_failed(
                &pipeline,
                store,
                &self.base_dir,
                Some(&ids),
                &BTreeMap::new(),
            )
            .await;
            store.note_tries(&ids, now).await?;
            let dead = store.dead_count(&name).await?.saturating_sub(dead_before);
            match outcome {
                Ok(outcome) => actions.push(SchedulerAction::Retried {
                    pipeline: name.clone(),
                    tried: ids.len() as u64,
                    recovered: outcome
                        .retried
                        .saturating_sub(outcome.still_failing.len() as u64),
                    dead,
                }),
                Err(e) => tracing::warn!(pipeline = name, "retry of failed records: {e}"),
            }
        }
        Ok(actions)
    }
}

impl Scheduler {
    /// Due records grouped by pipeline, leaving out pipelines with a job running (it settles its own records; the
    /// next tick looks again).
    fn idle_pipelines(&self, due: Vec<(String, i64)>) -> BTreeMap<String, Vec<i64>> {
        let mut by_pipeline: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        for (pipeline, id) in due {
            if !self.jobs.is_active(&pipeline) {
                by_pipeline.entry(pipeline).or_default().push(id);
            }
        }
        by_pipeline
    }

    /// The pending-children loop: every 5 minutes a waiting child is checked; it lands if its parent is in the
    /// target now, and is dead after the fifth check (the console notifies and shows a badge).
    async fn check_waiting_children(&self) -> Result<Vec<SchedulerAction>, StoreError> {
        use crate::run::pending::{
            land_children, Attempt, CHECKS_BEFORE_DEAD, CHECK_EVERY_MINUTES,
        };
        let store = self.jobs.store();
        let now = self.clock.now();
        let every = chrono::Duration::minutes(CHECK_EVERY_MINUTES);
        let due = self.idle_pipelines(store.children_due(now, every, CHECKS_BEFORE_DEAD).await?);
        let mut actions = Vec::new();
        for (name, ids) in due {
            // A pipeline switched off writes nothing, automatic retries included.
            if store.pipeline_disabled(&name).await.unwrap_or(false) {
                continue;
            }
            let pipeline = store.pipeline(&name).await?;
            let checked = land_children(
                &pipeline,
                store,
                &self.base_dir,
                Some(&ids),
                Attempt::Loop(now),
            )
            .await;
            match checked {
                Ok(outcome) => actions.push(SchedulerAction::ChildrenChecked {
                    pipeline: name.clone(),
                    tried: outcome.tried,
                    landed: outcome.landed,
                    dead: outcome.dead,
                    checks: CHECKS_BEFORE_DEAD,
                }),
                // A run of the pipeline (here or elsewhere) holds it: not a try; the run lands them itself.
                Err(crate::run::RunError::Busy(holder)) => {
                    tracing::info!(
                        pipeline = name,
                        "waiting children not checked now: {holder}"
                    );
                }
                Err(e) => {
                    // An unreachable source or target is a try too: the loop must end.
                    tracing::warn!(pipeline = name, "waiting children not checked: {e}");
                    store
                        .note_child_tries(&ids, now, CHECKS_BEFORE_DEAD)
                        .await?;
                }
            }
        }
        Ok(actions)
    }
}

struct ScheduledJob {
    jobs: Jobs,
    pipeline: Pipeline,
    options: RunOptions,
    stop: crate::stop::StopSignal,
    days_to_complete: Option<u32>,
    window_id: String,
    window_rows: u64,
    pausing: Arc<AtomicBool>,
    ended: Arc<Mutex<Vec<SchedulerAction>>>,
}

/// How many records the pipeline's entities hold, as their sources say on a first page (Bubble's `remaining`);
/// None when a source does not say.
async fn expected_total(pipeline: &Pipeline) -> Option<u64> {
    let opened = match crate::run::open_source(pipeline).await {
        Ok(opened) => opened,
        Err(e) => {
            tracing::warn!(
                pipeline = pipeline.name,
                "cannot count the records up front: {e}"
            );
            return None;
        }
    };
    let mut total = 0;
    for entity in &opened.entities {
        let first = opened.source.first_cursor(entity);
        let page = opened.source.fetch_page(entity, &first).await.ok()?;
        total += page.expected?;
    }
    Some(total)
}

/// Runs a job the scheduler started and remembers, for the next tick, whether it paused on the scheduler's behalf
/// (window end, or this window's share of a multi-day pass done).
async fn scheduled_job(job: ScheduledJob) {
    let rows = AtomicU64::new(job.window_rows);
    let quota_met = AtomicBool::new(false);
    // A window's share of a multi-day pass: the records of every entity (as the source counts them) / days.
    let quota = match job.days_to_complete {
        Some(days) => expected_total(&job.pipeline)
            .await
            .map(|total| total.div_ceil(u64::from(days))),
        None => None,
    };
    let mut options = job.options.clone();
    // Known up front, the share is a budget the run's batches are cut to, so parallel entities do not overshoot it.
    options.budget = quota.map(|q| Arc::new(RowBudget::new(q.saturating_sub(job.window_rows))));
    let seen_expected = Mutex::new(BTreeMap::<String, u64>::new());
    let progress = |event: RunEvent| {
        let RunEvent::Page {
            records,
            expected,
            entity,
            ..
        } = event
        else {
            return;
        };
        let done = rows.fetch_add(records, Ordering::SeqCst) + records;
        // Without a count up front, the totals the source reports as the pass goes.
        let quota = quota.or_else(|| {
            let days = u64::from(job.days_to_complete?);
            let mut seen = seen_expected.lock().unwrap_or_else(|p| p.into_inner());
            seen.insert(entity, expected?);
            Some(seen.values().sum::<u64>().div_ceil(days))
        });
        if let Some(quota) = quota {
            if done >= quota && !quota_met.swap(true, Ordering::SeqCst) {
                tracing::info!(
                    pipeline = job.pipeline.name,
                    done,
                    "this window's share of the pass is done"
                );
                job.stop.request();
            }
        }
    };
    let outcome = job
        .jobs
        .run_claimed(&job.pipeline, &options, &progress, &job.stop)
        .await;
    let store = job.jobs.store();
    let mut state = match store.schedule_state(&job.pipeline.name).await {
        Ok(state) => state,
        Err(e) => {
            tracing::error!("scheduler state: {e}");
            ScheduleState::default()
        }
    };
    state.window_rows = rows.load(Ordering::SeqCst);
    let quota_met = quota_met.load(Ordering::SeqCst);
    state.paused_run = match &outcome {
        Ok(o)
            if o.summary.status == RunStatus::Paused
                && (quota_met || job.pausing.load(Ordering::SeqCst)) =>
        {
            Some(o.summary.run_id.clone())
        }
        _ => None,
    };
    if quota_met {
        state.quota_window = Some(job.window_id.clone());
    }
    if let Err(e) = store.save_schedule_state(&job.pipeline.name, &state).await {
        tracing::error!("scheduler state: {e}");
    }
    let pipeline = job.pipeline.name.clone();
    let ended = match outcome {
        Ok(o) => {
            tracing::info!(
                pipeline,
                status = o.summary.status.as_str(),
                "scheduled job ended"
            );
            let failed = o.summary.entities.values().map(|c| c.failed).sum();
            SchedulerAction::Ended {
                pipeline,
                run_id: Some(o.summary.run_id),
                status: o.summary.status.as_str().to_owned(),
                error: o.summary.error,
                failed,
            }
        }
        Err(JobError::Run(RunError::Busy(holder))) => {
            tracing::info!(pipeline, "scheduled job skipped: {holder}");
            return;
        }
        Err(e) => {
            tracing::error!(pipeline, "scheduled job: {e}");
            SchedulerAction::Ended {
                pipeline,
                run_id: None,
                status: RunStatus::Failed.as_str().to_owned(),
                error: Some(e.to_string()),
                failed: 0,
            }
        }
    };
    job.ended
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .push(ended);
}
