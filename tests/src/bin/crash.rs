//! `cargo run --release -p syncflow-tests --bin syncflow-crash [-- ROWS KILLS SEED]` (default 1,000,000 rows, 10
//! kills): syncs generated rows from the in-repo REST test server into a throwaway PostgreSQL with the release
//! `syncflow` CLI, kills the CLI with SIGKILL at random moments, runs it again after each kill, and finally to the
//! end; then compares the target with the same rows loaded by `psql \copy` — row count, distinct keys, a digest of
//! every value — and checks the run's counters add up. Prints what it saw; exits 1 when the target is not exact.

use serde_json::Value;
use std::process::Stdio;
use std::time::{Duration, Instant};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::products::{row, spawn_run, PASSWORD};

/// xorshift64*: reproducible random moments from a printed seed.
struct Moments(u64);

impl Moments {
    fn next_f64(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        (self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// Every value of a row as text, in key order, hashed: the same spelling on both sides.
const DIGEST: &str = "SELECT md5(string_agg(concat_ws('|', id, sku, name, qty, price, active, category, \
     to_char(updated_at::timestamptz AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), coalesce(note, '<null>'), weight), \
     ',' ORDER BY id)) FROM ";

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.replace('_', "").parse().ok())
        .collect();
    let rows = args.first().copied().unwrap_or(1_000_000);
    let kills = args.get(1).copied().unwrap_or(10);
    let seed = args.get(2).copied().unwrap_or_else(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1)
            | 1
    });
    println!("{rows} rows, {kills} kills, seed {seed}");
    let bin = syncflow_tests::release_syncflow();
    let cluster = PgCluster::start();
    let url = cluster.create_database("crash").await;
    let server =
        syncflow_tests::erp::ErpServer::start((1..=rows).map(row).collect(), PASSWORD, 5_000, 3600)
            .await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = syncflow_tests::products::pipeline(&server, dir.path(), "crash", &url, "items");
    let state = dir.path().join("state.db");
    let pool = sqlx::PgPool::connect(&url).await.expect("connect");
    let committed = || async {
        sqlx::query_scalar::<_, i64>("SELECT count(*) FROM items")
            .fetch_one(&pool)
            .await
            .unwrap_or(0)
    };

    // How far the pass has committed, from the checkpoint the target keeps with each page (cheap to poll).
    let checkpointed = || async {
        sqlx::query_scalar::<_, i64>(
            "SELECT coalesce(max((checkpoint->'counts'->>'fetched')::bigint), 0) FROM _syncflow_checkpoints",
        )
        .fetch_one(&pool)
        .await
        .map_or(0, |n| n as u64)
    };
    // Ten random points of the first pass, in order: each run is killed once the target holds that many rows
    // plus a random few milliseconds (so the kill lands anywhere in a page's fetch, transform, COPY or commit).
    let mut moments = Moments(seed);
    let mut points: Vec<u64> = (0..kills)
        .map(|_| (moments.next_f64() * rows as f64 * 0.95) as u64)
        .collect();
    points.sort_unstable();
    let started = Instant::now();
    for (k, point) in points.into_iter().enumerate() {
        let mut child = spawn_run(&bin, &file, &state, Stdio::piped());
        let run_started = Instant::now();
        let ended = loop {
            if let Ok(Some(status)) = child.try_wait() {
                break Some(status);
            }
            if checkpointed().await >= point {
                break None;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        let jitter = moments.next_f64() * 0.3;
        let outcome = match ended {
            Some(status) => format!("ended by itself ({status})"),
            None => {
                tokio::time::sleep(Duration::from_secs_f64(jitter)).await;
                let _ = child.kill();
                let _ = child.wait();
                format!(
                    "killed at {:.2} s (past {point} rows, +{:.0} ms)",
                    run_started.elapsed().as_secs_f64(),
                    jitter * 1e3
                )
            }
        };
        println!(
            "run {:>2}: {outcome}; rows in the target now {}",
            k + 1,
            committed().await
        );
    }
    let final_started = Instant::now();
    let child = spawn_run(&bin, &file, &state, Stdio::piped());
    let output = child.wait_with_output().expect("final run");
    let summary: Value = String::from_utf8_lossy(&output.stdout)
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    println!(
        "final run: exit {:?} in {:.2} s (all runs {:.1} s), status {}",
        output.status.code(),
        final_started.elapsed().as_secs_f64(),
        started.elapsed().as_secs_f64(),
        summary["status"]
    );

    syncflow_tests::products::copy_reference(&url, rows, dir.path());
    let (count, distinct_ids, distinct_keys): (i64, i64, i64) = sqlx::query_as(
        "SELECT count(*), count(DISTINCT id), count(DISTINCT \"_bridge_key_hash\") FROM items",
    )
    .fetch_one(&pool)
    .await
    .expect("count");
    let digest = |table: &str| {
        let sql = format!("{DIGEST}{table}");
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, Option<String>>(&sql)
                .fetch_one(&pool)
                .await
                .expect("digest")
        }
    };
    let (target, reference) = (digest("items").await, digest("copy_ref").await);
    let c = &summary["entities"]["items"];
    let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
    let adds_up = n("fetched")
        == n("inserted")
            + n("updated")
            + n("skipped")
            + n("failed")
            + n("pending")
            + n("conflicts");
    println!("target: {count} rows, {distinct_ids} distinct ids, {distinct_keys} distinct key hashes (source {rows})");
    println!(
        "values: digest {} the source's ({})",
        if target == reference {
            "equals"
        } else {
            "DIFFERS from"
        },
        target.as_deref().unwrap_or_default()
    );
    println!("counters of the run: {c} — add up: {adds_up}");
    let exact = output.status.code() == Some(0)
        && count as u64 == rows
        && distinct_ids as u64 == rows
        && distinct_keys as u64 == rows
        && target == reference
        && adds_up
        && n("fetched") == rows;
    println!("{}", if exact { "EXACT" } else { "NOT EXACT" });
    if !exact {
        std::process::exit(1);
    }
}
