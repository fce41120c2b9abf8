//! NORMALIZE: turns a raw source record into values of the mapped column types.
//!
//! Layer 1 (types) is in [`types`]; the string, number, date-time and field-mapping layers follow it here.

pub mod datetimes;
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
    mapping
        .fields
        .iter()
        .map(|field| {
            let raw = record.get(&field.source).unwrap_or(&Value::Null);
            types::coerce(raw, field.ty).map_err(|message| NormalizeError {
                field: field.source.clone(),
                message,
            })
        })
        .collect()
}
