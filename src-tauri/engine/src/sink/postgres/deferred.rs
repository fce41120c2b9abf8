//! A fresh pass (into a table that was empty when it began) loads without index maintenance: its first write
//! drops the table's indexes, primary key and unique constraints, keeping their definitions in
//! `_syncflow_deferred_indexes` in the same transaction; its last write builds them again in its own transaction.
//! A crash in between leaves the definitions beside the table: the resumed pass goes on loading, and any other write
//! to the table builds them first. Without the unique key a key the source repeated across pages is in the table
//! twice: its earlier copy goes before the unique index is built (the later copy is the later version, as a merge
//! would have kept).
//!
//! The table is left to autovacuum to analyse (it does within a minute of a bulk load, by default): `ANALYZE` of
//! 1M rows took 0.27 s on the pass's path here, and the engine's own queries need no statistics of it — they go
//! through the unique indexes, whose builds record the table's size for the planner.

use super::*;

pub const DEFERRED_TABLE: &str = "_syncflow_deferred_indexes";

pub(super) fn create_deferred_table_sql(qualified: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {qualified} (tbl text NOT NULL, name text NOT NULL, definition text NOT NULL,
         position int NOT NULL, PRIMARY KEY (tbl, name))"
    )
}

impl PostgresSink {
    fn deferred(&self) -> String {
        self.qualified(DEFERRED_TABLE)
    }

    /// Drops the table's indexes, primary key and unique constraints, keeping what builds them again; constraints
    /// come first (in the order they were made), so that the key hash's is built before the business key's.
    pub(super) async fn defer_indexes(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        name: &str,
    ) -> Result<(), sqlx::Error> {
        let found: Vec<(String, String, Option<String>)> = sqlx::query_as(
            "SELECT i.relname::text, pg_get_indexdef(i.oid), pg_get_constraintdef(c.oid)
             FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
             LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
             WHERE x.indrelid = $1::regclass AND coalesce(c.contype, 'u') IN ('u', 'p')
             ORDER BY c.oid IS NULL, i.oid",
        )
        .bind(table)
        .fetch_all(&mut *tx)
        .await?;
        let keep = format!(
            "INSERT INTO {} (tbl, name, definition, position) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tbl, name) DO NOTHING",
            self.deferred()
        );
        for (position, (index, definition, constraint)) in found.into_iter().enumerate() {
            let (build, drop) = match constraint {
                Some(c) => (
                    format!(
                        "ALTER TABLE {table} ADD CONSTRAINT {} {c}",
                        quote_ident(&index)
                    ),
                    format!(
                        "ALTER TABLE {table} DROP CONSTRAINT {}",
                        quote_ident(&index)
                    ),
                ),
                None => (
                    definition,
                    format!(
                        "DROP INDEX {}.{}",
                        quote_ident(&self.schema),
                        quote_ident(&index)
                    ),
                ),
            };
            sqlx::query(&keep)
                .bind(name)
                .bind(&index)
                .bind(&build)
                .bind(position as i32)
                .execute(&mut *tx)
                .await?;
            sqlx::query(&drop).execute(&mut *tx).await?;
        }
        Ok(())
    }

    /// Builds the indexes a fresh pass deferred on `name`, if any (a key repeated in the pass keeps its later
    /// copy). Returns how many earlier copies of repeated keys went.
    pub(super) async fn build_deferred_indexes(
        &self,
        tx: &mut sqlx::PgConnection,
        table: &str,
        name: &str,
    ) -> Result<u64, sqlx::Error> {
        // One a schema change built again meanwhile (its DDL makes its indexes if missing) is not built twice.
        let builds: Vec<String> = sqlx::query_scalar(&format!(
            "SELECT definition FROM {} WHERE tbl = $1
             AND to_regclass(format('%I.%I', $2::text, name)) IS NULL ORDER BY position",
            self.deferred()
        ))
        .bind(name)
        .bind(&self.schema)
        .fetch_all(&mut *tx)
        .await?;
        if builds.is_empty() {
            sqlx::query(&format!("DELETE FROM {} WHERE tbl = $1", self.deferred()))
                .bind(name)
                .execute(&mut *tx)
                .await?;
            return Ok(0);
        }
        let mut repeated = 0;
        let started = std::time::Instant::now();
        for build in &builds {
            sqlx::query("SAVEPOINT syncflow_index")
                .execute(&mut *tx)
                .await?;
            match sqlx::query(build).execute(&mut *tx).await {
                Ok(_) => {}
                Err(e) if is_unique_violation(&e) => {
                    sqlx::query("ROLLBACK TO SAVEPOINT syncflow_index")
                        .execute(&mut *tx)
                        .await?;
                    repeated += sqlx::query(&format!(
                        "DELETE FROM {table} a USING {table} b
                         WHERE a.\"_bridge_key_hash\" = b.\"_bridge_key_hash\" AND a.ctid < b.ctid"
                    ))
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                    tracing::info!(
                        table = name,
                        repeated,
                        "keys the source repeated across pages: their earlier copies removed"
                    );
                    sqlx::query(build).execute(&mut *tx).await?;
                }
                Err(e) => return Err(e),
            }
        }
        sqlx::query(&format!("DELETE FROM {} WHERE tbl = $1", self.deferred()))
            .bind(name)
            .execute(&mut *tx)
            .await?;
        tracing::info!(
            table = name,
            indexes = builds.len(),
            ms = started.elapsed().as_millis() as u64,
            "the fresh pass's indexes built"
        );
        Ok(repeated)
    }
}
