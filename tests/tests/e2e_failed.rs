//! The failed-records browser in the real window: the demo's three bad invoices are listed with their errors, one is
//! found by its error text, its record is edited in place and retried, and it lands in the target.

use serde_json::Value;
use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::webdriver::AppWindow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_record_is_found_edited_retried_and_lands() {
    let window = AppWindow::open().await;
    let session = &window.session;
    let wait = Duration::from_secs(60);

    let run = session.wait_for("[data-testid='run-Demo']", wait).await;
    session.click(&run).await;
    session.review_and_run("Demo", wait).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed")
        })
        .await;

    let tab = session.wait_for("[data-testid='tab-failed']", wait).await;
    session.click(&tab).await;
    let table = session
        .wait_content("[data-testid='failed-table']", wait, |t| t.contains("TBD"))
        .await;
    assert!(
        table.contains("next Friday") && table.contains("12,50") && table.contains("invoice"),
        "{table}"
    );

    let filter = session
        .wait_for("[data-testid='failed-filter-text']", wait)
        .await;
    session.type_into(&filter, "TBD").await;
    session
        .wait_content("[data-testid='failed-table']", wait, |t| {
            !t.contains("next Friday")
        })
        .await;
    let row = session
        .wait_for("[data-testid^='failed-row-'] .message", wait)
        .await;
    session.click(&row).await;
    let raw = session.wait_for("[data-testid='failed-raw']", wait).await;
    let shown = session.value(&raw).await;
    let mut record: Value = serde_json::from_str(&shown).expect("the raw record is JSON");
    assert_eq!(record["Amount"], "TBD", "{shown}");
    let id = record["_id"].as_str().unwrap().to_owned();
    record["Amount"] = serde_json::json!(12.5);
    session.type_into(&raw, &record.to_string()).await;
    session
        .wait_text("[data-testid='failed-retry']", wait, |t| {
            t.contains("my edit")
        })
        .await;
    let retry = session.wait_for("[data-testid='failed-retry']", wait).await;
    session.click(&retry).await;
    let notice = session
        .wait_text("[data-testid='failed-notice']", wait, |t| !t.is_empty())
        .await;
    assert!(notice.starts_with("1 retried (1 inserted"), "{notice}");
    session.wait_for("[data-testid='failed-empty']", wait).await;
    session
        .screenshot(&artifacts_dir().join("failed-retried.png"))
        .await;

    let db = window.app_dir().join("demo.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let (amount,): (f64,) = sqlx::query_as("SELECT \"Amount\" FROM invoice WHERE \"_id\" = ?")
        .bind(&id)
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(amount, 12.5);
}
