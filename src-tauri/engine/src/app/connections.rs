//! Sources, targets and secrets as a form sets them up: what the form asks, Test connection, the keychain.

use super::{AppError, Context, ErrorKind};
use crate::config::{Entity, SourceConfig, TargetConfig};
use crate::connect::{ConnectionReport, TargetReport};

/// The JSON Schema the connector forms are rendered from.
pub fn connector_schema() -> serde_json::Value {
    crate::connect::connector_schema()
}

/// Reads the first page of every entity of a source described by a form, and says what it found.
pub async fn test_source(
    source: &SourceConfig,
    entities: &[Entity],
) -> Result<ConnectionReport, AppError> {
    crate::connect::test_connection(source, entities)
        .await
        .map_err(|message| AppError::new(ErrorKind::Source, message))
}

/// Connects to a target described by a form and says what it reached and how the connection is protected.
pub async fn test_target(ctx: &Context, target: &TargetConfig) -> Result<TargetReport, AppError> {
    let mut target = target.clone();
    super::pipelines::anchor_target(&mut target, ctx.base_dir());
    crate::connect::test_target(&target, ctx.base_dir())
        .await
        .map_err(|message| AppError::new(ErrorKind::Target, message))
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
