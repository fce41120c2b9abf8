//! One run of a pipeline at a time, across the console and the CLI, in the real window: while the console runs a
//! (slow) Bubble pipeline, `syncflow run` of it beside the console exits 4 within 5 s naming the console, and the
//! console's run completes exact; while the CLI runs it, the console's Run button is disabled and says who holds it.

use std::time::{Duration, Instant};
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::webdriver::AppWindow;
use syncflow_tests::{artifacts_dir, finished, spawn_syncflow, syncflow_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_and_the_cli_never_run_one_pipeline_at_once() {
    let app = sample_app(Scale::total(3_000), true);
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
    let state = window.app_dir().join("state.db");
    let db = window.app_dir().join("busy.db");
    let text = format!(
        "version = 1\nname = \"busy-bubble\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n[target]\nkind = \"sqlite\"\npath = \"{}\"\n",
        emulator.base_url,
        db.display()
    );
    let file = window.data.path().join("busy-bubble.toml");
    std::fs::write(&file, &text).unwrap();

    session.import_pipeline(&text, "busy-bubble", wait).await;
    let tab = session
        .wait_for("[data-testid='tab-pipelines']", wait)
        .await;
    session.click(&tab).await;

    // The console runs it; the CLI started beside it is refused at once.
    let run = session
        .wait_for("[data-testid='run-busy-bubble']", wait)
        .await;
    session.click(&run).await;
    session.review_and_run("busy-bubble", wait).await;
    session
        .wait_text("[data-testid='run-progress']", wait, |t| t.contains("page"))
        .await;
    let asked = Instant::now();
    let cli = syncflow_async(&["run", file.to_str().unwrap()], &state, &[]).await;
    let stderr = String::from_utf8_lossy(&cli.stderr);
    assert_eq!(cli.status.code(), Some(4), "{stderr}");
    assert!(asked.elapsed() < Duration::from_secs(5));
    assert!(
        stderr.contains("is being run by the console (process "),
        "{stderr}"
    );
    session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed")
        })
        .await;
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    for ty in &app.types {
        let (n, distinct): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(DISTINCT \"_id\") FROM \"{}\"",
            ty.name
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!((n, distinct), (ty.things.len() as i64, n), "{}", ty.name);
    }

    // The CLI runs it; the console's Run button says who holds it and waits.
    let cli = spawn_syncflow(&["run", file.to_str().unwrap()], &state, &[]);
    let busy = session
        .wait_text("[data-testid='busy-busy-bubble']", wait, |t| {
            t.contains("syncflow run (process ")
        })
        .await;
    assert!(
        busy.starts_with("Running in syncflow run (process "),
        "{busy}"
    );
    assert!(session
        .find("[data-testid='run-busy-bubble'][disabled]")
        .await
        .is_some());
    session
        .screenshot(&artifacts_dir().join("run-busy-elsewhere.png"))
        .await;
    let out = finished(cli).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    session
        .wait_for("[data-testid='run-busy-bubble']:not([disabled])", wait)
        .await;
    assert!(session
        .find("[data-testid='busy-busy-bubble']")
        .await
        .is_none());
}
