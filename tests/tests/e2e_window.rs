//! The real app window under Xvfb, driven over WebDriver (tauri-driver + WebKitWebDriver): run the demo pipeline
//! and read the counts the window shows.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::webdriver::AppWindow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_button_completes_the_demo_sync_and_shows_its_counts() {
    let window = AppWindow::open().await;
    let session = &window.session;

    // Preview first: what the run would do, with sample rows, and nothing written (no table in the demo file).
    let preview = session
        .wait_for("[data-testid='preview-Demo']", Duration::from_secs(20))
        .await;
    session.click(&preview).await;
    let inserts = session
        .wait_text(
            "[data-testid='preview-customer-inserted']",
            Duration::from_secs(60),
            |t| !t.is_empty() && t != "0",
        )
        .await;
    let action = session
        .text_of("[data-testid='preview-action-customer-0']")
        .await;
    assert_eq!(
        action, "insert",
        "a sample row says what the run would do to it"
    );
    assert_eq!(
        session
            .text_of("[data-testid='preview-customer-skipped']")
            .await,
        "0"
    );
    session
        .screenshot(&artifacts_dir().join("preview.png"))
        .await;
    let demo_db = window.app_dir().join("demo.db");
    if demo_db.exists() {
        let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", demo_db.display()))
            .await
            .unwrap();
        let tables: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'customer'",
        )
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(tables, 0, "a preview creates no table");
        pool.close().await;
    }
    let close = session
        .wait_for("[data-testid='preview-close']", Duration::from_secs(5))
        .await;
    session.click(&close).await;

    let run = session
        .wait_for("[data-testid='run-Demo']", Duration::from_secs(20))
        .await;
    session.click(&run).await;
    // No table is created without the review: the first Run stops and offers it.
    let stopped = session
        .wait_text("[data-testid='run-error']", Duration::from_secs(60), |t| {
            t.contains("schema review needed")
        })
        .await;
    assert!(stopped.contains("does not exist yet"), "{stopped}");
    session
        .wait_for("[data-testid='review-schema']", Duration::from_secs(10))
        .await;
    session
        .screenshot(&artifacts_dir().join("run-needs-review.png"))
        .await;
    session
        .review_and_run("Demo", Duration::from_secs(60))
        .await;
    let status = session
        .wait_text("[data-testid='run-status']", Duration::from_secs(60), |t| {
            t != "running" && !t.is_empty()
        })
        .await;
    session
        .screenshot(&artifacts_dir().join("demo-run.png"))
        .await;
    // Three invoices cannot be stored: the run says so instead of a plain "completed", and leads to them.
    assert_eq!(
        status,
        "completed with 3 failed",
        "error shown: {}",
        session.text_of("[data-testid='run-error']").await
    );
    assert!(session.find("[data-testid='open-failed']").await.is_some());
    assert_eq!(inserts, "250", "the preview said what the run then did");
    // The demo is an emulated Bubble app of 2,500 things: 250 customers, 1,000 invoices (three of them with values
    // that cannot be stored: they fail, counted), 1,250 line items.
    for (entity, fetched, inserted, failed) in [
        ("customer", "250", "250", "0"),
        ("invoice", "1,000", "997", "3"),
        ("lineitem", "1,250", "1,250", "0"),
    ] {
        for (count, expected) in [
            ("fetched", fetched),
            ("inserted", inserted),
            ("failed", failed),
        ] {
            assert_eq!(
                session
                    .text_of(&format!("[data-testid='count-{entity}-{count}']"))
                    .await,
                expected,
                "{entity} {count}"
            );
        }
    }

    // Progress: the source said how many things each type has, so each bar is full; the rate was charted.
    for entity in ["customer", "invoice", "lineitem"] {
        let progress = session
            .text_of(&format!("[data-testid='progress-{entity}']"))
            .await;
        assert!(progress.contains("100 %"), "{entity}: {progress}");
    }
    assert!(
        session
            .find("[data-testid='rate-chart'] polyline")
            .await
            .is_some(),
        "the rows/s chart is drawn"
    );
    // Each stage's rate beside it (records / the stage's own time), the slowest named.
    let stages = session.text_of("[data-testid='stage-rates']").await;
    for stage in ["fetch ", "transform ", "ingest ", "(slowest: "] {
        assert!(stages.contains(stage), "{stage} in {stages}");
    }
    assert!(stages.contains("rows/s"), "{stages}");

    // README's picture of the console is this screen, as this run left it (commit it when it changes). The run
    // let go of the pipeline: its Run button is free again at once.
    session
        .wait_text("[data-testid='run-Demo']", Duration::from_secs(1), |t| {
            t == "Run"
        })
        .await;
    session
        .screenshot(&syncflow_tests::workspace_root().join("docs/screenshot.png"))
        .await;

    // The demo's target is a real SQLite file in the app-data folder, holding every row.
    let db = window.app_dir().join("demo.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (rows,): (i64,) = sqlx::query_as("SELECT count(DISTINCT \"_id\") FROM invoice")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 997);

    // Running again changes nothing and says so.
    let first = session.text_of("[data-testid='run-summary']").await;
    let run = session
        .wait_for(
            "[data-testid='run-Demo']:not([disabled])",
            Duration::from_secs(10),
        )
        .await;
    session.click(&run).await;
    session
        .wait_text(
            "[data-testid='run-summary']",
            Duration::from_secs(60),
            |t| t.starts_with("completed") && t != first,
        )
        .await;
    assert_eq!(
        session
            .text_of("[data-testid='count-invoice-skipped']")
            .await,
        "997"
    );
    assert_eq!(
        session
            .text_of("[data-testid='count-invoice-inserted']")
            .await,
        "0"
    );
    session
        .screenshot(&artifacts_dir().join("demo-rerun.png"))
        .await;

    // The first run's log on the Runs screen: its 3 failed records, where and why; the same lines are JSON in the
    // app-data folder, beside the console's own log.
    let first_id = first
        .rsplit("run ")
        .next()
        .unwrap_or_default()
        .trim()
        .to_owned();
    session
        .click_on("[data-testid='tab-runs']", Duration::from_secs(10))
        .await;
    session
        .click_on(
            &format!("[data-testid='log-{first_id}']"),
            Duration::from_secs(10),
        )
        .await;
    session
        .click_on("[data-testid='log-problems-only']", Duration::from_secs(10))
        .await;
    let log = session
        .wait_text("[data-testid='run-log']", Duration::from_secs(10), |t| {
            t.matches("failed in").count() == 3
        })
        .await;
    assert!(log.contains("invoice: record"), "{log}");
    session
        .screenshot(&artifacts_dir().join("run-log.png"))
        .await;
    let logs = window.app_dir().join("logs");
    assert!(logs
        .join("runs")
        .join(format!("{first_id}.jsonl"))
        .is_file());
    let console_logs: Vec<_> = std::fs::read_dir(&logs)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        console_logs
            .iter()
            .any(|n| n.to_string_lossy().starts_with("console.")),
        "the console's own log in {}: {console_logs:?}",
        logs.display()
    );
}
