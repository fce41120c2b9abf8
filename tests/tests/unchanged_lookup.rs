//! A re-sync skips unchanged rows by looking up their stored hashes: by the business key's values when the key is
//! one whole-number or text column that leads an index, else by BK_HASH. Either way a changed row is updated, a new
//! one inserted, every other row skipped, and the target equals the source. (Which lookup is faster shows in
//! `syncflow-bench`; on a table this small PostgreSQL reads the table either way.)

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::run_synced;

fn records(key: &str, n: u64, renamed: Option<u64>) -> Vec<Value> {
    (1..=n)
        .map(|i| {
            let id = if key == "code" {
                json!(format!("A-{i:04}"))
            } else {
                json!(i)
            };
            let name = if renamed == Some(i) {
                format!("item {i}, renamed")
            } else {
                format!("item {i}")
            };
            json!({ key: id, "name": name, "qty": i * 3 })
        })
        .collect()
}

/// Syncs 50 records, then (with the key's index dropped when `drop_index`) renames one and adds one: returns the
/// re-sync's inserted, updated and skipped counts, and whether the target then holds exactly the source's names.
async fn resync_after_a_change(
    pg: &PgCluster,
    key: &str,
    drop_index: bool,
) -> (u64, u64, u64, bool) {
    let db = format!("lookup_{key}_{drop_index}");
    let url = pg.create_database(&db).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let server = ErpServer::start(records(key, 50, None), "pw", 10, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        &db,
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        &format!(
            "records = \"/data\"\npagination = {{ kind = \"offset\", size = 10 }}\nbusiness_key = [\"{key}\"]"
        ),
    );
    let state = dir.path().join("state.db");
    let first = run_synced(&file, &state, &[("PW", "pw")]).await;
    assert_eq!(first["entities"]["items"]["inserted"], 50, "{first}");
    if drop_index {
        sqlx::query(&format!("DROP INDEX items_{key}_key"))
            .execute(&pool)
            .await
            .unwrap();
    }
    let source = records(key, 51, Some(7));
    server.set_records(source.clone());
    let again = run_synced(&file, &state, &[("PW", "pw")]).await;
    let c = &again["entities"]["items"];
    let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
    let stored: Vec<(String, String)> = sqlx::query_as(&format!(
        "SELECT {key}::text, name FROM items WHERE _bridge_deleted_at IS NULL ORDER BY 1"
    ))
    .fetch_all(&pool)
    .await
    .unwrap();
    let mut expected: Vec<(String, String)> = source
        .iter()
        .map(|r| {
            let id = match &r[key] {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            (id, r["name"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    expected.sort();
    (
        n("inserted"),
        n("updated"),
        n("skipped"),
        stored == expected,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_finds_changed_rows_by_the_business_key_index_or_by_bk_hash() {
    let pg = PgCluster::start();
    for (key, drop_index) in [("id", false), ("code", false), ("id", true)] {
        let (inserted, updated, skipped, equal) = resync_after_a_change(&pg, key, drop_index).await;
        assert_eq!(
            (inserted, updated, skipped),
            (1, 1, 49),
            "key {key}, index dropped: {drop_index}"
        );
        assert!(
            equal,
            "key {key}, index dropped: {drop_index}: the target differs from the source"
        );
    }
}
