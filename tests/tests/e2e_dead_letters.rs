//! A dead-letter queue of 10,000 records in the real window at 1024×768: a REST gateway whose 12,000 items are mostly
//! bad (6,000 names holding a NUL character, 4,000 without their key) fills it in one run, which ends "completed
//! with 10000 failed"; Failed records groups them by error with their counts, keeps only the rows in view in the
//! page, scrolls to the last record of a group and opens it beside the list, with its values under their column
//! names.

use serde_json::{json, Value};
use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::webdriver::AppWindow;

/// Item `i`: good when `i` is a multiple of 6; else a name with a NUL character (3 in 6) or no key (2 in 6).
fn item(i: u64) -> Value {
    match i % 6 {
        0 => json!({"id": i, "name": format!("item {i}")}),
        1..=3 => json!({"id": i, "name": format!("bad\u{0}name {i}")}),
        _ => json!({"id": null, "name": format!("no key {i}")}),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_failed_records_are_grouped_scrolled_and_opened_beside_the_list() {
    let server = ErpServer::start((1..=12_000).map(item).collect(), "pw", 1000, 3600).await;
    let window = AppWindow::open_with(&[("ERP_PW", std::ffi::OsStr::new("pw"))]).await;
    let session = &window.session;
    session.set_window_size(1024, 768).await;
    let wait = Duration::from_secs(120);
    let db = window.app_dir().join("letters.db");
    let text = server.pipeline_text(
        "letters",
        "{ env = \"ERP_PW\" }",
        &format!("kind = \"sqlite\"\npath = \"{}\"", db.display()),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }\nbusiness_key = [\"id\"]",
    );

    session.import_pipeline(&text, "letters", wait).await;
    session
        .click_on("[data-testid='tab-pipelines']", wait)
        .await;
    session.click_on("[data-testid='run-letters']", wait).await;
    session.review_and_run("letters", wait).await;
    let status = session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed") || t == "failed"
        })
        .await;
    assert_eq!(status, "completed with 10000 failed");
    assert_eq!(syncflow_tests::sqlite_rows(&db, "items").await, 2_000);

    session.click_on("[data-testid='tab-failed']", wait).await;
    session
        .wait_text("[data-testid='failed-group-0']", wait, |t| {
            t.contains("6,000")
        })
        .await;
    let biggest = session.content_of("[data-testid='failed-group-0']").await;
    assert!(
        biggest.contains("6,000") && biggest.contains("NUL character"),
        "{biggest}"
    );
    let second = session.content_of("[data-testid='failed-group-1']").await;
    assert!(
        second.contains("4,000") && second.contains("business key field \"id\" is missing"),
        "{second}"
    );
    let rendered = session
        .script("return document.querySelectorAll(\"[data-testid^='failed-row-']\").length;")
        .await;
    let rendered = rendered.as_u64().expect("a count");
    assert!(
        (10..100).contains(&rendered),
        "only the rows in view are in the page, not 10,000: {rendered}"
    );

    // The NUL group, scrolled to its end: its last record is there and opens beside the list.
    session
        .click_on("[data-testid='failed-group-show-0']", wait)
        .await;
    session
        .wait_text("[data-testid='failed-retry-all']", wait, |t| {
            t.contains("(6,000)")
        })
        .await;
    session
        .script(
            "const s = document.querySelector(\"[data-testid='failed-scroller']\"); \
             s.scrollTop = s.scrollHeight; return s.scrollTop;",
        )
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let last_id = session
        .script(
            "const ids = [...document.querySelectorAll(\"[data-testid^='failed-row-']\")] \
               .map((e) => Number(e.dataset.testid.slice('failed-row-'.length))); \
             return Math.max(...ids);",
        )
        .await;
    let last_id = last_id.as_u64().expect("an id");
    assert!(last_id > 9_000, "the end of the list is reached: {last_id}");
    session
        .click_on(&format!("[data-testid='failed-row-{last_id}']"), wait)
        .await;
    let detail = session
        .wait_for("[data-testid='failed-detail']", wait)
        .await;
    let list = session.wait_for("[data-testid='failed-table']", wait).await;
    let (list_x, list_y, list_w, list_h) = session.rect(&list).await;
    let (detail_x, detail_y, _, _) = session.rect(&detail).await;
    assert!(
        detail_x >= list_x + list_w && detail_y < list_y + list_h,
        "the record opens beside the list: list at ({list_x}, {list_y}) {list_w}×{list_h}, record at ({detail_x}, {detail_y})"
    );
    let processed = session.text_of("[data-testid='failed-processed']").await;
    let processed: Value = serde_json::from_str(&processed).expect("as far as it got is JSON");
    let name = processed["name"].as_str().unwrap_or_default();
    assert!(
        name.starts_with("bad\u{0}name") && processed["id"].is_number(),
        "values under their column names: {processed}"
    );
    session
        .screenshot(&artifacts_dir().join("failed-10000-1024.png"))
        .await;
}
