//! Pause and resume in the real window: a slow Bubble app (the emulator with latency) is imported as a pipeline
//! file, run, paused mid-run — the pause takes effect within 2 s and the target holds only whole pages — then
//! resumed to a target exactly equal to the source.

use std::time::{Duration, Instant};
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::artifacts_dir;
use syncflow_tests::webdriver::AppWindow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_pauses_within_two_seconds_and_resumes_exactly() {
    let app = sample_app(Scale::total(4_000), true);
    let emulator = BubbleEmulator::start(
        app.clone(),
        Faults {
            latency_ms: 250,
            ..Faults::default()
        },
    )
    .await
    .expect("start the emulator");
    let window = AppWindow::open().await;
    let session = &window.session;
    let wait = Duration::from_secs(60);

    let file = format!(
        "version = 1\nname = \"slow-bubble\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n[target]\nkind = \"sqlite\"\npath = \"slow.db\"\n",
        emulator.base_url
    );
    session.import_pipeline(&file, "slow-bubble", wait).await;

    let tab = session
        .wait_for("[data-testid='tab-pipelines']", wait)
        .await;
    session.click(&tab).await;
    let run = session
        .wait_for("[data-testid='run-slow-bubble']", wait)
        .await;
    session.click(&run).await;
    session.review_and_run("slow-bubble", wait).await;
    session
        .wait_text("[data-testid='run-progress']", wait, |t| {
            t.contains("invoice")
        })
        .await;
    let pause = session.wait_for("[data-testid='pause-run']", wait).await;
    let asked = Instant::now();
    session.click(&pause).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| t == "paused")
        .await;
    let took = asked.elapsed();
    eprintln!("the pause took effect in {took:?}");
    assert!(took < Duration::from_secs(2), "the pause took {took:?}");
    session
        .screenshot(&artifacts_dir().join("run-paused.png"))
        .await;

    let db = window.app_dir().join("slow.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let count = |table: String| {
        let pool = pool.clone();
        async move {
            let (n, distinct): (i64, i64) = sqlx::query_as(&format!(
                "SELECT count(*), count(DISTINCT \"_id\") FROM \"{table}\""
            ))
            .fetch_one(&pool)
            .await
            .unwrap_or((0, 0));
            assert_eq!(n, distinct, "{table}: no duplicates");
            n
        }
    };
    let invoices_at_pause = count("invoice".to_owned()).await;
    assert!(
        invoices_at_pause < 1_600,
        "paused before the end: {invoices_at_pause}"
    );
    assert!(
        invoices_at_pause.rem_euclid(100) == 0,
        "whole pages only: {invoices_at_pause}"
    );

    let resume = session.wait_for("[data-testid='resume-run']", wait).await;
    session.click(&resume).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed")
        })
        .await;
    // Cancel: the run ends as cancelled (no Resume); the target keeps what was committed.
    let run = session
        .wait_for("[data-testid='run-slow-bubble']:not([disabled])", wait)
        .await;
    session.click(&run).await;
    session
        .wait_text("[data-testid='run-progress']", wait, |t| t.contains("page"))
        .await;
    let cancel = session.wait_for("[data-testid='cancel-run']", wait).await;
    session.click(&cancel).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| t == "cancelled")
        .await;
    assert!(session.find("[data-testid='resume-run']").await.is_none());
    // The runs screen says where each run's time went, stage by stage.
    let tab = session.wait_for("[data-testid='tab-runs']", wait).await;
    session.click(&tab).await;
    // (The cancelled run may have stopped before its first batch; the paused-and-resumed one has many.)
    let history = session
        .wait_text("[data-testid='run-history']", wait, |t| {
            t.contains(" batches)")
        })
        .await;
    assert!(
        history.contains("fetch") && history.contains("transform") && history.contains("ingest"),
        "{history}"
    );
    for ty in &app.types {
        assert_eq!(
            count(ty.name.clone()).await,
            ty.things.len() as i64,
            "{}",
            ty.name
        );
    }
}
