//! Each run writes its story as JSON lines beside the state database (`logs/runs/RUN_ID.jsonl`): its start, every
//! page, every failed record with where and why, and its end — readable by `jq` and by the console's Runs screen,
//! with no secret in it.

use syncflow_engine::app::{self, Context};
use syncflow_engine::run::RunOptions;
use syncflow_tests::erp::{item, ErpServer};

const PASSWORD: &str = "run-log-password";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_writes_json_lines_with_its_pages_failures_and_end() {
    std::env::set_var("PW", PASSWORD);
    let mut records: Vec<serde_json::Value> = (1..=250).map(item).collect();
    // Two records without their business key fail; the other 248 land.
    records[10]["id"] = serde_json::Value::Null;
    records[120]["id"] = serde_json::Value::Null;
    let server = ErpServer::start(records, PASSWORD, 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "logged",
        "{ env = \"PW\" }",
        &format!(
            "kind = \"sqlite\"\npath = \"{}\"",
            dir.path().join("t.db").display()
        ),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 100 }\nbusiness_key = [\"id\"]",
    );
    let state_dir = dir.path().join("state");
    std::fs::create_dir_all(&state_dir).unwrap();
    let ctx = Context::open(&state_dir.join("state.db"), 1).await.unwrap();
    app::pipelines::import_file(&ctx, &file).await.unwrap();
    app::mapping::apply_schema(&ctx, "logged").await.unwrap();
    let outcome = app::runs::run_stored(
        &ctx,
        "logged",
        RunOptions {
            started_by: "manual",
            ..RunOptions::default()
        },
        &|_| {},
    )
    .await
    .unwrap();
    assert_eq!(outcome.summary.entities["items"].failed, 2);
    let run_id = outcome.summary.run_id.clone();

    let path = state_dir
        .join("logs")
        .join("runs")
        .join(format!("{run_id}.jsonl"));
    let text = std::fs::read_to_string(&path).expect("the run's log file");
    let lines: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("every line is a JSON object"))
        .collect();
    let events: Vec<&str> = lines.iter().filter_map(|l| l["event"].as_str()).collect();
    assert_eq!(events.first(), Some(&"started"));
    assert_eq!(events.last(), Some(&"finished"));
    // A page line per committed batch of pages: together they account for every record fetched.
    let paged: u64 = lines
        .iter()
        .filter(|l| l["event"] == "page")
        .filter_map(|l| l["records"].as_u64())
        .sum();
    assert_eq!(paged, 250, "{events:?}");
    let failed: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["event"] == "record_failed")
        .collect();
    assert_eq!(failed.len(), 2, "{text}");
    assert_eq!(failed[0]["entity"], "items");
    assert_eq!(failed[0]["page_no"], 1);
    assert_eq!(failed[0]["record_index"], 10);
    assert_eq!(failed[1]["page_no"], 2);
    assert!(
        failed[0]["error"]
            .as_str()
            .unwrap_or_default()
            .contains("id"),
        "{}",
        failed[0]
    );
    assert!(lines
        .iter()
        .all(|l| l["ts"].is_string() && l["level"].is_string()));
    assert!(!text.contains(PASSWORD), "no secret in the log");

    // The Pipelines screen's health says so; no schedule, no next run.
    let listed = app::pipelines::list(&ctx).await.unwrap();
    let health = listed.iter().find(|p| p.name == "logged").unwrap();
    assert_eq!(
        (
            health.failed_records,
            health.open_conflicts,
            health.next_run.clone()
        ),
        (2, 0, None)
    );

    // The console reads the same lines.
    let read = app::runs::run_log(&ctx, &run_id).await.unwrap();
    assert_eq!(read.len(), lines.len());
    assert!(read.last().unwrap().message.contains("completed"));
    assert!(app::runs::run_log(&ctx, "not-a-run")
        .await
        .unwrap()
        .is_empty());
}
