//! A first sync loads without index maintenance: the table's indexes (its primary key too) are dropped
//! as the pass begins and built as it ends. Killed (kill -9) in between, the table waits without them, their
//! definitions kept beside it; the resumed run goes on loading and builds exactly the indexes an uninterrupted sync
//! has. A key the source repeats across pages keeps its later version, counted as an update.

use serde_json::{json, Value};
use std::time::Duration;
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{finished, id_names, live_id_names, run_synced, spawn_syncflow};

async fn index_definitions(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indrelid = 'items'::regclass ORDER BY 1",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn rows(pool: &sqlx::PgPool) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(pool)
        .await
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_sync_builds_its_indexes_at_the_end_even_after_kill_9() {
    let pg = PgCluster::start();
    let mut source: Vec<Value> = (1..=20_000).map(item).collect();
    // Item 3 again on the last page, changed: the later version wins.
    source.push(json!({"id": 3, "name": "item 3, sent again", "price": "3.03"}));
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("PW", "pw")];

    // The indexes an uninterrupted first sync ends with.
    let reference_url = pg.create_database("reference").await;
    let reference = sqlx::PgPool::connect(&reference_url).await.unwrap();
    let file = server.items_to_postgres(dir.path(), "reference", &reference_url, "soft");
    let first = run_synced(&file, &dir.path().join("reference.db"), &env).await;
    let c = &first["entities"]["items"];
    assert_eq!(
        (
            c["fetched"].as_u64(),
            c["inserted"].as_u64(),
            c["updated"].as_u64()
        ),
        (Some(20_001), Some(20_000), Some(1)),
        "{first}"
    );
    let expected = index_definitions(&reference).await;
    assert!(expected.len() >= 2, "{expected:?}");
    let name: String = sqlx::query_scalar("SELECT name FROM items WHERE id = 3")
        .fetch_one(&reference)
        .await
        .unwrap();
    assert_eq!(name, "item 3, sent again");

    // Killed halfway: no index meanwhile, their definitions kept.
    let url = pg.create_database("fresh").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let file = server.items_to_postgres(dir.path(), "fresh", &url, "soft");
    let state = dir.path().join("state.db");
    server.set_delay_ms(30);
    let args = ["run", file.to_str().unwrap(), "--apply-schema", "--json"];
    let mut child = spawn_syncflow(&args, &state, &env);
    let mut waited = 0;
    while rows(&pool).await < 5_000 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        waited += 1;
        assert!(waited < 4_000, "the first sync never reached 5,000 rows");
    }
    child.kill().unwrap();
    let _ = child.wait();
    let during = index_definitions(&pool).await;
    assert!(
        during.is_empty(),
        "no index, not even the primary key, while the pass loads: {during:?}"
    );
    let deferred: i64 = sqlx::query_scalar("SELECT count(*) FROM \"_syncflow_deferred_indexes\"")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(deferred as usize, expected.len());

    server.set_delay_ms(0);
    let out = finished(spawn_syncflow(&args, &state, &env)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        index_definitions(&pool).await,
        expected,
        "the same indexes as an uninterrupted sync"
    );
    let deferred: i64 = sqlx::query_scalar("SELECT count(*) FROM \"_syncflow_deferred_indexes\"")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(deferred, 0);
    let mut latest = source.clone();
    latest.remove(2);
    assert_eq!(live_id_names(&pool, "items").await, id_names(&latest));
    assert_eq!(rows(&pool).await, 20_000, "item 3 once");
}
