//! SyncFlow Console: the Tauri shell. A thin adapter: commands and channels over `syncflow_engine`.

mod commands;

use anyhow::Context;
use tauri::Manager;

/// Starts the desktop app.
pub fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    tauri::Builder::default()
        .plugin(tauri_plugin_notification::init())
        .plugin(tauri_plugin_dialog::init())
        .setup(|app| {
            let data_dir = app.path().app_data_dir()?;
            let state = tauri::async_runtime::block_on(commands::AppState::open(data_dir))?;
            let scheduler = state.scheduler();
            app.manage(state);
            commands::start_scheduler(app.handle().clone(), scheduler);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::list_pipelines,
            commands::run_pipeline,
            commands::busy_pipelines,
            commands::discover_mapping,
            commands::preview_mapping,
            commands::save_overrides,
            commands::schema_review,
            commands::apply_schema,
            commands::failed_records,
            commands::retry_failed,
            commands::pending_children,
            commands::retry_pending_children,
            commands::connector_schema,
            commands::test_connection,
            commands::test_target,
            commands::pick_file,
            commands::create_pipeline,
            commands::store_secret,
            commands::export_pipeline,
            commands::import_pipeline,
            commands::pause_run,
            commands::cancel_run,
            commands::list_runs,
            commands::pipeline_schedule,
            commands::schedule_preview,
            commands::save_schedule,
            commands::list_conflicts,
            commands::resolve_conflict,
            commands::attention
        ])
        .run(tauri::generate_context!())
        .context("the window system failed")
}
