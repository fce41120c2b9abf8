//! A page that fails every retry is passed over and filed with its cursor: the run syncs every other page, does
//! not infer deletes from the incomplete pass, and ends failed with the page named; the next run fetches just that
//! page and completes the pass (deletes included). REST gateway (offset pages) and Bubble (parallel pages).

use serde_json::{json, Value};
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::bubble::{assert_target_equals_app, pipeline_file, summary};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{run_synced, syncflow_async};

/// `syncflow run FILE --apply-schema --json`, whatever its exit.
async fn run(
    file: &std::path::Path,
    state: &std::path::Path,
    env: &[(&str, &str)],
) -> std::process::Output {
    syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        state,
        env,
    )
    .await
}

fn item(id: u64, name: &str) -> Value {
    json!({"id": id, "name": name})
}

async fn target_rows(pool: &sqlx::PgPool) -> Vec<(i64, String)> {
    sqlx::query_as("SELECT id, name FROM items ORDER BY id")
        .fetch_all(pool)
        .await
        .unwrap()
}

fn rows_of(source: &[Value]) -> Vec<(i64, String)> {
    source
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rest_page_that_keeps_failing_is_fetched_alone_by_the_next_run() {
    let pg = PgCluster::start();
    let url = pg.create_database("failed_pages_rest").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=50).map(|i| item(i, &format!("item {i}"))).collect();
    let server = ErpServer::start(source.clone(), "pw", 10, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "failed-pages",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "pagination = { kind = \"offset\", offset_param = \"offset\", limit_param = \"limit\", size = 10 }\n\
         records = \"/data\"\ndeletes = \"hard\"",
    );
    let state = dir.path().join("state.db");
    let env = [("PW", "pw")];
    run_synced(&file, &state, &env).await;
    assert_eq!(target_rows(&pool).await, rows_of(&source));

    // Record 45 goes, record 25 (in the page that will fail) changes, and the page at offset 20 answers 500.
    source.remove(44);
    source[24] = item(25, "item 25, renamed");
    server.set_records(source.clone());
    server.break_offset(Some(20));
    let served = server.records_served();
    let out = run(&file, &state, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "the run is not complete: {stderr}"
    );
    assert!(
        stderr.contains("1 page(s) could not be fetched")
            && stderr.contains("offset 20")
            && stderr.contains("500")
            && stderr.contains("run the pipeline again"),
        "the page is named with its error and the fix: {stderr}"
    );
    assert_eq!(
        server.records_served() - served,
        39,
        "every other page was read"
    );
    let mut kept = target_rows(&pool).await;
    assert_eq!(kept.len(), 50, "nothing deleted after an incomplete pass");
    assert!(kept.contains(&(25, "item 25".into())) && kept.contains(&(45, "item 45".into())));
    kept.retain(|(id, _)| *id != 25 && *id != 45);
    let mut expected_so_far = rows_of(&source);
    expected_so_far.retain(|(id, _)| *id != 25);
    assert_eq!(
        kept, expected_so_far,
        "every page but the failed one landed"
    );

    server.break_offset(None);
    let served = server.records_served();
    let summary = run_synced(&file, &state, &env).await;
    assert_eq!(
        server.records_served() - served,
        10,
        "the next run fetched just that page"
    );
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["entities"]["items"]["deleted"], 1, "{summary}");
    assert_eq!(
        target_rows(&pool).await,
        rows_of(&source),
        "the target equals the source"
    );
}

const TOKEN: &str = "bubble-token-failed-pages";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bubble_page_that_keeps_failing_is_fetched_alone_by_the_next_run() {
    let pg = PgCluster::start();
    let url = pg.create_database("failed_pages_bubble").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let app = sample_app(Scale::total(3_000), false);
    let biggest = app
        .types
        .iter()
        .max_by_key(|t| t.things.len())
        .unwrap()
        .clone();
    assert!(biggest.things.len() > 300);
    let faults = Faults {
        token: Some(TOKEN.into()),
        ..Faults::default()
    };
    let emulator = BubbleEmulator::start(
        app.clone(),
        Faults {
            broken_pages: vec![(biggest.name.clone(), 200)],
            ..faults.clone()
        },
    )
    .await
    .expect("start the emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(
        dir.path(),
        "bubble-failed-pages",
        &emulator.test_base_url,
        &url,
        "concurrency = 4",
    );
    let state = dir.path().join("state.db");
    let env = [("BUBBLE_TOKEN", TOKEN)];
    let out = run(&file, &state, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cursor 200") && stderr.contains("run the pipeline again"),
        "{stderr}"
    );
    let s = summary(&out.stdout);
    assert_eq!(
        s["entities"][&biggest.name]["fetched"],
        json!(biggest.things.len() - 100),
        "every page but one was read: {s}"
    );
    let landed: i64 = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{}\"", biggest.name))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(landed as usize, biggest.things.len() - 100);

    emulator.set_faults(faults);
    let requests = emulator.stats().requests;
    let out = run(&file, &state, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    // The biggest type (line items) runs last, so every other type was done already: the app's /meta at the start,
    // then that one page.
    let asked = emulator.stats().requests - requests;
    assert!(
        asked <= 2,
        "just the failed page was fetched again ({asked} requests)"
    );
    assert_target_equals_app(&pool, &app).await;
}
