//! The PostgreSQL source: a table (or a query) read in pages ordered by the business key — keyset pagination, each
//! page starting after the last key read, so no page costs an OFFSET scan — with every row as the JSON object
//! `row_to_json` writes (numbers exact, times ISO 8601, JSON nested, fields in column order), built from typed
//! columns ([`read`]). Columns and types come from the catalog; the business key defaults to the table's primary key.

mod read;

use super::{FetchedPage, PageCursor, SourceError};
use crate::config::{Entity, PostgresSource};
use crate::pgconn::{self, Side};
use crate::schema::{quote_ident, ColumnType, Declared};
use read::ColumnRead;
use serde_json::Value;
use sqlx::postgres::{PgPool, PgRow, PgValueFormat};
use sqlx::{Row, ValueRef};
use std::collections::HashMap;
use std::time::Instant;

/// A connected database with the catalog facts of the entities read from it.
pub struct PgSource {
    pool: PgPool,
    schema: String,
    page_size: u32,
    sslmode: crate::config::SslMode,
    /// How long a lost connection is retried before a page fails.
    reconnect: std::time::Duration,
    /// Per entity: its columns (name, SQL type) in table order, and its primary key.
    tables: HashMap<String, TableFacts>,
    /// Whether the session's TimeZone is UTC (the driver sets it so; a URL's options can change it), so that
    /// timestamptz columns can be spelled here (see [`ColumnRead::of`]).
    utc_session: bool,
}

#[derive(Debug, Clone, Default)]
struct TableFacts {
    columns: Vec<(String, String)>,
    primary_key: Vec<String>,
}

fn failed(e: impl std::fmt::Display) -> SourceError {
    SourceError::Database {
        message: e.to_string(),
    }
}

impl PgSource {
    /// Connects and reads the catalog for `entities` (tables must exist; queries are described by running them
    /// for no rows).
    pub async fn connect(
        config: &PostgresSource,
        entities: &[Entity],
    ) -> Result<PgSource, SourceError> {
        let connected = pgconn::connect(
            &config.url,
            config.password.as_ref(),
            &config.connection,
            Side::Source,
            "syncflow-source",
            2,
        )
        .await
        .map_err(|e| match e {
            pgconn::PgConnectError::Secret(s) => SourceError::Secret(s),
            other => failed(other),
        })?;
        let mut source = PgSource {
            pool: connected.pool,
            schema: config.schema.clone(),
            page_size: config.page_size,
            sslmode: connected.sslmode,
            reconnect: connected.reconnect,
            tables: HashMap::new(),
            utc_session: false,
        };
        source.utc_session = source.session_is_utc().await?;
        for entity in entities {
            let facts = source.facts(entity).await?;
            source.tables.insert(entity.name.clone(), facts);
        }
        Ok(source)
    }

    /// Whether the connection is encrypted, in words (for Test connection).
    pub async fn tls(&self) -> Result<String, SourceError> {
        let encrypted = pgconn::encrypted(&self.pool).await.map_err(failed)?;
        Ok(pgconn::describe_tls(self.sslmode, encrypted))
    }

    async fn session_is_utc(&self) -> Result<bool, SourceError> {
        let zone: String = sqlx::query_scalar("SELECT current_setting('TimeZone')")
            .fetch_one(&self.pool)
            .await
            .map_err(failed)?;
        Ok(zone == "UTC")
    }

    async fn facts(&self, entity: &Entity) -> Result<TableFacts, SourceError> {
        if let Some(query) = &entity.query {
            let sql = format!("SELECT * FROM ({query}) q");
            let described = sqlx::Executor::describe(&self.pool, &sql)
                .await
                .map_err(|e| {
                    failed(format!(
                        "entities \"{}\": the query fails: {e}",
                        entity.name
                    ))
                })?;
            let columns: Vec<(String, String)> = described
                .columns()
                .iter()
                .map(|c| {
                    let ty = sqlx::TypeInfo::name(sqlx::Column::type_info(c)).to_lowercase();
                    (sqlx::Column::name(c).to_owned(), ty)
                })
                .collect();
            // Each column is selected by its name, and becomes the record's field of that name.
            if let Some(twice) = named_twice(&columns) {
                return Err(failed(format!(
                    "entities \"{}\": the query returns two columns named \"{twice}\"; give each its own name \
                     (SELECT a.id AS a_id, b.id AS b_id …)",
                    entity.name
                )));
            }
            return Ok(TableFacts {
                columns,
                primary_key: Vec::new(),
            });
        }
        let rows = sqlx::query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod),
                    coalesce(a.attnum = ANY(i.indkey), false)
             FROM pg_attribute a
             JOIN pg_class c ON c.oid = a.attrelid
             JOIN pg_namespace n ON n.oid = c.relnamespace
             LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
             ORDER BY a.attnum",
        )
        .bind(&self.schema)
        .bind(&entity.name)
        .fetch_all(&self.pool)
        .await
        .map_err(failed)?;
        if rows.is_empty() {
            return Err(failed(format!(
                "entities \"{}\": no table {}.{} in the source database; check the name and source.schema",
                entity.name, self.schema, entity.name
            )));
        }
        let mut facts = TableFacts::default();
        for row in rows {
            let name: String = row.try_get(0).map_err(failed)?;
            let ty: String = row.try_get(1).map_err(failed)?;
            let in_key: bool = row.try_get(2).map_err(failed)?;
            if in_key {
                facts.primary_key.push(name.clone());
            }
            facts.columns.push((name, ty));
        }
        Ok(facts)
    }

    /// The entities with the table's primary key as their default business key.
    pub fn entities(&self, listed: &[Entity]) -> Result<Vec<Entity>, String> {
        listed
            .iter()
            .map(|entity| {
                let mut entity = entity.clone();
                if entity.business_key.is_empty() {
                    let key = self
                        .tables
                        .get(&entity.name)
                        .map(|f| f.primary_key.clone())
                        .unwrap_or_default();
                    if key.is_empty() {
                        return Err(format!(
                            "entities \"{}\": the table has no primary key; set business_key = [...]",
                            entity.name
                        ));
                    }
                    entity.business_key = key;
                }
                Ok(entity)
            })
            .collect()
    }

    /// The columns as declared fields, typed from the catalog.
    pub fn declared(&self, entity: &Entity) -> Vec<Declared> {
        self.tables
            .get(&entity.name)
            .map(|facts| {
                facts
                    .columns
                    .iter()
                    .map(|(name, ty)| Declared {
                        source: name.clone(),
                        ty: column_type_of(ty),
                        references: None,
                        source_type: ty.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    pub fn first_cursor() -> PageCursor {
        PageCursor::Key(None)
    }

    pub fn page_size(&self) -> usize {
        self.page_size as usize
    }

    /// One page after the cursor's key, in key order.
    pub async fn fetch_page(
        &self,
        entity: &Entity,
        cursor: &PageCursor,
    ) -> Result<FetchedPage, SourceError> {
        let started = Instant::now();
        let whole = cursor;
        let (cursor, since) = whole.split_since();
        let after = match cursor {
            PageCursor::Key(after) => after.clone(),
            other => {
                return Err(failed(format!(
                    "saved cursor {other:?} does not fit a postgres source; the pipeline's source changed"
                )))
            }
        };
        let key = &entity.business_key;
        let facts = self.tables.get(&entity.name).cloned().unwrap_or_default();
        let from = match &entity.query {
            Some(query) => format!("({query})"),
            None => format!(
                "{}.{}",
                quote_ident(&self.schema),
                quote_ident(&entity.name)
            ),
        };
        let key_list = key
            .iter()
            .map(|k| format!("r.{}", quote_ident(k)))
            .collect::<Vec<_>>()
            .join(", ");
        let type_of = |column: &str| {
            facts
                .columns
                .iter()
                .find(|(c, _)| c == column)
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| "text".into())
        };
        if facts.columns.is_empty() {
            return Err(failed(format!(
                "entities \"{}\": its columns were not read from the catalog; start the run again",
                entity.name
            )));
        }
        let reads: Vec<ColumnRead> = facts
            .columns
            .iter()
            .map(|(_, ty)| ColumnRead::of(ty, self.utc_session))
            .collect();
        let select_list = facts
            .columns
            .iter()
            .zip(&reads)
            .map(|((name, _), read)| read.select(&format!("r.{}", quote_ident(name))))
            .collect::<Vec<_>>()
            .join(", ");
        let mut sql = format!("SELECT {select_list} FROM {from} r");
        let mut conditions = Vec::new();
        if after.is_some() {
            // Each bound key value is text cast back to its column's type, so the row comparison uses the index.
            let params: Vec<String> = key
                .iter()
                .enumerate()
                .map(|(i, k)| format!("${}::text::{}", i + 1, type_of(k)))
                .collect();
            conditions.push(format!("({key_list}) > ({})", params.join(", ")));
        }
        let rowversion = entity.rowversion.as_deref().filter(|_| since.is_some());
        if let Some(column) = rowversion {
            // Inclusive: rows sharing the highest stamp are read again (and skipped as unchanged), none is missed.
            let n = after.as_ref().map_or(0, Vec::len) + 1;
            conditions.push(format!(
                "r.{} >= ${n}::text::{}",
                quote_ident(column),
                type_of(column)
            ));
        }
        if !conditions.is_empty() {
            sql.push_str(&format!(" WHERE {}", conditions.join(" AND ")));
        }
        sql.push_str(&format!(" ORDER BY {key_list} LIMIT {}", self.page_size));
        let mut binds: Vec<String> = after
            .iter()
            .flatten()
            .map(|value| match value {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .collect();
        if let (Some(_), Some(since)) = (rowversion, since) {
            binds.push(since.to_owned());
        }
        let rows = self.read_page(&sql, &binds).await.map_err(|e| {
            failed(page_read_error(
                &entity.name,
                after.as_ref(),
                &e.to_string(),
            ))
        })?;
        let names: Vec<String> = facts.columns.into_iter().map(|(name, _)| name).collect();
        let key_at: Vec<Option<usize>> = key
            .iter()
            .map(|k| names.iter().position(|name| name == k))
            .collect();
        let rows = decode_page(rows, names.clone(), reads)
            .await
            .map_err(|e| failed(format!("entities \"{}\": {e}", entity.name)))?;
        let next = match rows.last() {
            Some(last) if rows.len() as u32 == self.page_size => Some(
                whole.carry_since(PageCursor::Key(Some(
                    key_at
                        .iter()
                        .map(|at| at.and_then(|i| last.get(i)).cloned().unwrap_or(Value::Null))
                        .collect(),
                ))),
            ),
            _ => None,
        };
        // Column names are unique (a query naming one twice is refused when connecting): each row is the record
        // `row_to_json` would write, in column order.
        let records = crate::records::Records::Rows {
            fields: names.into(),
            rows,
        };
        Ok(FetchedPage {
            records,
            next,
            fetch_ms: started.elapsed().as_millis() as u64,
            expected: None,
            failure: None,
            memo: None,
        })
    }
}

impl PgSource {
    /// Runs a page's query; a lost connection (a restart, a failover) is retried on a new one with backoff for
    /// the reconnect budget (reading is idempotent).
    async fn read_page(&self, sql: &str, binds: &[String]) -> Result<Vec<PgRow>, sqlx::Error> {
        let started = Instant::now();
        let mut wait = std::time::Duration::from_millis(250);
        loop {
            let mut query = sqlx::query(sql);
            for value in binds {
                query = query.bind(value);
            }
            match query.fetch_all(&self.pool).await {
                Err(e)
                    if pgconn::is_connection_lost(&e)
                        && started.elapsed() + wait < self.reconnect =>
                {
                    tracing::warn!("lost the source database ({e}); trying again in {wait:?}");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(std::time::Duration::from_secs(5));
                }
                other => return other,
            }
        }
    }
}

/// The first column name that comes twice.
fn named_twice(columns: &[(String, String)]) -> Option<&str> {
    columns.iter().enumerate().find_map(|(i, (name, _))| {
        columns[..i]
            .iter()
            .any(|(earlier, _)| earlier == name)
            .then_some(name.as_str())
    })
}

/// A page's rows as records' values, decoded on a blocking thread while the run's other stages go on.
async fn decode_page(
    rows: Vec<PgRow>,
    names: Vec<String>,
    reads: Vec<ColumnRead>,
) -> Result<Vec<Vec<Value>>, String> {
    tokio::task::spawn_blocking(move || {
        rows.iter()
            .enumerate()
            .map(|(number, row)| {
                decode_row(row, &names, &reads)
                    .map_err(|e| format!("row {} of the page: {e}", number + 1))
            })
            .collect()
    })
    .await
    .map_err(|e| format!("the page decoder stopped: {e}"))?
}

/// One row's values as `row_to_json` writes them: every column in table order, null ones as null.
fn decode_row(row: &PgRow, names: &[String], reads: &[ColumnRead]) -> Result<Vec<Value>, String> {
    let mut record = Vec::with_capacity(names.len());
    for (index, (name, read)) in names.iter().zip(reads).enumerate() {
        let raw = row
            .try_get_raw(index)
            .map_err(|e| format!("column \"{name}\": {e}"))?;
        let value = if raw.is_null() {
            Value::Null
        } else {
            if raw.format() != PgValueFormat::Binary {
                return Err(format!(
                    "column \"{name}\" came as text, not in binary format"
                ));
            }
            let bytes = raw
                .as_bytes()
                .map_err(|e| format!("column \"{name}\": {e}"))?;
            read.decode(bytes)
                .map_err(|e| format!("column \"{name}\": {e}"))?
        };
        record.push(value);
    }
    Ok(record)
}

/// What to tell the analyst when a page could not be read: which page, and what to check.
fn page_read_error(entity: &str, after: Option<&Vec<Value>>, error: &str) -> String {
    let page = match after {
        None => "the first page".to_owned(),
        Some(key) => format!("the page after key {}", Value::Array(key.clone())),
    };
    let advice = if error.contains("invalid byte sequence") {
        "a row holds text that is not valid UTF-8 (a SQL_ASCII database keeps bytes as they came): correct it in \
         the source, or read the column converted (convert_from, encode) in a query entity"
    } else {
        "check the source's URL (url) and that the server runs"
    };
    format!("entities \"{entity}\": {page}: {error}; {advice}")
}

/// The column type of a PostgreSQL type (as `format_type` spells it).
pub fn column_type_of(sql_type: &str) -> ColumnType {
    let t = sql_type.to_ascii_lowercase();
    match t.as_str() {
        // Before the prefixes below: `numeric(12,2)[]` and `timestamptz[]` are arrays, not numbers or times.
        _ if t.ends_with(']') => ColumnType::Json,
        "smallint" | "integer" | "bigint" | "int2" | "int4" | "int8" => ColumnType::Integer,
        "boolean" | "bool" => ColumnType::Boolean,
        "json" | "jsonb" => ColumnType::Json,
        _ if t.starts_with("numeric") || t == "real" || t == "double precision" => {
            ColumnType::Numeric
        }
        _ if t.starts_with("timestamp") || t == "date" => ColumnType::DateTime,
        _ => ColumnType::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_that_cannot_be_read_names_the_entity_and_what_to_check() {
        let refused = page_read_error("orders", None, "connection refused");
        assert!(
            refused.starts_with("entities \"orders\": the first page: connection refused"),
            "{refused}"
        );
        assert!(refused.contains("check the source's URL"), "{refused}");
        let later = page_read_error("orders", Some(&vec![Value::from(7), "b".into()]), "x");
        assert!(later.contains("the page after key [7,\"b\"]: x"), "{later}");
    }

    #[test]
    fn catalog_types_map_to_columns() {
        assert_eq!(column_type_of("integer"), ColumnType::Integer);
        assert_eq!(column_type_of("numeric(12,2)"), ColumnType::Numeric);
        assert_eq!(
            column_type_of("timestamp with time zone"),
            ColumnType::DateTime
        );
        assert_eq!(column_type_of("text[]"), ColumnType::Json);
        assert_eq!(column_type_of("numeric(12,2)[]"), ColumnType::Json);
        assert_eq!(
            column_type_of("timestamp with time zone[]"),
            ColumnType::Json
        );
        assert_eq!(column_type_of("timestamptz[]"), ColumnType::Json);
        assert_eq!(column_type_of("character varying(20)"), ColumnType::Text);
        assert_eq!(column_type_of("uuid"), ColumnType::Text);
    }
}
