//! Conflicts: target rows edited outside the engine whose source row changed too.
//!
//! Detection (PostgreSQL targets): a trigger on each target table stamps `_bridge_edited_at` on every update not
//! made by the engine (the engine marks its transactions with `syncflow.writer = engine`) and keeps, at the first
//! such edit, the row as the engine had written it in `_bridge_synced`. When a page brings a new version of a row
//! with an edit stamp, the entity's strategy decides (in the page's transaction): `source_wins` overwrites,
//! `target_wins` keeps the edit, `last_write_wins` compares the source's rowversion time with the edit's,
//! `manual` keeps the row untouched and files the conflict here. Design: docs/adr/0008-conflicts.md.

use crate::config::TargetConfig;
use crate::sink::postgres::RowResolution;
use crate::sink::Sink;
use crate::store::{Store, StoredConflict};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use ts_rs::TS;

#[derive(Debug, thiserror::Error)]
pub enum ConflictError {
    #[error("no conflict with id {0}; `syncflow conflicts list PIPELINE` shows the open ones")]
    NotFound(i64),
    #[error("conflict {0} was resolved already ({1})")]
    Resolved(i64, String),
    #[error("conflict {id}: field \"{field}\" is not a column of {table}")]
    UnknownField {
        id: i64,
        field: String,
        table: String,
    },
    #[error("conflicts are tracked for PostgreSQL targets only")]
    NotPostgres,
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error(transparent)]
    Sink(#[from] crate::sink::SinkError),
    #[error("conflict {0}: stored values are unreadable ({1})")]
    Corrupt(i64, String),
}

impl ConflictError {
    /// As README documents: the `conflicts` commands exit 0, or 2 with the problem on stderr (an unreachable target too).
    pub fn exit_code(&self) -> i32 {
        2
    }
}

/// Which side's value a field takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum Side {
    Source,
    Target,
}

/// A conflict as the console and `syncflow conflicts list --json` show it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConflictView {
    #[ts(type = "number")]
    pub id: i64,
    pub pipeline: String,
    pub entity: String,
    pub table: String,
    /// The business key's columns and values.
    #[ts(type = "Record<string, unknown>")]
    pub key: Value,
    pub fields: Vec<ConflictField>,
    /// "open" or "resolved"
    pub status: String,
    pub detected_at: String,
    pub source_rowversion: Option<String>,
    pub resolution: Option<Resolution>,
}

/// One column of a conflicting row: the source's value now, the target's (edited) value, and the value the engine
/// last wrote.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ConflictField {
    pub column: String,
    #[ts(type = "unknown")]
    pub source: Value,
    #[ts(type = "unknown")]
    pub target: Value,
    #[ts(type = "unknown")]
    pub synced: Option<Value>,
    /// Source and target differ here.
    pub differs: bool,
}

/// The audit trail of a resolved conflict.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Resolution {
    pub by: String,
    pub at: String,
    /// "source", "target" or "fields"
    pub kind: String,
    pub chosen: BTreeMap<String, Side>,
    #[ts(type = "Record<string, unknown>")]
    pub old_values: Value,
    #[ts(type = "Record<string, unknown>")]
    pub new_values: Value,
}

/// The open conflicts of a pipeline (with `all`, the resolved ones and their audit trail too).
pub async fn list(
    store: &Store,
    pipeline: &str,
    all: bool,
) -> Result<Vec<ConflictView>, ConflictError> {
    store
        .conflicts(pipeline, all)
        .await?
        .iter()
        .map(view)
        .collect()
}

/// Resolves a conflict: every field from one side (`take`), or field by field (`fields`, the rest from `take`).
/// The target row changes in one transaction; the choice, the row before and after, who and when are kept.
///
/// Taking the target keeps the edit and records the source's version as seen, so the same source version is not
/// reported again (a later source change is a new conflict, as the row still differs from the source).
pub async fn resolve(
    store: &Store,
    id: i64,
    take: Side,
    fields: &BTreeMap<String, Side>,
    by: &str,
) -> Result<ConflictView, ConflictError> {
    let stored = store
        .conflict(id)
        .await?
        .ok_or(ConflictError::NotFound(id))?;
    if stored.status != "open" {
        return Err(ConflictError::Resolved(
            id,
            stored.resolution.unwrap_or_default(),
        ));
    }
    let source = parse(id, &stored.source)?;
    let columns: Vec<String> = source
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    if let Some(field) = fields.keys().find(|f| !columns.contains(f)) {
        return Err(ConflictError::UnknownField {
            id,
            field: field.clone(),
            table: stored.table.clone(),
        });
    }
    let pipeline = store.pipeline(&stored.pipeline).await?;
    let TargetConfig::Postgres(_) = &pipeline.target else {
        return Err(ConflictError::NotPostgres);
    };
    let Sink::Postgres(sink) = Sink::connect(&pipeline.target, std::path::Path::new(".")).await?
    else {
        return Err(ConflictError::NotPostgres);
    };
    let chosen: BTreeMap<String, Side> = columns
        .iter()
        .map(|c| (c.clone(), fields.get(c).copied().unwrap_or(take)))
        .collect();
    let (old_values, new_values) = sink
        .resolve_row(&stored.table, &stored.key_hash, |current| {
            let mut values = serde_json::Map::new();
            for (column, side) in &chosen {
                let from = match side {
                    Side::Source => &source,
                    Side::Target => current,
                };
                values.insert(
                    column.clone(),
                    from.get(column).cloned().unwrap_or(Value::Null),
                );
            }
            let values = Value::Object(values);
            RowResolution {
                matches_source: columns.iter().all(|c| values.get(c) == source.get(c)),
                values,
                data_hash: stored.source_hash.clone(),
                rowversion: stored.source_rowversion.clone(),
            }
        })
        .await?;
    let kind = if fields.is_empty() {
        match take {
            Side::Source => "source",
            Side::Target => "target",
        }
    } else {
        "fields"
    };
    let chosen_json = serde_json::to_value(&chosen).unwrap_or_default();
    store
        .resolve_conflict(id, by, kind, &chosen_json, &old_values, &new_values)
        .await?;
    tracing::info!(id, by, kind, table = stored.table, "conflict resolved");
    let resolved = store
        .conflict(id)
        .await?
        .ok_or(ConflictError::NotFound(id))?;
    view(&resolved)
}

/// Who resolves: the OS user (the console and the CLI run as the analyst).
pub fn current_user() -> String {
    ["USER", "LOGNAME", "USERNAME"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
        .or_else(|| {
            dirs::home_dir().and_then(|h| h.file_name().map(|n| n.to_string_lossy().into_owned()))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn parse(id: i64, text: &str) -> Result<Value, ConflictError> {
    serde_json::from_str(text).map_err(|e| ConflictError::Corrupt(id, e.to_string()))
}

fn view(c: &StoredConflict) -> Result<ConflictView, ConflictError> {
    let source = parse(c.id, &c.source)?;
    let target = parse(c.id, &c.target)?;
    let synced = c.synced.as_deref().map(|s| parse(c.id, s)).transpose()?;
    let fields = source
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(column, value)| {
                    let target_value = target.get(column).cloned().unwrap_or(Value::Null);
                    ConflictField {
                        column: column.clone(),
                        differs: *value != target_value,
                        source: value.clone(),
                        target: target_value,
                        synced: synced
                            .as_ref()
                            .map(|s| s.get(column).cloned().unwrap_or_default()),
                    }
                })
                .collect()
        })
        .unwrap_or_default();
    let resolution = match (&c.resolved_by, &c.resolved_at, &c.resolution) {
        (Some(by), Some(at), Some(kind)) => Some(Resolution {
            by: by.clone(),
            at: at.clone(),
            kind: kind.clone(),
            chosen: c
                .chosen
                .as_deref()
                .and_then(|t| serde_json::from_str(t).ok())
                .unwrap_or_default(),
            old_values: c
                .old_values
                .as_deref()
                .map(|t| parse(c.id, t))
                .transpose()?
                .unwrap_or_default(),
            new_values: c
                .new_values
                .as_deref()
                .map(|t| parse(c.id, t))
                .transpose()?
                .unwrap_or_default(),
        }),
        _ => None,
    };
    Ok(ConflictView {
        id: c.id,
        pipeline: c.pipeline.clone(),
        entity: c.entity.clone(),
        table: c.table.clone(),
        key: parse(c.id, &c.business_key)?,
        fields,
        status: c.status.clone(),
        detected_at: c.detected_at.clone(),
        source_rowversion: c.source_rowversion.clone(),
        resolution,
    })
}
