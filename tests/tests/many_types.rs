//! A Bubble app with 30 data types synced into PostgreSQL: the 30 entities run side by side and share the target's
//! connection pool (sized by the entities running at once) without any pool-acquire timeout; every type lands
//! exactly.

use syncflow_engine::emulator::app::{sample_app, BubbleApp, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::bubble::{assert_target_equals_app, pipeline_file};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::run_synced;

const TYPES: usize = 30;

/// The sample app's customer type 30 times over, as `type01` … `type30`.
fn thirty_types() -> BubbleApp {
    let sample = sample_app(Scale::total(4_000), true);
    let customer = sample
        .get_type("customer")
        .expect("a customer type")
        .clone();
    let types = (1..=TYPES)
        .map(|i| {
            let mut ty = customer.clone();
            ty.name = format!("type{i:02}");
            ty.display = format!("Type {i:02}");
            ty
        })
        .collect();
    BubbleApp { types, ..sample }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_types_sync_side_by_side_without_pool_timeouts() {
    let pg = PgCluster::start();
    let url = pg.create_database("thirty").await;
    let app = thirty_types();
    let emulator = BubbleEmulator::start(
        app.clone(),
        Faults {
            token: Some("t0k".into()),
            ..Faults::default()
        },
    )
    .await
    .expect("start the emulator");
    let dir = tempfile::tempdir().unwrap();
    let file = pipeline_file(
        dir.path(),
        "thirty",
        &emulator.test_base_url,
        &url,
        "concurrency = 4",
    );
    let state = dir.path().join("state.db");
    let summary = run_synced(&file, &state, &[("BUBBLE_TOKEN", "t0k")]).await;
    let entities = summary["entities"].as_object().expect("entities");
    assert_eq!(entities.len(), TYPES, "{summary}");
    let things = app.types[0].things.len() as u64;
    for (name, counts) in entities {
        assert_eq!(
            counts["inserted"].as_u64(),
            Some(things),
            "{name}: {counts}"
        );
    }
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    assert_target_equals_app(&pool, &app).await;
    // And again, unchanged: 30 entities looking up their stored hashes at once.
    let again = run_synced(&file, &state, &[("BUBBLE_TOKEN", "t0k")]).await;
    for (name, counts) in again["entities"].as_object().expect("entities") {
        assert_eq!(counts["skipped"].as_u64(), Some(things), "{name}: {counts}");
    }
}
