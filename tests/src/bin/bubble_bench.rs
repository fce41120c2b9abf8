//! `cargo run --release -p syncflow-tests --bin syncflow-bubble-bench [-- THINGS LATENCY_MS RPM]`: syncs the sample
//! Bubble app (customers, invoices, line items; default 30,000 things) from the in-repo emulator with a latency per
//! request and a requests-per-minute limit into a throwaway PostgreSQL with the release `syncflow` CLI, at
//! concurrency 1, 2, 4 and 8, and prints the time against the floor the rate limit itself imposes
//! (requests ÷ allowed requests per second). Prints figures; asserts nothing.

use std::process::Command;
use std::time::Instant;
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::bubble::{pipeline_file, summary};
use syncflow_tests::pg::PgCluster;

#[tokio::main]
async fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let things = *args.first().unwrap_or(&30_000) as usize;
    let latency_ms = *args.get(1).unwrap_or(&300);
    let rpm = *args.get(2).unwrap_or(&1_000) as u32;
    let bin = syncflow_tests::release_syncflow();
    let pg = PgCluster::start();
    let app = sample_app(Scale::total(things), true);
    let pages: u64 = app
        .types
        .iter()
        .map(|t| (t.things.len() as u64).div_ceil(100).max(1))
        .sum();
    let requests = pages + 1;
    let floor_s = requests as f64 / (f64::from(rpm) / 60.0);
    println!(
        "{things} things in {} types, {requests} requests, {latency_ms} ms latency, {rpm} requests/min: \
         the rate limit alone needs {floor_s:.1} s",
        app.types.len()
    );
    println!("concurrency  seconds  x floor  things/s  429s");
    for concurrency in [1u32, 2, 4, 8] {
        // A fresh emulator per run: its 60-second window starts empty, as for a client arriving cold.
        let emulator = BubbleEmulator::start(
            app.clone(),
            Faults {
                latency_ms,
                requests_per_minute: Some(rpm),
                token: Some("bench".into()),
                ..Faults::default()
            },
        )
        .await
        .expect("start the emulator");
        let url = pg.create_database(&format!("bubble_c{concurrency}")).await;
        let dir = tempfile::tempdir().expect("temp dir");
        let file = pipeline_file(
            dir.path(),
            &format!("bench-c{concurrency}"),
            &emulator.base_url,
            &url,
            &format!("concurrency = {concurrency}\nrequests_per_minute = {rpm}"),
        );
        let state = dir.path().join("state.db");
        let bin = bin.clone();
        let started = Instant::now();
        let out = tokio::task::spawn_blocking(move || {
            Command::new(bin)
                .args(["run"])
                .arg(&file)
                .args(["--apply-schema", "--json", "--state"])
                .arg(&state)
                .env("BUBBLE_TOKEN", "bench")
                .output()
                .expect("run syncflow")
        })
        .await
        .expect("join");
        let secs = started.elapsed().as_secs_f64();
        let s = summary(&out.stdout);
        let fetched: u64 = s["entities"]
            .as_object()
            .map(|e| e.values().filter_map(|c| c["fetched"].as_u64()).sum())
            .unwrap_or(0);
        if s["status"] != "completed" || fetched != things as u64 {
            println!(
                "concurrency {concurrency}: {} ({fetched} fetched)\n{}",
                s["status"],
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        println!(
            "{concurrency:>11}  {secs:>7.1}  {:>7.2}  {:>8.0}  {:>4}",
            secs / floor_s,
            things as f64 / secs,
            emulator.stats().rate_limited
        );
    }
}
