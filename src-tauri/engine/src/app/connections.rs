//! Sources, targets and secrets as a form sets them up: what the form asks, Test connection, the keychain.

use super::{AppError, Context, ErrorKind};
use crate::config::{Entity, Pipeline, SourceConfig, TargetConfig};
use crate::connect::{ConnectionReport, TargetReport};
use std::collections::BTreeMap;

/// The JSON Schema the connector forms are rendered from.
pub fn connector_schema() -> serde_json::Value {
    crate::connect::connector_schema()
}

/// Keychain values typed into a form, by entry, not stored yet.
pub type TypedSecrets = BTreeMap<String, String>;

/// Reads the first page of every entity of a source described by a form, and says what it found. Secrets typed
/// into the form are used for the test and not stored (they are stored when the pipeline is saved).
pub async fn test_source(
    source: &SourceConfig,
    entities: &[Entity],
    typed: &TypedSecrets,
) -> Result<ConnectionReport, AppError> {
    let test = crate::connect::test_connection(source, entities);
    crate::secrets::with_pending(typed.clone(), test)
        .await
        .map_err(|message| AppError::new(ErrorKind::Source, message))
}

/// Connects to a target described by a form and says what it reached and how the connection is protected (typed
/// secrets used, not stored).
pub async fn test_target(
    ctx: &Context,
    target: &TargetConfig,
    tables: &[String],
    typed: &TypedSecrets,
) -> Result<TargetReport, AppError> {
    let mut target = target.clone();
    super::pipelines::anchor_target(&mut target, ctx.base_dir());
    let test = crate::connect::test_target(&target, ctx.base_dir(), tables);
    crate::secrets::with_pending(typed.clone(), test)
        .await
        .map_err(|message| AppError::new(ErrorKind::Target, message))
}

/// Refuses a pipeline whose business key is in none of the records its source's first page holds, naming the
/// fields to choose from. A source that cannot be read now is not a reason to refuse (it is logged).
pub async fn check_keys(pipeline: &Pipeline, typed: &TypedSecrets) -> Result<(), AppError> {
    let report = match test_source(&pipeline.source, &pipeline.entities, typed).await {
        Ok(report) => report,
        Err(e) => {
            tracing::warn!(pipeline = %pipeline.name, error = %e, "business key not checked: the source could not be read");
            return Ok(());
        }
    };
    let absent = report.entities.iter().find_map(|found| {
        let missing = found.missing.iter().find(|m| m.setting == "business_key")?;
        let at = pipeline.entities.iter().position(|e| e.name == found.name);
        Some((missing.message.clone(), at))
    });
    match absent {
        None => Ok(()),
        Some((message, at)) => {
            let error = AppError::invalid(format!("not saved: {message}"));
            Err(match at {
                Some(i) => error.at_field(format!("entities.{i}.business_key")),
                None => error,
            })
        }
    }
}

/// Stores the secrets typed into a form in the keychain (each under its entry).
pub fn store_typed(typed: &TypedSecrets) -> Result<(), AppError> {
    typed
        .iter()
        .try_for_each(|(entry, value)| store_secret(entry, value))
}

/// Whether the environment variable `name` is set for this process — the console sees only the environment it was
/// started with, so a variable exported in a shell afterwards is not visible to it.
pub fn env_visible(name: &str) -> bool {
    !name.trim().is_empty() && std::env::var_os(name.trim()).is_some()
}

/// Writes a secret into the OS keychain (service "syncflow", entry `entry`); it is never read back out.
pub fn store_secret(entry: &str, value: &str) -> Result<(), AppError> {
    if entry.trim().is_empty() {
        return Err(AppError::invalid(
            "a keychain entry needs a name; give the secret one",
        ));
    }
    if value.is_empty() {
        return Err(AppError::invalid(format!(
            "the secret for keychain entry \"{entry}\" is empty; type or paste its value"
        )));
    }
    Ok(crate::secrets::keychain_set(entry, value)?)
}

/// Removes a keychain entry.
pub fn delete_secret(entry: &str) -> Result<(), AppError> {
    match crate::secrets::keychain_delete(entry) {
        Err(e @ crate::secrets::SecretError::KeychainMissing(_)) => {
            Err(AppError::not_found(e.to_string()))
        }
        other => Ok(other?),
    }
}
