//! A fast restart of the target PostgreSQL in the middle of a 300k-row sync (every connection cut, the server down
//! for a moment): the run waits for the target, says so, and completes (exit 0) with the target exactly the
//! source — nothing lost, nothing twice.

use serde_json::{json, Value};
use std::time::Duration;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::{engine_waiting_on_a_lock, restart_during, rows_landed, PgCluster};
use syncflow_tests::{finished, id_names, live_id_names, spawn_syncflow};

const ROWS: u64 = 300_000;

fn record(i: u64) -> Value {
    json!({"id": i, "name": format!("item {i}"), "qty": i % 97})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_restart_mid_sync_is_ridden_out_and_the_target_is_exact() {
    let pg = PgCluster::start();
    let url = pg.create_database("restart").await;
    let source: Vec<Value> = (1..=ROWS).map(record).collect();
    let server = ErpServer::start(source, "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.pipeline_file(
        dir.path(),
        "restart",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }\nbusiness_key = [\"id\"]",
    );
    let file_arg = file.to_str().unwrap();
    let child = spawn_syncflow(
        &["run", file_arg, "--apply-schema", "--json"],
        &state,
        &[("PW", "pw")],
    );

    // Restart once the sync is well under way (about three seconds of pages in).
    let before = rows_landed(&url, "items", Duration::from_secs(3)).await;
    let (pg, out) = restart_during(pg, child, &format!("{before} rows committed before it")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the run completed despite the restart: {stderr}"
    );
    let summary = syncflow_tests::last_json_line(&out.stdout);
    let c = &summary["entities"]["items"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(n("fetched"), ROWS, "{summary}");
    assert_eq!(
        n("inserted") + n("updated") + n("skipped"),
        ROWS,
        "{summary}"
    );

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (rows, ids, digest): (i64, i64, String) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT id), md5(string_agg(id || '|' || name || '|' || qty, ',' ORDER BY id)) FROM items",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    let expected: Vec<String> = (1..=ROWS)
        .map(|i| format!("{i}|item {i}|{}", i % 97))
        .collect();
    let (expected_digest,): (String,) = sqlx::query_as("SELECT md5($1)")
        .bind(expected.join(","))
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((rows, ids), (ROWS as i64, ROWS as i64), "every row once");
    assert_eq!(digest, expected_digest, "every value as the source has it");
    eprintln!(
        "restarted at {before} committed rows; waited for the target: {}; {summary}",
        stderr.contains("waiting for the target")
    );
    drop(pg);
}

/// A connection cut in the middle of a page's transaction (the page's rows are in, its checkpoint waits on a lock,
/// and the server ends the session as a failover does): the page is written again on a new connection, the wait
/// is shown, and the target is exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_cut_inside_a_page_is_retried_on_a_new_one() {
    let pg = PgCluster::start();
    let url = pg.create_database("cut").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=5_000).map(record).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.pipeline_file(
        dir.path(),
        "cut",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }\nbusiness_key = [\"id\"]\n\
         deletes = \"soft\"",
    );
    syncflow_tests::run_synced(&file, &state, &[("PW", "pw")]).await;
    for r in source.iter_mut().take(10) {
        r["name"] = json!("changed");
    }
    source.pop();
    server.set_records(source.clone());

    // Hold the pipeline's checkpoint row: the first page's transaction writes its rows, then waits for it.
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT 1 FROM \"_syncflow_checkpoints\" WHERE pipeline = 'cut' FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let file_arg = file.to_str().unwrap();
    let child = spawn_syncflow(&["run", file_arg, "--json"], &state, &[("PW", "pw")]);
    let blocked = engine_waiting_on_a_lock(&pool).await;
    sqlx::query("SELECT pg_terminate_backend($1)")
        .bind(blocked)
        .execute(&pool)
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.rollback().await.unwrap();
    let out = finished(child).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stderr.contains("waiting for the target"),
        "the wait was shown: {stderr}"
    );
    let summary = syncflow_tests::last_json_line(&out.stdout);
    let c = &summary["entities"]["items"];
    assert_eq!(
        (c["updated"].as_u64(), c["deleted"].as_u64()),
        (Some(10), Some(1)),
        "{summary}"
    );
    let rows = live_id_names(&pool, "items").await;
    let expected = id_names(&source);
    assert_eq!(rows, expected);
}
