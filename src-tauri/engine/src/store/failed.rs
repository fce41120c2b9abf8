//! Failed records (the dead-letter queue): filed, listed, retried, dead.

use super::*;
use std::collections::HashMap;

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
    /// The records that failed the same way share it: entity, stage and the error without this record's values
    /// (see [`error_group`]).
    pub group: String,
}

/// Records of a pipeline that failed the same way, counted (a group of the dead-letter browser).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FailedGroup {
    pub group: String,
    pub entity: String,
    pub stage: String,
    /// The error with the values of each record taken out.
    pub error: String,
    /// Records still waiting for a retry, and those past their last automatic try.
    #[ts(type = "number")]
    pub failed: u64,
    #[ts(type = "number")]
    pub dead: u64,
}

/// An error message without the values of the record it is about, so records that failed the same way share it:
/// the text after "got" and standalone numbers become "…" (`field "qty": expected a number but got "abc"` and
/// `… got "n/a"` are one error; field names, even with digits, stay).
pub fn error_template(message: &str) -> String {
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(c) = rest.chars().next() {
        if let Some(after) = rest.strip_prefix("got \"") {
            out.push_str("got \"…\"");
            rest = after.find('"').map_or("", |end| &after[end + 1..]);
            continue;
        }
        let starts_word = out
            .chars()
            .last()
            .is_none_or(|p| !(p.is_alphanumeric() || p == '_' || p == '+'));
        if c.is_ascii_digit() && starts_word {
            let digits = rest
                .find(|d: char| !(d.is_ascii_digit() || d == '.'))
                .unwrap_or(rest.len());
            let ends_word = rest[digits..]
                .chars()
                .next()
                .is_none_or(|n| !(n.is_alphanumeric() || n == '_'));
            if ends_word {
                out.push('…');
                rest = &rest[digits..];
                continue;
            }
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// The group of a failed record: its entity, stage and error template.
pub fn error_group(entity: &str, stage: &str, message: &str) -> String {
    format!("{entity} · {stage} · {}", error_template(message))
}

/// The groups of a queue, largest first, without the records already retried.
pub fn failed_groups(rows: &[FailedRow]) -> Vec<FailedGroup> {
    let mut groups: Vec<FailedGroup> = Vec::new();
    let mut at: HashMap<&str, usize> = HashMap::new();
    for row in rows.iter().filter(|r| r.status != "retried") {
        let i = *at.entry(row.group.as_str()).or_insert_with(|| {
            groups.push(FailedGroup {
                group: row.group.clone(),
                entity: row.entity.clone(),
                stage: row.stage.clone(),
                error: error_template(&row.message),
                failed: 0,
                dead: 0,
            });
            groups.len() - 1
        });
        if row.status == "dead" {
            groups[i].dead += 1;
        } else {
            groups[i].failed += 1;
        }
    }
    groups.sort_by_key(|g| std::cmp::Reverse(g.failed + g.dead));
    groups
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
                let entity: String = r.try_get(2)?;
                let stage: String = r.try_get(5)?;
                let message: String = r.try_get(7)?;
                Ok(FailedRow {
                    group: error_group(&entity, &stage, &message),
                    id: r.try_get(0)?,
                    run_id: r.try_get(1)?,
                    entity,
                    page_no: r.try_get(3)?,
                    record_index: r.try_get(4)?,
                    stage,
                    error_type: r.try_get(6)?,
                    message,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_that_failed_the_same_way_share_a_template() {
        let a = error_template(r#"field "qty": expected a number but got "abc""#);
        let b = error_template(r#"field "qty": expected a number but got "n/a""#);
        assert_eq!(a, b);
        assert_eq!(a, r#"field "qty": expected a number but got "…""#);
        assert_ne!(
            a,
            error_template(r#"field "price": expected a number but got "abc""#)
        );
    }

    #[test]
    fn numbers_go_but_names_with_digits_stay() {
        assert_eq!(
            error_template("Key (id)=(123) already exists in field2 at 4.5"),
            "Key (id)=(…) already exists in field2 at …"
        );
        assert_eq!(
            error_template("business key `id` is in none of the 1000 records of page 3"),
            "business key `id` is in none of the … records of page …"
        );
        assert_eq!(error_template("got \"unclosed"), "got \"…\"");
        assert_eq!(
            error_template("a NUL character (U+0000)"),
            "a NUL character (U+0000)"
        );
    }

    fn row(id: i64, message: &str, status: &str) -> FailedRow {
        FailedRow {
            id,
            run_id: "r".into(),
            entity: "items".into(),
            page_no: 1,
            record_index: id,
            stage: "normalize".into(),
            error_type: "type".into(),
            message: message.into(),
            raw: "{}".into(),
            processed: None,
            status: status.into(),
            retries: 0,
            created_at: String::new(),
            group: error_group("items", "normalize", message),
        }
    }

    #[test]
    fn groups_count_failed_and_dead_largest_first_without_retried() {
        let rows = vec![
            row(1, r#"field "qty": expected a number but got "x""#, "failed"),
            row(2, r#"field "name" contains a NUL character"#, "failed"),
            row(3, r#"field "qty": expected a number but got "y""#, "dead"),
            row(
                4,
                r#"field "qty": expected a number but got "z""#,
                "retried",
            ),
        ];
        let groups = failed_groups(&rows);
        assert_eq!(groups.len(), 2);
        assert_eq!(
            groups[0].error,
            r#"field "qty": expected a number but got "…""#
        );
        assert_eq!((groups[0].failed, groups[0].dead), (1, 1));
        assert_eq!((groups[1].failed, groups[1].dead), (1, 0));
    }
}
