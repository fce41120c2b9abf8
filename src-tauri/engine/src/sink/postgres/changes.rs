//! The target table's change count (ADR 0015): a statement trigger counts, in a sequence, every statement that
//! changes the table other than the memo owner's page writes. While the count stands still, the rows the owner's
//! last pass wrote are as it left them, and a page whose reply has not changed need not be parsed again.

use super::*;

/// The trigger's name on a counted table.
const TRIGGER: &str = "_syncflow_changes";

/// Who owns a table's page memo: one pipeline's entity. Its page writes say so (`syncflow.memo`), so the trigger
/// does not count them; anyone else's statements, and the owner's other writes (undo, conflict resolutions), count.
pub fn memo_owner(pipeline: &str, entity: &str) -> String {
    format!(
        "{:016x}",
        xxhash_rust::xxh3::xxh3_64(format!("{pipeline}\0{entity}").as_bytes())
    )
}

/// Marks a transaction as a page write of `owner`: the engine's (not an edit) and not counted as a change.
pub(super) async fn as_page_writer(
    tx: &mut sqlx::PgConnection,
    owner: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "SELECT set_config('syncflow.writer', 'engine', true), set_config('syncflow.memo', $1, true)",
    )
    .bind(owner)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

impl PostgresSink {
    fn change_sequence(&self, table: &str) -> String {
        self.qualified(&format!(
            "_syncflow_changes_{:016x}",
            xxhash_rust::xxh3::xxh3_64(table.as_bytes())
        ))
    }

    /// The table's change count for `owner`'s memo; with `create`, the trigger is made (or handed to `owner`) first
    /// when it is missing, disabled or another's. None when the table is not counted for `owner` (or cannot be:
    /// no privilege to add a trigger), so its memo must not be trusted.
    pub async fn change_count(
        &self,
        table: &str,
        owner: &str,
        create: bool,
    ) -> Result<Option<i64>, SinkError> {
        let sequence = self.change_sequence(table);
        let args = format!("{sequence}\0{owner}\0").into_bytes();
        let qualified = self.qualified(table);
        let present: Option<(String, Vec<u8>)> = sqlx::query_as(
            "SELECT tgenabled::text, tgargs FROM pg_trigger WHERE tgrelid = to_regclass($1) AND tgname = $2",
        )
        .bind(&qualified)
        .bind(TRIGGER)
        .fetch_optional(&self.pool)
        .await
        .map_err(write_err(table))?;
        let counted = present.is_some_and(|(enabled, found)| enabled == "O" && found == args);
        if !counted {
            if !create {
                return Ok(None);
            }
            if let Err(e) = self
                .apply(table, &self.counter_statements(table, owner))
                .await
            {
                tracing::warn!(
                    table,
                    "the table's changes cannot be counted, so every re-sync reads every page in full: {e}"
                );
                return Ok(None);
            }
        }
        let (last, called): (i64, bool) =
            sqlx::query_as(&format!("SELECT last_value, is_called FROM {sequence}"))
                .fetch_one(&self.pool)
                .await
                .map_err(write_err(table))?;
        Ok(Some(if called { last } else { 0 }))
    }

    /// The sequence, the trigger function and the table's trigger; the count moves on once, so that a memo
    /// kept from before (another owner's, or of a table since dropped and made again) never matches it.
    fn counter_statements(&self, table: &str, owner: &str) -> Vec<String> {
        let sequence = self.change_sequence(table);
        let function = format!("{}.\"_syncflow_count_change\"", quote_ident(&self.schema));
        vec![
            format!("CREATE SEQUENCE IF NOT EXISTS {sequence}"),
            format!(
                "CREATE OR REPLACE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $syncflow$
BEGIN
  IF current_setting('syncflow.memo', true) IS DISTINCT FROM TG_ARGV[1] THEN
    PERFORM nextval(TG_ARGV[0]::regclass);
  END IF;
  RETURN NULL;
END
$syncflow$"
            ),
            format!(
                "CREATE OR REPLACE TRIGGER \"{TRIGGER}\" AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {} \
                 FOR EACH STATEMENT EXECUTE FUNCTION {function}({}, {})",
                self.qualified(table),
                quote_literal(&sequence),
                quote_literal(owner),
            ),
            format!("SELECT nextval({})", quote_literal(&sequence)),
        ]
    }
}
