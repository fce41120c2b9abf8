//! `cargo run --release -p syncflow-tests --bin syncflow-bench [-- ROWS…]`: syncs N generated rows from the in-repo
//! REST test server into a throwaway PostgreSQL with the release `syncflow` CLI, loads the same rows with
//! `psql \copy` for reference, and prints rows/s, the ratio to COPY, the unchanged re-sync and peak RSS.
//! Prints figures; asserts nothing.

use std::path::Path;
use std::process::Command;
use std::time::Instant;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;

use syncflow_tests::products::{row, spawn_run, timed_run, PASSWORD};

/// Sums of the per-page stage timings the run stored (the seeds' sync_batches).
async fn stage_seconds(state: &Path) -> (f64, f64, f64) {
    let Ok(pool) = sqlx::SqlitePool::connect(&format!("sqlite://{}", state.display())).await else {
        return (0.0, 0.0, 0.0);
    };
    let row: Result<(i64, i64, i64), _> = sqlx::query_as(
        "SELECT sum(fetch_ms), sum(transform_ms), sum(ingest_ms) FROM sync_batches
         WHERE run_id = (SELECT id FROM runs ORDER BY started_at DESC, id DESC LIMIT 1)",
    )
    .fetch_one(&pool)
    .await;
    row.map(|(f, t, i)| (f as f64 / 1e3, t as f64 / 1e3, i as f64 / 1e3))
        .unwrap_or((0.0, 0.0, 0.0))
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let sizes: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![100_000, 1_000_000]
    } else {
        sizes
    };
    let bin = syncflow_tests::release_syncflow();
    println!(
        "{:>9} {:>10} {:>10} {:>8} {:>12} {:>10} {:>9}",
        "rows", "sync s", "rows/s", "copy s", "sync/copy", "resync s", "RSS MB"
    );
    for n in sizes {
        let cluster = PgCluster::start();
        let url = cluster.create_database("bench").await;
        let server = ErpServer::start((1..=n).map(row).collect(), PASSWORD, 5_000, 3600).await;
        let dir = tempfile::tempdir().expect("temp dir");
        // Deletes on, as pipelines that follow their source have them.
        let file = syncflow_tests::products::pipeline_deleting(
            &server,
            dir.path(),
            "bench",
            &url,
            "items",
            "soft",
        );
        let state = dir.path().join("state.db");
        let first_run = timed_run(&bin, &file, &state);
        let (first, rss, summary) = (first_run.secs, first_run.rss_mb, first_run.summary);
        assert_eq!(
            summary["entities"]["items"]["inserted"].as_u64(),
            Some(n),
            "first sync: {summary}"
        );
        let stages_first = stage_seconds(&state).await;
        let again_run = timed_run(&bin, &file, &state);
        let (again, summary) = (again_run.secs, again_run.summary);
        let stages_again = stage_seconds(&state).await;
        assert_eq!(
            summary["entities"]["items"]["skipped"].as_u64(),
            Some(n),
            "re-sync: {summary}"
        );
        let copy = syncflow_tests::products::copy_reference(&url, n, dir.path());
        println!(
            "{n:>9} {first:>10.2} {:>10.0} {copy:>8.2} {:>12.2} {again:>10.2} {rss:>9.1}",
            n as f64 / first,
            first / copy
        );
        println!("          stages (fetch / transform / ingest, s): first {stages_first:.2?}, re-sync {stages_again:.2?}, re-sync / first = {:.2}", again / first);
        println!(
            "          CPU (user + system, s): the CLI first {:.2}, re-sync {:.2}; the test server (this process) first {:.2}, re-sync {:.2}",
            first_run.cpu_s, again_run.cpu_s, first_run.server_cpu_s, again_run.server_cpu_s
        );
        if std::env::var_os("SYNCFLOW_BENCH_QUICK").is_some() {
            // While tuning: the ratios only, without the floor and the pause check.
            continue;
        }
        let floor = syncflow_tests::products::copy_like_target(&url, "items", dir.path());
        println!(
            "          \\copy of the synced rows into a table shaped like the target (tracking columns, its keys and \
             indexes): {floor:.2} s; first sync / that = {:.2}",
            first / floor
        );
        let (copied, indexed) =
            syncflow_tests::products::copy_then_index_like_target(&url, "items", dir.path());
        println!(
            "          floor of a first sync (\\copy into an index-less table of the target's shape {copied:.2} s, then \
             its indexes built {indexed:.2} s): {:.2} s; first sync / that = {:.2}; bare \\copy {copy:.2} s, first sync \
             / that = {:.2}",
            copied + indexed,
            first / (copied + indexed),
            first / copy
        );
        let paused = pause_and_resume(&bin, &server, dir.path(), &url, n, first / 2.0).await;
        println!("          {paused}");
    }
}

/// A fresh sync of the same rows into another table, paused (SIGINT) half-way, then resumed: how long the pause
/// took to take effect, and whether the resumed run left every row exactly once.
async fn pause_and_resume(
    bin: &Path,
    server: &ErpServer,
    dir: &Path,
    url: &str,
    n: u64,
    after_secs: f64,
) -> String {
    let file = syncflow_tests::products::pipeline(server, dir, "bench-pause", url, "items_pause");
    let state = dir.join("pause-state.db");
    let mut child = spawn_run(bin, &file, &state, std::process::Stdio::null());
    std::thread::sleep(std::time::Duration::from_secs_f64(after_secs));
    let signalled = Instant::now();
    let _ = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    let took = signalled.elapsed().as_secs_f64();
    let resumed = timed_run(bin, &file, &state);
    let (resume, summary) = (resumed.secs, resumed.summary);
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    let (rows, distinct): (i64, i64) =
        sqlx::query_as("SELECT count(*), count(DISTINCT id) FROM items_pause")
            .fetch_one(&pool)
            .await
            .expect("count");
    format!(
        "pause after {after_secs:.1} s: took effect in {took:.2} s (exit {code}); resume {resume:.2} s ({}), \
         {rows} rows, {distinct} distinct of {n}",
        summary["status"]
    )
}
