//! A manual conflict resolved field by field in the real window: a row edited in the PostgreSQL target whose source
//! row changed too is left untouched by the sync, shown side by side (last synced, source, target) with the differing
//! fields highlighted and counted on the tab's badge; the analyst keeps the target's name and takes the source's
//! credit; the row holds exactly that, the audit trail says so, and the next sync reports nothing.

use std::time::Duration;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::webdriver::AppWindow;
use syncflow_tests::{artifacts_dir, last_json_line, run_synced, syncflow_async};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conflict_is_resolved_field_by_field_in_the_window() {
    let pg = PgCluster::start();
    let src_url = pg.create_database("crm_src").await;
    let dst_url = pg.create_database("crm_dst").await;
    let src = sqlx::PgPool::connect(&src_url).await.unwrap();
    let dst = sqlx::PgPool::connect(&dst_url).await.unwrap();
    sqlx::query("CREATE TABLE accounts (id bigint PRIMARY KEY, name text, credit numeric(10,2))")
        .execute(&src)
        .await
        .unwrap();
    sqlx::query(
        "INSERT INTO accounts SELECT i, 'Account ' || i, i * 100 FROM generate_series(1, 20) i",
    )
    .execute(&src)
    .await
    .unwrap();

    let window = AppWindow::open().await;
    let session = &window.session;
    let wait = Duration::from_secs(60);
    // The CLI and the console share the state database, as they do on an analyst's machine.
    let state = window.app_dir().join("state.db");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("accounts.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"Accounts\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\n\
             [target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n\
             [[entities]]\nname = \"accounts\"\nconflicts = \"manual\"\n"
        ),
    )
    .unwrap();
    run_synced(&file, &state, &[]).await;
    sqlx::query("UPDATE accounts SET name = 'Edited by finance' WHERE id = 7")
        .execute(&dst)
        .await
        .unwrap();
    sqlx::query("UPDATE accounts SET name = 'Renamed at source', credit = 999.50 WHERE id = 7")
        .execute(&src)
        .await
        .unwrap();
    let second = run_synced(&file, &state, &[]).await;
    assert_eq!(second["entities"]["accounts"]["conflicts"], 1, "{second}");

    let tab = session
        .wait_for("[data-testid='tab-conflicts']", wait)
        .await;
    session.click(&tab).await;
    let option = session
        .wait_for(
            "[data-testid='pipeline-picker'] option[value='Accounts']",
            wait,
        )
        .await;
    session.click(&option).await;
    // The badge counts the selected pipeline's open conflicts.
    let badge = session
        .wait_text("[data-testid='badge-conflicts']", wait, |t| t == "1")
        .await;
    assert_eq!(badge, "1");
    let row = session
        .wait_for("[data-testid^='conflict-'] td", wait)
        .await;
    session.click(&row).await;
    let name = session
        .wait_text("[data-testid='field-name']", wait, |t| {
            t.contains("Edited by finance")
        })
        .await;
    assert!(
        name.contains("Account 7") && name.contains("Renamed at source"),
        "last synced, source and target side by side: {name}"
    );
    assert!(session
        .find("tr.differs[data-testid='field-name']")
        .await
        .is_some());
    assert!(session
        .find("tr.differs[data-testid='field-credit']")
        .await
        .is_some());
    assert!(
        session
            .find("tr.differs[data-testid='field-id']")
            .await
            .is_none(),
        "the key is equal on both sides"
    );
    let keep_target_name = session
        .wait_for("[data-testid='keep-name-target']", wait)
        .await;
    session.click(&keep_target_name).await;
    session
        .screenshot(&artifacts_dir().join("conflict-field-by-field.png"))
        .await;
    let apply = session
        .wait_for("[data-testid='apply-resolution']", wait)
        .await;
    session.click(&apply).await;
    let notice = session
        .wait_text("[data-testid='conflicts-notice']", wait, |t| {
            t.contains("resolved")
        })
        .await;
    assert!(notice.contains("(fields)"), "{notice}");
    session
        .wait_for("[data-testid='conflicts-empty']", wait)
        .await;

    let (name, credit, edited): (String, String, bool) = sqlx::query_as(
        "SELECT name, credit::text, \"_bridge_edited_at\" IS NOT NULL FROM accounts WHERE id = 7",
    )
    .fetch_one(&dst)
    .await
    .unwrap();
    assert_eq!(
        (name.as_str(), credit.as_str()),
        ("Edited by finance", "999.50")
    );
    assert!(edited, "the kept edit stays marked as the target's");

    let out = syncflow_async(
        &["conflicts", "list", "Accounts", "--all", "--json"],
        &state,
        &[],
    )
    .await;
    let all = last_json_line(&out.stdout);
    let audit = &all[0]["resolution"];
    assert_eq!(audit["kind"], "fields", "{all}");
    assert_eq!(audit["chosen"]["name"], "target");
    assert_eq!(audit["chosen"]["credit"], "source");
    assert_eq!(audit["old_values"]["credit"].to_string(), "700.00");
    assert_eq!(audit["new_values"]["credit"].to_string(), "999.50");

    let third = run_synced(&file, &state, &[]).await;
    assert_eq!(third["entities"]["accounts"]["conflicts"], 0, "{third}");
    assert_eq!(third["entities"]["accounts"]["updated"], 0, "{third}");
}
