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
        .setup(|app| {
            let data_dir = app.path().app_data_dir()?;
            let state = tauri::async_runtime::block_on(commands::AppState::open(data_dir))?;
            app.manage(state);
            Ok(())
        })
        .invoke_handler(tauri::generate_handler![
            commands::list_pipelines,
            commands::run_pipeline,
            commands::discover_mapping,
            commands::preview_mapping,
            commands::save_overrides,
            commands::schema_review,
            commands::apply_schema,
            commands::failed_records,
            commands::retry_failed,
            commands::connector_schema,
            commands::test_connection,
            commands::create_pipeline,
            commands::store_secret,
            commands::export_pipeline,
            commands::import_pipeline,
            commands::pause_run,
            commands::cancel_run
        ])
        .run(tauri::generate_context!())
        .context("the window system failed")
}
