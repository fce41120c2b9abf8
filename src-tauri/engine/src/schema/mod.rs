//! The mapping of source fields to target columns, and type inference from sampled values.
//!
//! The column is the source field's own name (the pipeline file's contract: "other columns are named by the mapping"); identifiers
//! are always quoted when they reach SQL (see [`quote_ident`]).

pub mod evidence;
pub mod prisma;

use crate::config::{Entity, FieldOverride};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use ts_rs::TS;

/// PostgreSQL's identifier limit in bytes.
pub const MAX_IDENT_BYTES: usize = 63;

/// The tracking columns every target table has, in table order after the source columns.
pub const TRACKING_COLUMNS: [&str; 6] = [
    "_bridge_key_hash",
    "_bridge_data_hash",
    "_bridge_rowversion",
    "_bridge_synced_at",
    "_bridge_run_id",
    "_bridge_deleted_at",
];

/// Columns a PostgreSQL table gets for conflict detection: when the row was last changed outside the engine (a
/// trigger keeps it), and the values the engine had written before that change.
pub const EDIT_COLUMNS: [&str; 2] = ["_bridge_edited_at", "_bridge_synced"];

/// The row id column (UUID v7), kept apart from source fields so a source `id` never collides with it.
pub const ROW_ID_COLUMN: &str = "_bridge_id";

pub use crate::config::ColumnType;

impl ColumnType {
    /// The narrowest type that holds both.
    fn widen(self, other: ColumnType) -> ColumnType {
        use ColumnType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Json, _) | (_, Json) => Json,
            (Integer, Numeric) | (Numeric, Integer) => Numeric,
            _ => Text,
        }
    }

    fn of(value: &Value) -> Option<ColumnType> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(ColumnType::Boolean),
            Value::Number(n)
                if n.is_i64()
                    || n.is_u64() && n.as_u64().is_some_and(|u| i64::try_from(u).is_ok()) =>
            {
                Some(ColumnType::Integer)
            }
            Value::Number(_) => Some(ColumnType::Numeric),
            // Text that reads as a date-time or as a formatted number is taken for one (its evidence says so);
            // a single value that does not read so widens the field back to text.
            Value::String(s) if crate::values::numbers::reads_as_number(s) => {
                Some(ColumnType::Numeric)
            }
            Value::String(s) if reads_as_datetime(s) => Some(ColumnType::DateTime),
            Value::String(_) => Some(ColumnType::Text),
            Value::Array(_) | Value::Object(_) => Some(ColumnType::Json),
        }
    }

    pub fn postgres(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Integer => "bigint",
            ColumnType::Numeric => "numeric",
            ColumnType::Boolean => "boolean",
            ColumnType::DateTime => "timestamptz",
            ColumnType::Json => "jsonb",
        }
    }

    /// Reads a type back from a PostgreSQL `data_type` / SQLite declared type.
    pub fn from_sql(name: &str) -> ColumnType {
        match name.to_ascii_lowercase().as_str() {
            "bigint" | "integer" | "smallint" => ColumnType::Integer,
            "numeric" | "double precision" | "real" => ColumnType::Numeric,
            "boolean" => ColumnType::Boolean,
            "timestamp with time zone" | "timestamptz" | "datetime" => ColumnType::DateTime,
            "jsonb" | "json" => ColumnType::Json,
            _ => ColumnType::Text,
        }
    }
}

/// What a record's field name resolves to while a page is learnt: its index among the fields and the type fixed for
/// it, or None for an excluded field.
type Resolved = Option<(usize, Option<ColumnType>)>;

/// A page being learnt: the types its values call for so far, by field.
struct Learning {
    /// Fields the mapping had before the page.
    known: usize,
    types: Vec<Option<ColumnType>>,
    /// Fields that received a text of bare digits.
    bare: Vec<bool>,
}

impl Learning {
    /// What one value of field `index` says of its type (this runs for every value of every page).
    fn value(&mut self, index: usize, fixed: Option<ColumnType>, value: &Value) {
        if let Some(fixed) = fixed {
            // The analyst chose the type: values that do not fit fail one by one, naming the field.
            self.types[index] = Some(fixed);
            return;
        }
        if is_bare_digits(value) {
            // "42" fits a number column, but alone it is more likely an identifier: decided at the end.
            self.bare.resize(self.types.len(), false);
            self.bare[index] = true;
            return;
        }
        // Text holds every scalar: no need to read the value.
        if self.types[index] == Some(ColumnType::Text) && !value.is_array() && !value.is_object() {
            return;
        }
        // A date-time in a date-time column keeps it: no need to ask first whether it reads as a number.
        if self.types[index] == Some(ColumnType::DateTime)
            && value.as_str().is_some_and(reads_as_datetime)
        {
            return;
        }
        let incoming = ColumnType::of(value);
        self.types[index] = match (self.types[index], incoming) {
            (Some(current), Some(new)) if index < self.known && accepts(current, new) => {
                Some(current)
            }
            (Some(current), Some(new)) => Some(current.widen(new)),
            (current, new) => current.or(new),
        };
    }
}

/// One source field and the column it lands in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Field {
    /// The field's name in the source records.
    pub source: String,
    /// The target column.
    pub column: String,
    #[serde(rename = "type")]
    #[ts(rename = "type")]
    pub ty: ColumnType,
}

/// All fields of one entity, in column order.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Mapping {
    pub fields: Vec<Field>,
    /// The analyst's overrides by source name: excluded fields are never learnt, typed ones keep their type.
    #[serde(skip)]
    #[ts(skip)]
    pub rules: BTreeMap<String, FieldOverride>,
    /// The fields the source declares (Bubble's `/meta`): they get columns before any value is seen, and their
    /// declared types hold unless the analyst chose another.
    #[serde(skip)]
    #[ts(skip)]
    pub declared: Vec<Declared>,
    /// Columns that differ only in ASCII case are one column (SQLite targets).
    #[serde(skip)]
    #[ts(skip)]
    pub fold_case: bool,
    /// Columns of the existing table that no source field has claimed yet (their source name is unknown).
    #[serde(skip)]
    #[ts(skip)]
    unclaimed: std::collections::BTreeSet<String>,
    /// The business key's fields (unique and required in the target).
    #[serde(skip)]
    #[ts(skip)]
    pub key: Vec<String>,
    /// Fields holding a parent's key (`parents` in the pipeline): indexed in the target.
    #[serde(skip)]
    #[ts(skip)]
    pub parent_fields: Vec<String>,
}

/// An index the target table gets from the mapping.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Index {
    pub name: String,
    /// Source field names, in index order.
    pub fields: Vec<String>,
    pub columns: Vec<String>,
    pub unique: bool,
}

/// A field as the source declares it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Declared {
    /// The field's key in records.
    pub source: String,
    pub ty: ColumnType,
    /// The entity whose unique id the field holds, for a reference.
    pub references: Option<String>,
    /// The source's own name of the type (`custom.customer`, `option.status`, `list.text`…), for the editor.
    pub source_type: String,
}

/// What a page taught the mapping: fields never seen before, and known fields whose values no longer fit
/// their column's type (the column must be widened to the field's new type).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SchemaChange {
    pub added: Vec<String>,
    pub retyped: Vec<String>,
    /// The type a retyped field's column has now (the DDL's conversion depends on it).
    pub was: BTreeMap<String, ColumnType>,
}

impl SchemaChange {
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.retyped.is_empty()
    }
}

impl Mapping {
    /// An empty mapping that follows the entity's field overrides.
    pub fn for_entity(entity: &Entity) -> Mapping {
        Mapping {
            fields: Vec::new(),
            rules: entity.fields.clone(),
            declared: Vec::new(),
            fold_case: false,
            unclaimed: Default::default(),
            key: entity.key_fields(),
            parent_fields: entity.parents.iter().map(|p| p.field.clone()).collect(),
        }
    }

    /// The same mapping, following the fields the source declares.
    pub fn with_declared(mut self, declared: Vec<Declared>) -> Mapping {
        self.declared = declared;
        self
    }

    /// The same mapping, with column names unique as the target compares them.
    pub fn for_target(self, target: &crate::config::TargetConfig) -> Mapping {
        self.with_fold_case(matches!(target, crate::config::TargetConfig::Sqlite(_)))
    }

    /// The same mapping, comparing column names without ASCII case when `fold_case` (SQLite targets).
    pub fn with_fold_case(mut self, fold_case: bool) -> Mapping {
        self.fold_case = fold_case;
        self
    }

    /// The indexes the table gets: a unique one on the business key, one per reference to another entity.
    pub fn indexes(&self, table: &str) -> Vec<Index> {
        let mut indexes = Vec::new();
        let key_columns: Option<Vec<String>> = self
            .key
            .iter()
            .map(|k| self.field(k).map(|f| f.column.clone()))
            .collect();
        if let Some(columns) = key_columns.filter(|c| !c.is_empty()) {
            indexes.push(Index {
                name: index_name(table, &columns, "key"),
                fields: self.key.clone(),
                columns,
                unique: true,
            });
        }
        let references = self
            .declared
            .iter()
            .filter(|d| d.references.is_some())
            .map(|d| d.source.as_str())
            .chain(self.parent_fields.iter().map(String::as_str));
        let mut seen = std::collections::BTreeSet::new();
        for source in references {
            let Some(field) = self.field(source) else {
                continue;
            };
            if self.key.len() == 1 && self.key[0] == source || !seen.insert(source) {
                continue;
            }
            let columns = vec![field.column.clone()];
            indexes.push(Index {
                name: index_name(table, &columns, "idx"),
                fields: vec![source.to_owned()],
                columns,
                unique: false,
            });
        }
        indexes
    }

    /// What the source declares of a field.
    pub fn declared_of(&self, source: &str) -> Option<&Declared> {
        self.declared.iter().find(|d| d.source == source)
    }

    /// The mapping of an existing table's columns (each column taken as its own source name until a record
    /// claims it), following the entity's overrides.
    pub fn from_columns(columns: Vec<(String, ColumnType)>, entity: &Entity) -> Mapping {
        let fields: Vec<Field> = columns
            .into_iter()
            .map(|(name, ty)| Field {
                source: name.clone(),
                column: name,
                ty,
            })
            .collect();
        let unclaimed = fields.iter().map(|f: &Field| f.column.clone()).collect();
        Mapping {
            fields,
            rules: entity.fields.clone(),
            declared: Vec::new(),
            fold_case: false,
            unclaimed,
            key: entity.key_fields(),
            parent_fields: entity.parents.iter().map(|p| p.field.clone()).collect(),
        }
    }

    fn excluded(&self, source: &str) -> bool {
        self.rules.get(source).is_some_and(|r| r.exclude)
    }

    fn fixed_type(&self, source: &str) -> Option<ColumnType> {
        self.rules
            .get(source)
            .and_then(|r| r.ty)
            .or_else(|| self.declared_of(source).map(|d| d.ty))
    }

    /// Infers fields and types from sampled records, fields in order of first appearance.
    pub fn infer(records: &[Value]) -> Mapping {
        let mut mapping = Mapping::default();
        mapping.learn(records);
        mapping
    }

    /// Learns a page: adds unseen fields with their inferred types and widens known fields whose values no longer
    /// fit (a number column receiving text becomes text; anything receiving objects becomes JSON).
    pub fn learn(&mut self, records: &[Value]) -> SchemaChange {
        let mut learning = self.begin_learning();
        // Records of one source mostly list the same fields in the same order: what a name resolved to is kept by
        // its position in the record, so most values cost one string comparison instead of three lookups.
        let mut resolved: Vec<(&str, Resolved)> = Vec::new();
        for record in records.iter().filter_map(Value::as_object) {
            for (position, (name, value)) in record.iter().enumerate() {
                let known_here = resolved
                    .get(position)
                    .filter(|(seen, _)| *seen == name.as_str())
                    .map(|(_, r)| *r);
                let resolution = match known_here {
                    Some(r) => r,
                    None => {
                        let r = self.resolve(name, &mut learning);
                        resolved.truncate(position);
                        resolved.push((name.as_str(), r));
                        r
                    }
                };
                if let Some((index, fixed)) = resolution {
                    learning.value(index, fixed, value);
                }
            }
        }
        self.finish_learning(learning)
    }

    /// [`Mapping::learn`] of a page's records, read as objects or as rows (the same result either way).
    pub fn learn_records(&mut self, records: &crate::records::Records) -> SchemaChange {
        use crate::records::Records;
        let (fields, rows) = match records {
            Records::Objects(objects) => return self.learn(objects),
            Records::Rows { fields, rows } => (fields, rows),
        };
        let mut learning = self.begin_learning();
        let resolved: Vec<Resolved> = match rows.is_empty() {
            true => Vec::new(),
            false => fields
                .iter()
                .map(|name| self.resolve(name, &mut learning))
                .collect(),
        };
        for row in rows {
            for (value, resolution) in row.iter().zip(&resolved) {
                if let Some((index, fixed)) = *resolution {
                    learning.value(index, fixed, value);
                }
            }
        }
        self.finish_learning(learning)
    }

    /// The start of learning a page: every field's current type, declared fields first.
    fn begin_learning(&mut self) -> Learning {
        let mut learning = Learning {
            known: self.fields.len(),
            types: self.fields.iter().map(|f| Some(f.ty)).collect(),
            bare: Vec::new(),
        };
        let declared: Vec<String> = self.declared.iter().map(|d| d.source.clone()).collect();
        for name in declared {
            if self.excluded(&name) {
                continue;
            }
            let index = self.index_of(&name, &mut learning.types);
            learning.types[index] = self.fixed_type(&name);
        }
        learning
    }

    /// The field a source name is learnt into and its fixed type; None for an excluded field.
    fn resolve(&mut self, name: &str, learning: &mut Learning) -> Resolved {
        (!self.excluded(name)).then(|| {
            (
                self.index_of(name, &mut learning.types),
                self.fixed_type(name),
            )
        })
    }

    /// The types learnt applied to the fields, and what changed.
    fn finish_learning(&mut self, learning: Learning) -> SchemaChange {
        let Learning {
            known,
            mut types,
            bare,
        } = learning;
        for (ty, _) in types.iter_mut().zip(&bare).filter(|(_, bare)| **bare) {
            *ty = match *ty {
                None => Some(ColumnType::Text),
                Some(ColumnType::DateTime | ColumnType::Boolean) => Some(ColumnType::Text),
                kept => kept,
            };
        }
        let mut change = SchemaChange::default();
        for (i, (field, ty)) in self.fields.iter_mut().zip(types).enumerate() {
            let mut ty = ty.unwrap_or(ColumnType::Text);
            if i < known && ty != field.ty && !widens(field.ty, ty) {
                // A column is only ever widened (every stored value converts); a narrower type the source
                // declares or the analyst chose keeps the column, and values are coerced into it.
                tracing::warn!(
                    field = field.source,
                    "column stays {:?}: {:?} would not hold every stored value",
                    field.ty,
                    ty
                );
                ty = field.ty;
            }
            if i >= known {
                change.added.push(field.source.clone());
            } else if ty != field.ty {
                change.retyped.push(field.source.clone());
                change.was.insert(field.source.clone(), field.ty);
            }
            field.ty = ty;
        }
        change
    }

    /// The field of a source name, added when new; a table column of that very name is claimed.
    fn index_of(&mut self, name: &str, types: &mut Vec<Option<ColumnType>>) -> usize {
        match self.fields.iter().position(|f| f.source == name) {
            Some(i) => {
                self.unclaimed.remove(&self.fields[i].column);
                i
            }
            None => self.add_field(name, types),
        }
    }

    /// Adds a field (type still unknown) under the first free column of `column`, `column_2`, `column_3`…; a
    /// table column left from an earlier run under one of those names is claimed instead of added twice.
    fn add_field(&mut self, name: &str, types: &mut Vec<Option<ColumnType>>) -> usize {
        let base = column_for(name);
        for column in column_candidates(&base) {
            let holder = self
                .fields
                .iter()
                .position(|f| same_column(&f.column, &column, self.fold_case));
            match holder {
                // An unclaimed column of the existing table (its source still unknown): this field's.
                // Only under its exact name: a column differing in case belongs to the field of that name.
                Some(i)
                    if self.fields[i].column == column
                        && self.unclaimed.contains(&self.fields[i].column) =>
                {
                    self.unclaimed.remove(&self.fields[i].column);
                    self.fields[i].source = name.to_owned();
                    return i;
                }
                Some(_) => continue,
                None => {
                    self.fields.push(Field {
                        source: name.to_owned(),
                        column,
                        ty: ColumnType::Text,
                    });
                    types.push(None);
                    return self.fields.len() - 1;
                }
            }
        }
        unreachable!("column_candidates never ends")
    }

    pub fn field(&self, source: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.source == source)
    }
}

/// Whether sampled text names a date or a date-time (with a year: `2026-03-04`, `04.03.2026 10:00`, RFC 2822…).
pub fn reads_as_datetime(text: &str) -> bool {
    text.len() >= 8 && crate::values::datetimes::is_datetime(text)
}

/// A text of digits alone, without a leading zero (`"42"`, not `"007"`).
fn is_bare_digits(value: &Value) -> bool {
    matches!(value, Value::String(s) if !s.is_empty()
        && s.len() < 30
        && s.bytes().all(|b| b.is_ascii_digit())
        && (s.len() == 1 || !s.starts_with('0')))
}

/// `column`, then `column_2`, `column_3`… (each within 63 bytes).
fn column_candidates(column: &str) -> impl Iterator<Item = String> + '_ {
    std::iter::once(column.to_owned()).chain((2u32..).map(move |n| {
        let suffix = format!("_{n}");
        let mut cut = column.len().min(MAX_IDENT_BYTES - suffix.len());
        while !column.is_char_boundary(cut) {
            cut -= 1;
        }
        format!("{}{suffix}", &column[..cut])
    }))
}

/// Whether two column names name one column (SQLite folds ASCII case in identifiers; PostgreSQL's quoted ones
/// do not).
fn same_column(a: &str, b: &str, fold_case: bool) -> bool {
    if fold_case {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// Whether a column of type `from` can become `to` keeping every value (the only type changes ever made).
pub fn widens(from: ColumnType, to: ColumnType) -> bool {
    matches!(
        (from, to),
        (ColumnType::Integer, ColumnType::Numeric) | (_, ColumnType::Text) | (_, ColumnType::Json)
    ) && from != ColumnType::Json
}

/// Whether a column of type `column` stores a value of kind `value` as it is.
fn accepts(column: ColumnType, value: ColumnType) -> bool {
    match column {
        ColumnType::Json => true,
        ColumnType::Numeric => matches!(value, ColumnType::Numeric | ColumnType::Integer),
        ColumnType::DateTime => value == ColumnType::DateTime,
        // Scalars keep their JSON spelling in text; objects and arrays need JSON.
        ColumnType::Text => value != ColumnType::Json,
        other => other == value,
    }
}

/// The target column for a source field: its own name, or — past PostgreSQL's 63 bytes — its first bytes (cut on
/// a character boundary) and a stable hash of the whole name, so that two long names stay apart.
pub fn column_for(source: &str) -> String {
    if source == ROW_ID_COLUMN || TRACKING_COLUMNS.contains(&source) {
        // A source field named like a tracking column keeps its data beside it.
        return format!("{source}_source");
    }
    let hash = format!(
        "{:08x}",
        xxhash_rust::xxh3::xxh3_64(source.as_bytes()) as u32
    );
    if source.is_empty() || source.contains('\0') {
        // PostgreSQL has no empty identifiers and no NUL in them: keep what can be kept, named apart by the hash.
        let kept: String = source.chars().filter(|&c| c != '\0').collect();
        return column_for(&format!("{kept}_unnamed_{hash}"));
    }
    if source.len() <= MAX_IDENT_BYTES {
        return source.to_owned();
    }
    let mut cut = MAX_IDENT_BYTES - hash.len() - 1;
    while !source.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}", &source[..cut])
}

/// An index's name: `table_column_suffix`, cut to 63 bytes with a stable hash when longer (PostgreSQL index names
/// are unique per schema, so the table is part of it).
pub fn index_name(table: &str, columns: &[String], suffix: &str) -> String {
    let full = format!("{table}_{}_{suffix}", columns.join("_"));
    let hash = format!("{:08x}", xxhash_rust::xxh3::xxh3_64(full.as_bytes()) as u32);
    let clean: String = full.chars().filter(|&c| c != '\0').collect();
    if clean.len() <= MAX_IDENT_BYTES && clean.len() == full.len() {
        return clean;
    }
    let mut cut = clean.len().min(MAX_IDENT_BYTES - hash.len() - 1);
    while !clean.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}_{hash}", &clean[..cut])
}

/// `CREATE [UNIQUE] INDEX IF NOT EXISTS` for every index of the mapping (`qualified`: the table as SQL names it).
pub fn index_statements(qualified: &str, table: &str, mapping: &Mapping) -> Vec<String> {
    index_statements_of(qualified, table, mapping, |_| true)
}

/// The index statements of an existing table that gains the `added` fields.
pub fn index_statements_for_added(
    qualified: &str,
    table: &str,
    mapping: &Mapping,
    added: &[String],
) -> Vec<String> {
    index_statements_of(qualified, table, mapping, |index| {
        index.fields.iter().any(|f| added.contains(f))
    })
}

fn index_statements_of(
    qualified: &str,
    table: &str,
    mapping: &Mapping,
    wanted: impl Fn(&Index) -> bool,
) -> Vec<String> {
    mapping
        .indexes(table)
        .iter()
        .filter(|index| wanted(index))
        .map(|index| {
            let columns: Vec<String> = index.columns.iter().map(|c| quote_ident(c)).collect();
            format!(
                "CREATE {}INDEX IF NOT EXISTS {} ON {qualified} ({})",
                if index.unique { "UNIQUE " } else { "" },
                quote_ident(&index.name),
                columns.join(", ")
            )
        })
        .collect()
}

/// Quotes an identifier for SQL (PostgreSQL and SQLite alike): wrapped in `"`, inner `"` doubled.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_page_read_as_rows_teaches_what_it_teaches_read_as_objects() {
        use crate::records::{object_of, Records};
        let fields: std::sync::Arc<[String]> = ["code", "qty", "when", "price", "skip", "doc"]
            .map(String::from)
            .into();
        let rows: Vec<Vec<Value>> = [
            json!(["42", 1, "2024-01-02T03:04:05Z", 1, "x", null]),
            json!(["43", 2.5, "2024-01-03", "n/a", "y", {"a": 1}]),
            json!(["44", 3, null, 2, "z", [1]]),
        ]
        .iter()
        .map(|r| r.as_array().unwrap().clone())
        .collect();
        let objects: Vec<Value> = rows.iter().map(|r| object_of(&fields, r.clone())).collect();
        let mut before = Mapping::infer(&[json!({"qty": 1, "old": true})]);
        before.rules.insert(
            "skip".into(),
            crate::config::FieldOverride {
                exclude: true,
                ..Default::default()
            },
        );
        let mut by_objects = before.clone();
        let objects_change = by_objects.learn(&objects);
        let mut by_rows = before.clone();
        let rows_change = by_rows.learn_records(&Records::Rows { fields, rows });
        assert_eq!(by_rows.fields, by_objects.fields);
        assert_eq!(
            (rows_change.added, rows_change.retyped),
            (objects_change.added, objects_change.retyped)
        );
        assert!(by_rows.field("skip").is_none());
        assert_eq!(by_rows.field("qty").unwrap().ty, ColumnType::Numeric);
    }

    #[test]
    fn no_date_time_reads_as_a_number() {
        // What lets LEARN keep a date-time column on a date-time value without asking the number reader first.
        for text in [
            "2026-03-04T05:06:07.120Z",
            "2026-03-04T05:06:07+02:00",
            "2026-03-04 05:06:07+0200",
            "2026-03-04 05:06+02",
            "2026-03-04T05:06:07",
            "2026-03-04T05:06",
            "2026-03-04 05:06:07.5",
            "2026-03-04 05:06",
            "04.03.2026 05:06:07",
            "4.3.2026 05:06",
            "2026/03/04 05:06:07",
            "2026/03/04 05:06",
            "2026-03-04",
            "04.03.2026",
            "4.3.2026",
            "1.12.2026",
            "2026/03/04",
            "Mar 4, 2026",
            "4 Mar 2026",
            "Wed, 04 Mar 2026 05:06:07 +0000",
        ] {
            assert!(reads_as_datetime(text), "{text}");
            assert!(!crate::values::numbers::reads_as_number(text), "{text}");
        }
    }

    #[test]
    fn infers_types_and_keeps_first_appearance_order() {
        let records = vec![
            json!({"id": 1, "name": "a", "active": true, "price": null}),
            json!({"id": 2, "name": "b", "active": false, "price": 1.5, "tags": ["x"]}),
        ];
        let m = Mapping::infer(&records);
        let got: Vec<(&str, ColumnType)> =
            m.fields.iter().map(|f| (f.source.as_str(), f.ty)).collect();
        assert_eq!(
            got,
            vec![
                ("id", ColumnType::Integer),
                ("name", ColumnType::Text),
                ("active", ColumnType::Boolean),
                ("price", ColumnType::Numeric),
                ("tags", ColumnType::Json)
            ]
        );
    }

    #[test]
    fn mixed_scalars_widen_to_text_and_objects_to_json() {
        let m = Mapping::infer(&[json!({"a": 1, "b": {"x": 1}}), json!({"a": "one", "b": 2})]);
        assert_eq!(m.fields[0].ty, ColumnType::Text);
        assert_eq!(m.fields[1].ty, ColumnType::Json);
    }

    #[test]
    fn learning_later_fields_keeps_known_types() {
        let mut m = Mapping::infer(&[json!({"a": 1, "c": "x"})]);
        let change = m.learn(&[json!({"a": 2, "b": true, "c": 5})]);
        assert_eq!(
            change,
            SchemaChange {
                added: vec!["b".into()],
                ..Default::default()
            }
        );
        assert_eq!(m.fields[0].ty, ColumnType::Integer);
        assert_eq!(m.fields[2].ty, ColumnType::Boolean);
        assert_eq!(
            m.fields[1].ty,
            ColumnType::Text,
            "a number in a text column keeps the column"
        );
    }

    #[test]
    fn integers_widen_to_numeric_then_text() {
        let mut m = Mapping::infer(&[json!({"n": 1})]);
        assert_eq!(m.fields[0].ty, ColumnType::Integer);
        assert_eq!(m.learn(&[json!({"n": 2.5})]).retyped, vec!["n".to_owned()]);
        assert_eq!(m.fields[0].ty, ColumnType::Numeric);
        assert!(
            m.learn(&[json!({"n": 3})]).is_empty(),
            "an integer fits a numeric column"
        );
        let big = serde_json::from_str::<Value>("{\"n\": 123456789012345678901234567890}").unwrap();
        assert_eq!(Mapping::infer(&[big]).fields[0].ty, ColumnType::Numeric);
    }

    #[test]
    fn texts_that_read_as_numbers_or_dates_are_typed_so_codes_stay_text() {
        let m = Mapping::infer(&[
            json!({"amount": "10,000", "when": "2026-03-04", "code": "007", "id": "42", "mixed": "1"}),
            json!({"amount": "1", "when": "Mar 4, 2026", "code": "12", "id": "43", "mixed": "1,000.5"}),
        ]);
        let types: Vec<ColumnType> = m.fields.iter().map(|f| f.ty).collect();
        assert_eq!(
            types,
            [
                ColumnType::Numeric,
                ColumnType::DateTime,
                ColumnType::Text,
                ColumnType::Text,
                ColumnType::Numeric
            ]
        );
        let mut m = m;
        assert_eq!(m.learn(&[json!({"when": "soon"})]).retyped, ["when"]);
        assert_eq!(m.fields[1].ty, ColumnType::Text);
    }

    #[test]
    fn a_value_that_no_longer_fits_widens_the_column() {
        let mut m = Mapping::infer(&[json!({"qty": 1})]);
        let change = m.learn(&[json!({"qty": "N/A"})]);
        assert_eq!(change.retyped, vec!["qty".to_owned()]);
        assert_eq!(m.fields[0].ty, ColumnType::Text);
    }

    #[test]
    fn long_names_get_distinct_columns_within_63_bytes() {
        let a = format!("{}a", "é".repeat(40));
        let b = format!("{}b", "é".repeat(40));
        let m = Mapping::infer(&[json!({ a.clone(): 1, b.clone(): 2 })]);
        let (ca, cb) = (&m.fields[0].column, &m.fields[1].column);
        assert!(ca.len() <= MAX_IDENT_BYTES && cb.len() <= MAX_IDENT_BYTES);
        assert_ne!(ca, cb);
        assert_eq!(ca, &column_for(&a), "stable");
        assert_eq!(column_for("short"), "short");
    }

    #[test]
    fn a_long_field_reclaims_its_column_from_an_existing_table() {
        let long = "x".repeat(80);
        let column = column_for(&long);
        let mut m = Mapping::from_columns(
            vec![(column.clone(), ColumnType::Numeric)],
            &crate::config::Entity::named("t"),
        );
        let change = m.learn(&[json!({ long.clone(): 3 })]);
        assert!(change.is_empty(), "{change:?}");
        assert_eq!(m.fields[0].source, long);
    }

    #[test]
    fn columns_differing_in_case_stay_apart_in_sqlite_and_come_back_the_same() {
        let entity = crate::config::Entity::named("t");
        let mut fresh = Mapping::for_entity(&entity);
        fresh.fold_case = true;
        fresh.learn(&[json!({"Total": 1, "total": 2, "Total_2": 3})]);
        let columns: Vec<&str> = fresh.fields.iter().map(|f| f.column.as_str()).collect();
        assert_eq!(columns, ["Total", "total_2", "Total_2_2"]);
        // The next run reads the table back and claims each column for the same field.
        let mut again = Mapping::from_columns(
            fresh
                .fields
                .iter()
                .map(|f| (f.column.clone(), f.ty))
                .collect(),
            &entity,
        );
        again.fold_case = true;
        assert!(again
            .learn(&[json!({"total": 2, "Total_2": 3, "Total": 1})])
            .is_empty());
        assert_eq!(again.fields, fresh.fields);
    }

    #[test]
    fn tracking_names_get_columns_of_their_own() {
        let m = Mapping::infer(&[json!({"_bridge_key_hash": 1, "_bridge_key_hash_source": 2})]);
        assert_eq!(m.fields[0].column, "_bridge_key_hash_source");
        assert_eq!(m.fields[1].column, "_bridge_key_hash_source_2");
    }

    #[test]
    fn empty_and_nul_names_get_usable_columns() {
        let empty = column_for("");
        assert!(
            empty.starts_with("_unnamed_") && empty.len() == 17,
            "{empty}"
        );
        assert_eq!(
            column_for("a\0b"),
            format!("ab_unnamed_{}", &column_for("a\0b")[11..])
        );
        assert!(!column_for("a\0b").contains('\0'));
    }

    #[test]
    fn quoting_neutralises_hostile_names() {
        assert_eq!(
            quote_ident("a\"; drop table x; --"),
            "\"a\"\"; drop table x; --\""
        );
    }
}
