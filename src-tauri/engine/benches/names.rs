//! Names per second of the sanitiser (`cargo bench -p syncflow-engine --bench names`). Prints figures; asserts
//! nothing (speed goals are read from benchmarks, not timed tests).

use std::hint::black_box;
use std::time::Instant;
use syncflow_engine::names::{name_fields, sanitise_field};

fn corpus() -> Vec<String> {
    let seeds = [
        "2nd Payment %",
        "Customer Name",
        "customer-name",
        "émojis_🚀",
        "_id",
        "select",
        "Commission Paid?",
        "Created Date",
        "日本語のフィールド",
        "a\"; drop table x; --",
        "Total",
        "total",
        "Größe in cm",
        "An extremely long field name that goes on and on and on and on and on and on",
    ];
    (0..10_000)
        .map(|i| format!("{} {i}", seeds[i % seeds.len()]))
        .collect()
}

fn main() {
    let names = corpus();
    for _ in 0..2 {
        names.iter().for_each(|n| {
            black_box(sanitise_field(n));
        });
    }
    let rounds = 20;
    let started = Instant::now();
    for _ in 0..rounds {
        for n in &names {
            black_box(sanitise_field(black_box(n)));
        }
    }
    let per_name = started.elapsed().as_nanos() as f64 / (rounds * names.len()) as f64;
    println!(
        "sanitise_field: {per_name:.0} ns/name ({:.2} M names/s) over {} names",
        1e3 / per_name,
        names.len()
    );

    let models: Vec<Vec<String>> = names.chunks(500).map(|c| c.to_vec()).collect();
    let started = Instant::now();
    for _ in 0..rounds {
        for model in &models {
            black_box(name_fields(black_box(model)));
        }
    }
    let per_name = started.elapsed().as_nanos() as f64 / (rounds * names.len()) as f64;
    println!("name_fields (models of 500 fields, collisions resolved): {per_name:.0} ns/name ({:.2} M names/s)", 1e3 / per_name);
}
