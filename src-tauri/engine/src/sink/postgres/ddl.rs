//! The target's tables: their columns as they are, the DDL that creates or widens them, the trigger that notices
//! edits made outside the engine, and schema changes applied under one advisory lock.

use super::*;

/// The advisory lock key schema changes take ("syncflow" in ASCII).
pub(super) const DDL_LOCK: i64 = 0x73_79_6e_63_66_6c_6f_77;

impl PostgresSink {
    pub async fn columns(
        &self,
        table: &str,
    ) -> Result<Option<Vec<(String, ColumnType)>>, SinkError> {
        let rows = sqlx::query(
            "SELECT column_name::text, data_type::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 ORDER BY ordinal_position",
        )
        .bind(&self.schema)
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
            all.push((name, ColumnType::from_sql(&ty)));
        }
        for column in required_tracking_columns() {
            if !all.iter().any(|(n, _)| n == column) {
                return Err(SinkError::MissingTracking {
                    table: self.qualified(table),
                    column: column.into(),
                });
            }
        }
        Ok(Some(
            all.into_iter().filter(|(n, _)| !is_tracking(n)).collect(),
        ))
    }

    pub fn ddl(
        &self,
        table: &str,
        mapping: &Mapping,
        change: &SchemaChange,
        exists: bool,
    ) -> Vec<String> {
        let qualified = self.qualified(table);
        if exists {
            let mut statements = Vec::new();
            for f in &mapping.fields {
                let column = quote_ident(&f.column);
                if change.added.contains(&f.source) {
                    statements.push(format!(
                        "ALTER TABLE {qualified} ADD COLUMN {column} {}",
                        f.ty.postgres()
                    ));
                } else if change.retyped.contains(&f.source) {
                    // Widening only (to text or jsonb): every stored value converts without loss.
                    let using = match f.ty {
                        ColumnType::Json => format!("to_jsonb({column})"),
                        ColumnType::Numeric => format!("{column}::numeric"),
                        // Text keeps the ISO spelling the values arrived in, not PostgreSQL's output format.
                        ColumnType::Text if change.was.get(&f.source) == Some(&ColumnType::DateTime) => format!(
                            "to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"
                        ),
                        _ => format!("{column}::text"),
                    };
                    statements.push(format!(
                        "ALTER TABLE {qualified} ALTER COLUMN {column} TYPE {} USING {using}",
                        f.ty.postgres()
                    ));
                }
            }
            statements.extend(crate::schema::index_statements_for_added(
                &qualified,
                table,
                mapping,
                &change.added,
            ));
            return statements;
        }
        // The lean shape (ADR 0013): the key hash is the primary key; the row id stays a column, without an index.
        let mut columns = vec![format!("{} uuid NOT NULL", quote_ident(ROW_ID_COLUMN))];
        columns.extend(mapping.fields.iter().map(|f| {
            let required = if mapping.key.contains(&f.source) {
                " NOT NULL"
            } else {
                ""
            };
            format!("{} {}{required}", quote_ident(&f.column), f.ty.postgres())
        }));
        columns.extend(super::shape::LEAN_TRACKING_COLUMNS.map(str::to_owned));
        let mut statements = vec![format!(
            "CREATE TABLE {qualified} (\n  {}\n)",
            columns.join(",\n  ")
        )];
        statements.extend(crate::schema::index_statements(&qualified, table, mapping));
        statements.extend(self.edit_trigger_statements(table));
        statements
    }

    /// The trigger that notes edits made outside the engine: the first one keeps the row as the engine wrote it
    /// (`_bridge_synced`), every one stamps `_bridge_edited_at`. The engine's own writes set `syncflow.writer`
    /// for their transaction and pass untouched.
    pub(super) fn edit_trigger_statements(&self, table: &str) -> Vec<String> {
        let function = format!("{}.\"_syncflow_note_edit\"", quote_ident(&self.schema));
        vec![
            format!(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $syncflow$
BEGIN
  IF current_setting('syncflow.writer', true) IS NOT DISTINCT FROM 'engine' OR to_jsonb(NEW) = to_jsonb(OLD) THEN
    RETURN NEW;
  END IF;
  IF OLD.\"_bridge_edited_at\" IS NULL THEN
    NEW.\"_bridge_synced\" := {synced};
  END IF;
  NEW.\"_bridge_edited_at\" := clock_timestamp();
  RETURN NEW;
END
$syncflow$",
                synced = values_json("OLD")
            ),
            format!(
                "DROP TRIGGER IF EXISTS \"_syncflow_edit\" ON {}",
                self.qualified(table)
            ),
            format!(
                "CREATE TRIGGER \"_syncflow_edit\" BEFORE UPDATE ON {} FOR EACH ROW EXECUTE FUNCTION {function}()",
                self.qualified(table)
            ),
        ]
    }

    /// See [`super::Sink::prepare_edit_tracking`].
    pub async fn prepare_edit_tracking(
        &self,
        table: &str,
        needed: bool,
        apply: bool,
    ) -> Result<bool, SinkError> {
        let present: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2",
        )
        .bind(&self.schema)
        .bind(table)
        .fetch_all(&self.pool)
        .await
        .map_err(write_err(table))?;
        if present.is_empty() {
            return Ok(true);
        }
        let tracked = crate::schema::EDIT_COLUMNS
            .iter()
            .all(|c| present.iter().any(|p| p == c));
        if tracked || !needed {
            return Ok(tracked);
        }
        if !apply {
            return Err(SinkError::MissingTracking {
                table: self.qualified(table),
                column: "_bridge_edited_at (conflict detection; run with --apply-schema to add it)"
                    .into(),
            });
        }
        let qualified = self.qualified(table);
        let mut statements = vec![
            format!("ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS \"_bridge_edited_at\" timestamptz"),
            format!("ALTER TABLE {qualified} ADD COLUMN IF NOT EXISTS \"_bridge_synced\" jsonb"),
        ];
        statements.extend(self.edit_trigger_statements(table));
        self.apply(table, &statements).await?;
        Ok(true)
    }

    pub async fn apply(&self, table: &str, statements: &[String]) -> Result<(), SinkError> {
        let mut tx = self.pool.begin().await.map_err(write_err(table))?;
        // Entities run side by side, and their DDL shares objects (the edit-trigger function): one schema change
        // at a time per database, or PostgreSQL fails one with "tuple concurrently updated".
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(DDL_LOCK)
            .execute(&mut *tx)
            .await
            .map_err(write_err(table))?;
        for statement in statements {
            sqlx::query(statement)
                .execute(&mut *tx)
                .await
                .map_err(write_err(table))?;
        }
        tx.commit().await.map_err(write_err(table))
    }

    /// The table as SQL names it (schema-qualified, quoted).
    pub fn quoted(&self, table: &str) -> String {
        self.qualified(table)
    }

    /// One nullable text value of a query about `table`.
    pub async fn scalar_text(&self, table: &str, sql: &str) -> Result<Option<String>, SinkError> {
        sqlx::query_scalar::<_, Option<String>>(sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))
    }

    /// The DATA_HASH (hex) stored under each of `keys` (BK_HASHes, hex) that has a live row in `table`.
    pub async fn stored_data_hashes(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<std::collections::HashMap<String, String>, SinkError> {
        let qualified = self.qualified(table);
        let mut conn = self.pool.acquire().await.map_err(write_err(table))?;
        let shape = Shape::of(&mut conn, &qualified)
            .await
            .map_err(write_err(table))?;
        let sql = format!(
            "SELECT {}, {} FROM {qualified} WHERE {} AND \"_bridge_deleted_at\" IS NULL",
            shape.hex("\"_bridge_key_hash\""),
            shape.hex("\"_bridge_data_hash\""),
            shape.hash_in("\"_bridge_key_hash\"", "$1"),
        );
        let rows: Vec<(String, String)> = sqlx::query_as(&sql)
            .bind(keys)
            .fetch_all(&mut *conn)
            .await
            .map_err(write_err(table))?;
        Ok(rows.into_iter().collect())
    }

    pub async fn is_empty(&self, table: &str) -> Result<bool, SinkError> {
        let sql = format!(
            "SELECT NOT EXISTS (SELECT 1 FROM {})",
            self.qualified(table)
        );
        sqlx::query_scalar(&sql)
            .fetch_one(&self.pool)
            .await
            .map_err(write_err(table))
    }
}
