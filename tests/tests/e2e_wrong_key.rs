//! A business key that is not in the data, in the real window. A REST gateway lists 20,000 parts with `part_no` and
//! `qty` and no `id`: the form's Save refuses the entity's default key `id`, beside the business key field, with the
//! fields to choose from; Test connection says the same and offers `part_no` (a value of its own in every record),
//! which the analyst takes with one click, and the pipeline saves. The same pipeline imported from a file that
//! forces `id` runs and stops at page 1 naming the key and the fields seen; its history says it failed.

use serde_json::json;
use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::webdriver::AppWindow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_absent_from_the_data_is_refused_at_save_and_stops_a_forced_run_at_page_one() {
    let parts = (1..=20_000)
        .map(|i| json!({"part_no": format!("P-{i:05}"), "qty": i % 7}))
        .collect();
    let server = ErpServer::start(parts, "pw", 1000, 3600).await;
    let window = AppWindow::open_with(&[("ERP_PW", std::ffi::OsStr::new("pw"))]).await;
    let session = &window.session;
    let wait = Duration::from_secs(60);

    session.click_on("[data-testid='tab-connect']", wait).await;
    let name = session.wait_for("[data-testid='new-name']", wait).await;
    session.type_into(&name, "parts").await;
    session
        .fill_login_rest_source(&server.base_url, "ERP_PW", wait)
        .await;
    session.add_items_entity("parts", 1000, wait).await;
    session.choose("target.kind", "sqlite", wait).await;
    session.fill("target.path", "parts.db", wait).await;

    // Save with the default key: refused, beside the business key field, with the fields to choose from.
    session
        .click_on("[data-testid='save-pipeline']:not([disabled])", wait)
        .await;
    let beside = session
        .wait_text("[data-testid='error-entities.0.business_key']", wait, |t| {
            !t.is_empty()
        })
        .await;
    assert!(
        beside.contains("business key \"id\" is in none of the 1000 sampled records of \"parts\"")
            && beside.contains("part_no (a value of its own in every record)")
            && beside.contains("qty"),
        "{beside}"
    );
    let field = session
        .wait_for("[data-testid='field-entities.0.business_key']", wait)
        .await;
    let error = session
        .wait_for("[data-testid='error-entities.0.business_key']", wait)
        .await;
    let (_, field_y, _, field_h) = session.rect(&field).await;
    let (_, error_y, _, _) = session.rect(&error).await;
    assert!(
        error_y >= field_y && error_y - (field_y + field_h) < 80.0,
        "the error sits just under its field: field at y {field_y} (+{field_h}), error at y {error_y}"
    );
    session
        .screenshot(&artifacts_dir().join("wrong-key-refused.png"))
        .await;
    assert!(
        session
            .find("[data-testid='connect-notice']")
            .await
            .is_none(),
        "nothing was saved"
    );

    // Test connection names the same and offers part_no; one click takes it and tests again.
    session
        .click_on("[data-testid='test-connection']:not([disabled])", wait)
        .await;
    let missing = session
        .wait_text("[data-testid='missing-parts-business_key']", wait, |t| {
            !t.is_empty()
        })
        .await;
    assert!(missing.contains("business key \"id\""), "{missing}");
    session
        .click_on("[data-testid='use-key-parts-part_no']", wait)
        .await;
    session
        .wait_text("[data-testid='found-parts']", wait, |t| {
            t.contains("part_no ✓")
        })
        .await;
    assert_eq!(session.value(&field).await, "part_no");
    session
        .click_on("[data-testid='save-pipeline']:not([disabled])", wait)
        .await;
    session
        .wait_text("[data-testid='connect-notice']", wait, |t| {
            t.contains("Saved pipeline parts")
        })
        .await;

    // Forced by a file: imported as it is; the run stops at page 1 naming the key.
    let db = window.app_dir().join("forced.db");
    let text = server.pipeline_text(
        "forced",
        "{ env = \"ERP_PW\" }",
        &format!("kind = \"sqlite\"\npath = \"{}\"", db.display()),
        "parts",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }\nbusiness_key = [\"id\"]",
    );
    session.import_pipeline(&text, "forced", wait).await;
    session
        .click_on("[data-testid='tab-pipelines']", wait)
        .await;
    session.click_on("[data-testid='run-forced']", wait).await;
    session.review_and_run("forced", wait).await;
    session
        .wait_text("[data-testid='run-status']", wait, |t| t == "failed")
        .await;
    let error = session.text_of("[data-testid='run-error']").await;
    assert!(
        error.contains("business key `id` is in none of the 1000 records of page 1")
            && error.contains("part_no"),
        "{error}"
    );
    assert_eq!(
        syncflow_tests::sqlite_rows(&db, "parts").await,
        0,
        "nothing was written"
    );

    session.click_on("[data-testid='tab-runs']", wait).await;
    session
        .click_on(
            "[data-testid='pipeline-picker'] option[value='forced']",
            wait,
        )
        .await;
    let history = session
        .wait_content("[data-testid='run-history']", wait, |t| {
            t.contains("failed")
        })
        .await;
    assert!(!history.contains("completed"), "{history}");
    session
        .screenshot(&artifacts_dir().join("wrong-key-history.png"))
        .await;
}
