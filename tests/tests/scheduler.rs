//! The scheduler, driven by a hand-set clock (no waiting for real nights): a job started by its cron pauses when
//! its window closes mid-sync and completes in the next window with the target equal to the source; a pass with
//! `days_to_complete = 3` takes about a third of the records per night; missed fires run once; failed records are
//! retried 60/120/240 s apart and are dead after the third try.

use chrono::{DateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use syncflow_engine::config::Pipeline;
use syncflow_engine::emulator::app::{sample_app, BubbleApp, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_engine::jobs::alerts;
use syncflow_engine::jobs::scheduler::{Scheduler, SchedulerAction};
use syncflow_engine::jobs::{Jobs, ManualClock};
use syncflow_engine::store::Store;
use syncflow_engine::track::RunStatus;
use syncflow_tests::webhook::Webhook;

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

struct Setup {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    store: Store,
    clock: ManualClock,
    scheduler: Scheduler,
    _emulator: BubbleEmulator,
    app: BubbleApp,
    /// The ends of scheduled runs the ticks reported (kept apart: the other actions are what the tests decide on).
    ended: std::sync::Mutex<Vec<SchedulerAction>>,
}

/// A scheduled pipeline whose schema was reviewed and applied (scheduled runs alter no table).
async fn setup(name: &str, things: usize, latency_ms: u64, schedule: &str, start: &str) -> Setup {
    let s = unreviewed(name, things, latency_ms, schedule, start).await;
    let ctx = syncflow_engine::app::Context::new(
        s.store.clone(),
        s.dir.clone(),
        1,
        Arc::new(s.clock.clone()),
    );
    syncflow_engine::app::mapping::apply_schema(&ctx, name)
        .await
        .unwrap();
    s
}

/// A scheduled pipeline whose target tables do not exist yet.
async fn unreviewed(
    name: &str,
    things: usize,
    latency_ms: u64,
    schedule: &str,
    start: &str,
) -> Setup {
    let app = sample_app(Scale::total(things), true);
    let emulator = BubbleEmulator::start(
        app.clone(),
        Faults {
            latency_ms,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let text = format!(
        "version = 1\nname = \"{name}\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n\
         [target]\nkind = \"sqlite\"\npath = \"{name}.db\"\n[schedule]\n{schedule}\n",
        emulator.base_url
    );
    let pipeline = Pipeline::from_toml(&text, "test").unwrap();
    store.save_pipeline(&pipeline).await.unwrap();
    let clock = ManualClock::at(at(start));
    let scheduler = Scheduler::new(
        Jobs::new(store.clone(), 2),
        Arc::new(clock.clone()),
        dir.path().to_path_buf(),
    );
    Setup {
        dir: dir.path().to_path_buf(),
        _dir: dir,
        store,
        clock,
        scheduler,
        _emulator: emulator,
        app,
        ended: std::sync::Mutex::new(Vec::new()),
    }
}

impl Setup {
    async fn tick_at(&self, now: &str) -> Vec<SchedulerAction> {
        self.clock.set(at(now));
        let (ended, decided): (Vec<_>, Vec<_>) = self
            .scheduler
            .tick()
            .await
            .unwrap()
            .into_iter()
            .partition(|a| matches!(a, SchedulerAction::Ended { .. }));
        self.ended.lock().unwrap().extend(ended);
        decided
    }

    async fn last_run(&self, name: &str) -> (String, RunStatus, u64) {
        let history = self.store.run_history(Some(name), 1).await.unwrap();
        let last = history.first().expect("a run");
        (last.run.id.clone(), last.run.status, last.counts.fetched)
    }

    /// Rows per table of the SQLite target, and whether any `_id` appears twice.
    async fn target_rows(&self, name: &str) -> (u64, bool) {
        if !self.dir.join(format!("{name}.db")).exists() {
            return (0, false);
        }
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}",
            self.dir.join(format!("{name}.db")).display()
        ))
        .await
        .unwrap();
        let mut total = 0;
        let mut doubled = false;
        for ty in &self.app.types {
            let table = &ty.name;
            let exists: Option<String> = sqlx::query_scalar(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?",
            )
            .bind(table)
            .fetch_optional(&pool)
            .await
            .unwrap();
            if exists.is_none() {
                continue;
            }
            let (rows, ids): (i64, i64) = sqlx::query_as(&format!(
                "SELECT count(*), count(DISTINCT \"_id\") FROM \"{table}\""
            ))
            .fetch_one(&pool)
            .await
            .unwrap();
            total += rows as u64;
            doubled |= rows != ids;
        }
        pool.close().await;
        (total, doubled)
    }

    fn app_things(&self) -> u64 {
        self.app.types.iter().map(|t| t.things.len() as u64).sum()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_pauses_when_its_window_closes_and_completes_in_the_next() {
    let s = setup(
        "nightly",
        3_000,
        60,
        "cron = \"0 19 * * *\"\ntimezone = \"UTC\"\nwindow = { start = \"19:00\", end = \"07:00\" }",
        "2026-11-22T18:59:00Z",
    )
    .await;
    assert!(
        s.tick_at("2026-11-22T18:59:00Z").await.is_empty(),
        "first sight: nothing is due"
    );
    assert!(s.tick_at("2026-11-22T18:59:59Z").await.is_empty());
    let started = s.tick_at("2026-11-22T19:00:05Z").await;
    assert_eq!(
        started,
        vec![SchedulerAction::Started {
            pipeline: "nightly".into(),
            resumed: false,
            missed: 0
        }]
    );
    // Some pages land, then the night ends.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while s.target_rows("nightly").await.0 < 300 {
        assert!(std::time::Instant::now() < deadline, "no rows arrived");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(
        s.tick_at("2026-11-23T03:00:00Z").await.is_empty(),
        "inside the window: keeps going"
    );
    let paused = s.tick_at("2026-11-23T07:00:00Z").await;
    assert!(
        matches!(&paused[..], [SchedulerAction::Paused { pipeline, .. }] if pipeline == "nightly"),
        "{paused:?}"
    );
    s.scheduler.wait_idle().await;
    let (run_id, status, fetched) = s.last_run("nightly").await;
    assert_eq!(status, RunStatus::Paused);
    let (rows, doubled) = s.target_rows("nightly").await;
    assert!(!doubled);
    assert!(
        rows > 0 && rows < s.app_things(),
        "{rows} of {} at the pause",
        s.app_things()
    );
    assert!(fetched >= rows);

    assert!(
        s.tick_at("2026-11-23T12:00:00Z").await.is_empty(),
        "outside the window nothing starts"
    );
    let resumed = s.tick_at("2026-11-23T19:00:10Z").await;
    assert_eq!(
        resumed,
        vec![SchedulerAction::Started {
            pipeline: "nightly".into(),
            resumed: true,
            missed: 0
        }]
    );
    s.scheduler.wait_idle().await;
    let (same_run, status, _) = s.last_run("nightly").await;
    assert_eq!(status, RunStatus::Completed);
    assert_eq!(
        same_run, run_id,
        "the paused run was continued, not started afresh"
    );
    assert_eq!(s.target_rows("nightly").await, (s.app_things(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn days_to_complete_spreads_a_pass_and_missed_fires_run_once() {
    let s = setup(
        "spread",
        3_000,
        30,
        "cron = \"0 1 * * *\"\ntimezone = \"Europe/Berlin\"\ndays_to_complete = 3",
        "2026-11-20T00:00:00Z",
    )
    .await;
    let total = s.app_things();
    assert!(s.tick_at("2026-11-20T00:00:00Z").await.is_empty());
    // 01:00 in Berlin is 00:00 UTC in November.
    let mut shares = Vec::new();
    for day in ["2026-11-21", "2026-11-22", "2026-11-23"] {
        let actions = s.tick_at(&format!("{day}T00:00:30Z")).await;
        assert!(
            matches!(&actions[..], [SchedulerAction::Started { .. }]),
            "{day}: {actions:?}"
        );
        s.scheduler.wait_idle().await;
        assert!(
            s.tick_at(&format!("{day}T05:00:00Z")).await.is_empty(),
            "{day}: this night's share is done; nothing more until the next fire"
        );
        shares.push(s.target_rows("spread").await.0);
    }
    let (_, status, _) = s.last_run("spread").await;
    assert_eq!(
        status,
        RunStatus::Completed,
        "done after three nights: {shares:?}"
    );
    assert_eq!(s.target_rows("spread").await, (total, false));
    // Each night takes about a third (whole pages of 100, so up to a page more).
    let first = shares[0];
    assert!(
        first >= total / 3 && first <= total / 3 + 200,
        "{shares:?} of {total}"
    );
    assert!(
        shares[1] >= 2 * total / 3 && shares[1] < total,
        "{shares:?} of {total}"
    );

    // The console was closed for four days: the fires it missed are shown and run once.
    let actions = s.tick_at("2026-11-27T09:00:00Z").await;
    assert_eq!(
        actions,
        vec![SchedulerAction::Started {
            pipeline: "spread".into(),
            resumed: false,
            missed: 3
        }]
    );
    s.scheduler.wait_idle().await;
    let state = s.store.schedule_state("spread").await.unwrap();
    assert_eq!(state.missed, 3);
    assert_eq!(
        state.missed_since.as_deref(),
        Some("2026-11-23T00:00:30.000Z")
    );
    assert!(
        s.tick_at("2026-11-27T09:05:00Z").await.is_empty(),
        "not run again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_records_are_retried_with_backoff_then_dead() {
    // A schedule far away: only the retry loop acts.
    let s = setup(
        "retrying",
        300,
        0,
        "cron = \"0 3 1 1 *\"",
        "2026-11-22T10:00:00Z",
    )
    .await;
    // Three invoices with an amount that never passes as a number fail at every try.
    s._emulator.edit(|app| {
        let invoices = app.get_type_mut("invoice").unwrap();
        for thing in invoices.things.iter_mut().take(3) {
            thing.insert("Amount".into(), serde_json::json!("TBD"));
        }
    });
    let pipeline = s.store.pipeline("retrying").await.unwrap();
    let jobs = Jobs::new(s.store.clone(), 1);
    let options = syncflow_engine::run::RunOptions {
        apply_schema: true,
        dry_run: false,
        base_dir: s.dir.clone(),
        started_by: "manual",
        budget: None,
        confirm_deletes: false,
        samples: None,
    };
    let outcome = jobs.run(&pipeline, &options, &|_| {}).await.unwrap();
    assert_eq!(
        outcome.summary.entities["invoice"].failed, 3,
        "{:?}",
        outcome.summary
    );
    let failed = |s: &Setup| {
        let store = s.store.clone();
        async move {
            let rows = store.failed_records("retrying").await.unwrap();
            (
                rows.iter().filter(|r| r.status == "failed").count(),
                rows.iter().filter(|r| r.status == "dead").count(),
                rows.iter().map(|r| r.retries).max().unwrap_or(0),
            )
        }
    };
    let now = chrono::Utc::now();
    let after = |secs: i64| (now + chrono::Duration::seconds(secs)).to_rfc3339();
    assert!(s.tick_at(&after(30)).await.is_empty(), "not before 60 s");
    let first = s.tick_at(&after(65)).await;
    assert!(
        matches!(
            &first[..],
            [SchedulerAction::Retried {
                tried: 3,
                recovered: 0,
                dead: 0,
                ..
            }]
        ),
        "{first:?}"
    );
    assert_eq!(failed(&s).await, (3, 0, 1));
    assert!(
        s.tick_at(&after(65 + 100)).await.is_empty(),
        "the second try waits 120 s"
    );
    s.tick_at(&after(65 + 125)).await;
    assert_eq!(failed(&s).await, (3, 0, 2));
    assert!(
        s.tick_at(&after(65 + 125 + 200)).await.is_empty(),
        "the third waits 240 s"
    );
    let last = s.tick_at(&after(65 + 125 + 245)).await;
    assert!(
        matches!(
            &last[..],
            [SchedulerAction::Retried {
                tried: 3,
                dead: 3,
                ..
            }]
        ),
        "{last:?}"
    );
    assert_eq!(failed(&s).await, (0, 3, 3));
    assert!(
        s.tick_at(&after(10_000)).await.is_empty(),
        "dead records wait for a person"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_schedulers_on_one_state_database_fire_a_pipeline_once() {
    let s = setup(
        "twice",
        1_000,
        20,
        "cron = \"0 2 * * *\"\ntimezone = \"UTC\"",
        "2026-11-22T01:59:00Z",
    )
    .await;
    // A second daemon (its own job table) over the same state database and clock.
    let other = Scheduler::new(
        Jobs::new(s.store.clone(), 2),
        Arc::new(s.clock.clone()),
        s.dir.clone(),
    );
    assert!(s.tick_at("2026-11-22T01:59:00Z").await.is_empty());
    assert!(other.tick().await.unwrap().is_empty());
    s.clock.set(at("2026-11-22T02:00:05Z"));
    let (mine, theirs) = tokio::join!(s.scheduler.tick(), other.tick());
    let started = mine.unwrap().len() + theirs.unwrap().len();
    assert!(started >= 1, "the fire is not lost");
    s.scheduler.wait_idle().await;
    other.wait_idle().await;
    let history = s.store.run_history(Some("twice"), 10).await.unwrap();
    assert_eq!(history.len(), 1, "one run, whoever fired: {history:?}");
    assert_eq!(history[0].run.status, RunStatus::Completed);
    assert_eq!(s.target_rows("twice").await, (s.app_things(), false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_run_alters_no_table() {
    let s = unreviewed(
        "unreviewed",
        200,
        0,
        "cron = \"0 2 * * *\"\ntimezone = \"UTC\"",
        "2026-11-22T01:59:00Z",
    )
    .await;
    assert!(s.tick_at("2026-11-22T01:59:00Z").await.is_empty());
    assert_eq!(s.tick_at("2026-11-22T02:00:05Z").await.len(), 1);
    s.scheduler.wait_idle().await;
    // The next tick reports the run's end; it raises an alert, which reaches a Slack-compatible webhook.
    assert!(s.tick_at("2026-11-22T02:00:35Z").await.is_empty());
    let ended = s.ended.lock().unwrap().clone();
    let [ended @ SchedulerAction::Ended { status, error, .. }] = &ended[..] else {
        panic!("the end is reported once: {ended:?}")
    };
    assert_eq!(status, "failed");
    assert!(error
        .as_deref()
        .unwrap_or_default()
        .contains("schema review needed"));
    let hook = Webhook::start().await;
    std::env::set_var(alerts::WEBHOOK_ENV, &hook.url);
    let sent = alerts::announce(ended).await;
    std::env::remove_var(alerts::WEBHOOK_ENV);
    assert!(matches!(sent, Some(Ok(()))), "{sent:?}");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    let text = bodies[0]["text"].as_str().unwrap_or_default();
    assert!(
        text.contains("scheduled run of unreviewed failed")
            && text.contains("schema review needed"),
        "{text}"
    );
    let history = s.store.run_history(Some("unreviewed"), 10).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert_eq!(history[0].run.status, RunStatus::Failed);
    let error = history[0].run.error.clone().unwrap_or_default();
    assert!(
        error.contains("schema review needed") && error.contains("does not exist yet"),
        "{error}"
    );
    assert_eq!(
        s.target_rows("unreviewed").await,
        (0, false),
        "no table, no row"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disabled_pipeline_is_not_scheduled_until_enabled() {
    let s = setup(
        "switched",
        200,
        0,
        "cron = \"0 2 * * *\"\ntimezone = \"UTC\"",
        "2026-11-22T01:59:00Z",
    )
    .await;
    s.store
        .set_pipeline_disabled("switched", true)
        .await
        .unwrap();
    assert!(s.tick_at("2026-11-22T01:59:00Z").await.is_empty());
    assert!(
        s.tick_at("2026-11-22T02:00:05Z").await.is_empty(),
        "no job for a pipeline switched off"
    );
    s.scheduler.wait_idle().await;
    assert!(s
        .store
        .run_history(Some("switched"), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(s.target_rows("switched").await.0, 0);
    // Switched on: the next night's fire runs it.
    s.store
        .set_pipeline_disabled("switched", false)
        .await
        .unwrap();
    assert!(
        s.tick_at("2026-11-23T01:59:00Z").await.is_empty(),
        "the fire missed while it was off is not run on its account"
    );
    assert_eq!(s.tick_at("2026-11-23T02:00:05Z").await.len(), 1);
    s.scheduler.wait_idle().await;
    assert_eq!(s.last_run("switched").await.1, RunStatus::Completed);
}

/// A pipeline stored when six-field cron patterns were still taken keeps loading: listed, runnable by hand and
/// fixable in the schedule editor; the scheduler does not run the pattern it no longer reads.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_six_field_schedule_still_loads_and_can_be_fixed() {
    let s = setup(
        "legacy",
        100,
        0,
        "cron = \"0 2 * * *\"\ntimezone = \"UTC\"",
        "2026-11-22T01:59:00Z",
    )
    .await;
    sqlx::query(
        "UPDATE pipelines SET definition = replace(definition, '\"0 2 * * *\"', '\"0 0 2 * * *\"')",
    )
    .execute(s.store.pool())
    .await
    .unwrap();
    let stored = s.store.pipeline("legacy").await.expect("still loads");
    assert_eq!(
        stored.schedule.as_ref().map(|x| x.cron.as_str()),
        Some("0 0 2 * * *")
    );
    assert!(s.tick_at("2026-11-22T01:59:00Z").await.is_empty());
    assert!(
        s.tick_at("2026-11-22T02:00:05Z").await.is_empty(),
        "a pattern it cannot read is not run"
    );
    let ctx = syncflow_engine::app::Context::new(
        s.store.clone(),
        s.dir.clone(),
        1,
        Arc::new(s.clock.clone()),
    );
    let by_hand = syncflow_engine::app::runs::run_stored(
        &ctx,
        "legacy",
        syncflow_engine::run::RunOptions {
            started_by: "manual",
            ..Default::default()
        },
        &|_| {},
    )
    .await
    .expect("a run by hand");
    assert_eq!(
        by_hand.summary.status,
        RunStatus::Completed,
        "{:?}",
        by_hand.summary.error
    );
    let listed = syncflow_engine::app::pipelines::list(&ctx).await.unwrap();
    assert!(listed
        .iter()
        .any(|p| p.name == "legacy" && p.next_run.is_none()));
    let fixed = syncflow_engine::config::Schedule {
        cron: "0 2 * * *".into(),
        timezone: "UTC".into(),
        window: None,
        days_to_complete: None,
    };
    syncflow_engine::app::pipelines::save_schedule(&ctx, "legacy", Some(fixed))
        .await
        .unwrap();
    let listed = syncflow_engine::app::pipelines::list(&ctx).await.unwrap();
    assert!(listed
        .iter()
        .any(|p| p.name == "legacy" && p.next_run.is_some()));
}
