//! A fresh pass COPYs straight into the empty table; a key the source sends twice (in different pages) makes that
//! COPY meet its own row, and the batch is merged instead: the run completes, the later version wins, and the
//! counters add up.

use serde_json::json;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::run_synced;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_repeated_across_pages_of_a_fresh_pass_lands_once_with_its_later_version() {
    let pg = PgCluster::start();
    let url = pg.create_database("repeated").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut records: Vec<serde_json::Value> = (1..=30)
        .map(|i| json!({"id": i, "name": format!("item {i}")}))
        .collect();
    records[24] = json!({"id": 5, "name": "item 5, sent again"});
    let server = ErpServer::start(records, "pw", 10, 3600).await;
    // Each page is slow enough to be written on its own, so the repeat arrives in a later batch.
    server.set_delay_ms(150);
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "repeated",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 10 }",
    );
    let state = dir.path().join("state.db");
    let summary = run_synced(&file, &state, &[("PW", "pw")]).await;
    let c = &summary["entities"]["items"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(n("fetched"), 30, "{c}");
    assert_eq!((n("inserted"), n("updated")), (29, 1), "{c}");
    assert_eq!(
        n("fetched"),
        n("inserted") + n("updated") + n("skipped") + n("failed") + n("pending") + n("conflicts")
    );
    let rows: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM items ORDER BY id")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(rows.len(), 29);
    assert!(rows.contains(&(5, "item 5, sent again".into())), "{rows:?}");
}
