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

/// Where NORMALIZE found a mapped field in a [`TakenRecord`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Slot {
    Missing,
    /// Read where it is (converted, or under a rule).
    Read(usize),
    /// Moved out: its normalised value is the record's own.
    Moved(usize),
}

/// A record taken apart so that NORMALIZE moves its values out instead of copying each: the parsed record is not
/// needed once its row is made, and a copy per text and per number (one allocation each) was most of NORMALIZE's
/// cost. A record that fails gets every value back, in its order, for the failed record's raw JSON. Reused from
/// record to record.
#[derive(Default)]
pub struct TakenRecord {
    fields: Vec<(String, Value)>,
    slots: Vec<Slot>,
}

impl TakenRecord {
    /// Takes `object`'s fields, leaving it empty.
    pub fn take(&mut self, object: &mut Map<String, Value>) {
        self.fields.clear();
        self.slots.clear();
        self.fields.extend(std::mem::take(object));
    }

    /// Puts the fields back into `object` as they were taken, the values moved out returned from `values` (the
    /// record's normalised values, in mapping order).
    pub fn give_back(&mut self, object: &mut Map<String, Value>, values: Vec<Value>) {
        self.restore(values);
        *object = self.fields.drain(..).collect();
    }

    /// Forgets the record (its names, and the values that were not moved out).
    pub fn clear(&mut self) {
        self.fields.clear();
        self.slots.clear();
    }

    fn restore(&mut self, values: Vec<Value>) {
        for (slot, value) in self.slots.iter().zip(values) {
            if let Slot::Moved(at) = *slot {
                if let Some((_, field)) = self.fields.get_mut(at) {
                    *field = value;
                }
            }
        }
    }

    /// Where `name` is: at `next` (records mostly list fields in the mapping's order), or anywhere.
    fn find(&self, name: &str, next: usize) -> Option<usize> {
        match self.fields.get(next) {
            Some((found, _)) if found == name => Some(next),
            _ => self.fields.iter().position(|(found, _)| found == name),
        }
    }
}

impl RecordNormalizer<'_> {
    /// [`RecordNormalizer::normalize`] of a taken record, moving out every value that needs no change. On an error
    /// the record has all its values again.
    pub fn normalize_taking(&self, record: &mut TakenRecord) -> Result<Vec<Value>, NormalizeError> {
        let mut values = Vec::with_capacity(self.mapping.fields.len());
        record.slots.clear();
        let mut next = 0;
        for (field, rule) in self.mapping.fields.iter().zip(&self.rules) {
            let at = record.find(&field.source, next);
            let raw = at.and_then(|i| record.fields.get_mut(i)).map(|(_, v)| v);
            let (slot, normalized) = match (at, raw) {
                (Some(i), Some(raw)) if rule.is_none() && types::keeps(raw, field.ty) => {
                    (Slot::Moved(i), Ok(std::mem::take(raw)))
                }
                (Some(i), Some(raw)) => (Slot::Read(i), normalize_value(raw, field, *rule)),
                _ => (Slot::Missing, normalize_value(&Value::Null, field, *rule)),
            };
            if let Some(i) = at {
                next = i + 1;
            }
            record.slots.push(slot);
            match normalized {
                Ok(value) => values.push(value),
                Err(e) => {
                    record.restore(values);
                    return Err(e);
                }
            }
        }
        Ok(values)
    }
}

/// NORMALIZE of records read as rows (see [`crate::source::records`]): where each mapped field is in a page's rows,
/// and which values the last row had moved out. Values needing no change are moved out of the row, as
/// [`TakenRecord`] does for objects; a row that fails gets them back, for the failed record's raw JSON.
pub struct RowTaker {
    /// For each mapped field, its place in the row (None: the page's records do not list it).
    at: Vec<Option<usize>>,
    moved: Vec<bool>,
}

impl RowTaker {
    /// The taker for rows of `fields`.
    pub fn new(mapping: &Mapping, fields: &[String]) -> RowTaker {
        RowTaker {
            at: mapping
                .fields
                .iter()
                .map(|f| fields.iter().position(|name| *name == f.source))
                .collect(),
            moved: Vec::new(),
        }
    }

    /// Puts back into `row` the values moved out of it, from `values` (its normalised values, in mapping order).
    pub fn give_back(&self, row: &mut [Value], values: Vec<Value>) {
        for ((at, moved), value) in self.at.iter().zip(&self.moved).zip(values) {
            if let (Some(i), true) = (at, moved) {
                if let Some(slot) = row.get_mut(*i) {
                    *slot = value;
                }
            }
        }
    }
}

impl RecordNormalizer<'_> {
    /// [`RecordNormalizer::normalize_taking`] of a row. On an error the row has all its values again.
    pub fn normalize_row(
        &self,
        taker: &mut RowTaker,
        row: &mut [Value],
    ) -> Result<Vec<Value>, NormalizeError> {
        let mut values = Vec::with_capacity(self.mapping.fields.len());
        taker.moved.clear();
        for ((field, rule), at) in self.mapping.fields.iter().zip(&self.rules).zip(&taker.at) {
            let raw = at.and_then(|i| row.get_mut(i));
            let (moved, normalized) = match raw {
                Some(raw) if rule.is_none() && types::keeps(raw, field.ty) => {
                    (true, Ok(std::mem::take(raw)))
                }
                Some(raw) => (false, normalize_value(raw, field, *rule)),
                None => (false, normalize_value(&Value::Null, field, *rule)),
            };
            taker.moved.push(moved);
            match normalized {
                Ok(value) => values.push(value),
                Err(e) => {
                    taker.give_back(row, values);
                    return Err(e);
                }
            }
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
