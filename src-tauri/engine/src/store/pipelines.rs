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
    /// Its health at a glance: records in the failed-records queue (still retried, or dead).
    #[ts(type = "number")]
    pub failed_records: u64,
    /// Children waiting for their parent.
    #[ts(type = "number")]
    pub waiting_children: u64,
    /// Conflicts waiting for a person.
    #[ts(type = "number")]
    pub open_conflicts: u64,
    /// When its schedule runs it next (RFC 3339), if it has one and is enabled.
    pub next_run: Option<String>,
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
        Pipeline::from_stored_toml(&text, name).map_err(|e| StoreError::Corrupt(e.to_string()))
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
            let (failed_records, waiting_children, open_conflicts) = self.open_items(&name).await?;
            out.push(PipelineSummary {
                source_kind: kind_of(&pipeline.source),
                target_kind: kind_of(&pipeline.target),
                last_run: self.last_run(&name).await?,
                disabled: self.pipeline_disabled(&name).await?,
                failed_records,
                waiting_children,
                open_conflicts,
                next_run: None,
                name,
            });
        }
        Ok(out)
    }

    /// A pipeline's failed records (failed or dead), waiting children and open conflicts.
    async fn open_items(&self, name: &str) -> Result<(u64, u64, u64), StoreError> {
        let (failed, waiting, conflicts): (i64, i64, i64) = sqlx::query_as(
            "SELECT (SELECT count(*) FROM failed_records WHERE pipeline = ?1 AND status IN ('failed', 'dead')),
                    (SELECT count(*) FROM pending_children WHERE pipeline = ?1 AND status IN ('pending', 'dead')),
                    (SELECT count(*) FROM conflicts WHERE pipeline = ?1 AND status = 'open')",
        )
        .bind(name)
        .fetch_one(&self.pool)
        .await?;
        let count = |n: i64| u64::try_from(n).unwrap_or(0);
        Ok((count(failed), count(waiting), count(conflicts)))
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
        for table in [
            "failed_records",
            "schema_evidence",
            "rest_target_checkpoints",
            "rest_target_keys",
            "rest_target_seen",
            "rest_target_rowversions",
            "rest_target_intents",
            "page_memo",
            "page_memo_pass",
        ] {
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
