//! The merge of a page: unchanged rows found by lookup and left out, the rest merged from the staging table with
//! one set-based statement.

use super::*;

/// The rows whose key is new or whose DATA_HASH differs from the stored one (one indexed lookup per page, which
/// PostgreSQL runs cheaper than a probe per row), so an unchanged page is neither copied nor merged. The stored
/// hashes are compared as they stream in, without copying them.
pub(super) async fn changed_rows<'a>(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shape: Shape,
    page: &PageWrite<'a>,
    run_id: &str,
) -> Result<Vec<&'a crate::sink::PreparedRow>, sqlx::Error> {
    let rows = page.rows;
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let position: std::collections::HashMap<&str, usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| (r.key_hash.as_str(), i))
        .collect();
    // The third column says whether the row was written before this run: only such rows count as found for the
    // end of the pass (a row the pass inserted and its source repeated later was not in the table as it began).
    if let Some((sql, keys)) = business_key_lookup(tx, table, shape, page.mapping, rows).await? {
        let stored = sqlx::query(&sql).bind(keys).bind(run_id).fetch(&mut *tx);
        return matched(stored, rows, &position, page.found_before).await;
    }
    let keys: Vec<&str> = rows.iter().map(|r| r.key_hash.as_str()).collect();
    let sql = format!(
        "SELECT {hashes}, {RUN_ID_TEXT} <> $2 FROM {table}
         WHERE {key_in} AND \"_bridge_deleted_at\" IS NULL",
        hashes = stored_hashes(shape),
        key_in = shape.hash_in("\"_bridge_key_hash\"", "$1"),
    );
    let stored = sqlx::query(&sql).bind(keys).bind(run_id).fetch(&mut *tx);
    matched(stored, rows, &position, page.found_before).await
}

/// The rows of `rows` not found unchanged among the stored (key hash, data hash, written before this run) rows
/// `stored` streams; the keys found that were written before go to `found`. A stored row counts only when both its
/// hashes match, so a lookup that finds extra rows or misses some is still exact.
pub(super) async fn matched<'a, 'q>(
    mut stored: futures_util::stream::BoxStream<'q, Result<sqlx::postgres::PgRow, sqlx::Error>>,
    rows: &'a [crate::sink::PreparedRow],
    position: &std::collections::HashMap<&str, usize>,
    found: Option<&std::sync::Mutex<Vec<u128>>>,
) -> Result<Vec<&'a crate::sink::PreparedRow>, sqlx::Error> {
    use futures_util::TryStreamExt;
    let mut unchanged = vec![false; rows.len()];
    let mut found_here = Vec::new();
    while let Some(row) = stored.try_next().await? {
        let key: &str = row.try_get(0)?;
        let hash: &str = row.try_get(1)?;
        let before: bool = row.try_get(2)?;
        if let Some(&i) = position.get(key) {
            unchanged[i] = rows[i].data_hash == hash;
            if before && found.is_some() {
                found_here.extend(crate::sink::key_bits(key));
            }
        }
    }
    if let Some(mut found) = found.and_then(|f| f.lock().ok()) {
        found.append(&mut found_here);
    }
    Ok(rows
        .iter()
        .zip(unchanged)
        .filter(|(_, same)| !same)
        .map(|(row, _)| row)
        .collect())
}

/// With a one-field business key whose column leads an index, the lookup goes through that index by the key's
/// values: sources mostly list records in key order, so a page's keys sit side by side in that index (and in the
/// table), where BK_HASHes are scattered over the whole of theirs. Twice as cheap for PostgreSQL here.
pub(super) async fn business_key_lookup(
    tx: &mut sqlx::PgConnection,
    table: &str,
    shape: Shape,
    mapping: &Mapping,
    rows: &[crate::sink::PreparedRow],
) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
    let [key] = mapping.key.as_slice() else {
        return Ok(None);
    };
    let Some(at) = mapping.fields.iter().position(|f| &f.source == key) else {
        return Ok(None);
    };
    let field = &mapping.fields[at];
    // Text and whole-number keys (the usual ids), in a column of that type that leads a full index.
    let sql_type = match field.ty {
        ColumnType::Text | ColumnType::Integer => field.ty.postgres(),
        _ => return Ok(None),
    };
    // Asked on every page, in its transaction: a schema change during the run may retype or drop the column.
    let indexed: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
           WHERE i.indrelid = $1::regclass AND a.attname = $2 AND i.indisvalid AND i.indpred IS NULL
             AND format_type(a.atttypid, NULL) = $3)",
    )
    .bind(table)
    .bind(&field.column)
    .bind(sql_type)
    .fetch_one(&mut *tx)
    .await?;
    if !indexed {
        return Ok(None);
    }
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        match (row.values.get(at), field.ty) {
            (Some(Value::String(s)), ColumnType::Text) => keys.push(s.clone()),
            (Some(Value::Number(n)), ColumnType::Integer) => keys.push(n.to_string()),
            // Not a value of the column's type (normalisation makes that rare): the BK_HASH lookup then.
            _ => return Ok(None),
        }
    }
    let sql = format!(
        "SELECT {hashes}, {RUN_ID_TEXT} <> $2 FROM {table}
         WHERE {} = ANY($1::text[]::{sql_type}[]) AND \"_bridge_deleted_at\" IS NULL",
        quote_ident(&field.column),
        hashes = stored_hashes(shape),
    );
    Ok(Some((sql, keys)))
}

/// The stored key and data hashes, as hex text.
fn stored_hashes(shape: Shape) -> String {
    format!(
        "{}, {}",
        shape.hex("\"_bridge_key_hash\""),
        shape.hex("\"_bridge_data_hash\"")
    )
}

/// One set-based statement: insert new keys, update changed hashes (or revived soft-deletes), skip the rest.
pub(super) async fn merge(
    tx: &mut sqlx::PgConnection,
    table: &str,
    mapping: &Mapping,
    edits_tracked: bool,
    never_older: bool,
) -> Result<(u64, u64), sqlx::Error> {
    let columns = column_list(mapping);
    let mut updates: Vec<String> = mapping
        .fields
        .iter()
        .map(|f| format!("{c} = EXCLUDED.{c}", c = quote_ident(&f.column)))
        .collect();
    for c in [
        "_bridge_data_hash",
        "_bridge_rowversion",
        "_bridge_synced_at",
        "_bridge_run_id",
    ] {
        updates.push(format!("\"{c}\" = EXCLUDED.\"{c}\""));
    }
    updates.push("\"_bridge_deleted_at\" = NULL".into());
    if edits_tracked {
        // The source's values replace an outside edit (source_wins, or the source's later write).
        updates.push("\"_bridge_edited_at\" = NULL, \"_bridge_synced\" = NULL".into());
    }
    let sql = format!(
        "WITH m AS (
           INSERT INTO {table} AS t ({columns}) SELECT {columns} FROM _syncflow_stage
           ON CONFLICT (\"_bridge_key_hash\") DO UPDATE SET {updates}
           WHERE (t.\"_bridge_data_hash\" IS DISTINCT FROM EXCLUDED.\"_bridge_data_hash\"
              OR t.\"_bridge_deleted_at\" IS NOT NULL){newer_kept}
           RETURNING (xmax = 0) AS inserted)
         SELECT count(*) FILTER (WHERE inserted), count(*) FILTER (WHERE NOT inserted) FROM m",
        updates = updates.join(", "),
        // A late write never replaces a version a later run wrote.
        newer_kept = if never_older {
            " AND NOT coalesce(t.\"_bridge_rowversion\" > EXCLUDED.\"_bridge_rowversion\", false)"
        } else {
            ""
        }
    );
    let row = sqlx::query(&sql).fetch_one(&mut *tx).await?;
    let inserted: i64 = row.try_get(0)?;
    let updated: i64 = row.try_get(1)?;
    Ok((inserted.max(0) as u64, updated.max(0) as u64))
}

pub(super) fn column_list(mapping: &Mapping) -> String {
    let mut columns = vec![quote_ident(ROW_ID_COLUMN)];
    columns.extend(mapping.fields.iter().map(|f| quote_ident(&f.column)));
    for c in [
        "_bridge_key_hash",
        "_bridge_data_hash",
        "_bridge_rowversion",
        "_bridge_synced_at",
        "_bridge_run_id",
    ] {
        columns.push(quote_ident(c));
    }
    columns.join(", ")
}

pub(super) fn is_tracking(column: &str) -> bool {
    column == ROW_ID_COLUMN
        || crate::schema::TRACKING_COLUMNS.contains(&column)
        || crate::schema::EDIT_COLUMNS.contains(&column)
}

/// `to_jsonb(row)` without the engine's own columns: the row's values keyed by column.
pub(super) fn values_json(alias: &str) -> String {
    let tracking: Vec<String> = std::iter::once(ROW_ID_COLUMN)
        .chain(crate::schema::TRACKING_COLUMNS)
        .chain(crate::schema::EDIT_COLUMNS)
        .map(|c| format!("'{c}'"))
        .collect();
    format!(
        "(to_jsonb({alias}) - ARRAY[{}]::text[])",
        tracking.join(", ")
    )
}

/// Marks the transaction's writes as the engine's, so the edit-tracking trigger leaves them alone.
pub(crate) async fn as_engine_writer(tx: &mut sqlx::PgConnection) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT set_config('syncflow.writer', 'engine', true)")
        .execute(&mut *tx)
        .await?;
    Ok(())
}
