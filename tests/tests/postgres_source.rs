//! A PostgreSQL table (composite primary key, numeric, timestamptz, arrays, jsonb, messy text, a mixed-case column,
//! doubles from 1e-20 to 1e20 that PostgreSQL spells with exponents) and a query sync into another PostgreSQL
//! database exactly, in keyset pages; changes are followed.

use syncflow_tests::pg::PgCluster;
use syncflow_tests::run_synced;

const ROWS: i64 = 5_432;

/// One digest of every row, in key order, spelled the same on both sides (arrays as JSON: they land as jsonb;
/// doubles as double precision spells them, whatever column type they landed in).
fn digest_sql(tags: &str) -> String {
    format!(
        "SELECT md5(string_agg(concat_ws('|', order_id, line, amount, \
           to_char(placed_at AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS.MS'), note, {tags}, meta::text, flag, \
           \"Customer Name\", weight::float8), ',' ORDER BY order_id, line)) FROM orders"
    )
}

async fn digest(pool: &sqlx::PgPool, tags: &str) -> String {
    sqlx::query_scalar(&digest_sql(tags))
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_and_a_query_sync_exactly_in_keyset_pages() {
    let pg = PgCluster::start();
    let src_url = pg.create_database("erp_src").await;
    let dst_url = pg.create_database("erp_dst").await;
    let src = sqlx::PgPool::connect(&src_url).await.unwrap();
    sqlx::query(
        "CREATE TABLE orders (order_id bigint, line int, amount numeric(12,2), placed_at timestamptz, note text,
         tags text[], meta jsonb, flag boolean, \"Customer Name\" text, weight double precision,
         PRIMARY KEY (order_id, line))",
    )
    .execute(&src)
    .await
    .unwrap();
    sqlx::query(&format!(
        "INSERT INTO orders SELECT i / 3, i % 3, (i * 7919 % 100000) / 100.0,
           timestamptz '2026-01-01 00:00:00+00' + i * interval '1 minute 1.5 second',
           CASE WHEN i % 5 = 0 THEN NULL ELSE 'tab' || chr(9) || 'line' || chr(10) || 'ü ' || i END,
           ARRAY['a' || (i % 7), 'b'], jsonb_build_object('i', i, 'even', i % 2 = 0), i % 2 = 0, 'Kunde ' || (i % 97),
           i / 7.0::float8 * power(10::float8, i % 41 - 20)
         FROM generate_series(1, {ROWS}) i"
    ))
    .execute(&src)
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pg.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"pg-to-pg\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\npage_size = 500\n\
             [target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n\
             [[entities]]\nname = \"orders\"\n\
             [[entities]]\nname = \"big_orders\"\nquery = \"SELECT order_id, line, amount FROM orders WHERE amount > 900\"\n\
             business_key = [\"order_id\", \"line\"]\n"
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let run = || run_synced(&file, &state, &[]);
    let first = run().await;
    assert_eq!(first["entities"]["orders"]["inserted"], ROWS, "{first}");
    let dst = sqlx::PgPool::connect(&dst_url).await.unwrap();
    assert_eq!(
        digest(&src, "to_jsonb(tags)::text").await,
        digest(&dst, "tags::text").await
    );
    let (big_src,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders WHERE amount > 900")
        .fetch_one(&src)
        .await
        .unwrap();
    let (big_dst,): (i64,) = sqlx::query_as("SELECT count(*) FROM big_orders")
        .fetch_one(&dst)
        .await
        .unwrap();
    assert_eq!(big_src, big_dst);

    sqlx::query("UPDATE orders SET note = 'changed ✓', amount = amount + 1 WHERE order_id % 150 = 7 AND line = 1")
        .execute(&src)
        .await
        .unwrap();
    sqlx::query("INSERT INTO orders (order_id, line, amount, flag) VALUES (900001, 0, 1.50, true), (900001, 1, 2.50, false)")
        .execute(&src)
        .await
        .unwrap();
    let second = run().await;
    let counts = &second["entities"]["orders"];
    assert_eq!(counts["inserted"], 2, "{second}");
    assert_eq!(counts["updated"], ROWS / 3 / 150 + 1, "{second}");
    assert_eq!(
        digest(&src, "to_jsonb(tags)::text").await,
        digest(&dst, "tags::text").await
    );
}
