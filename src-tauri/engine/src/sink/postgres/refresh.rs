//! `delta = "full"`: a full refresh. Every pass loads into a table beside the target (its shadow, made like it as
//! the pass begins, committed page by page with the checkpoint, so a resumed pass goes on filling it) and, with the
//! last page, swaps it in by two renames in that page's transaction: readers see the old table until then, the new
//! one after. The old table is kept (its "previous" name) until the next refresh, so the run can be undone by
//! swapping it back.

use super::*;

/// How the rows the pass did not bring are treated as the shadow is swapped in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Absent {
    /// Gone with the old table (`deletes = "hard"`).
    Gone,
    /// Carried over, marked deleted (`deletes = "soft"`).
    MarkedDeleted,
    /// Carried over as they are (`deletes = "none"`, or a pass in which records failed: their rows are never taken
    /// for gone).
    Kept,
}

/// A table's side table: `_sf{kind}_` and the name, cut (with a hash of the whole name) to PostgreSQL's 63 bytes.
pub(super) fn side_table(kind: &str, table: &str) -> String {
    let name = format!("_sf{kind}_{table}");
    if name.len() <= 63 {
        return name;
    }
    let hash = format!(
        "{:08x}",
        xxhash_rust::xxh3::xxh3_64(table.as_bytes()) as u32
    );
    let mut cut = 63 - hash.len() - 1;
    while !name.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}", &name[..cut])
}

pub(super) fn shadow_of(table: &str) -> String {
    side_table("new", table)
}

pub(super) fn previous_of(table: &str) -> String {
    side_table("old", table)
}

impl PostgresSink {
    /// Readies the shadow for a page of a full refresh: made afresh (like the target table: columns, defaults,
    /// constraints, indexes) by the pass's first write; given the columns a schema change added to the target
    /// since, for the others.
    pub(super) async fn prepare_shadow(
        &self,
        tx: &mut sqlx::PgConnection,
        page: &PageWrite<'_>,
    ) -> Result<(), sqlx::Error> {
        let table = self.qualified(page.table);
        let shadow = self.qualified(&shadow_of(page.table));
        if page.starts_pass {
            sqlx::query(&format!("DROP TABLE IF EXISTS {shadow}"))
                .execute(&mut *tx)
                .await?;
            sqlx::query(&format!(
                "CREATE TABLE {shadow} (LIKE {table} INCLUDING ALL)"
            ))
            .execute(&mut *tx)
            .await?;
            return Ok(());
        }
        let missing: Vec<(String, String)> = sqlx::query_as(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
             WHERE a.attrelid = $1::regclass AND a.attnum > 0 AND NOT a.attisdropped
               AND NOT EXISTS (SELECT 1 FROM pg_attribute s WHERE s.attrelid = $2::regclass
                               AND s.attname = a.attname AND NOT s.attisdropped)",
        )
        .bind(&table)
        .bind(&shadow)
        .fetch_all(&mut *tx)
        .await?;
        for (column, ty) in missing {
            sqlx::query(&format!(
                "ALTER TABLE {shadow} ADD COLUMN {} {ty}",
                quote_ident(&column)
            ))
            .execute(&mut *tx)
            .await?;
        }
        Ok(())
    }

    /// Ends a full refresh: the rows the pass did not bring are dropped, carried over or marked deleted as the
    /// entity's `deletes` says (the delete guard counts the dropped and marked ones), and the shadow is swapped
    /// in. Returns the rows deleted, or the deletes the guard held (nothing swapped then: a confirmation swaps).
    pub(super) async fn swap_in_shadow(
        &self,
        tx: &mut sqlx::PgConnection,
        page: &PageWrite<'_>,
        writer: &str,
    ) -> Result<(u64, Option<crate::sink::HeldDeletes>), sqlx::Error> {
        let table = self.qualified(page.table);
        let shadow = self.qualified(&shadow_of(page.table));
        let previous_name = previous_of(page.table);
        let previous = self.qualified(&previous_name);
        let failed = page.checkpoint.is_some_and(|c| c.counts.failed > 0);
        let absent_mode = match page.full_refresh.unwrap_or(page.deletes) {
            _ if failed => Absent::Kept,
            crate::config::DeleteMode::None => Absent::Kept,
            crate::config::DeleteMode::Soft => Absent::MarkedDeleted,
            crate::config::DeleteMode::Hard => Absent::Gone,
        };
        let absent = format!(
            "FROM {table} o WHERE NOT EXISTS (SELECT 1 FROM {shadow} n
               WHERE n.\"_bridge_key_hash\" = o.\"_bridge_key_hash\")"
        );
        let live: i64 = sqlx::query_scalar(&format!(
            "SELECT count(*) FROM {table} WHERE \"_bridge_deleted_at\" IS NULL"
        ))
        .fetch_one(&mut *tx)
        .await?;
        let gone: i64 = match absent_mode {
            Absent::Kept => 0,
            _ => {
                sqlx::query_scalar(&format!(
                    "SELECT count(*) {absent} AND o.\"_bridge_deleted_at\" IS NULL"
                ))
                .fetch_one(&mut *tx)
                .await?
            }
        };
        let (gone, live) = (gone.max(0) as u64, live.max(0) as u64);
        if let Some(held) = page.guard_holds(gone, live) {
            return Ok((0, Some(held)));
        }
        if absent_mode != Absent::Gone {
            let columns = table_columns(tx, &table).await?;
            sqlx::query(&format!(
                "INSERT INTO {shadow} ({columns}) SELECT {columns} {absent}"
            ))
            .execute(&mut *tx)
            .await?;
            if absent_mode == Absent::MarkedDeleted {
                sqlx::query(&format!(
                    "UPDATE {shadow} SET \"_bridge_deleted_at\" = now()
                     WHERE {RUN_ID_TEXT} <> $1 AND \"_bridge_deleted_at\" IS NULL"
                ))
                .bind(writer)
                .execute(&mut *tx)
                .await?;
            }
        }
        self.grant_as_on(tx, page.table, &shadow).await?;
        sqlx::query(&format!("DROP TABLE IF EXISTS {previous}"))
            .execute(&mut *tx)
            .await?;
        sqlx::query(&format!(
            "ALTER TABLE {table} RENAME TO {}",
            quote_ident(&previous_name)
        ))
        .execute(&mut *tx)
        .await?;
        sqlx::query(&format!(
            "ALTER TABLE {shadow} RENAME TO {}",
            quote_ident(page.table)
        ))
        .execute(&mut *tx)
        .await?;
        self.mark_changed(tx, page, writer, true).await?;
        sqlx::query(&format!("ANALYZE {table}"))
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            table = page.table,
            deleted = gone,
            "full refresh: the new table swapped in, the old one kept for undo"
        );
        Ok((gone, None))
    }
}

impl PostgresSink {
    /// Gives `shadow` the privileges granted on `table` (the readers of a refreshed table keep reading it).
    async fn grant_as_on(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        shadow: &str,
    ) -> Result<(), sqlx::Error> {
        let grants: Vec<(String, String)> = sqlx::query_as(
            "SELECT privilege_type::text, grantee::text FROM information_schema.role_table_grants
             WHERE table_schema = $1 AND table_name = $2 AND grantee::text <> current_user",
        )
        .bind(&self.schema)
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
        for (privilege, grantee) in grants {
            // The privilege is one of PostgreSQL's own keywords, as it listed it; the grantee a role name, quoted.
            if !privilege
                .chars()
                .all(|c| c.is_ascii_uppercase() || c == ' ')
            {
                continue;
            }
            let to = if grantee == "PUBLIC" {
                grantee
            } else {
                quote_ident(&grantee)
            };
            sqlx::query(&format!("GRANT {privilege} ON {shadow} TO {to}"))
                .execute(&mut *tx)
                .await?;
        }
        Ok(())
    }
}

/// The table's columns, quoted and joined, in their order.
async fn table_columns(tx: &mut sqlx::PgConnection, table: &str) -> Result<String, sqlx::Error> {
    let names: Vec<String> = sqlx::query_scalar(
        "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::regclass AND attnum > 0
         AND NOT attisdropped ORDER BY attnum",
    )
    .bind(table)
    .fetch_all(&mut *tx)
    .await?;
    Ok(names
        .iter()
        .map(|n| quote_ident(n))
        .collect::<Vec<_>>()
        .join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn side_tables_fit_postgres_names_and_stay_apart() {
        assert_eq!(shadow_of("items"), "_sfnew_items");
        assert_eq!(previous_of("items"), "_sfold_items");
        let long = "x".repeat(63);
        let other = format!("{}y", "x".repeat(62));
        assert!(shadow_of(&long).len() <= 63);
        assert_ne!(shadow_of(&long), shadow_of(&other));
        let accents = "é".repeat(31);
        assert!(shadow_of(&accents).len() <= 63);
    }
}
