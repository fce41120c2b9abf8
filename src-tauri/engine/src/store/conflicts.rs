//! Manual conflicts: filed by a run, listed, resolved with their audit trail.

use super::*;

/// A target row edited outside the engine whose source row changed too; values are keyed by target column, as
/// PostgreSQL's `to_jsonb` spells them.
#[derive(Debug, Clone, PartialEq)]
pub struct DetectedConflict {
    pub key_hash: String,
    pub source: serde_json::Value,
    pub target: serde_json::Value,
    /// The values the engine last wrote, kept by the target's trigger at the first outside edit.
    pub synced: Option<serde_json::Value>,
    pub source_hash: String,
    pub source_rowversion: Option<String>,
}

/// Which page's conflicts are filed, and the key columns that name a row to the analyst.
pub struct ConflictScope<'a> {
    pub pipeline: &'a str,
    pub entity: &'a str,
    pub table: &'a str,
    pub run_id: &'a str,
    pub key_columns: &'a [String],
}

/// A conflict as stored (values as JSON text).
#[derive(Debug, Clone)]
pub struct StoredConflict {
    pub id: i64,
    pub pipeline: String,
    pub entity: String,
    pub table: String,
    pub key_hash: String,
    pub business_key: String,
    pub source: String,
    pub target: String,
    pub synced: Option<String>,
    pub source_hash: String,
    pub source_rowversion: Option<String>,
    pub status: String,
    pub detected_at: String,
    pub resolved_at: Option<String>,
    pub resolved_by: Option<String>,
    pub resolution: Option<String>,
    pub chosen: Option<String>,
    pub old_values: Option<String>,
    pub new_values: Option<String>,
}

const CONFLICT_COLUMNS: &str = "SELECT id, pipeline, entity, target_table, key_hash, business_key, source, target,
    synced, source_hash, source_rowversion, status, detected_at, resolved_at, resolved_by, resolution, chosen,
    old_values, new_values FROM conflicts";

fn stored_conflict(r: &sqlx::sqlite::SqliteRow) -> Result<StoredConflict, StoreError> {
    Ok(StoredConflict {
        id: r.try_get(0)?,
        pipeline: r.try_get(1)?,
        entity: r.try_get(2)?,
        table: r.try_get(3)?,
        key_hash: r.try_get(4)?,
        business_key: r.try_get(5)?,
        source: r.try_get(6)?,
        target: r.try_get(7)?,
        synced: r.try_get(8)?,
        source_hash: r.try_get(9)?,
        source_rowversion: r.try_get(10)?,
        status: r.try_get(11)?,
        detected_at: r.try_get(12)?,
        resolved_at: r.try_get(13)?,
        resolved_by: r.try_get(14)?,
        resolution: r.try_get(15)?,
        chosen: r.try_get(16)?,
        old_values: r.try_get(17)?,
        new_values: r.try_get(18)?,
    })
}

impl Store {
    /// Files manual conflicts: a row already waiting keeps its id and gets the newest values.
    pub async fn record_conflicts(
        &self,
        scope: &ConflictScope<'_>,
        found: &[DetectedConflict],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for c in found {
            let business_key: serde_json::Map<String, serde_json::Value> = scope
                .key_columns
                .iter()
                .map(|k| {
                    let value = c.source.get(k).cloned().unwrap_or_default();
                    (k.clone(), value)
                })
                .collect();
            sqlx::query(
                "INSERT INTO conflicts (pipeline, entity, target_table, key_hash, business_key, source, target, synced,
                 source_hash, source_rowversion, run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (pipeline, entity, key_hash) WHERE status = 'open' DO UPDATE SET
                 source = excluded.source, target = excluded.target, synced = coalesce(excluded.synced, synced),
                 source_hash = excluded.source_hash, source_rowversion = excluded.source_rowversion,
                 run_id = excluded.run_id, detected_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
            )
            .bind(scope.pipeline)
            .bind(scope.entity)
            .bind(scope.table)
            .bind(&c.key_hash)
            .bind(serde_json::Value::Object(business_key).to_string())
            .bind(c.source.to_string())
            .bind(c.target.to_string())
            .bind(c.synced.as_ref().map(|v| v.to_string()))
            .bind(&c.source_hash)
            .bind(c.source_rowversion.as_deref())
            .bind(scope.run_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Conflicts of a pipeline (open ones, or all with their resolutions), oldest first.
    pub async fn conflicts(
        &self,
        pipeline: &str,
        include_resolved: bool,
    ) -> Result<Vec<StoredConflict>, StoreError> {
        let rows = sqlx::query(&format!(
            "{CONFLICT_COLUMNS} WHERE pipeline = ? AND (status = 'open' OR ?) ORDER BY id"
        ))
        .bind(pipeline)
        .bind(include_resolved)
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(stored_conflict).collect()
    }

    pub async fn conflict(&self, id: i64) -> Result<Option<StoredConflict>, StoreError> {
        let row = sqlx::query(&format!("{CONFLICT_COLUMNS} WHERE id = ?"))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(stored_conflict).transpose()
    }

    /// The audit trail of a resolution: who, when, what was chosen, the row before and after.
    pub async fn resolve_conflict(
        &self,
        id: i64,
        by: &str,
        resolution: &str,
        chosen: &serde_json::Value,
        old_values: &serde_json::Value,
        new_values: &serde_json::Value,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE conflicts SET status = 'resolved', resolved_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
             resolved_by = ?, resolution = ?, chosen = ?, old_values = ?, new_values = ? WHERE id = ?",
        )
        .bind(by)
        .bind(resolution)
        .bind(chosen.to_string())
        .bind(old_values.to_string())
        .bind(new_values.to_string())
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }
}
