//! The REST source's other pagination kinds — `cursor` (next token by JSON pointer), `link` (RFC 8288 header) and
//! `link` with a JSON pointer to the next URL — behind `jwt_hs256` service tokens, into a real PostgreSQL.

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::syncflow_async;

const KEY: &str = "service-signing-key-never-stored";
const ROWS: u64 = 1_234;

fn record(i: u64) -> Value {
    json!({"part_no": format!("P-{i:05}"), "qty": i * 3 % 1_000, "label": format!("item\t{i}")})
}

fn pipeline(base_url: &str, pg_url: &str, key_var: &str) -> String {
    format!(
        r#"version = 1
name = "paging-kinds"

[source]
kind = "rest"
base_url = "{base_url}"
auth = {{ kind = "jwt_hs256", secret = {{ env = "{key_var}" }}, claims = {{ sub = "syncflow", aud = "erp" }}, ttl_s = 60 }}

[target]
kind = "postgres"
url = "{pg_url}"

[[entities]]
name = "by_cursor"
path = "/api/cursor-items"
records = "/data"
pagination = {{ kind = "cursor", cursor_param = "cursor", next = "/meta/next_cursor", size_param = "limit", size = 250 }}
business_key = ["part_no"]

[[entities]]
name = "by_link_header"
path = "/api/link-items"
records = "/items"
pagination = {{ kind = "link" }}
business_key = ["part_no"]

[[entities]]
name = "by_link_body"
path = "/api/link-items"
records = "/items"
pagination = {{ kind = "link", next = "/links/next" }}
business_key = ["part_no"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cursor_and_link_pagination_behind_service_tokens_sync_exactly() {
    let records: Vec<Value> = (0..ROWS).map(record).collect();
    let server = ErpServer::start(records, "unused", 100, 3600).await;
    server.accept_jwt_hs256(KEY);
    let pg = PgCluster::start();
    let url = pg.create_database("paging").await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("paging.toml");
    std::fs::write(&file, pipeline(&server.base_url, &url, "SERVICE_KEY")).unwrap();
    let state = dir.path().join("state.db");

    let wrong = syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema"],
        &state,
        &[("SERVICE_KEY", "not-the-key")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&wrong.stderr);
    assert_ne!(wrong.status.code(), Some(0));
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(!stderr.contains("not-the-key"), "the key leaked: {stderr}");

    let out = syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[("SERVICE_KEY", KEY)],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let expected_qty: i64 = (0..ROWS).map(|i| (i * 3 % 1_000) as i64).sum();
    for table in ["by_cursor", "by_link_header", "by_link_body"] {
        let (rows, distinct, qty, tabs): (i64, i64, String, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(DISTINCT part_no), sum(qty)::text, \
             count(*) FILTER (WHERE label = 'item' || chr(9) || substr(part_no, 3)::int) FROM \"{table}\""
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(
            (rows, distinct, qty, tabs),
            (
                ROWS as i64,
                ROWS as i64,
                expected_qty.to_string(),
                ROWS as i64
            ),
            "{table}"
        );
    }
}
