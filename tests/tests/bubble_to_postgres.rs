//! A Bubble app (the in-repo emulator: customers, invoices, line items with references, lists and hostile field
//! names) syncs into a real throwaway PostgreSQL exactly, in both key styles, through injected 500s, bodies cut
//! short, a 1,000 requests/min limit answered with 429s, and types larger than the cursor ceiling.

use serde_json::json;
use std::time::Instant;
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::bubble::{assert_target_equals_app, pipeline_file, summary};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::syncflow;

const TOKEN: &str = "bubble-admin-token-never-stored";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn field_id_keys_sync_exactly_through_faults_and_the_rate_limit() {
    let pg = PgCluster::start();
    let url = pg.create_database("bubble_ids").await;
    let app = sample_app(Scale::total(30_000), false);
    let emulator = BubbleEmulator::start(
        app.clone(),
        Faults {
            requests_per_minute: Some(1_000),
            error_rate: 0.05,
            truncate_rate: 0.02,
            token: Some(TOKEN.into()),
            ..Faults::default()
        },
    )
    .await
    .expect("start the emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(
        dir.path(),
        "bubble-ids",
        &emulator.test_base_url,
        &url,
        "concurrency = 4\nrequests_per_minute = 1000",
    );
    let state = dir.path().join("state.db");
    let started = Instant::now();
    let out = tokio::task::spawn_blocking({
        let (file, state) = (file.clone(), state.clone());
        move || {
            syncflow(
                &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
                &state,
                &[("BUBBLE_TOKEN", TOKEN)],
            )
        }
    })
    .await
    .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let s = summary(&out.stdout);
    assert_eq!(s["status"], "completed");
    for ty in &app.types {
        let counts = &s["entities"][&ty.name];
        assert_eq!(
            counts["fetched"],
            json!(ty.things.len()),
            "{}: {s}",
            ty.name
        );
        assert_eq!(
            counts["inserted"],
            json!(ty.things.len()),
            "{}: {s}",
            ty.name
        );
        assert_eq!(counts["failed"], 0, "{}: {s}", ty.name);
    }
    let stats = emulator.stats();
    eprintln!("30,000 things in {elapsed:.1?}; emulator: {stats:?}");
    assert!(
        stats.errors_injected > 0 && stats.truncated > 0,
        "faults were injected: {stats:?}"
    );
    assert!(
        !stderr.contains(TOKEN) && !std::fs::read_to_string(&file).unwrap().contains(TOKEN),
        "the token leaked"
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    assert_target_equals_app(&pool, &app).await;
    // Columns are the field ids; the reference and the business key are indexed.
    let indexes: Vec<String> = sqlx::query_scalar(
        "SELECT indexname FROM pg_indexes WHERE tablename = 'invoice' ORDER BY indexname",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        indexes.contains(&"invoice_customer_custom_customer_idx".to_owned())
            && indexes.contains(&"invoice__id_key".to_owned()),
        "{indexes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn display_name_keys_sync_past_the_cursor_ceiling_and_follow_changes() {
    let pg = PgCluster::start();
    let url = pg.create_database("bubble_captions").await;
    let app = sample_app(Scale::total(6_000), true);
    let emulator = BubbleEmulator::start(
        app,
        Faults {
            cursor_ceiling: 1_000,
            token: Some(TOKEN.into()),
            ..Faults::default()
        },
    )
    .await
    .expect("start the emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(
        dir.path(),
        "bubble-captions",
        &emulator.base_url,
        &url,
        "concurrency = 3\ncursor_ceiling = 1000",
    );
    let state = dir.path().join("state.db");
    let run = |file: std::path::PathBuf, state: std::path::PathBuf| async move {
        tokio::task::spawn_blocking(move || {
            syncflow(
                &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
                &state,
                &[("BUBBLE_TOKEN", TOKEN)],
            )
        })
        .await
        .unwrap()
    };
    let out = run(file.clone(), state.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["entities"]["lineitem"]["fetched"], 3_000, "{s}");
    assert_eq!(s["entities"]["lineitem"]["inserted"], 3_000, "{s}");
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    assert_target_equals_app(&pool, &emulator.app()).await;

    // Change 40 invoices and add 25 line items (created later than the rest, as in a live app).
    emulator.edit(|app| {
        let invoices = app.get_type_mut("invoice").unwrap();
        for thing in invoices.things.iter_mut().step_by(60).take(40) {
            thing.insert("Amount".into(), json!(4242.42));
            thing.insert("Modified Date".into(), json!("2026-11-01T12:00:00.000Z"));
            thing.remove("Notes");
        }
        let items = app.get_type_mut("lineitem").unwrap();
        for k in 0..25 {
            let mut thing = items.things[k].clone();
            thing.insert("_id".into(), json!(format!("1790000000000x{k:018}")));
            thing.insert("Created Date".into(), json!("2026-11-02T00:00:00.000Z"));
            thing.insert("Product".into(), json!(format!("NEW-{k}")));
            items.things.push(thing);
        }
    });
    let out = run(file.clone(), state.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["entities"]["invoice"]["updated"], 40, "{s}");
    assert_eq!(s["entities"]["invoice"]["inserted"], 0, "{s}");
    assert_eq!(s["entities"]["lineitem"]["inserted"], 25, "{s}");
    assert_eq!(s["entities"]["customer"]["skipped"], 600, "{s}");
    assert_target_equals_app(&pool, &emulator.app()).await;
}
