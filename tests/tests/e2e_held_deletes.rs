//! The delete guard in the real window: a REST gateway that suddenly lists 2,000 of its 5,000 records makes the
//! console's run fail with the count and nothing deleted; Confirm deletes, under that run, applies them; Undo… on
//! that run in the history, after a confirmation that says what comes back, puts the rows back.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::webdriver::AppWindow;

async fn rows(db: &std::path::Path) -> i64 {
    syncflow_tests::sqlite_rows(db, "items").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_deletes_are_shown_on_the_run_and_confirmed_there() {
    let records: Vec<serde_json::Value> = (1..=5_000)
        .map(|i| serde_json::json!({"id": i, "name": format!("item {i}")}))
        .collect();
    let server = ErpServer::start(records.clone(), "pw", 1000, 3600).await;
    let window = AppWindow::open_with(&[("ERP_PW", std::ffi::OsStr::new("pw"))]).await;
    let session = &window.session;
    let wait = Duration::from_secs(60);
    let db = window.app_dir().join("held.db");
    let text = server.pipeline_text(
        "held",
        "{ env = \"ERP_PW\" }",
        &format!("kind = \"sqlite\"\npath = \"{}\"", db.display()),
        "items",
        "records = \"/data\"\ndeletes = \"hard\"",
    );

    session.import_pipeline(&text, "held", wait).await;
    let tab = session
        .wait_for("[data-testid='tab-pipelines']", wait)
        .await;
    session.click(&tab).await;
    let run = session.wait_for("[data-testid='run-held']", wait).await;
    session.click(&run).await;
    session.review_and_run("held", wait).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed")
        })
        .await;
    assert_eq!(rows(&db).await, 5_000);

    // The gateway now lists 2,000 records: the guard holds the 3,000 deletes.
    server.set_records(records[..2_000].to_vec());
    let run = session
        .wait_for("[data-testid='run-held']:not([disabled])", wait)
        .await;
    session.click(&run).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| t == "failed")
        .await;
    let error = session.text_of("[data-testid='run-error']").await;
    assert!(
        error.contains("would delete 3000 of the 5000 rows")
            && error.contains("max_delete_fraction"),
        "{error}"
    );
    let confirm = session
        .wait_text("[data-testid='confirm-deletes-run']", wait, |t| {
            t == "Confirm deletes (3,000 rows)"
        })
        .await;
    assert!(!confirm.is_empty());
    assert_eq!(rows(&db).await, 5_000, "nothing deleted yet");
    session
        .screenshot(&artifacts_dir().join("run-deletes-held.png"))
        .await;

    let confirm = session
        .wait_for("[data-testid='confirm-deletes-run']", wait)
        .await;
    session.click(&confirm).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed")
        })
        .await;
    assert_eq!(rows(&db).await, 2_000, "the confirmed deletes applied");
    assert!(session
        .find("[data-testid='confirm-deletes-run']")
        .await
        .is_none());

    // Taken back from the run's history: the confirmation says what comes back, then the rows are there again.
    let runs = session.wait_for("[data-testid='tab-runs']", wait).await;
    session.click(&runs).await;
    let undo = session.wait_for("button.undo", wait).await;
    session.click(&undo).await;
    let question = session
        .wait_text("[data-testid='undo-confirm']", wait, |t| {
            t.contains("3,000 row(s) it updated or deleted restored")
        })
        .await;
    assert!(question.contains("items:"), "{question}");
    assert_eq!(
        rows(&db).await,
        2_000,
        "nothing undone before the confirmation"
    );
    session
        .screenshot(&artifacts_dir().join("run-undo-confirm.png"))
        .await;
    let yes = session
        .wait_for("[data-testid='undo-confirm-button']", wait)
        .await;
    session.click(&yes).await;
    session
        .wait_text("[data-testid='undo-done']", wait, |t| t.contains("undone"))
        .await;
    assert_eq!(rows(&db).await, 5_000, "the deleted rows are back");
    session
        .wait_text("[data-testid='run-history']", wait, |t| {
            t.contains("undone")
        })
        .await;
}
