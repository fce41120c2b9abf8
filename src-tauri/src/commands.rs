//! Tauri commands: each one a plain call into the engine. Progress streams through a `Channel`.

use std::path::PathBuf;
use syncflow_engine::config::{DemoSource, Pipeline, SourceConfig, SqliteTarget, TargetConfig};
use syncflow_engine::run::{run_pipeline as engine_run, RunEvent, RunOptions, StopSignal};
use syncflow_engine::store::{PipelineSummary, Store};
use syncflow_engine::track::RunSummary;
use tauri::ipc::Channel;
use tauri::State;

pub struct AppState {
    store: Store,
    data_dir: PathBuf,
}

/// The demo pipeline every new console starts with: the embedded demo source into an SQLite file.
pub const DEMO_PIPELINE: &str = "Demo";

impl AppState {
    pub async fn open(data_dir: PathBuf) -> anyhow::Result<AppState> {
        let store = Store::open(&data_dir.join("state.db")).await?;
        if !store.has_pipeline(DEMO_PIPELINE).await? {
            store.save_pipeline(&demo_pipeline(&data_dir)).await?;
        }
        Ok(AppState { store, data_dir })
    }
}

fn demo_pipeline(data_dir: &std::path::Path) -> Pipeline {
    Pipeline {
        version: 1,
        name: DEMO_PIPELINE.into(),
        source: SourceConfig::Demo(DemoSource { rows: 2_500 }),
        target: TargetConfig::Sqlite(SqliteTarget {
            path: data_dir.join("demo.db").display().to_string(),
        }),
        entities: Vec::new(),
    }
}

#[tauri::command]
pub async fn list_pipelines(state: State<'_, AppState>) -> Result<Vec<PipelineSummary>, String> {
    state
        .store
        .list_pipelines()
        .await
        .map_err(|e| e.to_string())
}

/// Runs a stored pipeline to its end, streaming progress events; creates missing tables (the console's
/// schema review comes before this in the UI).
#[tauri::command]
pub async fn run_pipeline(
    state: State<'_, AppState>,
    name: String,
    on_event: Channel<RunEvent>,
) -> Result<RunSummary, String> {
    let pipeline = state
        .store
        .pipeline(&name)
        .await
        .map_err(|e| e.to_string())?;
    let options = RunOptions {
        apply_schema: true,
        dry_run: false,
        base_dir: state.data_dir.clone(),
    };
    let progress = |event: RunEvent| {
        if let Err(e) = on_event.send(event) {
            tracing::warn!("progress not delivered to the window: {e}");
        }
    };
    let outcome = engine_run(
        &pipeline,
        &state.store,
        &options,
        &progress,
        &StopSignal::default(),
    )
    .await
    .map_err(|e| e.to_string())?;
    Ok(outcome.summary)
}
