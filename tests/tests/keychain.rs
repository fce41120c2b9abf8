//! Secrets through a real Secret Service (gnome-keyring on a private D-Bus session): stored with
//! `syncflow secret set`, used by a run through `{ keychain = "…" }`, and never written anywhere else.

use serde_json::{json, Value};
use syncflow_tests::built_binary;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::keyring_session::KeyringHome;

const PASSWORD: &str = "kc-secret-9f8e7d6c";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keychain_secret_authenticates_a_run_and_stays_in_the_keychain() {
    let records: Vec<Value> = (1..=1_234)
        .map(|i| json!({"part_no": format!("K-{i}"), "qty": i}))
        .collect();
    let server = ErpServer::start(records, PASSWORD, 200, 3600).await;
    let home = KeyringHome::new();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let target = "kind = \"sqlite\"\npath = \"target.db\"";
    let entity_extra = "records = \"/data\"\nbusiness_key = [\"part_no\"]";
    let pipeline = server.pipeline_file(
        dir.path(),
        "kc",
        "{ keychain = \"erp-login\" }",
        target,
        "items",
        entity_extra,
    );
    let syncflow = built_binary("syncflow");
    let (file, state_arg) = (pipeline.to_str().unwrap(), state.to_str().unwrap());

    // Before the secret is stored: a clear error telling how to store it.
    let out = home.run(
        &syncflow,
        &["run", file, "--state", state_arg, "--apply-schema"],
        &[],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("syncflow secret set erp-login"), "{stderr}");

    let out = home.run(
        &syncflow,
        &["secret", "set", "erp-login"],
        &[],
        Some(PASSWORD),
    );
    assert!(
        out.status.success(),
        "secret set: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A new session (as after a re-login): the keyring on disk still has it, and the run authenticates.
    let out = home.run(
        &syncflow,
        &[
            "run",
            file,
            "--state",
            state_arg,
            "--apply-schema",
            "--json",
        ],
        &[],
        None,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(summary["entities"]["items"]["inserted"], 1_234);
    assert!(server.tokens_issued() >= 1);
    assert!(!stdout.contains(PASSWORD) && !stderr.contains(PASSWORD));

    for file in [
        "state.db",
        "state.db-wal",
        "target.db",
        "target.db-wal",
        "p.toml",
    ] {
        let path = dir.path().join(file);
        if path.exists() {
            let bytes = std::fs::read(&path).unwrap();
            assert!(
                !String::from_utf8_lossy(&bytes).contains(PASSWORD),
                "the secret reached {file}"
            );
        }
    }

    let out = home.run(&syncflow, &["secret", "delete", "erp-login"], &[], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The alert webhook's URL lives in the keychain (it carries a token): `syncflow alert test` says when none is set,
/// and after `syncflow secret set alert-webhook` delivers a Slack-compatible message to it, without printing the
/// URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_alert_webhook_comes_from_the_keychain() {
    let hook = syncflow_tests::webhook::Webhook::start().await;
    let home = KeyringHome::new();
    let syncflow = built_binary("syncflow");
    let alert = |home: &KeyringHome| home.run(&syncflow, &["alert", "test"], &[], None);

    let none = tokio::task::block_in_place(|| alert(&home));
    assert_eq!(none.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("no alert webhook is set"),
        "{}",
        String::from_utf8_lossy(&none.stderr)
    );
    let stored = tokio::task::block_in_place(|| {
        home.run(
            &syncflow,
            &["secret", "set", "alert-webhook"],
            &[],
            Some(&hook.url),
        )
    });
    assert_eq!(stored.status.code(), Some(0), "{stored:?}");
    let sent = tokio::task::block_in_place(|| alert(&home));
    let stderr = String::from_utf8_lossy(&sent.stderr);
    assert_eq!(sent.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains(&hook.url), "the URL is never printed");
    let bodies = hook.bodies();
    assert_eq!(bodies.len(), 1);
    assert!(
        bodies[0]["text"]
            .as_str()
            .unwrap_or_default()
            .contains("test alert"),
        "{}",
        bodies[0]
    );
}
