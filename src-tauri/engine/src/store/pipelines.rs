//! Pipelines as stored: their definition (the pipeline file, as TOML) and the list the console shows.

use super::*;

/// A pipeline as the pipelines screen lists it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PipelineSummary {
    pub name: String,
    /// "rest", "demo", …
    pub source_kind: String,
    /// "postgres" or "sqlite"
    pub target_kind: String,
    pub last_run: Option<RunRecord>,
    /// Switched off: nothing runs it until it is enabled.
    pub disabled: bool,
}

impl Store {
    pub async fn save_pipeline(&self, pipeline: &Pipeline) -> Result<(), StoreError> {
        let text = pipeline
            .to_toml()
            .map_err(|e| StoreError::Corrupt(e.to_string()))?;
        sqlx::query(
            "INSERT INTO pipelines (name, definition) VALUES (?, ?)
             ON CONFLICT(name) DO UPDATE SET definition = excluded.definition,
             updated_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE definition <> excluded.definition",
        )
        .bind(&pipeline.name)
        .bind(text)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn pipeline(&self, name: &str) -> Result<Pipeline, StoreError> {
        let row = sqlx::query("SELECT definition FROM pipelines WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .ok_or_else(|| StoreError::NoPipeline(name.to_owned()))?;
        let text: String = row.try_get(0)?;
        Pipeline::from_toml(&text, name).map_err(|e| StoreError::Corrupt(e.to_string()))
    }

    pub async fn has_pipeline(&self, name: &str) -> Result<bool, StoreError> {
        Ok(sqlx::query("SELECT 1 FROM pipelines WHERE name = ?")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .is_some())
    }

    pub async fn list_pipelines(&self) -> Result<Vec<PipelineSummary>, StoreError> {
        let rows = sqlx::query("SELECT name FROM pipelines ORDER BY name")
            .fetch_all(&self.pool)
            .await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0)?;
            let pipeline = self.pipeline(&name).await?;
            out.push(PipelineSummary {
                source_kind: kind_of(&pipeline.source),
                target_kind: kind_of(&pipeline.target),
                last_run: self.last_run(&name).await?,
                disabled: self.pipeline_disabled(&name).await?,
                name,
            });
        }
        Ok(out)
    }

    /// Whether the pipeline is switched off (see [`PipelineSummary::disabled`]).
    pub async fn pipeline_disabled(&self, name: &str) -> Result<bool, StoreError> {
        let disabled: Option<bool> =
            sqlx::query_scalar("SELECT disabled <> 0 FROM pipelines WHERE name = ?")
                .bind(name)
                .fetch_optional(&self.pool)
                .await?;
        disabled.ok_or_else(|| StoreError::NoPipeline(name.to_owned()))
    }

    /// Switches a pipeline off or on.
    pub async fn set_pipeline_disabled(
        &self,
        name: &str,
        disabled: bool,
    ) -> Result<(), StoreError> {
        let done = sqlx::query("UPDATE pipelines SET disabled = ? WHERE name = ?")
            .bind(disabled)
            .bind(name)
            .execute(&self.pool)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoPipeline(name.to_owned()));
        }
        Ok(())
    }

    /// Forgets a pipeline and everything the console kept about it (runs, checkpoints kept here, failed records,
    /// conflicts, waiting children, schedule state). The target and its tables are not touched.
    pub async fn delete_pipeline(&self, name: &str) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        for table in ["failed_records", "schema_evidence"] {
            sqlx::query(&format!("DELETE FROM {table} WHERE pipeline = ?"))
                .bind(name)
                .execute(&mut *tx)
                .await?;
        }
        // The rest goes with the pipeline's row (ON DELETE CASCADE).
        let done = sqlx::query("DELETE FROM pipelines WHERE name = ?")
            .bind(name)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Err(StoreError::NoPipeline(name.to_owned()));
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn pipeline_names(&self) -> Result<Vec<String>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT name FROM pipelines ORDER BY name")
                .fetch_all(&self.pool)
                .await?,
        )
    }
}

/// The `kind` of a tagged config value (a source or a target), as the pipelines list shows it.
fn kind_of<T: Serialize>(tagged: &T) -> String {
    serde_json::to_value(tagged)
        .ok()
        .and_then(|v| v.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .unwrap_or_default()
}
