//! A pipeline switched off runs from nowhere (the console's Run, `syncflow run`) until it is switched on, though a
//! preview still may; deleting it is refused while a run holds it, and then forgets it in the console while its
//! target keeps every row. The REST test server into a real SQLite file.

use std::time::Duration;
use syncflow_engine::app::{self, Context, ErrorKind};
use syncflow_engine::run::RunOptions;
use syncflow_engine::track::RunStatus;
use syncflow_tests::erp::{item, ErpServer};

const PASSWORD: &str = "lifecycle";

async fn rows(db: &std::path::Path) -> i64 {
    syncflow_tests::sqlite_rows(db, "items").await
}

fn console_options() -> RunOptions {
    RunOptions {
        started_by: "manual",
        ..RunOptions::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabled_pipelines_do_not_run_and_deleted_ones_leave_their_target() {
    std::env::set_var("PW", PASSWORD);
    let server = ErpServer::start((1..=500).map(item).collect(), PASSWORD, 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("items.db");
    let file = server.pipeline_file(
        dir.path(),
        "life",
        "{ env = \"PW\" }",
        &format!("kind = \"sqlite\"\npath = \"{}\"", db.display()),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 100 }\nbusiness_key = [\"id\"]",
    );
    let state = dir.path().join("state.db");
    let cli = |args: Vec<String>| {
        let state = state.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            syncflow_tests::syncflow_async(&args, &state, &[("PW", PASSWORD)]).await
        }
    };
    let run_args = vec![
        "run".to_owned(),
        file.display().to_string(),
        "--apply-schema".to_owned(),
        "--json".to_owned(),
    ];
    let out = cli(run_args.clone()).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(rows(&db).await, 500);

    // Switched off: listed as such; neither face runs it; a preview still does.
    let ctx = Context::open(&state, 1).await.unwrap();
    app::pipelines::set_enabled(&ctx, "life", false)
        .await
        .unwrap();
    let listed = app::pipelines::list(&ctx).await.unwrap();
    assert!(listed.iter().any(|p| p.name == "life" && p.disabled));
    let refused = app::runs::run_stored(&ctx, "life", console_options(), &|_| {})
        .await
        .unwrap_err();
    assert_eq!(refused.kind, ErrorKind::InvalidInput);
    assert!(
        refused.message.contains("disabled") && refused.message.contains("Enable"),
        "{}",
        refused.message
    );
    let out = cli(run_args.clone()).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("is disabled"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let preview = app::runs::preview(&ctx, "life", &|_| {}).await.unwrap();
    assert_eq!(preview.summary.entities["items"].skipped, 500);
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM runs WHERE pipeline = 'life' AND dry_run = 0")
            .fetch_one(ctx.store().pool())
            .await
            .unwrap();
    assert_eq!(runs, 1, "no run was started while it was off");

    // Switched on again: it runs.
    app::pipelines::set_enabled(&ctx, "life", true)
        .await
        .unwrap();
    let outcome = app::runs::run_stored(&ctx, "life", console_options(), &|_| {})
        .await
        .unwrap();
    assert_eq!(outcome.summary.status, RunStatus::Completed);

    // Deleting while a run holds it is refused, saying who holds it.
    server.set_delay_ms(150);
    let running = tokio::spawn(cli(run_args.clone()));
    let started = std::time::Instant::now();
    while !app::runs::busy(&ctx)
        .await
        .unwrap()
        .iter()
        .any(|b| b.pipeline == "life")
    {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the CLI's run never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let refused = app::pipelines::delete(&ctx, "life").await.unwrap_err();
    assert_eq!(refused.kind, ErrorKind::Busy, "{}", refused.message);
    assert!(
        refused.message.contains("running in"),
        "{}",
        refused.message
    );
    // So are an edit and an import that would replace it: no run reads half of one definition.
    let stored = app::pipelines::definition(&ctx, "life").await.unwrap();
    let edit = app::pipelines::update(&ctx, "life", stored.clone())
        .await
        .unwrap_err();
    assert_eq!(edit.kind, ErrorKind::Busy, "{}", edit.message);
    assert!(
        edit.message.contains("then save your changes"),
        "{}",
        edit.message
    );
    let text = app::pipelines::export(&ctx, "life").await.unwrap();
    let replace = app::pipelines::import_text(&ctx, &text, true)
        .await
        .unwrap_err();
    assert_eq!(replace.kind, ErrorKind::Busy, "{}", replace.message);
    assert!(
        replace.message.contains("then replace it"),
        "{}",
        replace.message
    );
    let out = running.await.unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.set_delay_ms(0);

    // Deleted: gone from the console with its history; the target keeps every row.
    app::pipelines::delete(&ctx, "life").await.unwrap();
    assert!(!app::pipelines::list(&ctx)
        .await
        .unwrap()
        .iter()
        .any(|p| p.name == "life"));
    assert_eq!(
        app::pipelines::export(&ctx, "life").await.unwrap_err().kind,
        ErrorKind::NotFound
    );
    assert!(ctx
        .store()
        .run_history(Some("life"), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(rows(&db).await, 500, "the target is not touched");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edit_keeps_schedule_and_history_and_a_clone_is_a_pipeline_of_its_own() {
    std::env::set_var("PW", PASSWORD);
    let server = ErpServer::start((1..=300).map(item).collect(), PASSWORD, 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let first_db = dir.path().join("first.db");
    let file = server.pipeline_file(
        dir.path(),
        "shop",
        "{ env = \"PW\" }",
        &format!("kind = \"sqlite\"\npath = \"{}\"", first_db.display()),
        "items",
        "records = \"/data\"\npagination = { kind = \"offset\", size = 100 }\nbusiness_key = [\"id\"]",
    );
    let ctx = Context::open(&dir.path().join("state.db"), 1)
        .await
        .unwrap();
    app::pipelines::import_file(&ctx, &file).await.unwrap();
    let schedule = syncflow_engine::config::Schedule {
        cron: "0 19 * * *".into(),
        timezone: "UTC".into(),
        window: None,
        days_to_complete: None,
    };
    app::pipelines::save_schedule(&ctx, "shop", Some(schedule.clone()))
        .await
        .unwrap();
    app::mapping::apply_schema(&ctx, "shop").await.unwrap();
    let first = app::runs::run_stored(&ctx, "shop", console_options(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        first.summary.status,
        RunStatus::Completed,
        "{:?}",
        first.summary.error
    );
    assert_eq!(rows(&first_db).await, 300);

    // The form gets the stored definition, secrets as references; the edit points it at another file.
    let mut edited = app::pipelines::definition(&ctx, "shop").await.unwrap();
    let form = serde_json::to_string(&edited).unwrap();
    assert!(
        form.contains("\"env\":\"PW\"") && !form.contains(PASSWORD),
        "{form}"
    );
    let second_db = dir.path().join("second.db");
    edited.schedule = None;
    edited.target = syncflow_engine::config::TargetConfig::Sqlite(
        serde_json::from_value(serde_json::json!({ "path": second_db.display().to_string() }))
            .unwrap(),
    );
    let mut renamed = edited.clone();
    renamed.name = "shop-2".into();
    let refused = app::pipelines::update(&ctx, "shop", renamed)
        .await
        .unwrap_err();
    assert!(
        refused.message.contains("clone"),
        "a rename says how: {}",
        refused.message
    );
    app::pipelines::update(&ctx, "shop", edited.clone())
        .await
        .unwrap();
    let stored = app::pipelines::definition(&ctx, "shop").await.unwrap();
    assert_eq!(
        stored.schedule,
        Some(schedule),
        "the form has no schedule; the edit keeps it"
    );
    assert!(
        matches!(&stored.target, syncflow_engine::config::TargetConfig::Sqlite(t) if t.path == second_db.display().to_string())
    );
    assert_eq!(
        app::runs::history(&ctx, "shop").await.unwrap().len(),
        1,
        "history kept"
    );
    let next = |list: Vec<syncflow_engine::store::PipelineSummary>| {
        list.into_iter()
            .find(|p| p.name == "shop")
            .and_then(|p| p.next_run)
    };
    let next_run = next(app::pipelines::list(&ctx).await.unwrap()).expect("a next run");
    assert!(next_run.contains("T19:00:00"), "{next_run}");
    app::pipelines::set_enabled(&ctx, "shop", false)
        .await
        .unwrap();
    assert_eq!(
        next(app::pipelines::list(&ctx).await.unwrap()),
        None,
        "switched off: no next run"
    );
    app::pipelines::set_enabled(&ctx, "shop", true)
        .await
        .unwrap();

    // The edited pipeline writes where it now points (after its review), the first file is left as it was.
    app::mapping::apply_schema(&ctx, "shop").await.unwrap();
    let after_edit = app::runs::run_stored(&ctx, "shop", console_options(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        after_edit.summary.status,
        RunStatus::Completed,
        "{:?}",
        after_edit.summary.error
    );
    assert_eq!(rows(&second_db).await, 300);
    assert_eq!(rows(&first_db).await, 300);

    // A clone is its own pipeline: a new name (an existing one is refused), no history, its own target.
    let mut clone = app::pipelines::definition(&ctx, "shop").await.unwrap();
    clone.schedule = None;
    let taken = app::pipelines::create(&ctx, clone.clone())
        .await
        .unwrap_err();
    assert!(
        taken.message.contains("exists already"),
        "{}",
        taken.message
    );
    let third_db = dir.path().join("third.db");
    clone.name = "shop-copy".into();
    clone.target = syncflow_engine::config::TargetConfig::Sqlite(
        serde_json::from_value(serde_json::json!({ "path": third_db.display().to_string() }))
            .unwrap(),
    );
    app::pipelines::create(&ctx, clone).await.unwrap();
    assert!(app::runs::history(&ctx, "shop-copy")
        .await
        .unwrap()
        .is_empty());
    app::mapping::apply_schema(&ctx, "shop-copy").await.unwrap();
    let cloned = app::runs::run_stored(&ctx, "shop-copy", console_options(), &|_| {})
        .await
        .unwrap();
    assert_eq!(
        cloned.summary.status,
        RunStatus::Completed,
        "{:?}",
        cloned.summary.error
    );
    assert_eq!(rows(&third_db).await, 300);
    assert_eq!(app::runs::history(&ctx, "shop").await.unwrap().len(), 2);

    // Importing a file of the same name asks first; replacing keeps the history.
    let text = app::pipelines::export(&ctx, "shop").await.unwrap();
    let asked = app::pipelines::import_text(&ctx, &text, false)
        .await
        .unwrap_err();
    assert_eq!(asked.kind, ErrorKind::Exists);
    assert!(
        asked.message.contains("\"shop\" exists already"),
        "{}",
        asked.message
    );
    app::pipelines::import_text(&ctx, &text, true)
        .await
        .unwrap();
    assert_eq!(app::runs::history(&ctx, "shop").await.unwrap().len(), 2);
}
