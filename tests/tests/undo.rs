//! `syncflow undo RUN_ID` at a real PostgreSQL: a run that updated, deleted and inserted rows is taken back row for
//! row (ids, values and tracking columns), its checkpoint too, so the next run does its work again; only the latest
//! run that changed the target can be undone, once; what the run filed for a person is withdrawn with it; a target
//! another process holds is busy (exit 4).

use serde_json::{json, Value};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{id_names, run_synced, syncflow_async};

/// Every row of the table as PostgreSQL writes it out (all columns, tracking ones included), in row-id order,
/// and the pipeline's checkpoint.
async fn snapshot(pool: &sqlx::PgPool) -> (String, Option<String>) {
    let rows: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(t::text, E'\\n' ORDER BY \"_bridge_id\") FROM items t",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let checkpoint: Option<String> =
        sqlx::query_scalar("SELECT checkpoint::text FROM \"_syncflow_checkpoints\"")
            .fetch_optional(pool)
            .await
            .unwrap();
    (rows.unwrap_or_default(), checkpoint)
}

/// Asserts two snapshots are equal, naming the first row that differs (a table's rows are too many to print).
fn assert_same(now: &(String, Option<String>), expected: &(String, Option<String>), what: &str) {
    assert_eq!(now.1, expected.1, "{what}: the checkpoint");
    let (a, b): (Vec<&str>, Vec<&str>) = (now.0.lines().collect(), expected.0.lines().collect());
    let first = a.iter().zip(&b).position(|(x, y)| x != y);
    assert!(
        a.len() == b.len() && first.is_none(),
        "{what}: {} rows, expected {}; first difference: {:?} instead of {:?}",
        a.len(),
        b.len(),
        first.map(|i| a[i]),
        first.map(|i| b[i])
    );
}

fn counts(summary: &Value) -> [u64; 4] {
    let c = &summary["entities"]["items"];
    ["inserted", "updated", "deleted", "failed"].map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_that_updated_deleted_and_inserted_is_taken_back_row_for_row() {
    let pg = PgCluster::start();
    let url = pg.create_database("undo").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=20_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "undo", &url, "hard");
    let env = [("PW", "pw")];
    let undo = |args: Vec<String>| {
        let state = state.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            syncflow_async(&args, &state, &env).await
        }
    };

    let first = run_synced(&file, &state, &env).await;
    let first_id = first["run_id"].as_str().unwrap().to_owned();
    let before = snapshot(&pool).await;

    // 1,000 updated, 500 gone, 700 new.
    for r in source
        .iter_mut()
        .filter(|r| r["id"].as_u64().unwrap() % 20 == 0)
    {
        r["name"] = json!(format!("{} (renamed)", r["name"].as_str().unwrap()));
    }
    source.retain(|r| r["id"].as_u64().unwrap() % 40 != 1);
    source.extend((20_001..=20_700).map(item));
    server.set_records(source.clone());
    let second = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&second), [700, 1_000, 500, 0], "{second}");
    let second_id = second["run_id"].as_str().unwrap().to_owned();
    let after = snapshot(&pool).await;
    assert_ne!(after, before);

    // A preview says what will change and changes nothing.
    let out = undo(vec![
        "undo".into(),
        second_id.clone(),
        "--dry-run".into(),
        "--json".into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let preview: Value = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(preview["undone"], json!(false));
    assert_eq!(
        preview["tables"],
        json!([{"table": "items", "removed": 700, "restored": 1_500}]),
        "{preview}"
    );
    assert_same(&snapshot(&pool).await, &after, "a preview changes nothing");

    // Only the latest run that changed the target can be undone.
    let out = undo(vec!["undo".into(), first_id.clone()]).await;
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("undo {second_id} first")),
        "{}",
        stderr(&out)
    );
    let out = undo(vec!["undo".into(), "no-such-run".into()]).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("no run no-such-run"),
        "{}",
        stderr(&out)
    );

    let out = undo(vec!["undo".into(), second_id.clone(), "--json".into()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(report["undone"], json!(true));
    assert_same(
        &snapshot(&pool).await,
        &before,
        "the table and the checkpoint are what they were before the run, row for row",
    );

    let out = undo(vec!["undo".into(), second_id.clone()]).await;
    assert_eq!(out.status.code(), Some(2), "undone once only");
    assert!(stderr(&out).contains("undone already"), "{}", stderr(&out));
    let out = undo(vec![
        "runs".into(),
        "list".into(),
        "undo".into(),
        "--json".into(),
    ])
    .await;
    let runs: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let undone: Vec<&str> = runs
        .iter()
        .filter(|r| r["undone_at"].is_string())
        .map(|r| r["run_id"].as_str().unwrap())
        .collect();
    assert_eq!(undone, [second_id.as_str()]);

    // The next run does the undone run's work again: the source is still changed.
    let third = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&third), [700, 1_000, 500, 0], "{third}");
    assert_ne!(
        third["run_id"],
        json!(second_id),
        "an undone run is never resumed"
    );
    assert_eq!(
        syncflow_tests::live_id_names(&pool, "items").await,
        id_names(&source)
    );

    // The earlier run is the latest that changed the target once the later one is undone.
    let out = undo(vec![
        "undo".into(),
        third["run_id"].as_str().unwrap().into(),
    ])
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let out = undo(vec!["undo".into(), first_id.clone()]).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let left: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(left, 0, "undoing the first sync empties the table");
    let fresh = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&fresh), [source.len() as u64, 0, 0, 0], "{fresh}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soft_deletes_and_failed_records_are_withdrawn_and_a_held_target_is_busy() {
    let pg = PgCluster::start();
    let url = pg.create_database("undo_soft").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=3_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "soft", &url, "soft");
    let env = [("PW", "pw")];
    run_synced(&file, &state, &env).await;
    // Soft deletes first (a pass with a failed record infers none).
    source.retain(|r| r["id"].as_u64().unwrap() > 30);
    server.set_records(source.clone());
    let deleting = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&deleting), [0, 0, 30, 0], "{deleting}");
    let before = snapshot(&pool).await;
    for r in source.iter_mut().take(10) {
        r["name"] = json!("changed");
    }
    source.push(json!({"name": "no id"}));
    server.set_records(source.clone());
    let failing = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&failing), [0, 10, 0, 1], "{failing}");
    let failing_id = failing["run_id"].as_str().unwrap().to_owned();

    // Another process holds the pipeline's lock on the target database.
    let mut holder = pool.acquire().await.unwrap();
    sqlx::query("SELECT pg_advisory_lock(hashtextextended('syncflow pipeline soft', 0))")
        .execute(&mut *holder)
        .await
        .unwrap();
    let out = syncflow_async(&["undo", &failing_id], &state, &env).await;
    assert_eq!(out.status.code(), Some(4), "{}", stderr(&out));
    sqlx::query("SELECT pg_advisory_unlock_all()")
        .execute(&mut *holder)
        .await
        .unwrap();
    drop(holder);

    let out = syncflow_async(&["undo", &failing_id, "--json"], &state, &env).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(report["withdrawn"]["failed_records"], json!(1), "{report}");
    assert_same(&snapshot(&pool).await, &before, "after the undo");
    let out = syncflow_async(&["failed", "list", "soft", "--json"], &state, &env).await;
    let failed: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(failed.is_empty(), "{failed:?}");

    // The run of the soft deletes is next: the 30 rows come back alive.
    let out = syncflow_async(
        &["undo", deleting["run_id"].as_str().unwrap()],
        &state,
        &env,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let marked: i64 =
        sqlx::query_scalar("SELECT count(*) FROM items WHERE \"_bridge_deleted_at\" IS NOT NULL")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(marked, 0);
    let live: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 3_000);
}

/// Another pipeline writing a page into the same database holds the undo table (its page's transaction records the
/// run there) for as long as the page takes; a run starting meanwhile (or a schema review, a Test target) must not
/// queue behind it: connecting takes no lock on the engine's tables once they are made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_starts_while_another_pipelines_page_holds_the_undo_table() {
    let pg = PgCluster::start();
    let url = pg.create_database("undo_shared").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let mut source: Vec<Value> = (1..=2_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.items_to_postgres(dir.path(), "shared", &url, "hard");
    let env = [("PW", "pw")];
    run_synced(&file, &state, &env).await;

    let mut writer = pool.begin().await.unwrap();
    sqlx::query(
        "INSERT INTO \"_syncflow_undo_runs\" (run_id, pipeline, entity, tbl) \
         VALUES ('another-run', 'another', 'orders', 'orders')",
    )
    .execute(&mut *writer)
    .await
    .unwrap();
    source[0]["name"] = json!("renamed while another pipeline writes");
    server.set_records(source.clone());
    let file_arg = file.to_str().unwrap();
    let out = syncflow_async(&["run", file_arg, "--json"], &state, &env).await;
    writer.rollback().await.unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let summary = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(counts(&summary), [0, 1, 0, 0], "{summary}");
    let name: String = sqlx::query_scalar("SELECT name FROM items WHERE id = 1")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "renamed while another pipeline writes");
}

/// Every row of an SQLite table, each value as SQLite quotes it (so a type change shows), in row-id order.
async fn sqlite_snapshot(pool: &sqlx::SqlitePool) -> String {
    let columns: Vec<String> =
        sqlx::query_scalar("SELECT name FROM pragma_table_info('items') ORDER BY cid")
            .fetch_all(pool)
            .await
            .unwrap();
    let row: Vec<String> = columns.iter().map(|c| format!("quote(\"{c}\")")).collect();
    let sql = format!(
        "SELECT group_concat(r, char(10)) FROM (SELECT {} AS r FROM items ORDER BY \"_bridge_id\")",
        row.join(" || ',' || ")
    );
    let all: Option<String> = sqlx::query_scalar(&sql).fetch_one(pool).await.unwrap();
    all.unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_sqlite_target_is_taken_back_row_for_row_too() {
    let mut source: Vec<Value> = (1..=3_000).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = server.pipeline_file(
        dir.path(),
        "lite",
        "{ env = \"PW\" }",
        "kind = \"sqlite\"\npath = \"target.db\"",
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 1000 }\nbusiness_key = [\"id\"]\n\
         deletes = \"hard\"",
    );
    let env = [("PW", "pw")];
    run_synced(&file, &state, &env).await;
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("target.db").display()
    ))
    .await
    .unwrap();
    let before = sqlite_snapshot(&pool).await;
    for r in source
        .iter_mut()
        .filter(|r| r["id"].as_u64().unwrap() % 20 == 0)
    {
        r["name"] = json!(format!("{} (renamed)", r["name"].as_str().unwrap()));
    }
    source.retain(|r| r["id"].as_u64().unwrap() % 40 != 1);
    source.extend((3_001..=3_100).map(item));
    server.set_records(source.clone());
    let second = run_synced(&file, &state, &env).await;
    assert_eq!(counts(&second), [100, 150, 75, 0], "{second}");
    assert_ne!(sqlite_snapshot(&pool).await, before);

    let out = syncflow_async(
        &["undo", second["run_id"].as_str().unwrap(), "--json"],
        &state,
        &env,
    )
    .await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(
        report["tables"],
        json!([{"table": "items", "removed": 100, "restored": 225}]),
        "{report}"
    );
    let now = sqlite_snapshot(&pool).await;
    let first_difference = now.lines().zip(before.lines()).find(|(a, b)| a != b);
    assert!(
        now == before,
        "the SQLite table is what it was before the run, row for row; first difference: {first_difference:?}"
    );
    let third = run_synced(&file, &state, &env).await;
    assert_eq!(
        counts(&third),
        [100, 150, 75, 0],
        "the undone work is done again: {third}"
    );
}
