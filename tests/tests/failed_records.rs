//! Records that cannot be stored are counted, kept in the dead-letter queue with the stage, the error (naming the
//! field) and the raw record, and listed by `syncflow failed list`; the rest of the page lands.

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::syncflow;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_records_are_counted_kept_and_listed() {
    let mut records: Vec<Value> = (1..=50)
        .map(|i| json!({"part_no": format!("P-{i}"), "qty": i, "note": "ok"}))
        .collect();
    records[10] = json!({"part_no": "P-11", "qty": 11, "note": "nul \u{0} inside"});
    records[20] = json!({"qty": 21, "note": "no business key"});
    records[30] = json!("not an object");
    records[40] = json!({"part_no": "P-41", "qty": 41});
    let nul_record = records[10].clone();
    let server = ErpServer::start(records, "pw", 20, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "dlq",
        "{ env = \"PW\" }",
        "kind = \"sqlite\"\npath = \"target.db\"",
        "items",
        "business_key = [\"part_no\"]\n[entities.fields.note]\nrequired = true",
    );
    let state = dir.path().join("state.db");
    let run = |args: &[&str]| syncflow(args, &state, &[("PW", "pw")]);

    let out = run(&["run", file.to_str().unwrap(), "--apply-schema", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "failed records are counted, not fatal: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).lines().last().unwrap()).unwrap();
    let items = &summary["entities"]["items"];
    assert_eq!(
        (
            items["fetched"].as_u64(),
            items["inserted"].as_u64(),
            items["failed"].as_u64()
        ),
        (Some(50), Some(46), Some(4))
    );

    let out = run(&["failed", "list", "dlq", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(failed.len(), 4);
    let by_message = |needle: &str| {
        failed
            .iter()
            .find(|f| f["message"].as_str().is_some_and(|m| m.contains(needle)))
            .cloned()
    };
    let nul = by_message("NUL").expect("the NUL record");
    assert_eq!(
        (nul["stage"].as_str(), nul["entity"].as_str()),
        (Some("validate"), Some("items"))
    );
    assert!(
        nul["message"].as_str().unwrap().contains("\"note\""),
        "names the field: {nul}"
    );
    // The record exactly as it came, every field of it.
    let raw: Value = serde_json::from_str(nul["raw"].as_str().unwrap()).unwrap();
    assert_eq!(raw, nul_record);
    assert!(by_message("\"part_no\" is missing").is_some(), "{failed:?}");
    assert!(by_message("not a JSON object").is_some(), "{failed:?}");

    assert!(
        by_message("required field \"note\"").is_some(),
        "{failed:?}"
    );

    // The analyst drops the rule (the state DB takes the edited file) and retries: the record lands, the others
    // fail again and, after three tries, are dead.
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(
        &file,
        text.replace("[entities.fields.note]\nrequired = true", ""),
    )
    .unwrap();
    let out = run(&["mapping", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retry = || {
        let out = std::process::Command::new(syncflow_tests::built_binary("syncflow"))
            .args(["failed", "retry", "dlq", "--json", "--state"])
            .arg(&state)
            .current_dir(dir.path())
            .env("PW", "pw")
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    };
    let first = retry();
    assert_eq!(first["retried"], 1, "{first}");
    assert_eq!(first["inserted"], 1, "{first}");
    assert_eq!(
        first["still_failing"].as_array().unwrap().len(),
        3,
        "{first}"
    );
    let target = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("target.db").display()
    ))
    .await
    .unwrap();
    let (landed,): (i64,) =
        sqlx::query_as("SELECT count(*) FROM items WHERE part_no = 'P-41' AND note IS NULL")
            .fetch_one(&target)
            .await
            .unwrap();
    assert_eq!(landed, 1);
    retry();
    retry();
    let out = run(&["failed", "list", "dlq", "--json"]);
    let failed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let status = |part: &str| {
        failed
            .iter()
            .find(|f| f["raw"].as_str().is_some_and(|r| r.contains(part)))
            .map(|f| {
                (
                    f["status"].as_str().unwrap().to_owned(),
                    f["retries"].as_i64().unwrap(),
                )
            })
    };
    assert_eq!(status("P-41"), Some(("retried".to_owned(), 1)));
    assert_eq!(status("P-11"), Some(("dead".to_owned(), 3)));
    let last = retry();
    assert_eq!(
        last["still_failing"].as_array().unwrap().len(),
        3,
        "a manual retry still tries dead records"
    );

    // An unknown pipeline is an error that says so.
    let out = run(&["failed", "list", "nope"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no pipeline named \"nope\""));
}
