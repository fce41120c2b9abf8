//! Rows edited in the target whose source changed too: held back per the entity's strategy during a merge, and
//! a conflict's resolution applied to its row.

use super::*;

/// What a conflict's resolution writes into the row.
pub struct RowResolution {
    /// The row's new values by column.
    pub values: Value,
    pub data_hash: String,
    pub rowversion: Option<String>,
    /// Whether the row now holds exactly the source's values (no outside edit left to protect).
    pub matches_source: bool,
}

/// RESOLVE for rows edited in the target whose source changed too: decides per row by the entity's strategy,
/// takes the rows the target keeps out of the staging table (their stored hash moves on to the source's, except
/// for manual ones, which wait in the queue — filed before the page commits). Returns how many rows were held.
pub(super) async fn hold_conflicts(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shape: Shape,
    page: &PageWrite<'_>,
) -> Result<u64, SinkError> {
    let err = write_err(page.table);
    let sql = format!(
        "SELECT {}, {}, s.\"_bridge_rowversion\",
                (extract(epoch FROM t.\"_bridge_edited_at\") * 1000)::float8,
                {source}, {target}, t.\"_bridge_synced\"
         FROM _syncflow_stage s JOIN {table} t ON t.\"_bridge_key_hash\" = s.\"_bridge_key_hash\"
         WHERE t.\"_bridge_edited_at\" IS NOT NULL
           AND t.\"_bridge_data_hash\" IS DISTINCT FROM s.\"_bridge_data_hash\"
         FOR UPDATE OF t",
        shape.hex("s.\"_bridge_key_hash\""),
        shape.hex("s.\"_bridge_data_hash\""),
        source = values_json("s"),
        target = values_json("t"),
    );
    let rows = sqlx::query(&sql).fetch_all(&mut *tx).await.map_err(&err)?;
    let mut kept = Vec::new();
    let mut manual = Vec::new();
    for row in rows {
        let key_hash: String = row.try_get(0).map_err(&err)?;
        let rowversion: Option<String> = row.try_get(2).map_err(&err)?;
        let edited_ms: f64 = row.try_get(3).map_err(&err)?;
        let target_keeps = match page.conflicts {
            ConflictStrategy::SourceWins => false,
            ConflictStrategy::TargetWins | ConflictStrategy::Manual => true,
            ConflictStrategy::LastWriteWins => {
                // Without a readable source time, the source change is the one seen last (now).
                source_written_ms(rowversion.as_deref()).is_some_and(|source| source <= edited_ms)
            }
        };
        if !target_keeps {
            continue;
        }
        if page.conflicts == ConflictStrategy::Manual {
            manual.push(DetectedConflict {
                source_hash: row.try_get(1).map_err(&err)?,
                source_rowversion: rowversion,
                source: row.try_get(4).map_err(&err)?,
                target: row.try_get(5).map_err(&err)?,
                synced: row.try_get(6).map_err(&err)?,
                key_hash: key_hash.clone(),
            });
        }
        kept.push(key_hash);
    }
    if kept.is_empty() {
        return Ok(0);
    }
    tracing::info!(
        table = page.table,
        rows = kept.len(),
        strategy = page.conflicts.as_str(),
        "rows edited in the target kept"
    );
    if page.conflicts != ConflictStrategy::Manual {
        // The target's version stands for this source version: the next sync skips the row until the source
        // changes again.
        let sql = format!(
            "UPDATE {table} t SET \"_bridge_data_hash\" = s.\"_bridge_data_hash\",
                    \"_bridge_rowversion\" = s.\"_bridge_rowversion\"
             FROM _syncflow_stage s WHERE t.\"_bridge_key_hash\" = s.\"_bridge_key_hash\" AND {}",
            shape.hash_in("s.\"_bridge_key_hash\"", "$1")
        );
        sqlx::query(&sql)
            .bind(&kept)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
    }
    let unstage = format!(
        "DELETE FROM _syncflow_stage WHERE {}",
        shape.hash_in("\"_bridge_key_hash\"", "$1")
    );
    sqlx::query(&unstage)
        .bind(&kept)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
    if let (Some(log), false) = (page.conflict_log, manual.is_empty()) {
        log(manual).await.map_err(|message| SinkError::Write {
            table: page.table.to_owned(),
            message: format!("could not file the page's conflicts: {message}"),
        })?;
    }
    Ok(kept.len() as u64)
}

/// When the source wrote a row, from its rowversion (an RFC 3339 time, e.g. Bubble's `Modified Date`), in ms.
pub(super) fn source_written_ms(rowversion: Option<&str>) -> Option<f64> {
    let parsed = chrono::DateTime::parse_from_rfc3339(rowversion?.trim()).ok()?;
    Some(parsed.timestamp_millis() as f64)
}

impl PostgresSink {
    /// Applies a conflict's resolution to one row in a transaction: `decide` sees the row as it is now (locked) and
    /// says what it becomes. Returns the values before and after. The engine's own write: the trigger keeps out.
    pub async fn resolve_row(
        &self,
        table: &str,
        key_hash: &str,
        decide: impl FnOnce(&Value) -> RowResolution,
    ) -> Result<(Value, Value), SinkError> {
        let err = write_err(table);
        let qualified = self.qualified(table);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        as_engine_writer(&mut tx).await.map_err(&err)?;
        let shape = Shape::of(&mut tx, &qualified).await.map_err(&err)?;
        let sql = format!(
            "SELECT {} FROM {qualified} t WHERE \"_bridge_key_hash\" = {} FOR UPDATE",
            values_json("t"),
            shape.hash("$1")
        );
        let before: Option<Value> = sqlx::query_scalar(&sql)
            .bind(key_hash)
            .fetch_optional(&mut *tx)
            .await
            .map_err(&err)?;
        let Some(before) = before else {
            return Err(SinkError::Write {
                table: qualified,
                message: "the row is no longer in the target (deleted since the conflict was found); nothing to resolve"
                    .into(),
            });
        };
        let resolution = decide(&before);
        let columns: Vec<String> = resolution
            .values
            .as_object()
            .map(|o| {
                o.keys()
                    .filter(|c| !is_tracking(c))
                    .map(|c| quote_ident(c))
                    .collect()
            })
            .unwrap_or_default();
        if columns.is_empty() {
            return Err(SinkError::Write {
                table: qualified,
                message: "the resolution names no column".into(),
            });
        }
        let edit = if resolution.matches_source {
            "\"_bridge_edited_at\" = NULL, \"_bridge_synced\" = NULL"
        } else {
            "\"_bridge_edited_at\" = coalesce(\"_bridge_edited_at\", clock_timestamp())"
        };
        let sql = format!(
            "UPDATE {qualified} AS t SET ({list}) = (SELECT {list} FROM jsonb_populate_record(NULL::{qualified}, $1)),
                 \"_bridge_data_hash\" = {data_hash}, \"_bridge_rowversion\" = $3, \"_bridge_synced_at\" = now(), {edit}
             WHERE \"_bridge_key_hash\" = {key_hash}
             RETURNING {values}",
            list = columns.join(", "),
            values = values_json("t"),
            data_hash = shape.hash("$2"),
            key_hash = shape.hash("$4"),
        );
        let after: Value = sqlx::query_scalar(&sql)
            .bind(&resolution.values)
            .bind(&resolution.data_hash)
            .bind(resolution.rowversion.as_deref())
            .bind(key_hash)
            .fetch_one(&mut *tx)
            .await
            .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok((before, after))
    }
}
