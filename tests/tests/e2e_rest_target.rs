//! A REST-target pipeline in the real window: the ERP gateway as source and the in-repo hub (ScheduleHub-like) as
//! target, set up field by field in the New pipeline form (the hub's token from an environment variable), its target
//! tested (signed in, a lookup answered), saved and run: the run needs no schema review (the Schema screen has
//! nothing to apply), and the hub then holds every record once, with the values the source has.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::hub::HubServer;
use syncflow_tests::webdriver::AppWindow;

const PASSWORD: &str = "erp-password";
const TOKEN: &str = "hub-service-token";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_target_pipeline_is_set_up_in_the_form_tested_and_run() {
    let erp = ErpServer::start((1..=300).map(item).collect(), PASSWORD, 100, 3600).await;
    let hub = HubServer::start(TOKEN).await;
    let envs = [
        ("ERP_PASSWORD", std::ffi::OsString::from(PASSWORD)),
        ("HUB_TOKEN", std::ffi::OsString::from(TOKEN)),
    ];
    let envs: Vec<(&str, &std::ffi::OsStr)> =
        envs.iter().map(|(k, v)| (*k, v.as_os_str())).collect();
    let window = AppWindow::open_with(&envs).await;
    let session = &window.session;
    let wait = Duration::from_secs(30);

    session.click_on("[data-testid='tab-connect']", wait).await;
    let name = session.wait_for("[data-testid='new-name']", wait).await;
    session.type_into(&name, "to-hub").await;
    session
        .fill_login_rest_source(&erp.base_url, "ERP_PASSWORD", wait)
        .await;
    session.add_items_entity("items", 100, wait).await;
    session.fill("entities.0.business_key", "id", wait).await;
    session.choose("target.kind", "rest", wait).await;
    session.fill("target.base_url", &hub.base_url, wait).await;
    session.choose("target.auth.kind", "bearer", wait).await;
    session.choose("target.auth.token.mode", "env", wait).await;
    session
        .fill("target.auth.token.env", "HUB_TOKEN", wait)
        .await;
    session
        .click_on("[data-testid='test-target']:not([disabled])", wait)
        .await;
    let report = session
        .wait_text("[data-testid='target-report']", wait, |t| !t.is_empty())
        .await;
    assert!(
        report.contains("signed in") && report.contains("/items"),
        "{report}"
    );
    session
        .screenshot(&artifacts_dir().join("rest-target-form.png"))
        .await;
    session
        .click_on("[data-testid='save-pipeline']:not([disabled])", wait)
        .await;
    session
        .wait_text("[data-testid='connect-notice']", wait, |t| {
            t.contains("Saved pipeline to-hub")
        })
        .await;

    session
        .click_on("[data-testid='tab-pipelines']", wait)
        .await;
    session.click_on("[data-testid='run-to-hub']", wait).await;
    session.assert_run_completes(Duration::from_secs(60)).await;
    assert_eq!(
        session
            .text_of("[data-testid='count-items-inserted']")
            .await,
        "300"
    );
    session
        .screenshot(&artifacts_dir().join("rest-target-run.png"))
        .await;
    // Nothing to review for an API: its resource takes the fields as they come.
    session.click_on("[data-testid='tab-schema']", wait).await;
    session
        .wait_text("[data-testid='drift-items']", wait, |t| {
            t.contains("up to date")
        })
        .await;
    let sql = session.text_of("[data-testid='sql']").await;
    assert!(sql.contains("nothing to apply"), "{sql}");
    let held = hub.records("items");
    assert_eq!(held.len(), 300, "every record once");
    assert_eq!(hub.most_creates_of_one_key("items"), 1);
    let mut names: Vec<(i64, String)> = held
        .iter()
        .map(|r| {
            (
                r.get("id").and_then(serde_json::Value::as_i64).unwrap_or(0),
                r.get("name")
                    .and_then(serde_json::Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            )
        })
        .collect();
    names.sort();
    assert_eq!(
        names,
        (1..=300)
            .map(|i| (i, format!("item {i}")))
            .collect::<Vec<_>>()
    );
}
