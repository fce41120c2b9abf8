//! Tables keep working across the change of tracking columns (ADR 0013): a table of the first shape (text hashes
//! and run id, a `_bridge_id` primary key) is synced and undone as it is; `--apply-schema` converts it in one
//! transaction to the lean shape (bytea hashes, uuid run id, the key hash as primary key) with every row's ids,
//! values and hashes unchanged; a run made before the conversion is still undone row for row after it; an
//! unchanged re-sync of the converted table writes nothing.

use serde_json::{json, Value};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{id_names, live_id_names, run_synced, succeeded_json, syncflow_async};

/// Every row, whatever the shape: values and tracking columns as text, hashes as bare hex, in row-id order.
async fn snapshot(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT concat_ws(' | ', (to_jsonb(t) - '_bridge_key_hash' - '_bridge_data_hash')::text,
                ltrim(t.\"_bridge_key_hash\"::text, '\\x'), ltrim(t.\"_bridge_data_hash\"::text, '\\x'))
         FROM items t ORDER BY \"_bridge_id\"",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn column_types(pool: &sqlx::PgPool) -> Vec<String> {
    sqlx::query_scalar(
        "SELECT attname || ' ' || format_type(atttypid, NULL) FROM pg_attribute
         WHERE attrelid = 'items'::regclass AND attname IN ('_bridge_key_hash', '_bridge_data_hash', '_bridge_run_id')
         ORDER BY attname",
    )
    .fetch_all(pool)
    .await
    .unwrap()
}

async fn primary_key(pool: &sqlx::PgPool) -> String {
    sqlx::query_scalar(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'p'",
    )
    .fetch_one(pool)
    .await
    .unwrap()
}

/// Turns a lean table back into the first shape, as a table made before session 11 is.
async fn make_first_shape(pool: &sqlx::PgPool) {
    let pk: String = sqlx::query_scalar(
        "SELECT conname::text FROM pg_constraint WHERE conrelid = 'items'::regclass AND contype = 'p'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    sqlx::query(&format!(
        "ALTER TABLE items DROP CONSTRAINT \"{pk}\",
           ALTER COLUMN \"_bridge_key_hash\" TYPE text USING encode(\"_bridge_key_hash\", 'hex'),
           ALTER COLUMN \"_bridge_data_hash\" TYPE text USING encode(\"_bridge_data_hash\", 'hex'),
           ALTER COLUMN \"_bridge_run_id\" TYPE text,
           ADD PRIMARY KEY (\"_bridge_id\"), ADD UNIQUE (\"_bridge_key_hash\")"
    ))
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE \"_syncflow_undo_rows\" SET image = image
                   || jsonb_build_object('_bridge_key_hash', ltrim(image->>'_bridge_key_hash', '\\x'),
                                         '_bridge_data_hash', ltrim(image->>'_bridge_data_hash', '\\x'))")
        .execute(pool)
        .await
        .unwrap();
}

/// bytea hashes, uuid run id, the key hash as primary key.
async fn assert_lean(pool: &sqlx::PgPool) {
    assert_eq!(
        column_types(pool).await,
        [
            "_bridge_data_hash bytea",
            "_bridge_key_hash bytea",
            "_bridge_run_id uuid"
        ]
    );
    assert_eq!(primary_key(pool).await, "PRIMARY KEY (_bridge_key_hash)");
}

fn counts(summary: &Value) -> [u64; 5] {
    let c = &summary["entities"]["items"];
    ["inserted", "updated", "deleted", "skipped", "failed"]
        .map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

/// 1 in 20 renamed, 1 in 40 gone, `new` more: a run that updates, deletes and inserts.
fn mutate(source: &mut Vec<Value>, tag: &str, new: std::ops::RangeInclusive<u64>) {
    for r in source
        .iter_mut()
        .filter(|r| r["id"].as_u64().unwrap() % 20 == 0)
    {
        r["name"] = json!(format!("{} ({tag})", r["name"].as_str().unwrap()));
    }
    source.retain(|r| r["id"].as_u64().unwrap() % 40 != 1);
    source.extend(new.map(item));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_of_the_first_shape_is_synced_undone_and_converted_row_for_row() {
    let pg = PgCluster::start();
    let url = pg.create_database("lean").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=8_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "lean", &url, "hard");
    let env = [("PW", "pw")];
    let run_as_is = || {
        let (file, state) = (file.clone(), state.clone());
        async move {
            let out =
                syncflow_async(&["run", file.to_str().unwrap(), "--json"], &state, &env).await;
            succeeded_json(&out)
        }
    };

    // A new table is lean.
    run_synced(&file, &state, &env).await;
    assert_lean(&pool).await;
    let octets: (i32, i32) = sqlx::query_as(
        "SELECT max(octet_length(\"_bridge_key_hash\")), max(octet_length(\"_bridge_data_hash\")) FROM items",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(octets, (16, 32));

    // The same table as it was made before: synced as it is (no --apply-schema), shape kept.
    make_first_shape(&pool).await;
    let first_shape = column_types(&pool).await;
    assert_eq!(
        first_shape,
        [
            "_bridge_data_hash text",
            "_bridge_key_hash text",
            "_bridge_run_id text"
        ]
    );
    let unchanged = run_as_is().await;
    assert_eq!(counts(&unchanged), [0, 0, 0, 8_000, 0], "{unchanged}");
    let before = snapshot(&pool).await;
    mutate(&mut source, "a", 8_001..=8_300);
    server.set_records(source.clone());
    let changed = run_as_is().await;
    assert_eq!(counts(&changed), [300, 400, 200, 7_400, 0], "{changed}");
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    assert_eq!(
        column_types(&pool).await,
        first_shape,
        "no conversion without --apply-schema"
    );
    let run_a = changed["run_id"].as_str().unwrap().to_owned();
    let after_a = snapshot(&pool).await;

    // Undone as it is, and synced again.
    let out = syncflow_async(&["undo", &run_a, "--json"], &state, &env).await;
    succeeded_json(&out);
    assert_eq!(snapshot(&pool).await, before, "undo of a first-shape table");
    let again = run_as_is().await;
    assert_eq!(counts(&again), [300, 400, 200, 7_400, 0], "{again}");
    let run_b = again["run_id"].as_str().unwrap().to_owned();
    let after_b = snapshot(&pool).await;
    assert_eq!(after_b.len(), after_a.len());

    // A full refresh cut short would have left a shadow of the same shape: it is converted alongside.
    sqlx::query("CREATE TABLE \"_sfnew_items\" (LIKE items INCLUDING ALL)")
        .execute(&pool)
        .await
        .unwrap();

    // --apply-schema converts it: every row as it was, hashes now bytea; nothing to write.
    let converted = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&converted), [0, 0, 0, 8_100, 0], "{converted}");
    assert_lean(&pool).await;
    assert_eq!(
        snapshot(&pool).await,
        after_b,
        "the conversion changes no row"
    );
    let shadow: Vec<String> = sqlx::query_scalar(
        "SELECT format_type(atttypid, NULL) FROM pg_attribute WHERE attrelid = '\"_sfnew_items\"'::regclass
         AND attname IN ('_bridge_key_hash', '_bridge_data_hash', '_bridge_run_id') ORDER BY attname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        shadow,
        ["bytea", "bytea", "uuid"],
        "the shadow converted too"
    );
    sqlx::query("DROP TABLE \"_sfnew_items\"")
        .execute(&pool)
        .await
        .unwrap();

    // The run made before the conversion is undone row for row after it (its images were converted too).
    let out = syncflow_async(&["undo", &run_b, "--json"], &state, &env).await;
    let report = succeeded_json(&out);
    assert_eq!(
        report["tables"],
        json!([{"table": "items", "removed": 300, "restored": 600}]),
        "{report}"
    );
    assert_eq!(snapshot(&pool).await, before, "undo across the conversion");

    // And the converted table syncs on: the changes again, then nothing.
    let c = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&c), [300, 400, 200, 7_400, 0], "{c}");
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    let c = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&c), [0, 0, 0, 8_100, 0], "{c}");
}
