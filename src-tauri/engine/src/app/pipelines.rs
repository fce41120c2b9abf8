//! Pipelines: import a file or a form, export, list, schedule. A pipeline is stored with its relative paths made
//! absolute against the place it came from (a file's folder, or the context's folder for the console), so every
//! face later finds the same files.

use super::{absolute, AppError, Context};
use crate::config::{Pipeline, Schedule, TargetConfig};
use crate::jobs::schedule::SchedulePreview;
use crate::jobs::ScheduleView;
use crate::store::PipelineSummary;
use std::path::Path;

/// Makes the pipeline's relative paths (an SQLite target's file) absolute against `base`.
pub fn anchor_paths(pipeline: &mut Pipeline, base: &Path) {
    anchor_target(&mut pipeline.target, base);
}

/// Makes a target's relative path (an SQLite file) absolute against `base`.
pub fn anchor_target(target: &mut TargetConfig, base: &Path) {
    if let TargetConfig::Sqlite(lite) = target {
        let path = Path::new(&lite.path);
        if !path.is_absolute() && !lite.path.is_empty() {
            lite.path = absolute(&base.join(path)).display().to_string();
        }
    }
}

/// Reads and checks a pipeline file; its relative paths are taken from the file's folder.
pub fn read_file(file: &Path) -> Result<Pipeline, AppError> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        AppError::invalid(format!("cannot read pipeline file {}: {e}", file.display()))
    })?;
    let mut pipeline = Pipeline::from_toml(&text, &file.display().to_string())?;
    anchor_paths(&mut pipeline, file.parent().unwrap_or(Path::new(".")));
    Ok(pipeline)
}

/// Stores a pipeline read from a file (replacing one of the same name).
pub async fn import_file(ctx: &Context, file: &Path) -> Result<Pipeline, AppError> {
    let pipeline = read_file(file)?;
    save(ctx, &pipeline).await?;
    Ok(pipeline)
}

/// Stores the pipeline a pipeline file's text describes; its relative paths are taken from the context's folder.
/// A pipeline of the same name is replaced only when `replace` says so (else: `Exists`, naming it). Returns its
/// name.
pub async fn import_text(ctx: &Context, text: &str, replace: bool) -> Result<String, AppError> {
    let mut pipeline = Pipeline::from_toml(text, "the imported file")?;
    if !replace && ctx.store().has_pipeline(&pipeline.name).await? {
        return Err(AppError::new(
            super::ErrorKind::Exists,
            format!(
                "a pipeline named \"{}\" exists already; replace it (its schedule, history and failed records \
                 stay), or change the name in the file",
                pipeline.name
            ),
        ));
    }
    if replace {
        refuse_while_running(ctx, &pipeline.name, "replace it").await?;
    }
    anchor_paths(&mut pipeline, ctx.base_dir());
    save(ctx, &pipeline).await?;
    Ok(pipeline.name)
}

/// Stores a new pipeline made in a form; a name in use is refused.
pub async fn create(ctx: &Context, mut pipeline: Pipeline) -> Result<String, AppError> {
    pipeline.validate().map_err(AppError::invalid)?;
    refuse_taken_name(ctx, &pipeline.name).await?;
    anchor_paths(&mut pipeline, ctx.base_dir());
    save(ctx, &pipeline).await?;
    Ok(pipeline.name)
}

/// Saves a pipeline made or edited in the console's form (`editing`: the stored pipeline it edits, else a new one):
/// its business keys are checked against its source's first page (a key in none of the records is refused with
/// the fields to choose from), then the secrets typed into the form go to the keychain, then it is stored.
pub async fn save_form(
    ctx: &Context,
    editing: Option<&str>,
    pipeline: Pipeline,
    typed: &super::connections::TypedSecrets,
) -> Result<String, AppError> {
    pipeline.validate().map_err(AppError::invalid)?;
    // What would refuse the save comes first: a typed secret is stored only for a pipeline that is saved.
    match editing {
        Some(name) => refuse_edit(ctx, name, &pipeline.name).await?,
        None => refuse_taken_name(ctx, &pipeline.name).await?,
    }
    super::connections::check_keys(&pipeline, typed).await?;
    let typed = typed.clone();
    tokio::task::spawn_blocking(move || super::connections::store_typed(&typed))
        .await
        .map_err(AppError::failed)??;
    match editing {
        Some(name) => update(ctx, name, pipeline).await,
        None => create(ctx, pipeline).await,
    }
}

/// A stored pipeline as the console's form edits it: secret references only, paths as stored.
pub async fn definition(ctx: &Context, name: &str) -> Result<Pipeline, AppError> {
    ctx.pipeline(name).await
}

/// Replaces a stored pipeline's source, target and entities with an edited form's. Its name, schedule, undo
/// setting, history and failed records stay; a rename is refused (clone it under the new name, then delete the
/// old one). Refused while a run holds it, so no run reads half of one definition and half of the other.
pub async fn update(ctx: &Context, name: &str, edited: Pipeline) -> Result<String, AppError> {
    let stored = ctx.pipeline(name).await?;
    refuse_edit(ctx, name, &edited.name).await?;
    let mut pipeline = Pipeline {
        schedule: stored.schedule,
        undo_runs: stored.undo_runs,
        ..edited
    };
    pipeline.validate().map_err(AppError::invalid)?;
    anchor_paths(&mut pipeline, ctx.base_dir());
    save(ctx, &pipeline).await?;
    Ok(pipeline.name)
}

/// A new pipeline's name must be free.
async fn refuse_taken_name(ctx: &Context, name: &str) -> Result<(), AppError> {
    if ctx.store().has_pipeline(name).await? {
        return Err(AppError::invalid(format!(
            "a pipeline named \"{name}\" exists already; choose another name"
        )));
    }
    Ok(())
}

/// An edit keeps the stored pipeline's name and waits for no run to hold it.
async fn refuse_edit(ctx: &Context, name: &str, edited_name: &str) -> Result<(), AppError> {
    ctx.pipeline(name).await?;
    if edited_name != name {
        return Err(AppError::invalid(format!(
            "an edit keeps the pipeline's name \"{name}\"; to rename it, clone it as \"{edited_name}\" and delete \"{name}\""
        )));
    }
    refuse_while_running(ctx, name, "save your changes").await
}

/// `Busy` naming the run that holds the pipeline, if one does.
async fn refuse_while_running(ctx: &Context, name: &str, then: &str) -> Result<(), AppError> {
    match super::runs::busy(ctx)
        .await?
        .into_iter()
        .find(|b| b.pipeline == name)
    {
        Some(held) => Err(AppError::new(
            super::ErrorKind::Busy,
            format!(
                "pipeline \"{name}\" is running in {}; pause or cancel that run, then {then}",
                held.description
            ),
        )),
        None => Ok(()),
    }
}

async fn save(ctx: &Context, pipeline: &Pipeline) -> Result<(), AppError> {
    ctx.store().save_pipeline(pipeline).await?;
    ctx.discovered.lock().await.remove(&pipeline.name);
    Ok(())
}

/// The stored pipelines with their health: last run, failed records, waiting children, open conflicts, and the
/// next scheduled run (none when switched off or unscheduled).
pub async fn list(ctx: &Context) -> Result<Vec<PipelineSummary>, AppError> {
    let mut list = ctx.store().list_pipelines().await?;
    for summary in &mut list {
        if summary.disabled {
            continue;
        }
        let pipeline = ctx.pipeline(&summary.name).await?;
        summary.next_run = pipeline
            .schedule
            .as_ref()
            .and_then(|s| crate::schedule::preview(s, ctx.clock.now()).ok())
            .and_then(|p| p.next_runs.into_iter().next());
    }
    Ok(list)
}

/// Switches a pipeline on or off: off, nothing runs it (the console's Run, its schedule, `syncflow run`) until it is
/// switched on again; a preview still may.
pub async fn set_enabled(ctx: &Context, name: &str, enabled: bool) -> Result<(), AppError> {
    Ok(ctx.store().set_pipeline_disabled(name, !enabled).await?)
}

/// Deletes a pipeline from the console: its definition, schedule, run history, failed records, conflicts and
/// waiting children. The target is not touched: its tables and rows stay as they are. Refused while a run holds it.
pub async fn delete(ctx: &Context, name: &str) -> Result<(), AppError> {
    ctx.pipeline(name).await?;
    refuse_while_running(ctx, name, "delete it").await?;
    ctx.store().delete_pipeline(name).await?;
    ctx.discovered.lock().await.remove(name);
    Ok(())
}

/// The pipeline file's text of a stored pipeline: secret references only.
pub async fn export(ctx: &Context, name: &str) -> Result<String, AppError> {
    Ok(ctx.pipeline(name).await?.to_toml()?)
}

/// Saves (or, with none, removes) a pipeline's schedule.
pub async fn save_schedule(
    ctx: &Context,
    name: &str,
    schedule: Option<Schedule>,
) -> Result<(), AppError> {
    let mut pipeline = ctx.pipeline(name).await?;
    pipeline.schedule = schedule;
    pipeline.validate().map_err(AppError::invalid)?;
    Ok(ctx.store().save_pipeline(&pipeline).await?)
}

/// A pipeline's schedule, the scheduler's memory of it and its next runs.
pub async fn schedule(ctx: &Context, name: &str) -> Result<ScheduleView, AppError> {
    ctx.pipeline(name).await?;
    Ok(crate::jobs::schedule_view(ctx.store(), name).await?)
}

/// The schedule editor's live preview: the cron in words and the next runs, or what to fix.
pub fn preview_schedule(schedule: &Schedule) -> Result<SchedulePreview, AppError> {
    crate::jobs::schedule::preview_from_now(schedule).map_err(AppError::invalid)
}
