//! `delta = "full"` at a real PostgreSQL: each pass loads a shadow table and swaps it in at its end, so a reader
//! polling the table sees only the old table or the new one; a refresh killed twice (kill -9) resumes its shadow
//! and ends exact; the delete guard holds the swap; undo swaps the old table back, row for row.

use serde_json::{json, Value};
use std::time::Duration;
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{
    finished, id_names, live_id_names, run_synced, spawn_syncflow, syncflow_async,
};

fn refresh_pipeline(dir: &std::path::Path, server: &ErpServer, url: &str) -> std::path::PathBuf {
    let file = server.items_to_postgres(dir, "refresh", url, "hard");
    let text = std::fs::read_to_string(&file).unwrap() + "delta = \"full\"\n";
    std::fs::write(&file, text).unwrap();
    file
}

async fn count(pool: &sqlx::PgPool, table: &str) -> i64 {
    sqlx::query_scalar(&format!("SELECT count(*) FROM {table}"))
        .fetch_one(pool)
        .await
        .unwrap_or(-1)
}

async fn snapshot(pool: &sqlx::PgPool) -> String {
    let rows: Option<String> = sqlx::query_scalar(
        "SELECT string_agg(t::text, E'\\n' ORDER BY \"_bridge_id\") FROM items t",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    rows.unwrap_or_default()
}

/// Kills the run once the shadow holds at least `rows` rows.
async fn kill_when_shadow_holds(pool: &sqlx::PgPool, child: std::process::Child, rows: i64) {
    let mut child = child;
    for _ in 0..2_000 {
        if count(pool, "\"_sfnew_items\"").await >= rows {
            child.kill().unwrap();
            let _ = child.wait();
            return;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    panic!("the shadow never held {rows} rows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_refresh_swaps_whole_tables_survives_kill_9_and_can_be_undone() {
    let pg = PgCluster::start();
    let url = pg.create_database("refresh").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    // 20,000 rows in the suite; SYNCFLOW_REFRESH_ROWS=1000000 (with SYNCFLOW_TEST_PROFILE=release) at scale.
    let n: u64 = std::env::var("SYNCFLOW_REFRESH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let (gone, new_rows) = (n / 40, 700);
    let after = (n - gone + new_rows) as i64;
    let mut source: Vec<Value> = (1..=n).map(item).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = refresh_pipeline(dir.path(), &server, &url);
    let env = [("PW", "pw")];

    let first = run_synced(&file, &state, &env).await;
    let first_id = first["run_id"].as_str().unwrap().to_owned();
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    let before = snapshot(&pool).await;
    sqlx::query("CREATE ROLE reader")
        .execute(&pool)
        .await
        .unwrap();
    sqlx::query("GRANT SELECT ON items TO reader")
        .execute(&pool)
        .await
        .unwrap();

    // 1 in 20 changed, 1 in 40 gone, 700 new; a reader polls the table all through the refresh.
    for r in source
        .iter_mut()
        .filter(|r| r["id"].as_u64().unwrap() % 20 == 0)
    {
        r["name"] = json!("changed");
    }
    source.retain(|r| r["id"].as_u64().unwrap() % 40 != 1);
    source.extend((n + 1..=n + new_rows).map(item));
    server.set_records(source.clone());
    // Long enough for the reader to see the shadow fill (a larger table takes that long anyway).
    server.set_delay_ms(40 * 20_000 / n);
    let reading = tokio::spawn({
        let pool = pool.clone();
        async move {
            let mut seen = std::collections::BTreeSet::new();
            for _ in 0..400 {
                let view: (i64, i64, Option<String>) = sqlx::query_as(
                    "SELECT count(*), count(DISTINCT \"_bridge_run_id\"), min(\"_bridge_run_id\"::text) FROM items",
                )
                .fetch_one(&pool)
                .await
                .unwrap();
                seen.insert(view);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            seen
        }
    });
    let second = run_synced(&file, &state, &env).await;
    let second_id = second["run_id"].as_str().unwrap().to_owned();
    let c = &second["entities"]["items"];
    assert_eq!(
        (c["inserted"].as_u64(), c["deleted"].as_u64()),
        (Some(after as u64), Some(gone)),
        "{second}"
    );
    let seen = reading.await.unwrap();
    let old = (n as i64, 1, Some(first_id.clone()));
    let new = (after, 1, Some(second_id.clone()));
    assert!(
        seen.iter().all(|v| *v == old || *v == new),
        "a reader saw a table that was neither the old nor the new one: {seen:?}"
    );
    assert!(seen.contains(&new), "{seen:?}");
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    let readable: bool =
        sqlx::query_scalar("SELECT has_table_privilege('reader', 'items', 'SELECT')")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert!(readable, "the refreshed table keeps the old one's grants");

    // Undo swaps the old table back, row for row.
    let out = syncflow_async(&["undo", &second_id, "--json"], &state, &env).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let now = snapshot(&pool).await;
    assert!(
        now == before,
        "the table before the refresh is back, row for row"
    );

    // Killed twice while it fills its shadow, then run again: exact, and the old table stood until the swap.
    let args = ["run", file.to_str().unwrap(), "--apply-schema", "--json"];
    for rows in [n * 3 / 20, n * 11 / 20] {
        let child = spawn_syncflow(&args, &state, &env);
        kill_when_shadow_holds(&pool, child, rows as i64).await;
        assert_eq!(
            count(&pool, "items").await,
            n as i64,
            "the old table stands"
        );
    }
    server.set_delay_ms(0);
    let out = finished(spawn_syncflow(&args, &state, &env)).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    let duplicates: i64 =
        sqlx::query_scalar("SELECT count(*) - count(DISTINCT \"_bridge_key_hash\") FROM items")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(duplicates, 0);
    assert_eq!(
        count(&pool, "\"_sfnew_items\"").await,
        -1,
        "the shadow was swapped in"
    );

    // A refresh that would drop most of the table is held by the delete guard: the table stays as it is.
    server.set_records(source[..5_000].to_vec());
    let out = syncflow_async(&args, &state, &env).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("would delete"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    let confirmed = syncflow_async(
        &[
            "run",
            file.to_str().unwrap(),
            "--apply-schema",
            "--confirm-deletes",
            "--json",
        ],
        &state,
        &env,
    )
    .await;
    assert_eq!(
        confirmed.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&confirmed.stderr)
    );
    assert_eq!(
        live_id_names(&pool, "items").await,
        id_names(&source[..5_000])
    );
}
