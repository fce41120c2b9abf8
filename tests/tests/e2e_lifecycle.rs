//! A pipeline's life in the real window: a REST source (login auth, password from an environment variable,
//! offset pagination) set up in the form and tested; then edited in the same form, prefilled (the password shown
//! as its reference only), to write into another file; then cloned under a new name; the clone runs on its own.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::webdriver::AppWindow;
use syncflow_tests::webdriver::Session;

const PASSWORD: &str = "erp-password-from-the-environment";

/// Saves the form and waits for its notice to say `saved`.
async fn save_form(session: &Session, saved: &str, wait: Duration) {
    session
        .click_on("[data-testid='save-pipeline']:not([disabled])", wait)
        .await;
    session
        .wait_text("[data-testid='connect-notice']", wait, |t| {
            t.contains(saved)
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_pipeline_is_set_up_edited_cloned_and_the_clone_runs() {
    let server = ErpServer::start((1..=450).map(item).collect(), PASSWORD, 100, 3600).await;
    let password = std::ffi::OsString::from(PASSWORD);
    let window = AppWindow::open_with(&[("ERP_PASSWORD", password.as_os_str())]).await;
    let session = &window.session;
    let wait = Duration::from_secs(30);

    // Set up: every part of a REST source is a field of the form.
    session.click_on("[data-testid='tab-connect']", wait).await;
    let name = session.wait_for("[data-testid='new-name']", wait).await;
    session.type_into(&name, "erp").await;
    session
        .fill_login_rest_source(&server.base_url, "ERP_PASSWORD", wait)
        .await;
    session.add_items_entity("items", 100, wait).await;
    session.fill("entities.0.business_key", "id", wait).await;
    session.choose("target.kind", "sqlite", wait).await;
    session.fill("target.path", "erp.db", wait).await;
    session
        .click_on("[data-testid='test-connection']:not([disabled])", wait)
        .await;
    let found = session
        .wait_text("[data-testid='found-items']", wait, |t| t.contains("items"))
        .await;
    // The server does not say its total: the first page's 100 records, "100+", and their fields.
    assert!(
        found.contains("100+") && found.contains("id, name, price"),
        "{found}"
    );
    session
        .screenshot(&artifacts_dir().join("lifecycle-rest-form.png"))
        .await;
    save_form(session, "Saved pipeline erp", wait).await;

    // Edit: the same form, prefilled; the password is a reference; the name cannot change.
    session
        .click_on("[data-testid='tab-pipelines']", wait)
        .await;
    session.click_on("[data-testid='edit-erp']", wait).await;
    session
        .wait_text("[data-testid='form-title']", wait, |t| t == "Edit erp")
        .await;
    let url = session
        .wait_for("[data-testid='field-source.base_url']", wait)
        .await;
    assert_eq!(session.value(&url).await, server.base_url);
    let env = session
        .wait_for("[data-testid='field-source.auth.password.env']", wait)
        .await;
    assert_eq!(session.value(&env).await, "ERP_PASSWORD");
    let size = session
        .wait_for("[data-testid='field-entities.0.pagination.size']", wait)
        .await;
    assert_eq!(session.value(&size).await, "100");
    assert!(
        session
            .find("[data-testid='new-name'][disabled]")
            .await
            .is_some(),
        "an edit keeps the name"
    );
    session.fill("target.path", "erp-edited.db", wait).await;
    session
        .screenshot(&artifacts_dir().join("lifecycle-edit.png"))
        .await;
    save_form(session, "Saved changes to erp", wait).await;

    // Clone: a new name, the edited definition.
    session
        .click_on("[data-testid='tab-pipelines']", wait)
        .await;
    session.click_on("[data-testid='clone-erp']", wait).await;
    session
        .wait_text("[data-testid='form-title']", wait, |t| t == "Clone of erp")
        .await;
    let name = session
        .wait_for("[data-testid='new-name']:not([disabled])", wait)
        .await;
    assert_eq!(session.value(&name).await, "erp-copy");
    let path = session
        .wait_for("[data-testid='field-target.path']", wait)
        .await;
    assert!(
        session.value(&path).await.ends_with("erp-edited.db"),
        "the clone starts from the edited definition"
    );
    session.fill("target.path", "erp-copy.db", wait).await;
    save_form(session, "Saved pipeline erp-copy", wait).await;

    session
        .click_on("[data-testid='tab-pipelines']", wait)
        .await;
    session.click_on("[data-testid='run-erp-copy']", wait).await;
    session.review_and_run("erp-copy", wait).await;
    session.assert_run_completes(Duration::from_secs(60)).await;
    assert_eq!(
        session
            .text_of("[data-testid='count-items-inserted']")
            .await,
        "450"
    );
    let dir = window.app_dir();
    assert_eq!(
        syncflow_tests::sqlite_rows(&dir.join("erp-copy.db"), "items").await,
        450
    );
    assert!(
        !dir.join("erp.db").exists() && !dir.join("erp-edited.db").exists(),
        "only the clone ran"
    );
    let state = std::fs::read(dir.join("state.db")).unwrap_or_default();
    assert!(
        !String::from_utf8_lossy(&state).contains(PASSWORD),
        "the password stays in the environment"
    );
}
