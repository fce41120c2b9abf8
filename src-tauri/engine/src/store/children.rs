//! Children waiting for their parent: held by a run, checked by the loop, landed or dead.

use super::*;

/// A child RESOLVE held back, as the queue keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct HeldChild {
    pub key_hash: String,
    pub field: String,
    pub parent_entity: String,
    /// The missing parent's key (JSON).
    pub parent_key: String,
    /// The record as fetched (JSON).
    pub raw: String,
}

/// A child waiting for its parent, as the console and `syncflow failed list` show it.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct PendingChild {
    #[ts(type = "number")]
    pub id: i64,
    pub pipeline: String,
    pub entity: String,
    pub key_hash: String,
    /// The reference field.
    pub field: String,
    pub parent_entity: String,
    /// The missing parent's key (JSON text).
    pub parent_key: String,
    /// The record as fetched (JSON text).
    pub raw: String,
    pub run_id: String,
    /// pending | dead
    pub status: String,
    #[ts(type = "number")]
    pub tries: i64,
    pub last_try_at: Option<String>,
    pub created_at: String,
}

impl Store {
    /// Children of an entity still waiting for their parent (pending or dead).
    pub async fn open_children(&self, pipeline: &str, entity: &str) -> Result<u64, StoreError> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM pending_children WHERE pipeline = ? AND entity = ?
             AND status IN ('pending', 'dead')",
        )
        .bind(pipeline)
        .bind(entity)
        .fetch_one(&self.pool)
        .await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// One page's RESOLVE outcome, in one transaction: the keys written to the target leave the queue (a newer
    /// version landed), the held children join it or replace their older version. Called before the page commits
    /// in the target, so a crash cannot lose a held child: the page is processed again and says the same.
    pub async fn settle_children(
        &self,
        pipeline: &str,
        entity: &str,
        run_id: &str,
        landed: &[&str],
        held: &[HeldChild],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        if !landed.is_empty() {
            let keys = serde_json::to_string(landed).unwrap_or_else(|_| "[]".into());
            sqlx::query(
                "UPDATE pending_children SET status = 'landed',
                 landed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
                 WHERE pipeline = ? AND entity = ? AND status IN ('pending', 'dead')
                 AND key_hash IN (SELECT value FROM json_each(?))",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(keys)
            .execute(&mut *tx)
            .await?;
        }
        for child in held {
            sqlx::query(
                "INSERT INTO pending_children (pipeline, entity, key_hash, field, parent_entity, parent_key, raw,
                 run_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                 ON CONFLICT (pipeline, entity, key_hash) WHERE status IN ('pending', 'dead')
                 DO UPDATE SET field = excluded.field, parent_entity = excluded.parent_entity,
                 parent_key = excluded.parent_key, raw = excluded.raw, run_id = excluded.run_id",
            )
            .bind(pipeline)
            .bind(entity)
            .bind(&child.key_hash)
            .bind(&child.field)
            .bind(&child.parent_entity)
            .bind(&child.parent_key)
            .bind(&child.raw)
            .bind(run_id)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// The children of a pipeline waiting for their parent (pending and dead), oldest first.
    pub async fn pending_children(&self, pipeline: &str) -> Result<Vec<PendingChild>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, pipeline, entity, key_hash, field, parent_entity, parent_key, raw, run_id, status, tries,
             last_try_at, created_at FROM pending_children
             WHERE pipeline = ? AND status IN ('pending', 'dead') ORDER BY id",
        )
        .bind(pipeline)
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(PendingChild {
                    id: r.try_get(0)?,
                    pipeline: r.try_get(1)?,
                    entity: r.try_get(2)?,
                    key_hash: r.try_get(3)?,
                    field: r.try_get(4)?,
                    parent_entity: r.try_get(5)?,
                    parent_key: r.try_get(6)?,
                    raw: r.try_get(7)?,
                    run_id: r.try_get(8)?,
                    status: r.try_get(9)?,
                    tries: r.try_get(10)?,
                    last_try_at: r.try_get(11)?,
                    created_at: r.try_get(12)?,
                })
            })
            .collect()
    }

    /// Pending children whose next check is due at `now` (`every` after the last try or since they were held),
    /// with fewer than `tries` tries, by pipeline.
    pub async fn children_due(
        &self,
        now: chrono::DateTime<chrono::Utc>,
        every: chrono::Duration,
        tries: i64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "SELECT pipeline, id, coalesce(last_try_at, created_at) FROM pending_children
             WHERE status = 'pending' AND tries < ? ORDER BY id",
        )
        .bind(tries)
        .fetch_all(&self.pool)
        .await?;
        let mut due = Vec::new();
        for r in rows {
            let last: String = r.try_get(2)?;
            let Ok(last) = chrono::DateTime::parse_from_rfc3339(&last) else {
                continue;
            };
            if last.with_timezone(&chrono::Utc) + every <= now {
                due.push((r.try_get(0)?, r.try_get(1)?));
            }
        }
        Ok(due)
    }

    /// Children that left the queue: `landed` in the target, or `failed` (moved to the failed records); kept for
    /// the record.
    pub async fn close_children(&self, ids: &[i64], status: &str) -> Result<(), StoreError> {
        for id in ids {
            sqlx::query(
                "UPDATE pending_children SET status = ?,
                 landed_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = ?",
            )
            .bind(status)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }

    /// A check of the loop found the parent still missing: after `dead_after` tries the child is dead (no more
    /// automatic checks; a manual retry still works).
    pub async fn note_child_tries(
        &self,
        ids: &[i64],
        at: chrono::DateTime<chrono::Utc>,
        dead_after: i64,
    ) -> Result<(), StoreError> {
        let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        for id in ids {
            sqlx::query(
                "UPDATE pending_children SET tries = tries + 1, last_try_at = ?,
                 status = CASE WHEN tries + 1 >= ? THEN 'dead' ELSE status END WHERE id = ?",
            )
            .bind(&at)
            .bind(dead_after)
            .bind(id)
            .execute(&self.pool)
            .await?;
        }
        Ok(())
    }
}
