//! COPY's text format: a row of mapped values written as one line.

use super::*;

/// Appends one row in COPY's text format, its hashes as a table of `shape` stores them.
pub(super) fn write_copy_row(
    out: &mut String,
    row: &crate::sink::PreparedRow,
    mapping: &Mapping,
    tracking: &CopyTracking<'_>,
) {
    let mut id = uuid::Uuid::encode_buffer();
    out.push_str(row.id.hyphenated().encode_lower(&mut id));
    for (field, value) in mapping.fields.iter().zip(&row.values) {
        out.push('\t');
        write_copy_value(out, value, field.ty);
    }
    out.push('\t');
    write_copy_hash(out, &row.key_hash, tracking.shape);
    out.push('\t');
    write_copy_hash(out, &row.data_hash, tracking.shape);
    out.push('\t');
    match row.rowversion.as_deref() {
        Some(t) => escape_copy_text(out, t),
        None => out.push_str("\\N"),
    }
    out.push('\t');
    out.push_str(tracking.synced_at);
    out.push('\t');
    out.push_str(tracking.run_id);
    out.push('\n');
}

/// The tracking values every row of a batch shares, and how its table stores hashes.
pub(super) struct CopyTracking<'a> {
    pub shape: Shape,
    /// RFC 3339 (nothing to escape).
    pub synced_at: &'a str,
    /// A UUID (nothing to escape).
    pub run_id: &'a str,
}

pub(super) fn write_copy_value(out: &mut String, value: &Value, ty: ColumnType) {
    match (value, ty) {
        (Value::Null, _) => out.push_str("\\N"),
        (Value::String(s), ColumnType::Text | ColumnType::DateTime) => escape_copy_text(out, s),
        (Value::Bool(b), ColumnType::Boolean) => out.push(if *b { 't' } else { 'f' }),
        (Value::Number(n), ColumnType::Numeric | ColumnType::Integer) => {
            // Written in place: no String per value.
            let _ = std::fmt::Write::write_fmt(out, format_args!("{n}"));
        }
        (other, ColumnType::Json) => escape_copy_text(out, &other.to_string()),
        // Normalisation guarantees the pairs above; anything else is written as its JSON text.
        (other, _) => escape_copy_text(out, &other.to_string()),
    }
}

/// COPY text format: backslash, tab, newline and carriage return are escaped; everything else is literal.
pub fn escape_copy_text(out: &mut String, text: &str) {
    // Most values hold none of the four: copied whole, not char by char.
    if !text
        .bytes()
        .any(|b| matches!(b, b'\\' | b'\t' | b'\n' | b'\r'))
    {
        out.push_str(text);
        return;
    }
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn copy_escaping_covers_the_special_bytes() {
        let mut out = String::new();
        escape_copy_text(&mut out, "a\\b\tc\nd\re \\N");
        assert_eq!(out, "a\\\\b\\tc\\nd\\re \\\\N");
    }
}
