//! SyncFlow Console: the Tauri shell. A thin adapter: commands and channels over `syncflow_engine`.

pub mod commands;
pub mod ipc;

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
        .invoke_handler(commands::handler())
        .run(tauri::generate_context!())
        .context("the window system failed")
}
