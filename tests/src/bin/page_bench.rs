//! The engine's own CPU per page, without a network or a database: the pages of `syncflow-bench`'s products (5,000
//! records each) serialised as the test server sends them, then parsed, learnt, transformed and encoded for a
//! binary COPY as a first sync does, on one thread. Prints seconds per million records for each step and the total.
//! `cargo run --release -p syncflow-tests --bin syncflow-page-bench [-- RECORDS]` (default 1,000,000). Prints figures;
//! asserts nothing but that every record came through. `PLAIN=1` parses with `serde_json`'s own parser instead of the
//! engine's, to compare the two.

use serde_json::Value;
use std::time::{Duration, Instant};
use syncflow_engine::schema::Mapping;
use syncflow_tests::products::row;

const PAGE: u64 = 5_000;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let records: u64 = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(1_000_000);
    let key_fields = vec!["id".to_owned()];
    let run_id = "0192f0c4-6d2a-7c4e-8a8b-3f5e6d7c8b9a";
    let bodies: Vec<Vec<u8>> = (0..records.div_ceil(PAGE))
        .map(|page| {
            let first = page * PAGE + 1;
            let last = (first + PAGE - 1).min(records);
            serde_json::to_vec(&serde_json::json!({
                "data": (first..=last).map(row).collect::<Vec<Value>>(),
                "total": records,
            }))
            .expect("serialise a page")
        })
        .collect();
    // One parser for the pass, as the REST source keeps one per client: each page is sized from the last.
    let mut parser = syncflow_engine::source::json::Parser::default();
    let mut mapping: Option<Mapping> = None;
    let mut spent = [Duration::ZERO; 6];
    let mut rows = 0usize;
    for body in &bodies {
        // The page memo's digest of the reply, which a pass that keeps one takes before parsing it.
        let digesting = Instant::now();
        std::hint::black_box(syncflow_engine::source::memo::reply_digest(body, None));
        let started = Instant::now();
        let mut page: Value = if std::env::var_os("PLAIN").is_some() {
            serde_json::from_slice(body).expect("parse")
        } else {
            parser.parse(body).expect("parse")
        };
        let mut records = match page.get_mut("data").map(Value::take) {
            Some(Value::Array(records)) => records,
            _ => panic!("no records"),
        };
        let parsed = Instant::now();
        match mapping.as_mut() {
            Some(m) => {
                m.learn(&records);
            }
            None => mapping = Some(Mapping::infer(&records)),
        }
        let Some(m) = mapping.as_ref() else { return };
        let learnt = Instant::now();
        let transformed = syncflow_engine::run::transform_page(&mut records, m, &key_fields, None);
        let done = Instant::now();
        let stream =
            syncflow_engine::sink::postgres::CopyStream::encode(&transformed.rows, m, run_id)
                .expect("encode");
        let encoded = Instant::now();
        rows += transformed.rows.len();
        std::hint::black_box(stream);
        drop(transformed);
        drop(records);
        let freed = Instant::now();
        for (slot, (from, to)) in spent.iter_mut().zip([
            (digesting, started),
            (started, parsed),
            (parsed, learnt),
            (learnt, done),
            (done, encoded),
            (encoded, freed),
        ]) {
            *slot += to - from;
        }
    }
    assert_eq!(rows as u64, records, "every record transformed");
    let per_million = |d: Duration| d.as_secs_f64() * 1e6 / records as f64;
    let total: Duration = spent.iter().sum();
    println!(
        "{records} records, {} pages of {PAGE}; seconds per 1M records on one thread:",
        bodies.len()
    );
    for (step, d) in ["digest", "parse", "learn", "transform", "encode", "free"]
        .iter()
        .zip(spent)
    {
        println!("  {step:<10} {:>6.3}", per_million(d));
    }
    println!("  {:<10} {:>6.3}", "total", per_million(total));
}
