//! Delete detection at PostgreSQL: a source that lost, changed and gained records is followed exactly (soft, then
//! hard deletes); a stop request during the end-of-pass deletes takes effect within 2 s (the statement is
//! cancelled, the page rolled back) and the next run finishes them exactly.

use serde_json::{json, Value};
use std::process::Command;
use std::time::{Duration, Instant};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::engine_waiting_on_a_lock;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{finished, id_names, run_synced, spawn_syncflow};

async fn live_rows(pool: &sqlx::PgPool) -> Vec<(i64, String)> {
    syncflow_tests::live_id_names(pool, "items").await
}

fn counts(summary: &Value) -> [u64; 4] {
    let c = &summary["entities"]["items"];
    ["inserted", "updated", "deleted", "skipped"].map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_lost_changed_and_gained_records_is_followed_exactly() {
    let pg = PgCluster::start();
    let url = pg.create_database("deletes").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=20_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "deletes", &url, "soft");
    let env = [("PW", "pw")];

    let first = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&first), [20_000, 0, 0, 0], "{first}");
    // A pass into an empty table has nothing to delete and records no seen keys.
    let seen: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM pg_class WHERE relname LIKE '\\_syncflow\\_seen\\_%' AND reltuples > 0",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(seen, 0);

    // 150 records gone, 200 renamed, 300 new.
    source.retain(|r| r["id"].as_u64().unwrap() % 100 != 0 || r["id"].as_u64().unwrap() > 15_000);
    for r in source
        .iter_mut()
        .filter(|r| r["id"].as_u64().unwrap() % 97 == 0)
        .take(200)
    {
        r["name"] = json!(format!("{} (renamed)", r["name"].as_str().unwrap()));
    }
    source.extend((20_001..=20_300).map(item));
    server.set_records(source.clone());
    let second = run_synced(&file, &state, &env).await;
    assert_eq!(
        counts(&second),
        [300, 200, 150, 20_000 - 150 - 200],
        "{second}"
    );
    assert_eq!(
        live_rows(&pool).await,
        id_names(&source),
        "live rows equal the source"
    );
    let marked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM items WHERE \"_bridge_deleted_at\" IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(marked, 150, "soft deletes keep the rows, marked");

    // Unchanged: nothing written, nothing deleted again.
    let third = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&third), [0, 0, 0, 20_150], "{third}");

    // Hard deletes remove the rows.
    source.retain(|r| r["id"].as_u64().unwrap() > 10);
    server.set_records(source.clone());
    let file = server.items_to_postgres(dir.path(), "deletes", &url, "hard");
    let fourth = run_synced(&file, &state, &env).await;
    // The 10 records gone now, and the 150 rows the soft deletes had marked.
    assert_eq!(counts(&fourth)[2], 160, "{fourth}");
    let all: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM items WHERE id <= 10 OR \"_bridge_deleted_at\" IS NOT NULL",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(all, 0, "hard deletes remove the rows");
    assert_eq!(live_rows(&pool).await, id_names(&source));
}

/// A synced table of 5,000 records, record 7 then gone from the source, and a run paused by SIGTERM while its
/// end-of-pass deletes wait on a row lock another session holds on record 7. Returns how long the pause took.
struct PausedInTheDeletes {
    _pg: PgCluster,
    pool: sqlx::PgPool,
    source: Vec<Value>,
    _server: ErpServer,
    dir: tempfile::TempDir,
    file: std::path::PathBuf,
    took: Duration,
}

async fn paused_in_the_deletes(name: &str) -> PausedInTheDeletes {
    let pg = PgCluster::start();
    let url = pg.create_database(name).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=5_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "deletes", &url, "soft");
    run_synced(&file, &state, &[("PW", "pw")]).await;

    source.retain(|r| r["id"] != json!(7));
    server.set_records(source.clone());
    let mut holder = pool.begin().await.unwrap();
    sqlx::query("SELECT id FROM items WHERE id = 7 FOR UPDATE")
        .execute(&mut *holder)
        .await
        .unwrap();
    let file_arg = file.to_str().unwrap();
    let child = spawn_syncflow(&["run", file_arg, "--json"], &state, &[("PW", "pw")]);
    engine_waiting_on_a_lock(&pool).await;
    let asked = Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let out = finished(child).await;
    let took = asked.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "paused: {stderr}");
    holder.rollback().await.unwrap();
    let seven: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT \"_bridge_deleted_at\" FROM items WHERE id = 7")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(
        seven, None,
        "the cancelled page rolled back: nothing deleted yet"
    );
    PausedInTheDeletes {
        _pg: pg,
        pool,
        source,
        _server: server,
        dir,
        file,
        took,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_during_the_deletes_pauses_within_two_seconds_and_the_next_run_finishes_them() {
    let paused = paused_in_the_deletes("stopdeletes").await;
    assert!(
        paused.took < Duration::from_secs(2),
        "SIGTERM took effect in {:?}",
        paused.took
    );
    // The resumed pass takes up the keys its committed pages recorded, so only record 7 goes.
    let state = paused.dir.path().join("state.db");
    let resumed = run_synced(&paused.file, &state, &[("PW", "pw")]).await;
    assert_eq!(resumed["entities"]["items"]["deleted"], 1, "{resumed}");
    assert_eq!(live_rows(&paused.pool).await, id_names(&paused.source));
    eprintln!(
        "SIGTERM in the delete phase took effect in {:?}",
        paused.took
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_pass_whose_seen_keys_were_lost_deletes_nothing() {
    let paused = paused_in_the_deletes("lostseen").await;
    // Someone empties the engine's record of the pass's seen keys.
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT relname::text FROM pg_class WHERE relname LIKE '\\_syncflow\\_seenkeys\\_%' AND relkind = 'r'",
    )
    .fetch_all(&paused.pool)
    .await
    .unwrap();
    assert_eq!(tables.len(), 1, "{tables:?}");
    sqlx::query(&format!("TRUNCATE \"{}\"", tables[0]))
        .execute(&paused.pool)
        .await
        .unwrap();
    let state = paused.dir.path().join("state.db");
    let resumed = run_synced(&paused.file, &state, &[("PW", "pw")]).await;
    assert_eq!(
        resumed["entities"]["items"]["deleted"], 0,
        "nothing is taken for gone: {resumed}"
    );
    let live = live_rows(&paused.pool).await;
    assert_eq!(live.len(), 5_000, "every row kept");
    // The next complete pass deletes exactly.
    let next = run_synced(&paused.file, &state, &[("PW", "pw")]).await;
    assert_eq!(next["entities"]["items"]["deleted"], 1, "{next}");
    assert_eq!(live_rows(&paused.pool).await, id_names(&paused.source));
}

/// The end of a pass skips reading the table's keys when its lookups found as many rows written before it as the
/// table held. A new record the source sends twice (the second time in a later page, where the lookup finds the
/// row this pass inserted) must not stand in for a record the source lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_record_sent_twice_does_not_hide_a_lost_one() {
    let pg = PgCluster::start();
    let url = pg.create_database("twice").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=3_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "deletes", &url, "soft");
    let env = [("PW", "pw")];
    let first = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&first), [3_000, 0, 0, 0], "{first}");

    // Record 7 gone; record 5001 new, in the first page and again in the last.
    source.retain(|r| r["id"] != 7);
    let mut listed = source.clone();
    listed.insert(10, item(5_001));
    listed.push(item(5_001));
    server.set_records(listed);
    // Each page slow enough to be written on its own, so the repeat meets the row its first sighting wrote.
    server.set_delay_ms(150);
    let second = run_synced(&file, &state, &env).await;
    let c = &second["entities"]["items"];
    assert_eq!(
        c["deleted"], 1,
        "record 7 is gone from the source: {second}"
    );
    assert_eq!(c["fetched"], 3_001, "{second}");
    source.push(item(5_001));
    assert_eq!(live_rows(&pool).await, id_names(&source));
}
