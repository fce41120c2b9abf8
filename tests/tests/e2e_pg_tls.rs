//! A PostgreSQL → PostgreSQL pipeline set up in the real window against a server that takes its role only over TLS:
//! sslmode and the CA bundle are fields of the form (the CA picked with the file picker), Test connection and Test
//! target say the connections are encrypted and verified, and the saved pipeline runs.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::pg::tls_cluster_with_parts;
use syncflow_tests::webdriver::{AppWindow, Session};

const ROLE: &str = "tlsuser";

/// Chooses verify-full and picks the CA through the form's file picker (the test run answers the picker with the
/// CA's path: a WebDriver session cannot drive the system's file dialog).
async fn verify_full_with_the_ca(session: &Session, side: &str, wait: Duration) {
    let mode = session
        .wait_for(
            &format!("[data-testid='field-{side}.connection.sslmode'] option[value='verify-full']"),
            wait,
        )
        .await;
    session.click(&mode).await;
    let pick = session
        .wait_for(
            &format!("[data-testid='pick-{side}.connection.sslrootcert']"),
            wait,
        )
        .await;
    session.click(&pick).await;
    session
        .wait_text(
            &format!("[data-testid='field-{side}.connection.sslrootcert']"),
            wait,
            |_| true,
        )
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_settings_are_form_fields_and_the_tests_say_the_connections_are_verified() {
    let (pg, ca) = tls_cluster_with_parts(ROLE, 700).await;
    let window = AppWindow::open_with(&[("SYNCFLOW_PICK_FILE", ca.as_os_str())]).await;
    let session = &window.session;
    let wait = Duration::from_secs(30);

    let tab = session.wait_for("[data-testid='tab-connect']", wait).await;
    session.click(&tab).await;
    let name = session.wait_for("[data-testid='new-name']", wait).await;
    session.type_into(&name, "tls-parts").await;
    let kind = session
        .wait_for(
            "[data-testid='field-source.kind'] option[value='postgres']",
            wait,
        )
        .await;
    session.click(&kind).await;
    let url = session
        .wait_for("[data-testid='field-source.url']", wait)
        .await;
    session
        .type_into(
            &url,
            &format!("postgresql://{ROLE}@localhost:{}/src", pg.port),
        )
        .await;
    verify_full_with_the_ca(session, "source", wait).await;
    let add = session.wait_for("[data-testid='add-entity']", wait).await;
    session.click(&add).await;
    let entity = session
        .wait_for("[data-testid='field-entities.0.name']", wait)
        .await;
    session.type_into(&entity, "parts").await;
    let test = session
        .wait_for("[data-testid='test-connection']:not([disabled])", wait)
        .await;
    session.click(&test).await;
    let tls = session
        .wait_text("[data-testid='source-tls']", wait, |t| !t.is_empty())
        .await;
    assert_eq!(
        tls,
        "Source connection: encrypted (TLS), server certificate and host name verified"
    );
    let found = session.text_of("[data-testid='found-parts']").await;
    assert!(found.contains("700"), "the first page of parts: {found}");

    let kind = session
        .wait_for(
            "[data-testid='field-target.kind'] option[value='postgres']",
            wait,
        )
        .await;
    session.click(&kind).await;
    let url = session
        .wait_for("[data-testid='field-target.url']", wait)
        .await;
    session
        .type_into(
            &url,
            &format!("postgresql://{ROLE}@localhost:{}/dst", pg.port),
        )
        .await;
    verify_full_with_the_ca(session, "target", wait).await;
    let test = session
        .wait_for("[data-testid='test-target']:not([disabled])", wait)
        .await;
    session.click(&test).await;
    let report = session
        .wait_text("[data-testid='target-report']", wait, |t| !t.is_empty())
        .await;
    assert!(
        report.contains("database dst") && report.contains("host name verified"),
        "{report}"
    );
    session
        .screenshot(&artifacts_dir().join("connector-postgres-tls.png"))
        .await;

    let save = session
        .wait_for("[data-testid='save-pipeline']:not([disabled])", wait)
        .await;
    session.click(&save).await;
    session
        .wait_text("[data-testid='connect-notice']", wait, |t| {
            t.contains("Saved pipeline tls-parts")
        })
        .await;
    let tab = session
        .wait_for("[data-testid='tab-pipelines']", wait)
        .await;
    session.click(&tab).await;
    let run = session
        .wait_for("[data-testid='run-tls-parts']", wait)
        .await;
    session.click(&run).await;
    session.review_and_run("tls-parts", wait).await;
    session.assert_run_completes(Duration::from_secs(60)).await;
    let dst = sqlx::PgPool::connect(&pg.url("dst")).await.unwrap();
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM parts")
        .fetch_one(&dst)
        .await
        .unwrap();
    assert_eq!(rows, 700);
}
