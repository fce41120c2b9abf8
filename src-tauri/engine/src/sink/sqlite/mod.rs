//! The SQLite sink: prepared upserts in one transaction per page, the checkpoint in the same transaction.

use super::{
    checkpoint_json, parse_checkpoint, required_tracking_columns, Checkpoint, MergeCounts,
    PageWrite, SinkError, CHECKPOINT_TABLE, SEEN_TABLE,
};
use crate::schema::{quote_ident, ColumnType, Mapping, SchemaChange, ROW_ID_COLUMN};
use serde_json::Value;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions};
use sqlx::{Arguments, Row, SqlitePool};
use std::path::Path;

mod undo;

pub struct SqliteSink {
    pool: SqlitePool,
}

fn write_err(table: &str) -> impl Fn(sqlx::Error) -> SinkError + '_ {
    move |e| {
        let (table, message) = (table.to_owned(), e.to_string());
        if super::is_refused_data(&e) {
            SinkError::Rejected { table, message }
        } else {
            SinkError::Write { table, message }
        }
    }
}

impl SqliteSink {
    /// Opens the file; with `create_tables` false (a dry run) nothing is created or changed — a file that does not
    /// exist yet is stood in for by an empty in-memory database.
    pub async fn connect(path: &Path, create_tables: bool) -> Result<SqliteSink, SinkError> {
        if !create_tables {
            return Self::connect_dry(path).await;
        }
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| {
                SinkError::Connect(format!("{}: {e}; check target.path", dir.display()))
            })?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .busy_timeout(std::time::Duration::from_secs(10));
        let pool = open_pool(options, path).await?;
        let sql = format!(
            "CREATE TABLE IF NOT EXISTS {} (pipeline TEXT NOT NULL, entity TEXT NOT NULL, checkpoint TEXT NOT NULL,
             updated_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP, PRIMARY KEY (pipeline, entity))",
            quote_ident(CHECKPOINT_TABLE)
        );
        sqlx::query(&sql)
            .execute(&pool)
            .await
            .map_err(write_err(CHECKPOINT_TABLE))?;
        let [undo_runs, undo_rows] = undo::create_undo_tables_sql();
        for sql in [
            undo_runs,
            undo_rows,
            format!(
                "CREATE TABLE IF NOT EXISTS {} (pipeline TEXT NOT NULL, entity TEXT NOT NULL, key_hash TEXT NOT NULL)",
                quote_ident(SEEN_TABLE)
            ),
            format!(
                "CREATE INDEX IF NOT EXISTS \"_syncflow_seen_key\" ON {} (pipeline, entity, key_hash)",
                quote_ident(SEEN_TABLE)
            ),
        ] {
            sqlx::query(&sql)
                .execute(&pool)
                .await
                .map_err(write_err(SEEN_TABLE))?;
        }
        Ok(SqliteSink { pool })
    }

    async fn connect_dry(path: &Path) -> Result<SqliteSink, SinkError> {
        let options = if path.exists() {
            SqliteConnectOptions::new()
                .filename(path)
                .busy_timeout(std::time::Duration::from_secs(10))
        } else {
            SqliteConnectOptions::new().in_memory(true)
        };
        Ok(SqliteSink {
            pool: open_pool(options, path).await?,
        })
    }

    pub async fn columns(
        &self,
        table: &str,
    ) -> Result<Option<Vec<(String, ColumnType)>>, SinkError> {
        let rows = sqlx::query("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(&self.pool)
            .await
            .map_err(write_err(table))?;
        if rows.is_empty() {
            return Ok(None);
        }
        let mut all = Vec::with_capacity(rows.len());
        for row in rows {
            let name: String = row.try_get(0).map_err(write_err(table))?;
            let ty: String = row.try_get(1).map_err(write_err(table))?;
            all.push((name, sqlite_type(&ty)));
        }
        for column in required_tracking_columns() {
            if !all.iter().any(|(n, _)| n == column) {
                return Err(SinkError::MissingTracking {
                    table: table.to_owned(),
                    column: column.into(),
                });
            }
        }
        Ok(Some(
            all.into_iter()
                .filter(|(n, _)| {
                    n != ROW_ID_COLUMN && !crate::schema::TRACKING_COLUMNS.contains(&n.as_str())
                })
                .collect(),
        ))
    }

    /// SQLite stores any value in any column, so widened fields need no DDL; new ones get a column.
    pub fn ddl(
        &self,
        table: &str,
        mapping: &Mapping,
        change: &SchemaChange,
        exists: bool,
    ) -> Vec<String> {
        let q = quote_ident(table);
        if exists {
            let mut statements: Vec<String> = mapping
                .fields
                .iter()
                .filter(|f| change.added.contains(&f.source))
                .map(|f| {
                    format!(
                        "ALTER TABLE {q} ADD COLUMN {} {}",
                        quote_ident(&f.column),
                        declared_type(f.ty)
                    )
                })
                .collect();
            statements.extend(crate::schema::index_statements_for_added(
                &q,
                table,
                mapping,
                &change.added,
            ));
            return statements;
        }
        let mut columns = vec![format!("{} TEXT PRIMARY KEY", quote_ident(ROW_ID_COLUMN))];
        columns.extend(mapping.fields.iter().map(|f| {
            let required = if mapping.key.contains(&f.source) {
                " NOT NULL"
            } else {
                ""
            };
            format!(
                "{} {}{required}",
                quote_ident(&f.column),
                declared_type(f.ty)
            )
        }));
        columns.push("\"_bridge_key_hash\" TEXT NOT NULL UNIQUE".into());
        columns.push("\"_bridge_data_hash\" TEXT NOT NULL".into());
        columns.push("\"_bridge_rowversion\" TEXT".into());
        columns.push("\"_bridge_synced_at\" TEXT NOT NULL".into());
        columns.push("\"_bridge_run_id\" TEXT NOT NULL".into());
        columns.push("\"_bridge_deleted_at\" TEXT".into());
        let mut statements = vec![format!(
            "CREATE TABLE {q} (\n  {}\n)",
            columns.join(",\n  ")
        )];
        statements.extend(crate::schema::index_statements(&q, table, mapping));
        statements
    }

    pub async fn apply(&self, table: &str, statements: &[String]) -> Result<(), SinkError> {
        let mut tx = self.pool.begin().await.map_err(write_err(table))?;
        for statement in statements {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(write_err(table))?;
        }
        tx.commit().await.map_err(write_err(table))
    }

    /// One nullable text value of a query about `table`.
    pub async fn scalar_text(&self, table: &str, sql: &str) -> Result<Option<String>, SinkError> {
        sqlx::query_scalar::<_, Option<String>>(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))
    }

    /// The DATA_HASH stored under each of `keys` (BK_HASHes) that has a live row in `table`.
    pub async fn stored_data_hashes(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>, SinkError> {
        let sql = format!(
            "SELECT \"_bridge_key_hash\", \"_bridge_data_hash\" FROM {} WHERE \"_bridge_key_hash\" IN
             (SELECT value FROM json_each(?)) AND \"_bridge_deleted_at\" IS NULL",
            quote_ident(table)
        );
        let keys = serde_json::to_string(keys).map_err(|e| SinkError::Write {
            table: table.to_owned(),
            message: e.to_string(),
        })?;
        let rows: Vec<(String, String)> = sqlx::query_as(&sql)
            .bind(keys)
            .fetch_all(&self.pool)
            .await
            .map_err(write_err(table))?;
        Ok(rows.into_iter().collect())
    }

    pub async fn is_empty(&self, table: &str) -> Result<bool, SinkError> {
        let sql = format!("SELECT NOT EXISTS (SELECT 1 FROM {})", quote_ident(table));
        sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))
    }

    pub async fn read_checkpoint(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        let sql = format!(
            "SELECT checkpoint FROM {} WHERE pipeline = ? AND entity = ?",
            quote_ident(CHECKPOINT_TABLE)
        );
        let row = sqlx::query(&sql)
            .bind(pipeline)
            .bind(entity)
            .fetch_optional(&self.pool)
            .await
            .map_err(write_err(CHECKPOINT_TABLE))?;
        match row {
            None => Ok(None),
            Some(r) => {
                let text: String = r.try_get(0).map_err(write_err(CHECKPOINT_TABLE))?;
                parse_checkpoint(&text).map(Some)
            }
        }
    }

    pub async fn write_page(
        &self,
        page: &PageWrite<'_>,
        run_id: &str,
    ) -> Result<MergeCounts, SinkError> {
        let err = write_err(page.table);
        let table = quote_ident(page.table);
        let mut tx = self.pool.begin().await.map_err(&err)?;
        let mut counts = MergeCounts::default();
        let synced_at = chrono::Utc::now().to_rfc3339();
        let run_id = run_id.to_owned();
        // Undo information, in the page's transaction (a dry run keeps none).
        let imaging = if page.dry_run {
            None
        } else {
            undo::mark_writer(&mut tx, page, &run_id)
                .await
                .map_err(&err)?;
            Some(undo::imaging(&mut tx, page.table).await.map_err(&err)?)
        };
        let data_columns: Vec<String> = page
            .mapping
            .fields
            .iter()
            .map(|f| quote_ident(&f.column))
            .collect();
        let lookup = format!("SELECT \"_bridge_data_hash\", \"_bridge_deleted_at\", \"_bridge_rowversion\" FROM {table} WHERE \"_bridge_key_hash\" = ?");
        let insert = format!(
            "INSERT INTO {table} (\"_bridge_id\", {cols}{sep}\"_bridge_key_hash\", \"_bridge_data_hash\",
             \"_bridge_rowversion\", \"_bridge_synced_at\", \"_bridge_run_id\") VALUES ({marks})",
            cols = data_columns.join(", "),
            sep = if data_columns.is_empty() { "" } else { ", " },
            marks = vec!["?"; data_columns.len() + 6].join(", ")
        );
        let assignments: Vec<String> = data_columns.iter().map(|c| format!("{c} = ?")).collect();
        let update = format!(
            "UPDATE {table} SET {cols}{sep}\"_bridge_data_hash\" = ?, \"_bridge_rowversion\" = ?,
             \"_bridge_synced_at\" = ?, \"_bridge_run_id\" = ?, \"_bridge_deleted_at\" = NULL WHERE \"_bridge_key_hash\" = ?",
            cols = assignments.join(", "),
            sep = if assignments.is_empty() { "" } else { ", " },
        );
        for row in page.rows {
            let existing = sqlx::query(&lookup)
                .bind(&row.key_hash)
                .fetch_optional(&mut *tx)
                .await
                .map_err(&err)?;
            let mut args = SqliteArguments::default();
            match existing {
                Some(found) => {
                    let hash: String = found.try_get(0).map_err(&err)?;
                    let deleted: Option<String> = found.try_get(1).map_err(&err)?;
                    let stored_version: Option<String> = found.try_get(2).map_err(&err)?;
                    let unchanged = hash == row.data_hash && deleted.is_none();
                    if unchanged
                        || (page.never_older && super::is_older(row, stored_version.as_deref()))
                    {
                        counts.skipped += 1;
                        continue;
                    }
                    if let Some(imaging) = &imaging {
                        sqlx::query(&imaging.one_row)
                            .bind(&run_id)
                            .bind(page.table)
                            .bind(&row.key_hash)
                            .bind(&run_id)
                            .execute(&mut *tx)
                            .await
                            .map_err(&err)?;
                    }
                    bind_values(&mut args, &row.values, page.mapping).map_err(&err)?;
                    let tracking = [
                        Some(&row.data_hash),
                        row.rowversion.as_ref(),
                        Some(&synced_at),
                        Some(&run_id),
                        Some(&row.key_hash),
                    ];
                    bind_texts(&mut args, &tracking).map_err(&err)?;
                    sqlx::query_with(&update, args)
                        .execute(&mut *tx)
                        .await
                        .map_err(&err)?;
                    counts.updated += 1;
                }
                None => {
                    let id = row.id.to_string();
                    bind_texts(&mut args, &[Some(&id)]).map_err(&err)?;
                    bind_values(&mut args, &row.values, page.mapping).map_err(&err)?;
                    let tracking = [
                        Some(&row.key_hash),
                        Some(&row.data_hash),
                        row.rowversion.as_ref(),
                        Some(&synced_at),
                        Some(&run_id),
                    ];
                    bind_texts(&mut args, &tracking).map_err(&err)?;
                    sqlx::query_with(&insert, args)
                        .execute(&mut *tx)
                        .await
                        .map_err(&err)?;
                    counts.inserted += 1;
                }
            }
        }
        if page.tracks_seen() && !page.dry_run {
            record_seen(&mut tx, page).await.map_err(&err)?;
        }
        if page.applies_deletes() {
            let image = imaging.as_ref().map(|i| i.image.as_str());
            (counts.deleted, counts.held_deletes) =
                apply_deletes(&mut tx, &table, page, (&run_id, image))
                    .await
                    .map_err(&err)?;
        }
        if !page.dry_run && counts.changes_target() {
            undo::mark_changed(&mut tx, page, &run_id)
                .await
                .map_err(&err)?;
        }
        if let Some(checkpoint) = page.checkpoint.filter(|_| !page.dry_run) {
            let sql = format!(
                "INSERT INTO {} (pipeline, entity, checkpoint) VALUES (?, ?, ?)
                 ON CONFLICT (pipeline, entity) DO UPDATE SET checkpoint = excluded.checkpoint, updated_at = CURRENT_TIMESTAMP",
                quote_ident(CHECKPOINT_TABLE)
            );
            sqlx::query(&sql)
                .bind(page.pipeline)
                .bind(page.entity)
                .bind(checkpoint_json(checkpoint, counts)?)
                .execute(&mut *tx)
                .await
                .map_err(&err)?;
        }
        if page.dry_run {
            tx.rollback().await.map_err(&err)?;
        } else {
            tx.commit().await.map_err(&err)?;
        }
        Ok(counts)
    }
}

/// One connection: SQLite writes one at a time anyway.
async fn open_pool(options: SqliteConnectOptions, path: &Path) -> Result<SqlitePool, SinkError> {
    SqlitePoolOptions::new()
        .max_connections(1)
        .connect_with(options)
        .await
        .map_err(|e| SinkError::Connect(format!("{}: {e}; check target.path", path.display())))
}

/// Records the page's keys as seen in this pass (after forgetting an unfinished earlier pass's).
async fn record_seen(
    tx: &mut sqlx::SqliteConnection,
    page: &PageWrite<'_>,
) -> Result<(), sqlx::Error> {
    let entity = page.seen_entity();
    if page.starts_pass {
        clear_seen(tx, page.pipeline, &entity).await?;
    }
    let sql = format!(
        "INSERT INTO {} (pipeline, entity, key_hash) VALUES (?, ?, ?)",
        quote_ident(SEEN_TABLE)
    );
    // The page's keys and its held children's: a child waiting for its parent is in the source.
    for key in page.page_keys {
        sqlx::query(&sql)
            .bind(page.pipeline)
            .bind(&entity)
            .bind(format!("{key:032x}"))
            .execute(&mut *tx)
            .await?;
    }
    Ok(())
}

/// Rows whose key was not seen in the complete pass: marked deleted (soft), removed (hard), or, in a dry run,
/// counted; or none, when that is more than the delete guard allows. The pass's seen keys are cleared once the
/// deletes are done (kept while they are held, for the confirmation).
async fn apply_deletes(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
    page: &PageWrite<'_>,
    (writer, image): (&str, Option<&str>),
) -> Result<(u64, Option<super::HeldDeletes>), sqlx::Error> {
    if page.dry_run {
        return count_unseen(tx, table, page).await;
    }
    let entity = page.seen_entity();
    let sql = super::unseen_rows_sql(
        page,
        table,
        &quote_ident(SEEN_TABLE),
        ("?", "?"),
        "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')",
    );
    let counting = super::PageWrite {
        dry_run: true,
        ..*page
    };
    let count_sql =
        super::unseen_rows_sql(&counting, table, &quote_ident(SEEN_TABLE), ("?", "?"), "");
    let would: i64 = sqlx::query_scalar(&count_sql)
        .bind(page.pipeline)
        .bind(&entity)
        .fetch_one(&mut *tx)
        .await?;
    let would = would.max(0) as u64;
    let live: i64 = sqlx::query_scalar(&format!(
        "SELECT count(*) FROM {table} WHERE \"_bridge_deleted_at\" IS NULL"
    ))
    .fetch_one(&mut *tx)
    .await?;
    if let Some(held) = page.guard_holds(would, live.max(0) as u64) {
        return Ok((0, Some(held)));
    }
    if page.dry_run {
        return Ok((would, None));
    }
    if let Some(image) = image {
        let unseen = super::unseen_condition(table, &quote_ident(SEEN_TABLE), ("?", "?"));
        sqlx::query(&undo::image_unseen_sql(table, image, &unseen))
            .bind(writer)
            .bind(page.table)
            .bind(page.pipeline)
            .bind(&entity)
            .execute(&mut *tx)
            .await?;
    }
    let done = sqlx::query(&sql)
        .bind(page.pipeline)
        .bind(&entity)
        .execute(&mut *tx)
        .await?;
    clear_seen(tx, page.pipeline, &entity).await?;
    Ok((done.rows_affected(), None))
}

/// A dry run's end of pass: the pass's keys (in the engine's memory: a dry run records nothing) compared with the
/// table's live rows.
async fn count_unseen(
    tx: &mut sqlx::SqliteConnection,
    table: &str,
    page: &PageWrite<'_>,
) -> Result<(u64, Option<super::HeldDeletes>), sqlx::Error> {
    let Some(pass_keys) = page.pass_keys else {
        return Ok((0, None));
    };
    let mut seen = pass_keys.to_vec();
    seen.sort_unstable();
    let keys: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT \"_bridge_key_hash\" FROM {table} WHERE \"_bridge_deleted_at\" IS NULL"
    ))
    .fetch_all(&mut *tx)
    .await?;
    let would = keys
        .iter()
        .filter(|k| super::key_bits(k).is_some_and(|bits| seen.binary_search(&bits).is_err()))
        .count() as u64;
    match page.guard_holds(would, keys.len() as u64) {
        Some(held) => Ok((0, Some(held))),
        None => Ok((would, None)),
    }
}

async fn clear_seen(
    tx: &mut sqlx::SqliteConnection,
    pipeline: &str,
    entity: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "DELETE FROM {} WHERE pipeline = ? AND entity = ?",
        quote_ident(SEEN_TABLE)
    ))
    .bind(pipeline)
    .bind(entity)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

fn bind_texts(
    args: &mut SqliteArguments<'_>,
    texts: &[Option<&String>],
) -> Result<(), sqlx::Error> {
    for text in texts {
        args.add(text.map(|t| t.to_owned()))
            .map_err(sqlx::Error::Encode)?;
    }
    Ok(())
}

fn bind_values(
    args: &mut SqliteArguments<'_>,
    values: &[Value],
    mapping: &Mapping,
) -> Result<(), sqlx::Error> {
    for (value, field) in values.iter().zip(&mapping.fields) {
        let added = match (value, field.ty) {
            (Value::Null, _) => args.add(Option::<String>::None),
            (Value::Bool(b), _) => args.add(i64::from(*b)),
            (Value::Number(n), ColumnType::Numeric | ColumnType::Integer) => {
                match (n.as_i64(), n.as_f64()) {
                    (Some(i), _) => args.add(i),
                    (None, Some(f)) => args.add(f),
                    (None, None) => args.add(n.to_string()),
                }
            }
            (Value::String(s), _) => args.add(s.clone()),
            (other, _) => args.add(other.to_string()),
        };
        added.map_err(sqlx::Error::Encode)?;
    }
    Ok(())
}

fn declared_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "TEXT",
        ColumnType::Numeric => "NUMERIC",
        ColumnType::Integer => "INTEGER",
        ColumnType::Boolean => "BOOLEAN",
        ColumnType::DateTime => "DATETIME",
        ColumnType::Json => "JSON",
    }
}

fn sqlite_type(declared: &str) -> ColumnType {
    match declared.to_ascii_uppercase().as_str() {
        "INTEGER" => ColumnType::Integer,
        "NUMERIC" | "REAL" => ColumnType::Numeric,
        "BOOLEAN" => ColumnType::Boolean,
        "JSON" => ColumnType::Json,
        "DATETIME" => ColumnType::DateTime,
        _ => ColumnType::Text,
    }
}
