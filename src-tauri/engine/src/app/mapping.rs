//! How every source field will be named and typed, the overrides an analyst sets, and the schema review.

use super::{AppError, Context};
use crate::config::Pipeline;
use crate::discover::{self, Discovered};
use crate::review::{self, EntityView, Overrides, SchemaReview};
use std::path::Path;
use std::sync::Arc;

/// The cached discovery of a stored pipeline, discovering it when there is none (or when `fresh`).
async fn discovered(
    ctx: &Context,
    name: &str,
    fresh: bool,
) -> Result<Arc<Vec<Discovered>>, AppError> {
    let found = discovered_pages(ctx, name, fresh).await?;
    with_evidence(ctx, name, found).await
}

/// [`discovered`] from the source's first pages alone (what the cache holds).
async fn discovered_pages(
    ctx: &Context,
    name: &str,
    fresh: bool,
) -> Result<Arc<Vec<Discovered>>, AppError> {
    let cached = match fresh {
        true => None,
        false => ctx.discovered.lock().await.get(name).cloned(),
    };
    let found = match cached {
        Some(found) => found,
        None => {
            let pipeline = ctx.pipeline(name).await?;
            let found = Arc::new(discover::discover(&pipeline).await?);
            ctx.discovered
                .lock()
                .await
                .insert(name.to_owned(), found.clone());
            found
        }
    };
    Ok(found)
}

/// The discovery with the records a run stopped at for review (they need a column or a type the source's first
/// pages did not show) learnt beside its sample.
async fn with_evidence(
    ctx: &Context,
    name: &str,
    found: Arc<Vec<Discovered>>,
) -> Result<Arc<Vec<Discovered>>, AppError> {
    let evidence = ctx.store().schema_evidence(name).await?;
    if evidence.is_empty() {
        return Ok(found);
    }
    let mut merged = (*found).clone();
    for d in &mut merged {
        if let Some(records) = evidence.get(&d.entity.name) {
            d.sample.extend(records.iter().cloned());
            d.mapping.learn(records);
        }
    }
    Ok(Arc::new(merged))
}

/// Reads the source's first pages and shows how every field will be named and typed.
pub async fn discover(ctx: &Context, name: &str) -> Result<Vec<EntityView>, AppError> {
    let found = discovered(ctx, name, true).await?;
    Ok(review::mapping_view(&found, None))
}

/// Stores the pipeline a file describes and discovers its entities (the CLI's `schema` and `mapping`).
pub async fn discover_file(
    ctx: &Context,
    file: &Path,
) -> Result<(Pipeline, Vec<Discovered>), AppError> {
    let pipeline = super::pipelines::import_file(ctx, file).await?;
    let found = discover::discover(&pipeline).await?;
    Ok((pipeline, found))
}

/// The mapping as it would be with these overrides (nothing is saved).
pub async fn preview(
    ctx: &Context,
    name: &str,
    overrides: &Overrides,
) -> Result<Vec<EntityView>, AppError> {
    let found = discovered(ctx, name, false).await?;
    Ok(review::mapping_view(&found, Some(overrides)))
}

/// Stores the overrides in the pipeline; a change of business key is refused while the target holds rows keyed
/// the old way (the error says what to do).
pub async fn save_overrides(
    ctx: &Context,
    name: &str,
    overrides: &Overrides,
) -> Result<Vec<EntityView>, AppError> {
    let before = ctx.pipeline(name).await?;
    let found = discovered_pages(ctx, name, false).await?;
    let mut pipeline = before.clone();
    discover::set_overrides(&mut pipeline, overrides, &found);
    pipeline.validate().map_err(AppError::invalid)?;
    review::check_key_changes(&before, &pipeline, &found, ctx.base_dir())
        .await
        .map_err(AppError::invalid)?;
    ctx.store().save_pipeline(&pipeline).await?;
    let updated: Vec<Discovered> = found
        .iter()
        .map(|d| {
            let mut d = d.clone();
            if let Some(e) = pipeline.entities.iter().find(|e| e.name == d.entity.name) {
                d.entity.fields = e.fields.clone();
                d.entity.business_key = e.business_key.clone();
            }
            d
        })
        .collect();
    let updated = Arc::new(updated);
    ctx.discovered
        .lock()
        .await
        .insert(name.to_owned(), updated.clone());
    let shown = with_evidence(ctx, name, updated).await?;
    Ok(review::mapping_view(&shown, None))
}

/// The generated Prisma schema, the SQL Apply would run and the drift against the target as it is.
pub async fn schema_review(ctx: &Context, name: &str) -> Result<SchemaReview, AppError> {
    let pipeline = ctx.pipeline(name).await?;
    let found = discovered(ctx, name, false).await?;
    review::review(&pipeline, &found, ctx.base_dir())
        .await
        .map_err(|e| AppError::new(super::ErrorKind::Target, e.to_string()))
}

/// Applies the reviewed SQL in one transaction; returns the review afterwards.
pub async fn apply_schema(ctx: &Context, name: &str) -> Result<SchemaReview, AppError> {
    let pipeline = ctx.pipeline(name).await?;
    let found = discovered(ctx, name, false).await?;
    let review = review::apply(&pipeline, &found, ctx.base_dir())
        .await
        .map_err(|e| AppError::new(super::ErrorKind::Target, e.to_string()))?;
    // The tables now hold what the stopped run needed.
    ctx.store().clear_schema_evidence(name).await?;
    Ok(review)
}

/// What an export of the schema wrote: the schema's path, and for Prisma 7 the prisma.config.ts beside it (written,
/// or kept when the folder had one: it is the user's then).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct SchemaWritten {
    pub schema: String,
    pub config: Option<String>,
    pub config_kept: bool,
}

/// Writes a generated schema to `path`; for Prisma 7 also the prisma.config.ts it needs beside it, unless the
/// folder has one.
pub fn write_schema(
    path: &Path,
    schema: &str,
    version: crate::schema::prisma::PrismaVersion,
) -> Result<SchemaWritten, AppError> {
    let cannot = |p: &Path, e: std::io::Error| {
        AppError::failed(format!(
            "cannot write {}: {e}; choose a folder you can write to",
            p.display()
        ))
    };
    std::fs::write(path, schema).map_err(|e| cannot(path, e))?;
    let mut written = SchemaWritten {
        schema: path.display().to_string(),
        config: None,
        config_kept: false,
    };
    if version != crate::schema::prisma::PrismaVersion::V7 {
        return Ok(written);
    }
    let config = path.with_file_name("prisma.config.ts");
    written.config = Some(config.display().to_string());
    if config.exists() {
        written.config_kept = true;
        return Ok(written);
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "schema.prisma".to_owned());
    std::fs::write(&config, crate::schema::prisma::config_ts(&name))
        .map_err(|e| cannot(&config, e))?;
    Ok(written)
}

/// The reviewed schema of a stored pipeline for a Prisma major version, as [`write_schema`] writes it.
pub async fn export_schema(
    ctx: &Context,
    name: &str,
    version: crate::schema::prisma::PrismaVersion,
    path: &Path,
) -> Result<SchemaWritten, AppError> {
    let review = schema_review(ctx, name).await?;
    let text = match version {
        crate::schema::prisma::PrismaVersion::V7 => review.prisma,
        crate::schema::prisma::PrismaVersion::V6 => review.prisma_6,
    };
    let Some(text) = text else {
        return Err(AppError::invalid(format!(
            "no schema to export: {}; fix these names in the Mapping tab first",
            review.errors.join("; ")
        )));
    };
    write_schema(path, &text, version)
}
