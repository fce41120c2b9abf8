//! `cargo run --release -p syncflow-tests --bin syncflow-pg-bench [-- ROWS]`: a PostgreSQL table of N 10-column rows
//! synced into another database of the same throwaway cluster with the release `syncflow` CLI, against the same
//! rows piped `COPY … TO STDOUT | COPY … FROM STDIN` between the two databases. Prints figures; asserts nothing
//! but the counts.

use std::process::{Command, Stdio};
use std::time::Instant;
use syncflow_tests::pg::PgCluster;

#[tokio::main]
async fn main() {
    let rows: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let bin = syncflow_tests::release_syncflow();
    let pg = PgCluster::start();
    let src_url = pg.create_database("bench_src").await;
    let copy_url = pg.create_database("bench_copy").await;
    let dst_url = pg.create_database("bench_dst").await;
    let table = "CREATE TABLE items (id bigint PRIMARY KEY, sku text, name text, qty bigint, price numeric(12,2),
                 active boolean, category text, updated_at timestamptz, note text, weight numeric)";
    let src = sqlx::PgPool::connect(&src_url).await.expect("source");
    sqlx::query(table).execute(&src).await.expect("create");
    sqlx::query(&format!(
        "INSERT INTO items SELECT i, 'SKU-' || lpad(i::text, 8, '0'),
           'Product number ' || i || ' with a moderately long descriptive name', i * 7919 % 100000,
           (i % 10000) + (i % 100) / 100.0, i % 3 <> 0, (ARRAY['Hardware','Garden','Kitchen','Office','Outdoor'])[i % 5 + 1],
           timestamptz '2026-01-01 00:00:00+00' + i * interval '1 second',
           CASE WHEN i % 4 = 0 THEN NULL ELSE 'note ' || i END, (i % 997) / 10.0
         FROM generate_series(1::bigint, {rows}::bigint) i"
    ))
    .execute(&src)
    .await
    .expect("fill");
    let copy = sqlx::PgPool::connect(&copy_url).await.expect("copy db");
    sqlx::query(table)
        .execute(&copy)
        .await
        .expect("create copy");

    let psql = |url: &str, command: &str, stdin: Stdio, stdout: Stdio| {
        Command::new("psql")
            .args(["-X", "-q", "-d", url, "-c", command])
            .stdin(stdin)
            .stdout(stdout)
            .spawn()
            .expect("psql")
    };
    let started = Instant::now();
    let mut out = psql(
        &src_url,
        "COPY items TO STDOUT",
        Stdio::null(),
        Stdio::piped(),
    );
    let pipe = out.stdout.take().expect("pipe");
    let mut into = psql(
        &copy_url,
        "COPY items FROM STDIN",
        Stdio::from(pipe),
        Stdio::null(),
    );
    let _ = out.wait();
    let _ = into.wait();
    let copy_s = started.elapsed().as_secs_f64();

    let dir = tempfile::tempdir().expect("dir");
    let file = dir.path().join("bench.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"pg-bench\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\npage_size = 5000\n\
             [target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n[[entities]]\nname = \"items\"\n"
        ),
    )
    .expect("pipeline file");
    let run = |label: &str| {
        let started = Instant::now();
        let out = Command::new(&bin)
            .arg("run")
            .arg(&file)
            .args(["--apply-schema", "--json", "--state"])
            .arg(dir.path().join("state.db"))
            .output()
            .expect("syncflow");
        let secs = started.elapsed().as_secs_f64();
        let text = String::from_utf8_lossy(&out.stdout);
        let summary: serde_json::Value =
            serde_json::from_str(text.lines().last().unwrap_or("{}")).unwrap_or_default();
        println!(
            "{label}: {secs:.2} s, {} rows/s, {}",
            (rows as f64 / secs) as u64,
            summary["entities"]["items"]
        );
        secs
    };
    println!("{rows} rows x 10 columns, PostgreSQL -> PostgreSQL (same cluster)");
    println!("COPY TO | COPY FROM: {copy_s:.2} s");
    let first = run("first sync");
    println!("ratio to the COPY pipe: {:.2}", first / copy_s);
    let floor = syncflow_tests::products::copy_like_target(&dst_url, "items", dir.path());
    println!(
        "\\copy of the synced rows into a table shaped like the target (tracking columns, its keys and indexes): \
         {floor:.2} s; first sync / that = {:.2}",
        first / floor
    );
    let again = run("unchanged re-sync");
    println!("re-sync / first: {:.2}", again / first);
}
