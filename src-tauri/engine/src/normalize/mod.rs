//! NORMALIZE: turns a raw source record into values of the mapped column types.
//!
//! One module per layer: [`types`] (coercion to the mapped type), [`strings`] (text rules), [`numbers`] (numbers
//! written as text; in `values`, shared with type inference), [`datetimes`] (date-times to ISO 8601 UTC) and the field rules here (defaults). A value passes
//! the layers its type and the analyst's rules call for; a value no rule applies to is kept as it came.

pub use crate::values::{datetimes, numbers};
pub mod strings;
pub mod types;

use crate::schema::Mapping;
use serde_json::{Map, Value};

/// Why a record could not be normalised, naming the field.
#[derive(Debug, Clone, thiserror::Error)]
#[error("field \"{field}\": {message}")]
pub struct NormalizeError {
    pub field: String,
    pub message: String,
}

/// Normalises every mapped field of a record; fields the record omits become null.
pub fn normalize_record(
    record: &Map<String, Value>,
    mapping: &Mapping,
) -> Result<Vec<Value>, NormalizeError> {
    RecordNormalizer::new(mapping).normalize(record)
}

/// Normalises the records of one mapping: each field's rules are looked up once, not once per record.
pub struct RecordNormalizer<'m> {
    mapping: &'m Mapping,
    rules: Vec<Option<&'m crate::config::FieldOverride>>,
}

impl<'m> RecordNormalizer<'m> {
    pub fn new(mapping: &'m Mapping) -> RecordNormalizer<'m> {
        let rules = mapping
            .fields
            .iter()
            .map(|f| mapping.rules.get(&f.source))
            .collect();
        RecordNormalizer { mapping, rules }
    }

    pub fn normalize(&self, record: &Map<String, Value>) -> Result<Vec<Value>, NormalizeError> {
        let mut values = Vec::with_capacity(self.mapping.fields.len());
        // Records of one source mostly list their fields in the order the mapping learnt them: each field is first
        // looked for where the last one was found, then by name.
        let mut entries = record.iter().peekable();
        for (field, rule) in self.mapping.fields.iter().zip(&self.rules) {
            let raw = match entries.peek() {
                Some((name, value)) if **name == field.source => {
                    let value = *value;
                    entries.next();
                    value
                }
                _ => record.get(&field.source).unwrap_or(&Value::Null),
            };
            values.push(normalize_value(raw, field, *rule)?);
        }
        Ok(values)
    }
}

fn normalize_value(
    raw: &Value,
    field: &crate::schema::Field,
    rule: Option<&crate::config::FieldOverride>,
) -> Result<Value, NormalizeError> {
    let fail = |message| NormalizeError {
        field: field.source.clone(),
        message,
    };
    let Some(rule) = rule else {
        return types::coerce(raw, field.ty, false).map_err(fail);
    };
    // Layer 5 first: a default stands in for a missing value and then passes the other layers.
    let defaulted = match (raw, &rule.default) {
        (Value::Null, Some(default)) => Value::String(default.clone()),
        _ => raw.clone(),
    };
    let value = types::coerce(&defaulted, field.ty, rule.decimal_comma).map_err(fail)?;
    Ok(match value {
        Value::String(text) if !rule.text.is_empty() => {
            Value::String(strings::apply(&text, &rule.text))
        }
        other => other,
    })
}
