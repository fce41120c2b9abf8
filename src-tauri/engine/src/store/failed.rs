//! Failed records (the dead-letter queue): filed, listed, retried, dead.

use super::*;

/// A record that did not make it, with where and why.
#[derive(Debug, Clone)]
pub struct FailedRecord {
    pub page_no: u64,
    pub record_index: u64,
    pub stage: &'static str,
    pub error_type: &'static str,
    pub message: String,
    pub raw: String,
    pub processed: Option<String>,
}

/// A failed record as the dead-letter browser and `syncflow failed list` show it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct FailedRow {
    #[ts(type = "number")]
    pub id: i64,
    pub run_id: String,
    pub entity: String,
    #[ts(type = "number")]
    pub page_no: i64,
    #[ts(type = "number")]
    pub record_index: i64,
    pub stage: String,
    pub error_type: String,
    pub message: String,
    /// The record as fetched (JSON text).
    pub raw: String,
    /// The record as far as it got (JSON text), when it got anywhere.
    pub processed: Option<String>,
    pub status: String,
    #[ts(type = "number")]
    pub retries: i64,
    pub created_at: String,
}

impl Store {
    /// Records failed records idempotently (a page processed again after a crash adds nothing twice).
    pub async fn record_failed(
        &self,
        run_id: &str,
        pipeline: &str,
        entity: &str,
        records: &[FailedRecord],
    ) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        // The same record failing again (in a later run) stays one entry of the queue, with the latest error.
        // Looked up before the write transaction: a transaction that reads first and then writes cannot wait for
        // another writer in SQLite (it fails "database is locked" at once).
        let mut known = Vec::with_capacity(records.len());
        for f in records {
            let id: Option<i64> = sqlx::query_scalar(
                "SELECT id FROM failed_records WHERE pipeline = ? AND entity = ? AND raw = ?
                 AND status IN ('failed', 'dead') ORDER BY id LIMIT 1",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(&f.raw)
            .fetch_optional(&self.pool)
            .await?;
            known.push(id);
        }
        let mut tx = self.pool.begin().await?;
        for (f, known) in records.iter().zip(known) {
            if let Some(id) = known {
                sqlx::query(
                    "UPDATE failed_records SET run_id = ?, page_no = ?, record_index = ?, stage = ?, error_type = ?,
                     message = ?, processed = ? WHERE id = ?",
                )
                .bind(run_id)
                .bind(n(f.page_no))
                .bind(n(f.record_index))
                .bind(f.stage)
                .bind(f.error_type)
                .bind(&f.message)
                .bind(f.processed.as_deref())
                .bind(id)
                .execute(&mut *tx)
                .await?;
                continue;
            }
            sqlx::query(
                "INSERT OR IGNORE INTO failed_records (run_id, pipeline, entity, page_no, record_index, stage,
                 error_type, message, raw, processed) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(run_id)
            .bind(pipeline)
            .bind(entity)
            .bind(n(f.page_no))
            .bind(n(f.record_index))
            .bind(f.stage)
            .bind(f.error_type)
            .bind(&f.message)
            .bind(&f.raw)
            .bind(f.processed.as_deref())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn failed_count(&self, pipeline: &str) -> Result<u64, StoreError> {
        let row = sqlx::query(
            "SELECT count(*) FROM failed_records WHERE pipeline = ? AND status = 'failed'",
        )
        .bind(pipeline)
        .fetch_one(&self.pool)
        .await?;
        let count: i64 = row.try_get(0)?;
        Ok(u64::try_from(count).unwrap_or(0))
    }

    /// Failed records of a pipeline, oldest first.
    pub async fn failed_records(&self, pipeline: &str) -> Result<Vec<FailedRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, run_id, entity, page_no, record_index, stage, error_type, message, raw, processed, status,
             retries, created_at FROM failed_records WHERE pipeline = ? ORDER BY id",
        )
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(FailedRow {
                    id: r.try_get(0)?,
                    run_id: r.try_get(1)?,
                    entity: r.try_get(2)?,
                    page_no: r.try_get(3)?,
                    record_index: r.try_get(4)?,
                    stage: r.try_get(5)?,
                    error_type: r.try_get(6)?,
                    message: r.try_get(7)?,
                    raw: r.try_get(8)?,
                    processed: r.try_get(9)?,
                    status: r.try_get(10)?,
                    retries: r.try_get(11)?,
                    created_at: r.try_get(12)?,
                })
            })
            .collect()
    }

    /// A retried record went through: it leaves the queue (kept, marked `retried`, for the record).
    pub async fn mark_retried(&self, id: i64) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE failed_records SET status = 'retried', retries = retries + 1 WHERE id = ?",
        )
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// A retried record failed again: its error and (possibly edited) record are kept; after `dead_after` tries
    /// it is dead — no automatic retry any more, a manual one still works.
    pub async fn mark_failed_again(
        &self,
        id: i64,
        stage: &str,
        message: &str,
        raw: &str,
        dead_after: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE failed_records SET stage = ?, message = ?, raw = ?, retries = retries + 1,
             status = CASE WHEN retries + 1 >= ? THEN 'dead' ELSE 'failed' END WHERE id = ?",
        )
        .bind(stage)
        .bind(message)
        .bind(raw)
        .bind(dead_after)
        .bind(id)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Failed records whose next automatic try is due at `now` (3 tries, 60/120/240 s apart), by pipeline.
    pub async fn failed_due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        tries: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT pipeline, id, retries, coalesce(last_try_at, created_at) FROM failed_records
             WHERE status = 'failed' AND retries < ? ORDER BY id",
        )
        .bind(tries)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        for r in rows {
            let retries: i64 = r.try_get(2)?;
            let last: String = r.try_get(3)?;
            let Ok(last) = chrono::DateTime::parse_from_rfc3339(&last) else {
                continue;
            };
            let wait = chrono::Duration::seconds(60 << retries.clamp(0, 10));
            if last.with_timezone(&chrono::Utc) + wait <= now {
                due.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(due)
    }

    pub async fn note_tries(
        &self,
        ids: &[i64],
        at: chrono::DateTime<chrono::Utc>,
    ) -> Result<(), StoreError> {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for id in ids {
            sqlx::query("UPDATE failed_records SET last_try_at = ? WHERE id = ?")
                .bind(&at)
                .bind(id)
                .execute(&self.pool)
                .await?;
        }
        Ok(())
    }

    /// Dead records per pipeline (the dead-letter badge): failed records and children whose parent never came.
    pub async fn dead_count(&self, pipeline: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT (SELECT count(*) FROM failed_records WHERE pipeline = ?1 AND status = 'dead')
                  + (SELECT count(*) FROM pending_children WHERE pipeline = ?1 AND status = 'dead')",
        )
        .bind(pipeline)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}
