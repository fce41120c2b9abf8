//! A Bubble app (the in-repo emulator: customers, invoices, line items with references, lists and hostile field
//! names) syncs into a real throwaway PostgreSQL exactly, in both key styles, through injected 500s, bodies cut
//! short, a 1,000 requests/min limit answered with 429s, and types larger than the cursor ceiling.

use serde_json::json;
use std::time::Instant;
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::bubble::{assert_target_equals_app, pipeline_file, summary};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{run_synced, syncflow_async};

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
    let out = syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[("BUBBLE_TOKEN", TOKEN)],
    )
    .await;
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
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(
        "\n[[entities]]\nname = \"customer\"\n\n[[entities]]\nname = \"invoice\"\ndeletes = \"soft\"\n\n\
         [[entities]]\nname = \"lineitem\"\ndeletes = \"hard\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let state = dir.path().join("state.db");
    let run_with = |file: std::path::PathBuf, state: std::path::PathBuf, extra: &'static str| async move {
        let mut args = vec!["run", file.to_str().unwrap(), "--apply-schema", "--json"];
        if !extra.is_empty() {
            args.push(extra);
        }
        syncflow_async(&args, &state, &[("BUBBLE_TOKEN", TOKEN)]).await
    };
    let run = |file, state| run_with(file, state, "");
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

    // Change 40 invoices, delete 30 invoices and 20 line items, add 25 line items (created later than the rest,
    // as in a live app).
    emulator.edit(|app| {
        let invoices = app.get_type_mut("invoice").unwrap();
        for k in 0..30 {
            invoices.things.remove(1 + k * 50);
        }
        let items = app.get_type_mut("lineitem").unwrap();
        for k in 0..20 {
            items.things.remove(7 + k * 100);
        }
    });
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
    // A dry run says what a run would do, and does none of it.
    let out = run_with(file.clone(), state.clone(), "--dry-run").await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dry = summary(&out.stdout);
    assert_eq!(dry["entities"]["invoice"]["deleted"], 30, "{dry}");
    assert_eq!(dry["entities"]["lineitem"]["deleted"], 20, "{dry}");
    assert_eq!(dry["entities"]["lineitem"]["inserted"], 25, "{dry}");
    let (live,): (i64,) = sqlx::query_as("SELECT count(*) FROM lineitem")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(live, 3_000, "the dry run wrote nothing");

    let out = run(file.clone(), state.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s = summary(&out.stdout);
    assert_eq!(s["entities"]["invoice"]["deleted"], 30, "{s}");
    assert_eq!(s["entities"]["lineitem"]["deleted"], 20, "{s}");
    assert_eq!(s["entities"]["customer"]["deleted"], 0, "{s}");
    let (soft, hard): (i64, i64) = sqlx::query_as(
        "SELECT (SELECT count(*) FROM invoice WHERE \"_bridge_deleted_at\" IS NOT NULL), \
                (SELECT count(*) FROM lineitem)",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(
        (soft, hard),
        (30, 3_000 - 20 + 25),
        "soft deletes kept, hard ones gone"
    );
    assert_eq!(s["entities"]["invoice"]["updated"], 40, "{s}");
    assert_eq!(s["entities"]["invoice"]["inserted"], 0, "{s}");
    assert_eq!(s["entities"]["lineitem"]["inserted"], 25, "{s}");
    assert_eq!(s["entities"]["customer"]["skipped"], 600, "{s}");
    assert_target_equals_app(&pool, &emulator.app()).await;
}

/// The same engine into SQLite: soft and hard deletes after a complete pass, and nothing deleted after a pass in
/// which a record failed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_target_follows_deletes_only_after_a_clean_complete_pass() {
    let emulator = BubbleEmulator::start(sample_app(Scale::total(1_000), true), Faults::default())
        .await
        .expect("start the emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("sqlite.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"to-sqlite\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n\
             [target]\nkind = \"sqlite\"\npath = \"out.db\"\n\
             [[entities]]\nname = \"invoice\"\ndeletes = \"soft\"\n\
             [[entities]]\nname = \"lineitem\"\ndeletes = \"hard\"\n",
            emulator.base_url
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let run = || run_synced(&file, &state, &[]);
    run().await;
    let db =
        sqlx::SqlitePool::connect(&format!("sqlite://{}", dir.path().join("out.db").display()))
            .await
            .unwrap();
    let count = |sql: &'static str| {
        let db = db.clone();
        async move {
            let (n,): (i64,) = sqlx::query_as(sql).fetch_one(&db).await.unwrap();
            n
        }
    };
    assert_eq!(count("SELECT count(*) FROM lineitem").await, 500);

    // A record that fails (its due date is not a date) stops deletes for that pass…
    emulator.edit(|app| {
        let invoices = app.get_type_mut("invoice").unwrap();
        invoices.things.remove(3);
        invoices.things[10].insert("Due Date".into(), json!("not a date"));
        app.get_type_mut("lineitem").unwrap().things.truncate(450);
    });
    let s = run().await;
    assert_eq!(s["entities"]["invoice"]["failed"], 1, "{s}");
    assert_eq!(s["entities"]["invoice"]["deleted"], 0, "{s}");
    assert_eq!(s["entities"]["lineitem"]["deleted"], 50, "{s}");
    assert_eq!(count("SELECT count(*) FROM lineitem").await, 450);
    // …and the next clean pass applies them.
    emulator.edit(|app| {
        let invoices = app.get_type_mut("invoice").unwrap();
        invoices.things[10].insert("Due Date".into(), json!("2026-01-31"));
    });
    let s = run().await;
    assert_eq!(s["entities"]["invoice"]["deleted"], 1, "{s}");
    assert_eq!(
        count("SELECT count(*) FROM invoice WHERE \"_bridge_deleted_at\" IS NOT NULL").await,
        1
    );
    assert_eq!(count("SELECT count(*) FROM invoice").await, 400);
}

/// `delta = "rowversion"`: after a first full pass, a pass reads only the things modified since the target's
/// highest `Modified Date` (those stamped with it again, so none sharing the stamp is missed), and finds what
/// changed; it never takes what it did not read for deleted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rowversion_delta_reads_only_what_changed() {
    let pg = PgCluster::start();
    let url = pg.create_database("bubble_incremental").await;
    let emulator = BubbleEmulator::start(sample_app(Scale::total(3_000), true), Faults::default())
        .await
        .expect("start the emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(dir.path(), "incremental", &emulator.base_url, &url, "");
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(
        "\n[[entities]]\nname = \"invoice\"\ndelta = \"rowversion\"\ndeletes = \"soft\"\n",
    );
    std::fs::write(&file, text).unwrap();
    let state = dir.path().join("state.db");
    let run = || run_synced(&file, &state, &[("BUBBLE_TOKEN", "unused")]);
    let first = run().await;
    assert_eq!(first["entities"]["invoice"]["inserted"], 1_200, "{first}");

    // 12 invoices change (stamped later than anything), one is deleted at the source.
    emulator.edit(|app| {
        let invoices = app.get_type_mut("invoice").unwrap();
        for (k, thing) in invoices
            .things
            .iter_mut()
            .skip(100)
            .step_by(90)
            .take(12)
            .enumerate()
        {
            thing.insert("Amount".into(), json!(k as u64 + 1));
            thing.insert("Modified Date".into(), json!("2026-11-22T08:00:00.000Z"));
        }
        invoices.things.remove(5);
    });
    let second = run().await;
    let counts = &second["entities"]["invoice"];
    assert_eq!(counts["updated"], 12, "{second}");
    assert_eq!(
        counts["deleted"], 0,
        "an incremental pass deletes nothing: {second}"
    );
    let fetched = counts["fetched"].as_u64().unwrap();
    assert!(
        (12..100).contains(&fetched),
        "only what changed since the last stamp was read: {second}"
    );
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let (changed,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM invoice WHERE \"Modified Date\" = '2026-11-22T08:00:00Z' AND \"Amount\" <= 12",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(changed, 12);
}
