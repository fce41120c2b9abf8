//! Rows reach PostgreSQL in COPY's binary format: every value must be stored exactly as PostgreSQL's own text input
//! stores the normalised value (what a text COPY did before): numbers of any precision, scale and exponent, the
//! extremes of bigint, date-times with offsets and fractions, text with the bytes COPY's text format escapes, JSON,
//! nulls. A table whose column an operator retyped takes the text format instead, with the same result.

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::run_synced;

const AMOUNTS: [&str; 8] = [
    "0",
    "-0.00",
    "1e-5",
    "12345678901234567890.123456789",
    "1.5E+3",
    "-42.0100",
    "0.00010000",
    "99999999.9999",
];
const COUNTS: [i64; 5] = [0, -1, i64::MAX, i64::MIN, 10_000];
const WHENS: [&str; 5] = [
    "2026-03-01T10:00:00+02:00",
    "2026-03-01T10:00:00.123Z",
    "1999-12-31T23:59:59Z",
    "1970-01-01T00:00:00Z",
    "2000-01-01T00:00:00Z",
];
const NAMES: [&str; 5] = [
    "tab\there",
    "line\nbreak\r\n",
    "back\\slash \\N",
    "Zürich ✓ 😀",
    "",
];

fn record(id: u64) -> Value {
    let i = id as usize;
    let amount: Value = serde_json::from_str(AMOUNTS[i % AMOUNTS.len()]).unwrap();
    let mut r = json!({
        "id": id,
        "name": NAMES[i % NAMES.len()],
        "amount": amount,
        "count": COUNTS[i % COUNTS.len()],
        "when": WHENS[i % WHENS.len()],
        "flag": i.is_multiple_of(2),
        "meta": {"a": [1, 2.50, {"b": "x\ty"}], "n": null, "i": i},
    });
    if i.is_multiple_of(7) {
        for field in ["name", "amount", "count", "when", "flag", "meta"] {
            r[field] = Value::Null;
        }
    }
    r
}

/// Asserts each row of `ids` holds what PostgreSQL's text input makes of the record's (normalised) values.
async fn assert_stored_as_text_input_would(
    pool: &sqlx::PgPool,
    ids: std::ops::RangeInclusive<u64>,
) {
    for id in ids {
        let r = record(id);
        let when = r["when"]
            .as_str()
            .map(|w| syncflow_engine::values::datetimes::to_utc_iso(w).unwrap());
        let text = |v: &Value| (!v.is_null()).then(|| v.to_string());
        let same: (bool, bool, bool, bool, bool, bool, Option<String>) = sqlx::query_as(
            "SELECT name IS NOT DISTINCT FROM $2, amount::text IS NOT DISTINCT FROM $3::numeric::text,
                    count IS NOT DISTINCT FROM $4::bigint, \"when\" IS NOT DISTINCT FROM $5::timestamptz,
                    flag IS NOT DISTINCT FROM $6::boolean, meta IS NOT DISTINCT FROM $7::jsonb,
                    concat_ws(' | ', name, amount, count, \"when\", flag, meta)
             FROM items WHERE id = $1",
        )
        .bind(id as i64)
        .bind(r["name"].as_str())
        .bind(text(&r["amount"]))
        .bind(r["count"].as_i64())
        .bind(when)
        .bind(r["flag"].as_bool())
        .bind(text(&r["meta"]))
        .fetch_one(pool)
        .await
        .unwrap_or_else(|e| panic!("row {id}: {e}"));
        assert_eq!(
            (same.0, same.1, same.2, same.3, same.4, same.5),
            (true, true, true, true, true, true),
            "row {id} stored as {:?}, source {r}",
            same.6
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_type_lands_as_the_text_input_would_store_it() {
    let pg = PgCluster::start();
    let url = pg.create_database("binary").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=2_000).map(record).collect();
    // A number PostgreSQL refuses (numeric holds 131,072 digits before the point): in a first sync, whose table
    // loads without its unique keys, the record is found and filed, the rest lands.
    let mut refused = record(5_000);
    refused["amount"] = serde_json::from_str("1e200000").unwrap();
    source.push(refused);
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "binary", &url, "none");
    let env = [("PW", "pw")];

    let first = run_synced(&file, &state, &env).await;
    assert_eq!(
        first["entities"]["items"]["inserted"],
        json!(2_000),
        "{first}"
    );
    assert_eq!(first["entities"]["items"]["failed"], json!(1), "{first}");
    let types: Vec<String> = sqlx::query_scalar(
        "SELECT attname || ' ' || format_type(atttypid, NULL) FROM pg_attribute
         WHERE attrelid = 'items'::regclass AND attname IN ('name', 'amount', 'count', 'when', 'flag', 'meta')
         ORDER BY attname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            "amount numeric",
            "count bigint",
            "flag boolean",
            "meta jsonb",
            "name text",
            "when timestamp with time zone"
        ]
    );
    assert_stored_as_text_input_would(&pool, 1..=2_000).await;
    // Nothing changed: nothing written (the stored hashes match what the rows hash to).
    let again = run_synced(&file, &state, &env).await;
    assert_eq!(
        again["entities"]["items"]["skipped"],
        json!(2_000),
        "{again}"
    );
    source.pop();

    // An operator retyped a column: the binary format no longer fits the table, the text format carries the rows.
    sqlx::query("ALTER TABLE items ALTER COLUMN name TYPE varchar(100)")
        .execute(&pool)
        .await
        .unwrap();
    source.extend((2_001..=2_400).map(record));
    server.set_records(source);
    let more = run_synced(&file, &state, &env).await;
    assert_eq!(more["entities"]["items"]["inserted"], json!(400), "{more}");
    assert_stored_as_text_input_would(&pool, 2_001..=2_400).await;
}
