//! Undo information and undo in an SQLite target, as for PostgreSQL (see `sink/postgres/undo.rs`): a mark per
//! run and entity with the checkpoint before the run, the before-image (JSON of every column) of each row the run
//! updates or deletes, written in the page's transaction; undo in one transaction.

use super::*;
use crate::sink::{UndoRefusal, UndoTable};

const UNDO_RUNS: &str = "\"_syncflow_undo_runs\"";
const UNDO_ROWS: &str = "\"_syncflow_undo_rows\"";

/// SQLite's functions take at most 127 arguments: images are built from objects of this many columns, patched
/// together (a null column drops out of the patch, and reads back as null).
const COLUMNS_PER_OBJECT: usize = 60;

pub(super) fn create_undo_tables_sql() -> [String; 2] {
    [
        format!(
            "CREATE TABLE IF NOT EXISTS {UNDO_RUNS} (seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL,
             pipeline TEXT NOT NULL, entity TEXT NOT NULL, tbl TEXT NOT NULL, late INTEGER NOT NULL DEFAULT 0,
             changed INTEGER NOT NULL DEFAULT 0, checkpoint_before TEXT, undone_at TEXT,
             UNIQUE (run_id, entity))"
        ),
        format!(
            "CREATE TABLE IF NOT EXISTS {UNDO_ROWS} (run_id TEXT NOT NULL, tbl TEXT NOT NULL, key_hash TEXT NOT NULL,
             image TEXT NOT NULL, PRIMARY KEY (run_id, tbl, key_hash))"
        ),
    ]
}

/// The table's columns, in order.
async fn columns_of(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<Vec<String>, sqlx::Error> {
    let rows = sqlx::query("SELECT name FROM pragma_table_info(?) ORDER BY cid")
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
    rows.iter().map(|r| r.try_get::<String, _>(0)).collect()
}

/// The SQL expression of a row's image: a JSON object of its columns.
fn image_of(columns: &[String]) -> String {
    let objects: Vec<String> = columns
        .chunks(COLUMNS_PER_OBJECT)
        .map(|chunk| {
            let pairs: Vec<String> = chunk
                .iter()
                .map(|c| format!("'{}', {}", c.replace('\'', "''"), quote_ident(c)))
                .collect();
            format!("json_object({})", pairs.join(", "))
        })
        .collect();
    objects
        .into_iter()
        .reduce(|patched, next| format!("json_patch({patched}, {next})"))
        .unwrap_or_else(|| "json_object()".into())
}

/// What a page's writes need to keep images: the statement that images the stored row of one key (binds: writer,
/// table, key, writer).
pub(super) struct Imaging {
    pub(super) image: String,
    pub(super) one_row: String,
}

pub(super) async fn imaging(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
) -> Result<Imaging, sqlx::Error> {
    let image = image_of(&columns_of(tx, table).await?);
    let one_row = format!(
        "INSERT OR IGNORE INTO {UNDO_ROWS} (run_id, tbl, key_hash, image)
         SELECT ?, ?, \"_bridge_key_hash\", {image} FROM {} WHERE \"_bridge_key_hash\" = ? AND \"_bridge_run_id\" <> ?",
        quote_ident(table)
    );
    Ok(Imaging { image, one_row })
}

/// Marks the writer's first write of an entity, keeping the entity's checkpoint as it was before it.
pub(super) async fn mark_writer(
    tx: &mut sqlx::SqliteConnection,
    page: &PageWrite<'_>,
    writer: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT OR IGNORE INTO {UNDO_RUNS} (run_id, pipeline, entity, tbl, late, checkpoint_before)
         VALUES (?1, ?2, ?3, ?4, ?5, (SELECT checkpoint FROM {} WHERE pipeline = ?2 AND entity = ?3))",
        quote_ident(CHECKPOINT_TABLE)
    ))
    .bind(writer)
    .bind(page.pipeline)
    .bind(page.entity)
    .bind(page.table)
    .bind(page.late)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

pub(super) async fn mark_changed(
    tx: &mut sqlx::SqliteConnection,
    page: &PageWrite<'_>,
    writer: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "UPDATE {UNDO_RUNS} SET changed = 1 WHERE run_id = ? AND entity = ? AND changed = 0"
    ))
    .bind(writer)
    .bind(page.entity)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// Images the rows the end of the pass will delete or mark (binds: writer, table, pipeline, entity).
pub(super) fn image_unseen_sql(table: &str, image: &str, unseen: &str) -> String {
    format!(
        "INSERT OR IGNORE INTO {UNDO_ROWS} (run_id, tbl, key_hash, image)
         SELECT ?, ?, \"_bridge_key_hash\", {image} FROM {table} WHERE {unseen}"
    )
}

impl SqliteSink {
    /// Keeps undo information for the pipeline's last `keep` runs that changed the target.
    pub async fn prune_undo(&self, pipeline: &str, keep: u32) -> Result<(), SinkError> {
        let err = write_err("_syncflow_undo_runs");
        let boundary: Option<i64> = if keep == 0 {
            Some(i64::MAX)
        } else {
            sqlx::query_scalar(&format!(
                "SELECT min(first) FROM (SELECT min(seq) AS first FROM {UNDO_RUNS}
                   WHERE pipeline = ? AND late = 0 GROUP BY run_id
                   HAVING max(changed) = 1 AND max(undone_at IS NOT NULL) = 0
                   ORDER BY min(seq) DESC LIMIT ?)"
            ))
            .bind(pipeline)
            .bind(i64::from(keep))
            .fetch_one(&self.pool)
            .await
            .map_err(&err)?
        };
        let Some(boundary) = boundary else {
            return Ok(());
        };
        let mut tx = self.pool.begin().await.map_err(&err)?;
        sqlx::query(&format!(
            "DELETE FROM {UNDO_ROWS} WHERE run_id IN (SELECT run_id FROM {UNDO_RUNS} WHERE pipeline = ? AND seq < ?)"
        ))
        .bind(pipeline)
        .bind(boundary)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(&format!(
            "DELETE FROM {UNDO_RUNS} WHERE pipeline = ? AND seq < ?"
        ))
        .bind(pipeline)
        .bind(boundary)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        tx.commit().await.map_err(&err)?;
        Ok(())
    }

    /// Undoes run `run_id` of `pipeline` in one transaction (rolled back with `apply` false: a preview).
    pub async fn undo(
        &self,
        pipeline: &str,
        run_id: &str,
        apply: bool,
    ) -> Result<Result<Vec<UndoTable>, UndoRefusal>, SinkError> {
        let err = write_err("_syncflow_undo_runs");
        let mut tx = self.pool.begin().await.map_err(&err)?;
        let exists: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = '_syncflow_undo_runs'",
        )
        .fetch_one(&mut *tx)
        .await
        .map_err(&err)?;
        if exists == 0 {
            return Ok(Err(UndoRefusal::NoInformation));
        }
        let marks: Vec<(String, String, Option<String>, bool, i64)> = sqlx::query_as(&format!(
            "SELECT entity, tbl, checkpoint_before, undone_at IS NOT NULL, seq FROM {UNDO_RUNS}
             WHERE run_id = ? AND pipeline = ? ORDER BY seq"
        ))
        .bind(run_id)
        .bind(pipeline)
        .fetch_all(&mut *tx)
        .await
        .map_err(&err)?;
        let Some(first) = marks.iter().map(|m| m.4).min() else {
            return Ok(Err(UndoRefusal::NoInformation));
        };
        if marks.iter().any(|m| m.3) {
            return Ok(Err(UndoRefusal::AlreadyUndone));
        }
        let later: Option<(String, bool)> = sqlx::query_as(&format!(
            "SELECT run_id, late FROM {UNDO_RUNS} WHERE pipeline = ? AND seq > ? AND run_id <> ? AND changed = 1
             AND undone_at IS NULL ORDER BY seq DESC LIMIT 1"
        ))
        .bind(pipeline)
        .bind(first)
        .bind(run_id)
        .fetch_optional(&mut *tx)
        .await
        .map_err(&err)?;
        if let Some((later, late)) = later {
            return Ok(Err(if late {
                UndoRefusal::LateWrites
            } else {
                UndoRefusal::NotLatest { later }
            }));
        }
        let mut tables: Vec<UndoTable> = Vec::new();
        for (_, table, _, _, _) in &marks {
            if tables.iter().all(|t| &t.table != table) {
                tables.push(undo_table(&mut tx, run_id, table).await?);
            }
        }
        let cp = quote_ident(CHECKPOINT_TABLE);
        let delete = format!("DELETE FROM {cp} WHERE pipeline = ? AND entity = ?");
        let upsert = format!(
            "INSERT INTO {cp} (pipeline, entity, checkpoint) VALUES (?, ?, ?)
             ON CONFLICT (pipeline, entity) DO UPDATE SET checkpoint = excluded.checkpoint"
        );
        for (entity, _, before, _, _) in &marks {
            let restore = match before {
                None => sqlx::query(&delete).bind(pipeline).bind(entity),
                Some(before) => sqlx::query(&upsert)
                    .bind(pipeline)
                    .bind(entity)
                    .bind(before),
            };
            restore
                .execute(&mut *tx)
                .await
                .map_err(write_err(CHECKPOINT_TABLE))?;
        }
        sqlx::query(&format!(
            "UPDATE {UNDO_RUNS} SET undone_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now')
             WHERE run_id = ? AND pipeline = ?"
        ))
        .bind(run_id)
        .bind(pipeline)
        .execute(&mut *tx)
        .await
        .map_err(&err)?;
        sqlx::query(&format!("DELETE FROM {UNDO_ROWS} WHERE run_id = ?"))
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(&err)?;
        if apply {
            tx.commit().await.map_err(&err)?;
        } else {
            tx.rollback().await.map_err(&err)?;
        }
        Ok(Ok(tables))
    }
}

/// Rows with an image replaced by it, the rest of the run's rows (its inserts) removed.
async fn undo_table(
    tx: &mut sqlx::SqliteConnection,
    run_id: &str,
    table: &str,
) -> Result<UndoTable, SinkError> {
    let err = write_err(table);
    let columns = columns_of(tx, table).await.map_err(&err)?;
    if columns.is_empty() {
        return Err(SinkError::MissingTable {
            table: table.to_owned(),
        });
    }
    let quoted = quote_ident(table);
    sqlx::query(&format!(
        "DELETE FROM {quoted} WHERE \"_bridge_key_hash\" IN
         (SELECT key_hash FROM {UNDO_ROWS} WHERE run_id = ? AND tbl = ?)"
    ))
    .bind(run_id)
    .bind(table)
    .execute(&mut *tx)
    .await
    .map_err(&err)?;
    let removed = sqlx::query(&format!(
        "DELETE FROM {quoted} WHERE \"_bridge_run_id\" = ?"
    ))
    .bind(run_id)
    .execute(&mut *tx)
    .await
    .map_err(&err)?
    .rows_affected();
    // A column's path in the image is a JSON string, so any name reads back.
    let values: Vec<String> = columns
        .iter()
        .map(|c| {
            format!(
                "json_extract(image, '$.' || json_quote('{}'))",
                c.replace('\'', "''")
            )
        })
        .collect();
    let names: Vec<String> = columns.iter().map(|c| quote_ident(c)).collect();
    let restored = sqlx::query(&format!(
        "INSERT INTO {quoted} ({}) SELECT {} FROM {UNDO_ROWS} WHERE run_id = ? AND tbl = ?",
        names.join(", "),
        values.join(", ")
    ))
    .bind(run_id)
    .bind(table)
    .execute(&mut *tx)
    .await
    .map_err(&err)?
    .rows_affected();
    Ok(UndoTable {
        table: table.to_owned(),
        removed,
        restored,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn images_of_wide_tables_stay_within_sqlites_argument_limit() {
        let columns: Vec<String> = (0..130).map(|i| format!("c{i}")).collect();
        let image = image_of(&columns);
        assert_eq!(image.matches("json_object(").count(), 3);
        assert_eq!(image.matches("json_patch(").count(), 2);
        assert!(image_of(&["it's".to_owned()]).contains("'it''s', \"it's\""));
    }
}
