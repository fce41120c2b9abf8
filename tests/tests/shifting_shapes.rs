//! A REST source's pages are read as rows once a page's records all list the fields of the page before, in the same
//! order; a page that does not (a field more, fields in another order, a new shape) is read as objects, and the
//! next is tried as rows again. Whatever way each page was read, the table holds every record as sent and a failed
//! record's raw JSON is the record as sent, its fields in their order.

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{run_synced, syncflow_async};

/// Seven pages of four: the same fields (pages 1, 2 and 4), a record with a field more (page 3), a new shape with a
/// field in the middle (pages 5 to 7), a record without its key (page 6), text with escapes and a long number
/// (page 7).
fn records() -> Vec<Value> {
    (1..=28u64)
        .map(|i| match i {
            10 => json!({"id": i, "name": format!("item {i}"), "qty": i, "color": "red"}),
            17..=28 if i == 22 => json!({"id": null, "name": "no id", "color": "blue", "qty": 5}),
            17..=24 => json!({"id": i, "name": format!("item {i}"), "color": "green", "qty": i}),
            25..=28 => json!({
                "id": i,
                "name": format!("caf\u{e9} \"{i}\" \u{1F600}\n\\"),
                "color": null,
                "qty": 12345678901234567u64 + i,
            }),
            _ => json!({"id": i, "name": format!("item {i}"), "qty": i}),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_of_shifting_shapes_land_as_sent_whether_read_as_rows_or_as_objects() {
    let pg = PgCluster::start();
    let url = pg.create_database("shapes").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let sent = records();
    let server = ErpServer::start(sent.clone(), "pw", 4, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "shapes",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 4 }",
    );
    let state = dir.path().join("state.db");
    let summary = run_synced(&file, &state, &[("PW", "pw")]).await;
    let c = &summary["entities"]["items"];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        (n("fetched"), n("inserted"), n("failed")),
        (28, 27, 1),
        "{c}"
    );

    let rows: Vec<(i64, String, i64, Option<String>)> =
        sqlx::query_as("SELECT id, name, qty, color FROM items ORDER BY id")
            .fetch_all(&pool)
            .await
            .unwrap();
    let expected: Vec<(i64, String, i64, Option<String>)> = sent
        .iter()
        .filter(|r| !r["id"].is_null())
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["name"].as_str().unwrap().to_owned(),
                r["qty"].as_i64().unwrap(),
                r["color"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(rows, expected);

    let out = syncflow_async(&["failed", "list", "shapes", "--json"], &state, &[]).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let failed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("a list of failed records");
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(
        failed[0]["message"].as_str().unwrap().contains("\"id\""),
        "names the key: {}",
        failed[0]
    );
    // Exactly as sent: the same fields in the same order.
    assert_eq!(
        failed[0]["raw"].as_str(),
        Some(serde_json::to_string(&sent[21]).unwrap().as_str())
    );
}
