//! A PostgreSQL *source* on a bad day: the source database restarts in the middle of a 300k-row sync (the run
//! rides it out and the target is exact), and a pair of tables with every option on — parents, soft deletes,
//! manual conflicts — at a realistic size, mutated and synced again.

use std::time::{Duration, Instant};
use syncflow_tests::pg::{restart_during, rows_landed, PgCluster};
use syncflow_tests::{run_synced, spawn_syncflow, syncflow_async};

const ROWS: i64 = 300_000;

async fn scalar(pool: &sqlx::PgPool, sql: &str) -> String {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_source_database_restarts_mid_sync_and_the_target_is_exact() {
    let source = PgCluster::start();
    let target = PgCluster::start();
    let src_url = source.create_database("erp").await;
    let dst_url = target.create_database("copy").await;
    let src = sqlx::PgPool::connect(&src_url).await.unwrap();
    sqlx::query(
        "CREATE TABLE items (id bigint PRIMARY KEY, name text, qty int, price numeric(12,2))",
    )
    .execute(&src)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO items SELECT i, 'item ' || i, i % 97, (i::bigint * 7919 % 100000) / 100.0
         FROM generate_series(1, {ROWS}) i"
    ))
    .execute(&src)
    .await
    .unwrap();
    let digest_sql =
        "SELECT md5(string_agg(concat_ws('|', id, name, qty, price), ',' ORDER BY id)) FROM items";
    let expected = scalar(&src, digest_sql).await;
    src.close().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"source-restart\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\n\
             page_size = 20000\n[target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n\
             [[entities]]\nname = \"items\"\n"
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let child = spawn_syncflow(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[],
    );

    // Restart while the engine's query for a page is running, once pages have landed: the query is cut.
    let watcher = sqlx::PgPool::connect(&source.url("postgres"))
        .await
        .unwrap();
    let started = Instant::now();
    let before = rows_landed(&dst_url, "items", Duration::from_secs(2)).await;
    loop {
        let reading: Option<i32> = sqlx::query_scalar(
            "SELECT pid FROM pg_stat_activity WHERE application_name = 'syncflow-source' AND state = 'active' \
             AND query LIKE 'SELECT r.%ORDER BY%LIMIT%' LIMIT 1",
        )
        .fetch_optional(&watcher)
        .await
        .unwrap();
        if reading.is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "no page query seen"
        );
    }
    watcher.close().await;
    let (source, out) =
        restart_during(source, child, &format!("{before} rows committed before it")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "the run completed despite the source's restart: {stderr}"
    );
    let summary = syncflow_tests::last_json_line(&out.stdout);
    let c = &summary["entities"]["items"];
    assert_eq!(c["fetched"].as_i64(), Some(ROWS), "{summary}");
    assert_eq!(c["inserted"].as_i64(), Some(ROWS), "{summary}");

    let dst = sqlx::PgPool::connect(&dst_url).await.unwrap();
    let (rows, ids): (i64, i64) = sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM items")
        .fetch_one(&dst)
        .await
        .unwrap();
    assert_eq!((rows, ids), (ROWS, ROWS), "every row once");
    assert_eq!(
        scalar(&dst, digest_sql).await,
        expected,
        "every value as the source has it"
    );
    eprintln!(
        "source restarted at {before} committed rows; the cut was reported: {}; {summary}",
        stderr.contains("lost the source database")
    );
    drop(source);
}

const CUSTOMERS: i64 = 20_000;
const ORDERS: i64 = 200_000;

/// A digest of `orders` as `id|customer|amount|status` in id order, of the rows `filter` keeps.
fn orders_digest(filter: &str) -> String {
    format!(
        "SELECT md5(string_agg(concat_ws('|', id, customer_id, amount, status), ',' ORDER BY id)) \
         FROM orders WHERE {filter}"
    )
}

const LIVE: &str = "\"_bridge_deleted_at\" IS NULL";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_soft_deletes_and_manual_conflicts_at_size_stay_exact() {
    let pg = PgCluster::start();
    let src_url = pg.create_database("shop").await;
    let dst_url = pg.create_database("shop_copy").await;
    let src = sqlx::PgPool::connect(&src_url).await.unwrap();
    let dst = sqlx::PgPool::connect(&dst_url).await.unwrap();
    for sql in [
        "CREATE TABLE customers (id bigint PRIMARY KEY, name text, city text)".to_owned(),
        "CREATE TABLE orders (id bigint PRIMARY KEY, customer_id bigint, amount numeric(12,2), status text)"
            .to_owned(),
        format!(
            "INSERT INTO customers SELECT i, 'customer ' || i, 'city ' || (i % 113) \
             FROM generate_series(1, {CUSTOMERS}) i"
        ),
        format!(
            "INSERT INTO orders SELECT i, 1 + i % ({CUSTOMERS} - 50), (i::bigint * 7919 % 100000) / 100.0, 'open' \
             FROM generate_series(1, {ORDERS}) i"
        ),
    ] {
        sqlx::query(&sql).execute(&src).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"shop\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\npage_size = 5000\n\
             [target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n\
             [[entities]]\nname = \"customers\"\ndeletes = \"soft\"\n\
             [[entities]]\nname = \"orders\"\ndeletes = \"soft\"\nconflicts = \"manual\"\n\
             parents = [{{ field = \"customer_id\", entity = \"customers\" }}]\n"
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let first = run_synced(&file, &state, &[]).await;
    assert_eq!(
        first["entities"]["customers"]["inserted"], CUSTOMERS,
        "{first}"
    );
    assert_eq!(first["entities"]["orders"]["inserted"], ORDERS, "{first}");
    assert_eq!(
        scalar(&dst, &orders_digest(LIVE)).await,
        scalar(&src, &orders_digest("TRUE")).await
    );

    // The target's people edit 20 orders the source changes too: those are conflicts, queued, left as edited.
    sqlx::query("UPDATE orders SET status = 'edited in the target' WHERE id BETWEEN 101 AND 120")
        .execute(&dst)
        .await
        .unwrap();
    // The source: 1,000 orders change (the 20 among them), 500 go, 700 arrive — 100 of them for 100 new customers,
    // one for a customer the source does not have yet (it waits), and the 50 customers with no orders leave.
    for sql in [
        "UPDATE orders SET status = 'shipped', amount = amount + 1 WHERE id BETWEEN 101 AND 1100".to_owned(),
        "DELETE FROM orders WHERE id BETWEEN 5001 AND 5500".to_owned(),
        format!(
            "INSERT INTO customers SELECT i, 'new customer ' || i, 'new city' \
             FROM generate_series({}, {}) i",
            CUSTOMERS + 1,
            CUSTOMERS + 100
        ),
        format!(
            "INSERT INTO orders SELECT i, CASE WHEN i <= {o} + 100 THEN {c} + i - {o} ELSE 1 + i % ({c} - 50) END, 9.99, 'new' \
             FROM generate_series({o} + 1, {o} + 699) i",
            o = ORDERS,
            c = CUSTOMERS
        ),
        format!(
            "INSERT INTO orders VALUES ({}, {}, 1.00, 'waits for its customer')",
            ORDERS + 700,
            CUSTOMERS + 500
        ),
        "DELETE FROM customers WHERE id IN (SELECT c.id FROM customers c \
         WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id) ORDER BY c.id LIMIT 50)"
            .to_owned(),
    ] {
        sqlx::query(&sql).execute(&src).await.unwrap();
    }
    let removed_customers: i64 = sqlx::query_scalar("SELECT count(*) FROM generate_series(1, $1) i WHERE NOT EXISTS (SELECT 1 FROM customers WHERE id = i)")
        .bind(CUSTOMERS)
        .fetch_one(&src)
        .await
        .unwrap();
    assert_eq!(removed_customers, 50, "the source lost 50 customers");

    let second = run_synced(&file, &state, &[]).await;
    let c = &second["entities"]["customers"];
    assert_eq!(
        (
            c["inserted"].as_i64(),
            c["deleted"].as_i64(),
            c["updated"].as_i64()
        ),
        (Some(100), Some(50), Some(0)),
        "{second}"
    );
    let o = &second["entities"]["orders"];
    assert_eq!(
        (
            o["updated"].as_i64(),
            o["conflicts"].as_i64(),
            o["deleted"].as_i64(),
            o["inserted"].as_i64(),
            o["pending"].as_i64()
        ),
        (Some(980), Some(20), Some(500), Some(699), Some(1)),
        "{second}"
    );
    let n = |k: &str| o[k].as_i64().unwrap();
    assert_eq!(
        n("fetched"),
        n("inserted") + n("updated") + n("skipped") + n("failed") + n("pending") + n("conflicts"),
        "the counts add up: {o}"
    );

    // Every live order equals the source's, but for the 20 conflicts, which keep the target's edit until resolved.
    let edited: Vec<(i64, String)> = sqlx::query_as(
        "SELECT id, status FROM orders WHERE status = 'edited in the target' ORDER BY id",
    )
    .fetch_all(&dst)
    .await
    .unwrap();
    assert_eq!(edited.len(), 20, "the edits are kept: {edited:?}");
    let outside_conflicts = "id NOT BETWEEN 101 AND 120";
    assert_eq!(
        scalar(
            &dst,
            &orders_digest(&format!("{LIVE} AND {outside_conflicts}"))
        )
        .await,
        scalar(
            &src,
            &orders_digest(&format!("{outside_conflicts} AND id <> {}", ORDERS + 700))
        )
        .await,
        "every other live order equals the source's"
    );
    let (deleted_orders, deleted_customers): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM orders WHERE \"_bridge_deleted_at\" IS NOT NULL), \
                (SELECT count(*) FROM customers WHERE \"_bridge_deleted_at\" IS NOT NULL)",
    )
    .fetch_one(&dst)
    .await
    .unwrap();
    assert_eq!(
        (deleted_orders, deleted_customers),
        (500, 50),
        "soft deletes, kept"
    );

    // The waiting order's customer arrives; the next run lands it, and the conflicts are still queued.
    sqlx::query(&format!(
        "INSERT INTO customers VALUES ({}, 'late customer', 'late city')",
        CUSTOMERS + 500
    ))
    .execute(&src)
    .await
    .unwrap();
    let third = run_synced(&file, &state, &[]).await;
    assert_eq!(third["entities"]["customers"]["inserted"], 1, "{third}");
    assert_eq!(third["entities"]["orders"]["inserted"], 1, "{third}");
    assert_eq!(
        scalar(
            &dst,
            &format!("SELECT status FROM orders WHERE id = {}", ORDERS + 700)
        )
        .await,
        "waits for its customer"
    );
    let queued = syncflow_async(&["conflicts", "list", "shop", "--json"], &state, &[]).await;
    let open = syncflow_tests::succeeded_json(&queued);
    let mut keys: Vec<i64> = open
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"]["id"].as_i64().unwrap())
        .collect();
    keys.sort();
    assert_eq!(
        keys,
        (101..=120).collect::<Vec<i64>>(),
        "the 20 conflicts are queued: {open}"
    );
}
