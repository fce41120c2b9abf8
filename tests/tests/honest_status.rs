//! A run says what happened: a pipeline whose business key is in none of the records stops at the first page
//! naming the key and the fields there are (instead of filing every record as failed and ending "completed"), and
//! a run that left a few failed records says "completed with N failed".

use serde_json::json;
use std::time::{Duration, Instant};
use syncflow_tests::erp::ErpServer;

const PASSWORD: &str = "honest";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_missing_from_every_record_stops_the_run_at_page_one_and_says_which_fields_exist() {
    let records: Vec<serde_json::Value> = (1..=20_000)
        .map(|i| json!({"part_no": format!("P-{i}"), "qty": i}))
        .collect();
    let server = ErpServer::start(records, PASSWORD, 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.pipeline_file(
        dir.path(),
        "wrong-key",
        "{ env = \"PW\" }",
        "kind = \"sqlite\"\npath = \"parts.db\"",
        "items",
        // No business_key: the default, `id`, which these records do not have.
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }",
    );
    let started = Instant::now();
    let out = syncflow_tests::syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[("PW", PASSWORD)],
    )
    .await;
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(took < Duration::from_secs(10), "stopped after {took:?}");
    let summary = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(summary["status"], "failed");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("business key `id` is in none of the 1000 records of page 1")
            && error.contains("fields seen: part_no, qty"),
        "{error}"
    );
    assert_eq!(
        summary["entities"]["items"]["failed"], 0,
        "nothing filed as failed"
    );

    // The history keeps the failed run with its cause; the failed-records queue stays empty.
    let ctx = syncflow_engine::app::Context::open(&state, 1)
        .await
        .unwrap();
    let history = syncflow_engine::app::runs::history(&ctx, "wrong-key")
        .await
        .unwrap();
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].outcome, "failed");
    assert!(history[0]
        .error
        .as_deref()
        .unwrap_or_default()
        .contains("business key `id`"));
    assert!(syncflow_engine::app::records::failed(&ctx, "wrong-key")
        .await
        .unwrap()
        .is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_with_a_few_failed_records_says_completed_with_n_failed() {
    let mut records: Vec<serde_json::Value> =
        (1..=300).map(|i| json!({"id": i, "qty": i})).collect();
    for i in [5, 150, 299] {
        records[i]["id"] = serde_json::Value::Null;
    }
    let server = ErpServer::start(records, PASSWORD, 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.pipeline_file(
        dir.path(),
        "few-bad",
        "{ env = \"PW\" }",
        "kind = \"sqlite\"\npath = \"few.db\"",
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 100 }",
    );
    let args = ["run", file.to_str().unwrap(), "--apply-schema"];
    let out = syncflow_tests::syncflow_async(&args, &state, &[("PW", PASSWORD)]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "failed records are counted, not fatal"
    );
    assert!(stdout.contains("completed with 3 failed"), "{stdout}");
    assert!(stdout.contains("syncflow failed list few-bad"), "{stdout}");
    let json_args = ["run", file.to_str().unwrap(), "--json"];
    let again = syncflow_tests::syncflow_async(&json_args, &state, &[("PW", PASSWORD)]).await;
    let summary = syncflow_tests::last_json_line(&again.stdout);
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["outcome"], "completed with 3 failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_fails_before_its_first_page_is_in_the_history_with_its_error() {
    let server = ErpServer::start(vec![json!({"id": 1})], PASSWORD, 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    // Nothing listens on this port: the target cannot be reached.
    let port = syncflow_tests::free_port();
    let file = server.pipeline_file(
        dir.path(),
        "unreachable",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"postgresql://nobody@127.0.0.1:{port}/db\"\nconnection = {{ reconnect_s = 0 }}"),
        "items",
        "records = \"/data\"",
    );
    let args = ["run", file.to_str().unwrap(), "--json"];
    let out = syncflow_tests::syncflow_async(&args, &state, &[("PW", PASSWORD)]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");

    let ctx = syncflow_engine::app::Context::open(&state, 1)
        .await
        .unwrap();
    let history = syncflow_engine::app::runs::history(&ctx, "unreachable")
        .await
        .unwrap();
    assert_eq!(
        history.len(),
        1,
        "the failed attempt is a run of the history"
    );
    assert_eq!(history[0].outcome, "failed");
    let error = history[0].error.clone().unwrap_or_default();
    assert!(
        error.contains(&port.to_string()) || error.contains("connect"),
        "{error}"
    );
    let listed = syncflow_engine::app::pipelines::list(&ctx).await.unwrap();
    let last = listed[0]
        .last_run
        .as_ref()
        .expect("a last run, not 'never'");
    assert_eq!(last.status.as_str(), "failed");
    // Its log says so too.
    let log = syncflow_engine::app::runs::run_log(&ctx, &history[0].run_id)
        .await
        .unwrap();
    assert!(log
        .iter()
        .any(|l| l.event == "finished" && l.level == "error"));
}
