//! SyncFlow Console: the Tauri shell. A thin adapter: commands and channels over `syncflow_engine`.

pub mod commands;
pub mod ipc;

use anyhow::Context;
use tauri::Manager;

/// How many days of the console's own log are kept.
const CONSOLE_LOG_DAYS: usize = 14;

/// Logs to stderr and, as JSON lines, to `logs/console.YYYY-MM-DD.jsonl` in the app-data folder (a new file a day,
/// the last 14 kept). The returned guard flushes the file when the app ends.
fn init_logging() -> Option<tracing_appender::non_blocking::WorkerGuard> {
    use tracing_subscriber::{
        fmt, layer::SubscriberExt, util::SubscriberInitExt, EnvFilter, Layer,
    };
    let filter = || EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter());
    let dir = syncflow_engine::store::Store::default_path()
        .parent()
        .map(|d| d.join("logs"))
        .unwrap_or_else(|| std::path::PathBuf::from("logs"));
    // The rolling writer prunes old files by reading the folder, and complains on stderr when it is not there yet.
    let _ = std::fs::create_dir_all(&dir);
    let appender = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("console")
        .filename_suffix("jsonl")
        .max_log_files(CONSOLE_LOG_DAYS)
        .build(&dir);
    match appender {
        Ok(appender) => {
            let (writer, guard) = tracing_appender::non_blocking(appender);
            let file = fmt::layer()
                .json()
                .with_writer(writer)
                .with_filter(filter());
            tracing_subscriber::registry()
                .with(stderr)
                .with(file)
                .init();
            Some(guard)
        }
        Err(e) => {
            tracing_subscriber::registry().with(stderr).init();
            tracing::warn!("no log file in {}: {e}", dir.display());
            None
        }
    }
}

/// Starts the desktop app.
pub fn run() -> anyhow::Result<()> {
    let _log_file = init_logging();
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
