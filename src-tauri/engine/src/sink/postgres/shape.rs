//! The two shapes of a target table's tracking columns (ADR 0013). Tables made since session 11 are lean: the key
//! and data hashes as `bytea` (16 and 32 bytes), the run id as `uuid`, the key hash the primary key and `_bridge_id`
//! a plain column. Tables made before keep text hashes and run id and a `_bridge_id` primary key until the schema
//! review converts them (one transaction); until then the engine reads and writes them as they are. The engine
//! always handles hashes as lowercase hex text: the SQL it sends converts at the table's edge.

use super::*;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// bytea hashes, uuid run id.
    Lean,
    /// text hashes and run id (tables made before session 11).
    Text,
}

impl Shape {
    /// The shape of `table` (as SQL names it); a table that does not exist yet will be made lean.
    pub(crate) async fn of(
        conn: &mut sqlx::PgConnection,
        table: &str,
    ) -> Result<Shape, sqlx::Error> {
        let ty: Option<String> = sqlx::query_scalar(
            "SELECT format_type(atttypid, NULL) FROM pg_attribute
             WHERE attrelid = to_regclass($1) AND attname = '_bridge_key_hash' AND NOT attisdropped",
        )
        .bind(table)
        .fetch_optional(&mut *conn)
        .await?;
        Ok(Shape::of_hash_type(ty.as_deref()))
    }

    /// The shape of a table whose column types were read already (`binary::column_types`).
    pub(super) fn of_types(types: &binary::ColumnTypes) -> Shape {
        Shape::of_hash_type(types.get("_bridge_key_hash").map(String::as_str))
    }

    fn of_hash_type(ty: Option<&str>) -> Shape {
        match ty {
            Some("text") | Some("character varying") => Shape::Text,
            _ => Shape::Lean,
        }
    }

    /// `column` (a hash column) as lowercase hex text.
    pub(crate) fn hex(self, column: &str) -> String {
        match self {
            Shape::Lean => format!("encode({column}, 'hex')"),
            Shape::Text => column.to_owned(),
        }
    }

    /// `value` (hex text) as the table stores hashes.
    pub(crate) fn hash(self, value: &str) -> String {
        match self {
            Shape::Lean => format!("decode({value}, 'hex')"),
            Shape::Text => value.to_owned(),
        }
    }

    /// The condition that hash `column` is one of the hex texts of array parameter `param` (an index can serve it).
    pub(crate) fn hash_in(self, column: &str, param: &str) -> String {
        match self {
            Shape::Lean => format!(
                "{column} = ANY(ARRAY(SELECT decode(h, 'hex') FROM unnest({param}::text[]) AS h))"
            ),
            Shape::Text => format!("{column} = ANY({param}::text[])"),
        }
    }
}

/// A hash as COPY's text format writes it into a column of `shape`.
pub(super) fn write_copy_hash(out: &mut String, hex: &str, shape: Shape) {
    if shape == Shape::Lean {
        // bytea's hex input form `\x…`, its backslash escaped for COPY.
        out.push_str("\\\\x");
    }
    out.push_str(hex);
}

/// The run id column as text, whichever its type (uuid in lean tables): comparisons with a run id bound as text.
pub(crate) const RUN_ID_TEXT: &str = "\"_bridge_run_id\"::text";

/// The tracking columns' definitions of a lean table (after the data columns).
pub(super) const LEAN_TRACKING_COLUMNS: [&str; 8] = [
    "\"_bridge_key_hash\" bytea NOT NULL PRIMARY KEY",
    "\"_bridge_data_hash\" bytea NOT NULL",
    "\"_bridge_rowversion\" text",
    "\"_bridge_synced_at\" timestamptz NOT NULL",
    "\"_bridge_run_id\" uuid NOT NULL",
    "\"_bridge_deleted_at\" timestamptz",
    "\"_bridge_edited_at\" timestamptz",
    "\"_bridge_synced\" jsonb",
];

impl PostgresSink {
    /// The statements that convert `table` from the text shape to the lean one, in one transaction: hashes decoded
    /// to bytea, the run id cast to uuid, the key hash made the primary key (the row id stays, without an index),
    /// and the undo images kept for the table rewritten to match. Empty for a lean table or none.
    pub async fn lean_conversion(&self, table: &str) -> Result<Vec<String>, SinkError> {
        let err = write_err(table);
        let qualified = self.qualified(table);
        let mut conn = self.pool.acquire().await.map_err(&err)?;
        if Shape::of(&mut conn, &qualified).await.map_err(&err)? == Shape::Lean {
            return Ok(Vec::new());
        }
        // A fresh pass cut short holds the table's keys without their constraints, perhaps repeated: the
        // conversion waits until that pass has built them.
        let deferring: bool = sqlx::query_scalar(&format!(
            "SELECT to_regclass($1) IS NOT NULL AND EXISTS (SELECT 1 FROM {} WHERE tbl = $2)",
            self.qualified(DEFERRED_TABLE)
        ))
        .bind(self.qualified(DEFERRED_TABLE))
        .bind(table)
        .fetch_one(&mut *conn)
        .await
        .unwrap_or(false);
        if deferring {
            return Ok(Vec::new());
        }
        let mut statements = vec![alter_to_lean(&mut conn, &qualified).await.map_err(&err)?];
        // A full refresh cut short left its shadow in the old shape: converted alongside, so that its swap compares
        // like with like.
        let shadow = self.qualified(&super::refresh::shadow_of(table));
        if sqlx::query_scalar::<_, bool>("SELECT to_regclass($1) IS NOT NULL")
            .bind(&shadow)
            .fetch_one(&mut *conn)
            .await
            .map_err(&err)?
            && Shape::of(&mut conn, &shadow).await.map_err(&err)? == Shape::Text
        {
            statements.push(alter_to_lean(&mut conn, &shadow).await.map_err(&err)?);
        }
        let undo_rows = self.qualified(UNDO_ROWS_TABLE);
        let undo_kept: bool = sqlx::query_scalar("SELECT to_regclass($1) IS NOT NULL")
            .bind(&undo_rows)
            .fetch_one(&mut *conn)
            .await
            .map_err(&err)?;
        if undo_kept {
            // An image restores through jsonb_populate_record, which reads bytea from its `\x…` text form.
            statements.push(format!(
                "UPDATE {undo_rows} SET image = image
                   || jsonb_build_object('_bridge_key_hash', '\\x' || (image->>'_bridge_key_hash'),
                                         '_bridge_data_hash', '\\x' || (image->>'_bridge_data_hash'))
                 WHERE tbl = {} AND left(image->>'_bridge_key_hash', 2) <> '\\x'",
                quote_literal(table)
            ));
        }
        Ok(statements)
    }
}

/// The `ALTER TABLE` that converts first-shape `table` (as SQL names it) to the lean shape: its primary key (on
/// `_bridge_id`) and the key hash's unique constraint dropped, the columns converted, the key hash made primary key.
async fn alter_to_lean(conn: &mut sqlx::PgConnection, table: &str) -> Result<String, sqlx::Error> {
    let constraints: Vec<String> = sqlx::query_scalar(
        "SELECT c.conname::text FROM pg_constraint c
         WHERE c.conrelid = to_regclass($1) AND (c.contype = 'p' OR (c.contype = 'u' AND c.conkey = ARRAY[
           (SELECT attnum FROM pg_attribute WHERE attrelid = c.conrelid AND attname = '_bridge_key_hash')]))",
    )
    .bind(table)
    .fetch_all(&mut *conn)
    .await?;
    let mut alter: Vec<String> = constraints
        .iter()
        .map(|c| format!("DROP CONSTRAINT {}", quote_ident(c)))
        .collect();
    alter.extend([
        "ALTER COLUMN \"_bridge_key_hash\" TYPE bytea USING decode(\"_bridge_key_hash\", 'hex')"
            .to_owned(),
        "ALTER COLUMN \"_bridge_data_hash\" TYPE bytea USING decode(\"_bridge_data_hash\", 'hex')"
            .to_owned(),
        "ALTER COLUMN \"_bridge_run_id\" TYPE uuid USING \"_bridge_run_id\"::uuid".to_owned(),
        "ADD PRIMARY KEY (\"_bridge_key_hash\")".to_owned(),
    ]);
    Ok(format!("ALTER TABLE {table} {}", alter.join(", ")))
}

/// A string literal for SQL (for names that reach a statement shown to the user; values are bound elsewhere).
pub(super) fn quote_literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lean_tables_convert_hashes_at_their_edge() {
        assert_eq!(Shape::Text.hex("t.h"), "t.h");
        assert_eq!(Shape::Lean.hex("t.h"), "encode(t.h, 'hex')");
        assert_eq!(Shape::Lean.hash("$1"), "decode($1, 'hex')");
        let mut out = String::new();
        write_copy_hash(&mut out, "00ff", Shape::Lean);
        assert_eq!(out, "\\\\x00ff");
    }
}
