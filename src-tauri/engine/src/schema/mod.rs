//! The mapping of source fields to target columns, and type inference from sampled values.
//!
//! The column is the source field's own name (CONTRACT.md: "other columns are named by the mapping"); identifiers
//! are always quoted when they reach SQL (see [`quote_ident`]).

use serde::{Deserialize, Serialize};
use serde_json::Value;
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

/// The row id column (UUID v7), kept apart from source fields so a source `id` never collides with it.
pub const ROW_ID_COLUMN: &str = "_bridge_id";

/// The target type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text, kept byte for byte.
    Text,
    /// An exact decimal number (integers included).
    Numeric,
    Boolean,
    /// Objects, arrays and mixed values.
    Json,
}

impl ColumnType {
    /// The narrowest type that holds both.
    fn widen(self, other: ColumnType) -> ColumnType {
        use ColumnType::*;
        match (self, other) {
            (a, b) if a == b => a,
            (Json, _) | (_, Json) => Json,
            _ => Text,
        }
    }

    fn of(value: &Value) -> Option<ColumnType> {
        match value {
            Value::Null => None,
            Value::Bool(_) => Some(ColumnType::Boolean),
            Value::Number(_) => Some(ColumnType::Numeric),
            Value::String(_) => Some(ColumnType::Text),
            Value::Array(_) | Value::Object(_) => Some(ColumnType::Json),
        }
    }

    pub fn postgres(self) -> &'static str {
        match self {
            ColumnType::Text => "text",
            ColumnType::Numeric => "numeric",
            ColumnType::Boolean => "boolean",
            ColumnType::Json => "jsonb",
        }
    }

    /// Reads a type back from a PostgreSQL `data_type` / SQLite declared type.
    pub fn from_sql(name: &str) -> ColumnType {
        match name.to_ascii_lowercase().as_str() {
            "numeric" | "bigint" | "integer" | "smallint" | "double precision" | "real" => {
                ColumnType::Numeric
            }
            "boolean" => ColumnType::Boolean,
            "jsonb" | "json" => ColumnType::Json,
            _ => ColumnType::Text,
        }
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
}

#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error("field \"{field}\" is a reserved tracking column name; rename it at the source")]
    Reserved { field: String },
    #[error("field \"{field}\" is longer than {MAX_IDENT_BYTES} bytes; long names are supported from the mapping editor on")]
    TooLong { field: String },
}

impl Mapping {
    /// Infers fields and types from sampled records, fields in order of first appearance.
    pub fn infer(records: &[Value]) -> Result<Mapping, SchemaError> {
        let mut mapping = Mapping::default();
        mapping.learn(records)?;
        Ok(mapping)
    }

    /// Adds fields not seen before (with their inferred types); returns how many were added.
    pub fn learn(&mut self, records: &[Value]) -> Result<usize, SchemaError> {
        let mut added = 0;
        let mut types: Vec<Option<ColumnType>> = self.fields.iter().map(|f| Some(f.ty)).collect();
        let known = self.fields.len();
        for record in records.iter().filter_map(Value::as_object) {
            for (name, value) in record {
                let index = match self.fields.iter().position(|f| &f.source == name) {
                    Some(i) => i,
                    None => {
                        check_column_name(name)?;
                        self.fields.push(Field {
                            source: name.clone(),
                            column: name.clone(),
                            ty: ColumnType::Text,
                        });
                        types.push(None);
                        added += 1;
                        self.fields.len() - 1
                    }
                };
                if index >= known {
                    types[index] = match (types[index], ColumnType::of(value)) {
                        (Some(a), Some(b)) => Some(a.widen(b)),
                        (a, b) => a.or(b),
                    };
                }
            }
        }
        for (field, ty) in self.fields.iter_mut().zip(types).skip(known) {
            field.ty = ty.unwrap_or(ColumnType::Text);
        }
        Ok(added)
    }

    pub fn field(&self, source: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.source == source)
    }

    /// Field names of a record that the mapping does not know.
    pub fn unknown_fields<'a>(&self, record: &'a serde_json::Map<String, Value>) -> Vec<&'a str> {
        record
            .keys()
            .filter(|k| self.field(k).is_none())
            .map(String::as_str)
            .collect()
    }
}

fn check_column_name(name: &str) -> Result<(), SchemaError> {
    if name == ROW_ID_COLUMN || TRACKING_COLUMNS.contains(&name) {
        return Err(SchemaError::Reserved {
            field: name.to_owned(),
        });
    }
    if name.len() > MAX_IDENT_BYTES {
        return Err(SchemaError::TooLong {
            field: name.to_owned(),
        });
    }
    Ok(())
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
    fn infers_types_and_keeps_first_appearance_order() {
        let records = vec![
            json!({"id": 1, "name": "a", "active": true, "price": null}),
            json!({"id": 2, "name": "b", "active": false, "price": 1.5, "tags": ["x"]}),
        ];
        let m = Mapping::infer(&records).unwrap();
        let got: Vec<(&str, ColumnType)> =
            m.fields.iter().map(|f| (f.source.as_str(), f.ty)).collect();
        assert_eq!(
            got,
            vec![
                ("id", ColumnType::Numeric),
                ("name", ColumnType::Text),
                ("active", ColumnType::Boolean),
                ("price", ColumnType::Numeric),
                ("tags", ColumnType::Json)
            ]
        );
    }

    #[test]
    fn mixed_scalars_widen_to_text_and_objects_to_json() {
        let m =
            Mapping::infer(&[json!({"a": 1, "b": {"x": 1}}), json!({"a": "one", "b": 2})]).unwrap();
        assert_eq!(m.fields[0].ty, ColumnType::Text);
        assert_eq!(m.fields[1].ty, ColumnType::Json);
    }

    #[test]
    fn learning_later_fields_keeps_known_types() {
        let mut m = Mapping::infer(&[json!({"a": 1})]).unwrap();
        assert_eq!(m.learn(&[json!({"a": "x", "b": true})]).unwrap(), 1);
        assert_eq!(m.fields[0].ty, ColumnType::Numeric);
        assert_eq!(m.fields[1].ty, ColumnType::Boolean);
    }

    #[test]
    fn tracking_names_are_refused() {
        assert!(Mapping::infer(&[json!({"_bridge_key_hash": 1})]).is_err());
    }

    #[test]
    fn quoting_neutralises_hostile_names() {
        assert_eq!(
            quote_ident("a\"; drop table x; --"),
            "\"a\"\"; drop table x; --\""
        );
    }
}
