//! Records that need a schema change nobody applied yet (a run stopped for review at them): the schema review
//! learns from them, so that it shows what the run needs.

use super::*;

impl Store {
    /// Keeps `records` (JSON objects as the source sent them) as why `entity`'s run stopped for review, replacing
    /// earlier ones of that entity.
    pub async fn save_schema_evidence(
        &self,
        pipeline: &str,
        entity: &str,
        records: &[serde_json::Value],
    ) -> Result<(), StoreError> {
        let text = serde_json::Value::Array(records.to_vec()).to_string();
        sqlx::query(
            "INSERT INTO schema_evidence (pipeline, entity, records, seen_at) VALUES (?, ?, ?, ?)
             ON CONFLICT(pipeline, entity) DO UPDATE SET records = excluded.records, seen_at = excluded.seen_at",
        )
        .bind(pipeline)
        .bind(entity)
        .bind(text)
        .bind(chrono::Utc::now().to_rfc3339())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The records kept per entity of `pipeline` (entity name → records).
    pub async fn schema_evidence(
        &self,
        pipeline: &str,
    ) -> Result<BTreeMap<String, Vec<serde_json::Value>>, StoreError> {
        let rows: Vec<(String, String)> =
            sqlx::query_as("SELECT entity, records FROM schema_evidence WHERE pipeline = ?")
                .bind(pipeline)
                .fetch_all(&self.pool)
                .await?;
        Ok(rows
            .into_iter()
            .map(|(entity, text)| {
                // Written by this module; a row that no longer parses only loses its evidence.
                let records = serde_json::from_str(&text).unwrap_or_default();
                (entity, records)
            })
            .collect())
    }

    /// Forgets the evidence of `pipeline` (its schema was applied).
    pub async fn clear_schema_evidence(&self, pipeline: &str) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM schema_evidence WHERE pipeline = ?")
            .bind(pipeline)
            .execute(&self.pool)
            .await?;
        Ok(())
    }
}
