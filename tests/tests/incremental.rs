//! Incremental passes (`delta = "rowversion"`) of the REST gateway (an updated-since query parameter) and of a
//! PostgreSQL table (a rowversion column): after the first pass, a run reads only the records changed since the
//! target's highest stamp — those sharing that stamp are read again and skipped — and the target still equals the
//! source after updates and inserts. Deletes are not inferred from an incremental pass.

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::run_synced;

const ROWS: u64 = 300;

fn stamp(second: u64) -> String {
    chrono::DateTime::from_timestamp(1_767_225_600 + second as i64, 0)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn item(id: u64, name: &str, second: u64) -> Value {
    json!({"id": id, "name": name, "updated_at": stamp(second)})
}

fn counts(summary: &Value, entity: &str) -> (u64, u64, u64, u64) {
    let c = &summary["entities"][entity];
    let n = |k: &str| c[k].as_u64().unwrap();
    (n("fetched"), n("inserted"), n("updated"), n("skipped"))
}

async fn target_rows(pool: &sqlx::PgPool, table: &str) -> Vec<(i64, String)> {
    syncflow_tests::live_id_names(pool, table).await
}

fn expected(source: &[Value]) -> Vec<(i64, String)> {
    syncflow_tests::id_names(source)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_reads_only_what_changed_since_the_targets_highest_stamp() {
    let pg = PgCluster::start();
    let url = pg.create_database("incremental_rest").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=ROWS)
        .map(|i| item(i, &format!("item {i}"), i))
        .collect();
    let server = ErpServer::start(source.clone(), "pw", 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "inc-rest",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "pagination = { kind = \"offset\", offset_param = \"offset\", limit_param = \"limit\", size = 100 }\n\
         records = \"/data\"\ndelta = \"rowversion\"\nrowversion = \"updated_at\"\n\
         since_param = \"updated_since\"\ndeletes = \"soft\"",
    );
    let state = dir.path().join("state.db");
    let env = [("PW", "pw")];

    let first = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&first, "items"), (ROWS, ROWS, 0, 0));
    let served_first = server.records_served();

    // Nothing changed: only the record with the highest stamp is read again, and nothing is written.
    let unchanged = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&unchanged, "items"), (1, 0, 0, 1));
    assert_eq!(server.records_served() - served_first, 1);

    // Two updates, an insert, and a delete that an incremental pass cannot see.
    source[4] = item(5, "item 5, renamed", ROWS + 10);
    source[9] = item(10, "item 10, renamed", ROWS + 11);
    source.push(item(ROWS + 1, "new item", ROWS + 12));
    let removed = source.remove(0);
    server.set_records(source.clone());
    let before = server.records_served();
    let changed = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&changed, "items"), (4, 1, 2, 1));
    assert_eq!(server.records_served() - before, 4);
    let mut with_removed = source.clone();
    with_removed.push(removed);
    assert_eq!(
        target_rows(&pool, "items").await,
        expected(&with_removed),
        "the target holds every change; the removed record is kept (no deletes from an incremental pass)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_reads_only_rows_stamped_since_the_targets_highest() {
    let pg = PgCluster::start();
    let src_url = pg.create_database("incremental_src").await;
    let dst_url = pg.create_database("incremental_dst").await;
    let src = sqlx::PgPool::connect(&src_url).await.unwrap();
    let dst = sqlx::PgPool::connect(&dst_url).await.unwrap();
    sqlx::query(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, updated_at timestamptz NOT NULL)",
    )
    .execute(&src)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO items SELECT i, 'item ' || i, timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second'
         FROM generate_series(1, {ROWS}) i"
    ))
    .execute(&src)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inc-pg.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"inc-pg\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\npage_size = 100\n\
             [target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n\
             [[entities]]\nname = \"items\"\ndelta = \"rowversion\"\nrowversion = \"updated_at\"\n"
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");

    let first = run_synced(&file, &state, &[]).await;
    assert_eq!(counts(&first, "items"), (ROWS, ROWS, 0, 0));
    let unchanged = run_synced(&file, &state, &[]).await;
    assert_eq!(counts(&unchanged, "items"), (1, 0, 0, 1));

    sqlx::query(
        "UPDATE items SET name = name || ', renamed', updated_at = updated_at + interval '1 hour'
         WHERE id IN (5, 10, 250)",
    )
    .execute(&src)
    .await
    .unwrap();
    sqlx::query(
        "INSERT INTO items VALUES (1000, 'new item', timestamptz '2026-01-01 02:00:00+00')",
    )
    .execute(&src)
    .await
    .unwrap();
    let changed = run_synced(&file, &state, &[]).await;
    // The three updated, the new one, and the one sharing the old highest stamp.
    assert_eq!(counts(&changed, "items"), (5, 1, 3, 1));
    let source: Vec<(i64, String)> = sqlx::query_as("SELECT id, name FROM items ORDER BY id")
        .fetch_all(&src)
        .await
        .unwrap();
    assert_eq!(target_rows(&dst, "items").await, source);
}
