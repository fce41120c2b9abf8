//! RESOLVE's waiting children, against a real PostgreSQL and the Bubble emulator: invoices whose customer is not
//! in the target are held back (counted as pending, listed, not written); the scheduler's loop checks them every
//! 5 minutes (a hand-set clock) and lands those whose parent has arrived; after five checks the rest are dead (a
//! badge), and `syncflow failed retry` lands them once their parent is there — the target then equals the source.

use chrono::Utc;
use serde_json::Map;
use serde_json::Value;
use std::sync::Arc;
use syncflow_engine::config::Pipeline;
use syncflow_engine::emulator::app::{sample_app, BubbleApp, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_engine::jobs::scheduler::{Scheduler, SchedulerAction};
use syncflow_engine::jobs::{Clock, Jobs, ManualClock};
use syncflow_engine::run::{run_pipeline, RunEvent, RunOptions, StopSignal};
use syncflow_engine::store::Store;
use syncflow_engine::track::{RunStatus, RunSummary};
use syncflow_tests::bubble::assert_target_equals_app;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::syncflow_async;

const CUSTOMERS: usize = 20;
const INVOICES: usize = 100;

/// Runs the pipeline once; `pause_after` asks the run to pause when that entity is done.
async fn run(
    pipeline: &Pipeline,
    store: &Store,
    dir: &std::path::Path,
    pause_after: Option<&str>,
) -> RunSummary {
    let stop = StopSignal::default();
    let options = RunOptions {
        apply_schema: true,
        base_dir: dir.to_path_buf(),
        started_by: "manual",
        ..RunOptions::default()
    };
    let on_event = |event: RunEvent| {
        if let RunEvent::EntityDone { entity, .. } = event {
            if Some(entity.as_str()) == pause_after {
                stop.request();
            }
        }
    };
    run_pipeline(pipeline, store, &options, &on_event, &stop)
        .await
        .expect("the run")
        .summary
}

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
        .fetch_one(pool)
        .await
        .unwrap()
}

/// The app as the target should hold it: its customers and invoices (line items are not synced here).
fn synced_part(app: &BubbleApp) -> BubbleApp {
    let mut app = app.clone();
    app.types.retain(|t| t.name != "lineitem");
    app
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn children_wait_for_their_parent_and_land_when_it_arrives() {
    let pg = PgCluster::start();
    let url = pg.create_database("waiting").await;
    let target = sqlx::PgPool::connect(&url).await.unwrap();
    let mut app = sample_app(
        Scale {
            customers: CUSTOMERS,
            invoices: INVOICES,
            line_items: 0,
        },
        true,
    );
    // Customers 0 and 1 are missing when the first run reads the app: 10 invoices name them.
    let late: Vec<Map<String, Value>> = app.types[0].things.drain(0..2).collect();
    let orphans_per_customer = INVOICES / CUSTOMERS;
    let emulator = BubbleEmulator::start(app, Faults::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version = 1\nname = \"shop\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n\
         [target]\nkind = \"postgres\"\nurl = \"{url}\"\n\
         [[entities]]\nname = \"invoice\"\ndelta = \"rowversion\"\n\
         parents = [{{ field = \"Customer\", entity = \"customer\" }}]\n\
         [[entities]]\nname = \"customer\"\n",
        emulator.base_url
    );
    let pipeline = Pipeline::from_toml(&text, "test").unwrap();
    let state = dir.path().join("state.db");
    let store = Store::open(&state).await.unwrap();

    // First run: the customers go first (though listed second); the invoices of the missing two wait.
    let first = run(&pipeline, &store, dir.path(), None).await;
    assert_eq!(first.status, RunStatus::Completed);
    let invoices = first.entities["invoice"];
    assert_eq!(
        (invoices.fetched, invoices.inserted, invoices.pending),
        (
            INVOICES as u64,
            (INVOICES - 2 * orphans_per_customer) as u64,
            2 * orphans_per_customer as u64
        )
    );
    assert!(invoices.adds_up(), "{invoices:?}");
    assert_eq!(count(&target, "invoice").await, 90);
    let waiting = store.pending_children("shop").await.unwrap();
    assert_eq!(waiting.len(), 10);
    assert!(waiting
        .iter()
        .all(|c| c.status == "pending" && c.field == "Customer" && c.parent_entity == "customer"));

    // Customer 0 is created at the source; a run brings it in but pauses before the invoices.
    emulator.edit(|a| a.types[0].things.push(late[0].clone()));
    let second = run(&pipeline, &store, dir.path(), Some("customer")).await;
    assert_eq!(second.status, RunStatus::Paused);
    assert_eq!(count(&target, "customer").await, 19);
    assert_eq!(count(&target, "invoice").await, 90);

    // While a run of the pipeline holds it (here a lease taken by hand, as another process's run would), a check
    // of the waiting children does nothing and counts no try: the run lands them itself.
    let held = syncflow_engine::lease::take(&store, "shop", "cli")
        .await
        .unwrap();
    let busy = syncflow_engine::run::pending::land_children(
        &pipeline,
        &store,
        dir.path(),
        None,
        syncflow_engine::run::pending::Attempt::Manual,
    )
    .await;
    assert!(
        matches!(busy, Err(syncflow_engine::run::RunError::Busy(_))),
        "{busy:?}"
    );
    held.release().await;
    assert_eq!(count(&target, "invoice").await, 90);
    assert!(store
        .pending_children("shop")
        .await
        .unwrap()
        .iter()
        .all(|c| c.status == "pending" && c.tries == 0));

    // The loop: not due before 5 minutes; then customer 0's invoices land, customer 1's wait.
    let clock = ManualClock::at(Utc::now());
    let scheduler = Scheduler::new(
        Jobs::new(store.clone(), 2),
        Arc::new(clock.clone()),
        dir.path().to_path_buf(),
    );
    let start = clock.now();
    let (s, c) = (&scheduler, &clock);
    let tick_at = move |minutes: i64, seconds: i64| {
        c.set(start + chrono::Duration::minutes(minutes) + chrono::Duration::seconds(seconds));
        s.tick()
    };
    let checks = |actions: Vec<SchedulerAction>| -> Vec<(u64, u64, u64)> {
        actions
            .into_iter()
            .filter_map(|a| match a {
                SchedulerAction::ChildrenChecked {
                    tried,
                    landed,
                    dead,
                    ..
                } => Some((tried, landed, dead)),
                _ => None,
            })
            .collect()
    };
    assert_eq!(checks(tick_at(4, 0).await.unwrap()), vec![]);
    assert_eq!(checks(tick_at(5, 5).await.unwrap()), vec![(10, 5, 0)]);
    assert_eq!(count(&target, "invoice").await, 95);
    // Checked 5 minutes after the last check, four more times: the fifth check makes them dead.
    for minutes in [10, 15, 20] {
        assert_eq!(
            checks(tick_at(minutes, minutes).await.unwrap()),
            vec![(5, 0, 0)],
            "check at {minutes} min"
        );
    }
    assert_eq!(checks(tick_at(25, 0).await.unwrap()), vec![], "not due yet");
    assert_eq!(checks(tick_at(25, 25).await.unwrap()), vec![(5, 0, 5)]);
    assert_eq!(
        checks(tick_at(60, 0).await.unwrap()),
        vec![],
        "dead: no more checks"
    );
    let waiting = store.pending_children("shop").await.unwrap();
    assert!(waiting.iter().all(|c| c.status == "dead" && c.tries == 5));
    assert_eq!(
        store.needing_attention(Some("shop")).await.unwrap().1,
        5,
        "the badge"
    );

    // Customer 1 arrives; the paused run finishes, a new one brings customer 1 in. Dead children wait for a person.
    emulator.edit(|a| a.types[0].things.push(late[1].clone()));
    assert_eq!(
        run(&pipeline, &store, dir.path(), None).await.status,
        RunStatus::Completed
    );
    assert_eq!(
        run(&pipeline, &store, dir.path(), None).await.status,
        RunStatus::Completed
    );
    assert_eq!(count(&target, "customer").await, 20);
    assert_eq!(count(&target, "invoice").await, 95);

    let out = syncflow_async(&["failed", "retry", "shop"], &state, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("5 record(s) waiting for their parent: 5 landed, 0 still waiting"),
        "{stderr}"
    );
    assert!(store.pending_children("shop").await.unwrap().is_empty());
    assert_eq!(
        store.needing_attention(Some("shop")).await.unwrap(),
        (0, 0, 0)
    );
    assert_target_equals_app(&target, &synced_part(&emulator.app())).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_waiting_for_its_parent_is_never_taken_for_deleted() {
    let pg = PgCluster::start();
    let url = pg.create_database("held_seen").await;
    let target = sqlx::PgPool::connect(&url).await.unwrap();
    let app = sample_app(
        Scale {
            customers: CUSTOMERS,
            invoices: INVOICES,
            line_items: 0,
        },
        true,
    );
    let emulator = BubbleEmulator::start(app, Faults::default()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let text = format!(
        "version = 1\nname = \"held\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n\
         [target]\nkind = \"postgres\"\nurl = \"{url}\"\n\
         [[entities]]\nname = \"invoice\"\ndeletes = \"hard\"\n\
         parents = [{{ field = \"Customer\", entity = \"customer\" }}]\n\
         [[entities]]\nname = \"customer\"\n",
        emulator.base_url
    );
    let pipeline = Pipeline::from_toml(&text, "test").unwrap();
    let store = Store::open(&dir.path().join("state.db")).await.unwrap();
    let first = run(&pipeline, &store, dir.path(), None).await;
    assert_eq!(first.entities["invoice"].inserted, INVOICES as u64);

    // Five invoices now name a customer the target does not have: they wait for it, and they are still in the
    // source, so the pass that holds them back must not delete their rows.
    emulator.edit(|a| {
        for thing in a.types[1].things.iter_mut().take(5) {
            thing.insert(
                "Customer".into(),
                Value::from("1700000000000x999999999999999999"),
            );
        }
    });
    let second = run(&pipeline, &store, dir.path(), None).await;
    assert_eq!(second.status, RunStatus::Completed);
    let invoices = second.entities["invoice"];
    assert_eq!((invoices.pending, invoices.deleted), (5, 0), "{invoices:?}");
    assert_eq!(count(&target, "invoice").await, INVOICES as i64);
}
