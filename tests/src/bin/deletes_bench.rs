//! `cargo run --release -p syncflow-tests --bin syncflow-deletes-bench [-- ROWS]` (default 1,000,000): what delete
//! detection costs. Syncs the products with `deletes = "none"` and with `deletes = "soft"` (first sync and
//! unchanged re-sync each, release CLI, throwaway PostgreSQL) and prints the times and their ratios; then re-syncs a
//! mutated source (1 % gone, 1 % changed, 1 % new) and checks the live rows against it; then sends SIGTERM while
//! the end-of-pass deletes run and prints how long the pause took, and whether the next run is exact.
//! Prints figures; asserts only that runs succeed.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::products::{pipeline_deleting, row, spawn_run, timed_run};

/// Unchanged re-syncs of each kind, taken in turns.
const ROUNDS: usize = 5;

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(f64::NAN)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.replace('_', "").parse().ok())
        .unwrap_or(1_000_000);
    let bin = syncflow_tests::release_syncflow();
    let cluster = PgCluster::start();
    let url = cluster.create_database("deletes").await;
    let mut records: Vec<serde_json::Value> = (1..=n).map(row).collect();
    let server = ErpServer::start(
        records.clone(),
        syncflow_tests::products::PASSWORD,
        5_000,
        3600,
    )
    .await;
    let dir = tempfile::tempdir().expect("temp dir");
    println!("{n} rows: first sync, then unchanged re-syncs taken in turns (the machine's noise is ±20 %), seconds");
    let mut runs = Vec::new();
    for deletes in ["none", "soft"] {
        let table = format!("items_{deletes}");
        let file = pipeline_deleting(&server, dir.path(), &table, &url, &table, deletes);
        let state = dir.path().join(format!("{table}.db"));
        let run = timed_run(&bin, &file, &state);
        let (first, summary) = (run.secs, run.summary);
        assert_eq!(
            summary["entities"]["items"]["inserted"].as_u64(),
            Some(n),
            "{summary}"
        );
        println!("  deletes = {deletes:<5} first sync {first:>7.2}");
        runs.push((deletes, file, state, first, Vec::new()));
    }
    for _ in 0..ROUNDS {
        for (_, file, state, _, again) in runs.iter_mut() {
            let run = timed_run(&bin, file, state);
            let (secs, summary) = (run.secs, run.summary);
            assert_eq!(
                summary["entities"]["items"]["skipped"].as_u64(),
                Some(n),
                "{summary}"
            );
            again.push(secs);
        }
    }
    for (deletes, _, _, _, again) in &runs {
        println!(
            "  deletes = {deletes:<5} re-syncs {again:.2?}, median {:.2}",
            median(again)
        );
    }
    let (none, soft) = (&runs[0], &runs[1]);
    println!(
        "  soft / none: first sync {:.3} x (the same work: a pass into an empty table records no keys), \
         re-sync median {:.3} x",
        soft.3 / none.3,
        median(&soft.4) / median(&none.4)
    );

    // A mutated source: every 100th record gone, every 100th (offset 50) changed, 1 % new.
    records.retain(|r| r["id"].as_u64().is_some_and(|i| i % 100 != 0));
    for r in records
        .iter_mut()
        .filter(|r| r["id"].as_u64().is_some_and(|i| i % 100 == 50))
    {
        r["name"] = serde_json::json!("changed");
    }
    records.extend((n + 1..=n + n / 100).map(row));
    server.set_records(records.clone());
    let file = pipeline_deleting(
        &server,
        dir.path(),
        "items_soft",
        &url,
        "items_soft",
        "soft",
    );
    let state = dir.path().join("items_soft.db");
    let run = timed_run(&bin, &file, &state);
    let (mutated, summary) = (run.secs, run.summary);
    let exact = live_rows_match(&url, "items_soft", &records).await;
    println!(
        "  mutated re-sync (soft): {mutated:.2} s, {} — live rows {}",
        summary["entities"]["items"],
        if exact { "EXACT" } else { "DIFFER" }
    );

    // SIGTERM during the end-of-pass deletes.
    records.retain(|r| r["id"].as_u64().is_some_and(|i| i % 100 != 1));
    server.set_records(records.clone());
    let line = stop_in_the_deletes(&bin, &file, &state, &url).await;
    let run = timed_run(&bin, &file, &state);
    let (resumed, summary) = (run.secs, run.summary);
    let exact = live_rows_match(&url, "items_soft", &records).await;
    println!(
        "  {line}; next run {resumed:.2} s ({}), deleted {} — live rows {}",
        summary["status"],
        summary["entities"]["items"]["deleted"],
        if exact { "EXACT" } else { "DIFFER" }
    );
}

/// Starts a run, waits for its end-of-pass delete statements to appear in pg_stat_activity, sends SIGTERM and says
/// how long the pause took to take effect.
async fn stop_in_the_deletes(bin: &Path, file: &Path, state: &Path, url: &str) -> String {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let mut child = spawn_run(bin, file, state, Stdio::null());
    // This run's connections only (the last run's may still be closing).
    let application = format!("syncflow {}@%", child.id());
    loop {
        let in_deletes: bool = sqlx::query_scalar(
            "SELECT count(*) > 0 FROM pg_stat_activity WHERE application_name LIKE $1
             AND state = 'active' AND query LIKE '%\"_bridge_deleted_at\" = now()%'",
        )
        .bind(&application)
        .fetch_one(&pool)
        .await
        .unwrap_or(false);
        if in_deletes {
            break;
        }
        if child.try_wait().ok().flatten().is_some() {
            return "SIGTERM: the run ended before its deletes were caught".into();
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let asked = Instant::now();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    format!(
        "SIGTERM in the delete phase: exit {code} after {:.2} s",
        asked.elapsed().as_secs_f64()
    )
}

/// Whether the live rows of `table` are exactly the records (ids and names).
async fn live_rows_match(url: &str, table: &str, records: &[serde_json::Value]) -> bool {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let live: Vec<(i64, String)> = sqlx::query_as(&format!(
        "SELECT id, name FROM \"{table}\" WHERE \"_bridge_deleted_at\" IS NULL ORDER BY id"
    ))
    .fetch_all(&pool)
    .await
    .expect("read");
    live == syncflow_tests::id_names(records)
}
