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
        self.normalize_noting(record, None)
    }

    /// [`RecordNormalizer::normalize`] that moves the values it would keep as they are (most of them) out of the
    /// record instead of copying them; the record keeps null in their place. Cloning them was a quarter of the
    /// transform's time (every string, and every number: numbers keep their digits as text). `moves` is scratch
    /// space kept between records. When the values are not wanted after all (a failed validation),
    /// [`RecordNormalizer::put_back`] makes the record whole again.
    pub fn normalize_taking(
        &self,
        record: &mut Map<String, Value>,
        moves: &mut Vec<(usize, usize)>,
    ) -> Result<Vec<Value>, NormalizeError> {
        moves.clear();
        let mut values = self.normalize_noting(record, Some(moves))?;
        let mut wanted = moves.iter().peekable();
        for (position, (_, value)) in record.iter_mut().enumerate() {
            let Some(&&(at, index)) = wanted.peek() else {
                break;
            };
            if at == position {
                values[index] = std::mem::take(value);
                wanted.next();
            }
        }
        Ok(values)
    }

    /// Returns the values [`RecordNormalizer::normalize_taking`] moved out of `record` (they are the record's own,
    /// unchanged).
    pub fn put_back(
        &self,
        record: &mut Map<String, Value>,
        values: &[Value],
        moves: &[(usize, usize)],
    ) {
        let mut moved = moves.iter().peekable();
        for (position, (_, value)) in record.iter_mut().enumerate() {
            let Some(&&(at, index)) = moved.peek() else {
                break;
            };
            if at == position {
                if let Some(original) = values.get(index) {
                    *value = original.clone();
                }
                moved.next();
            }
        }
    }

    /// Normalises by reference. With `moves`, a value kept as it is (no rule, already of its column's type) found
    /// where the record's order puts it is not copied: null stands in its place and `moves` notes (its position in
    /// the record, the field's index), in record order, for the caller to move it.
    fn normalize_noting(
        &self,
        record: &Map<String, Value>,
        mut moves: Option<&mut Vec<(usize, usize)>>,
    ) -> Result<Vec<Value>, NormalizeError> {
        let mut values = Vec::with_capacity(self.mapping.fields.len());
        // Records of one source mostly list their fields in the order the mapping learnt them: each field is first
        // looked for where the last one was found, then by name.
        let mut entries = record.iter().enumerate().peekable();
        for (index, (field, rule)) in self.mapping.fields.iter().zip(&self.rules).enumerate() {
            let (raw, position) = match entries.peek() {
                Some((position, (name, value))) if **name == field.source => {
                    let found = (*value, Some(*position));
                    entries.next();
                    found
                }
                _ => (record.get(&field.source).unwrap_or(&Value::Null), None),
            };
            if let (Some(moves), Some(position), None) = (moves.as_deref_mut(), position, rule) {
                if types::kept_as_is(raw, field.ty) {
                    moves.push((position, index));
                    values.push(Value::Null);
                    continue;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn object(v: Value) -> Map<String, Value> {
        match v {
            Value::Object(o) => o,
            _ => Map::new(),
        }
    }

    #[test]
    fn taking_gives_the_same_values_moves_what_is_kept_as_is_and_puts_it_back() {
        let records = vec![json!({
            "id": 7, "name": "Widget", "price": "12.50", "when": "2026-01-02 03:04:05",
            "tags": ["a"], "qty": 3, "note": null
        })];
        let mut mapping = Mapping::infer(&records);
        // The record lists its fields in another order than the mapping for the last two: looked up by name, copied.
        let record = json!({
            "id": 7, "name": "Widget", "price": "12.50", "when": "2026-01-02 03:04:05",
            "tags": ["a"], "note": "late", "qty": 3
        });
        mapping.learn(std::slice::from_ref(&record));
        let normalizer = RecordNormalizer::new(&mapping);
        let copied = normalizer.normalize(&object(record.clone())).unwrap();
        let mut taken_from = object(record.clone());
        let mut moves = Vec::new();
        let taken = normalizer
            .normalize_taking(&mut taken_from, &mut moves)
            .unwrap();
        assert_eq!(taken, copied);
        // Moved: id, name, tags and note (kept as they are, found where the record's order puts them); "12.50"
        // becomes a number and the date-time is rewritten, so they stay; "qty", listed before its turn, is copied.
        let left: Vec<(&str, bool)> = taken_from
            .iter()
            .map(|(k, v)| (k.as_str(), v.is_null()))
            .collect();
        assert_eq!(
            left,
            vec![
                ("id", true),
                ("name", true),
                ("price", false),
                ("when", false),
                ("tags", true),
                ("note", true),
                ("qty", false)
            ]
        );
        normalizer.put_back(&mut taken_from, &taken, &moves);
        assert_eq!(Value::Object(taken_from), record);
    }

    #[test]
    fn a_record_that_fails_to_normalise_keeps_its_values() {
        let mapping = Mapping::infer(&[json!({"id": 1, "name": "a", "qty": 2})]);
        let record = json!({"id": 5, "name": "b", "qty": "many"});
        let mut taken_from = object(record.clone());
        let mut moves = Vec::new();
        let err = RecordNormalizer::new(&mapping)
            .normalize_taking(&mut taken_from, &mut moves)
            .unwrap_err();
        assert_eq!(err.field, "qty");
        assert_eq!(Value::Object(taken_from), record);
    }
}
