//! Preview (the console's dry run): per entity, what a run would insert, update, delete and skip, and its first
//! rows each with what would happen to it — and nothing written anywhere: not a row, not a table, not a checkpoint.
//! Real PostgreSQL, the REST test server.

use serde_json::Value;
use syncflow_engine::app::{self, Context};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::PgCluster;

const PASSWORD: &str = "preview";

async fn snapshot(pool: &sqlx::PgPool, table: &str) -> Vec<(i64, String, Option<String>)> {
    sqlx::query_as(&format!(
        "SELECT id::bigint, name, _bridge_deleted_at::text FROM {table} ORDER BY id"
    ))
    .fetch_all(pool)
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_counts_and_samples_and_writes_nothing() {
    std::env::set_var("PW", PASSWORD);
    let cluster = PgCluster::start();
    let url = cluster.create_database("preview").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let server = ErpServer::start((1..=1_000).map(item).collect(), PASSWORD, 1_000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.items_to_postgres(dir.path(), "prev", &url, "soft");
    let state = dir.path().join("state.db");
    let out = syncflow_tests::syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[("PW", PASSWORD)],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The source changes: item 1 renamed, item 2 gone, item 1001 new.
    let mut records: Vec<Value> = (1..=1_001).filter(|i| *i != 2).map(item).collect();
    records[0]["name"] = Value::from("item 1, renamed");
    server.set_records(records);
    let before = snapshot(&pool, "items").await;

    let ctx = Context::open(&state, 1).await.unwrap();
    let preview = app::runs::preview(&ctx, "prev", &|_| {}).await.unwrap();
    let counts = preview.summary.entities["items"];
    assert_eq!(
        (
            counts.inserted,
            counts.updated,
            counts.deleted,
            counts.skipped
        ),
        (1, 1, 1, 998),
        "{:?}",
        preview.summary
    );
    let sample = &preview.entities[0];
    assert_eq!(sample.table, "items");
    let name_at = sample.columns.iter().position(|c| c == "name").unwrap();
    let actions: Vec<(&str, &Value)> = sample
        .rows
        .iter()
        .map(|r| (r.action.as_str(), &r.values[name_at]))
        .collect();
    assert_eq!(actions.len(), 5, "{actions:?}");
    assert_eq!(actions[0], ("update", &Value::from("item 1, renamed")));
    assert!(
        actions[1..].iter().all(|(a, _)| *a == "unchanged"),
        "{actions:?}"
    );
    assert_eq!(snapshot(&pool, "items").await, before, "nothing written");

    // Into a table that does not exist yet: every row an insert, and still no table.
    let file = server.pipeline_file(
        dir.path(),
        "fresh",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }\nbusiness_key = [\"id\"]\ntable = \"items_new\"",
    );
    app::pipelines::import_file(&ctx, &file).await.unwrap();
    let preview = app::runs::preview(&ctx, "fresh", &|_| {}).await.unwrap();
    assert_eq!(
        preview.summary.entities["items"].inserted, 1_000,
        "{:?}",
        preview.summary
    );
    assert!(preview.entities[0]
        .rows
        .iter()
        .all(|r| r.action == "insert"));
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('items_new') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(!exists, "a preview creates no table");

    // The real run then does what the preview said.
    let out = syncflow_tests::syncflow_async(
        &[
            "run",
            dir.path().join("prev.toml").to_str().unwrap(),
            "--json",
        ],
        &state,
        &[("PW", PASSWORD)],
    )
    .await;
    let summary = syncflow_tests::last_json_line(&out.stdout);
    let items = &summary["entities"]["items"];
    assert_eq!(
        (
            &items["inserted"],
            &items["updated"],
            &items["deleted"],
            &items["skipped"]
        ),
        (
            &Value::from(1),
            &Value::from(1),
            &Value::from(1),
            &Value::from(998)
        ),
        "{summary}"
    );
}
