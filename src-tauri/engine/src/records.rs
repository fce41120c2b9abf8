//! A page's records as a source hands them on: parsed objects, or — when every record of the page lists the same
//! fields in the same order, as most pages of a REST gateway do — rows of values under one list of field names.
//! Rows save the map each record would be parsed into (a key allocated and hashed per field), which was most of a
//! parse; every consumer that needs a record as an object gets it back exactly as it was sent (same fields, same
//! order, same values).

use serde_json::{Map, Value};
use std::borrow::Cow;
use std::sync::Arc;

#[derive(Debug, Clone)]
pub enum Records {
    Objects(Vec<Value>),
    /// Each row holds one value per field, in `fields`' order: the record `{fields[0]: row[0], …}`.
    Rows {
        fields: Arc<[String]>,
        rows: Vec<Vec<Value>>,
    },
}

impl Default for Records {
    fn default() -> Records {
        Records::Objects(Vec::new())
    }
}

impl From<Vec<Value>> for Records {
    fn from(records: Vec<Value>) -> Records {
        Records::Objects(records)
    }
}

impl Records {
    pub fn len(&self) -> usize {
        match self {
            Records::Objects(records) => records.len(),
            Records::Rows { rows, .. } => rows.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The records as objects (rows made into the objects they were sent as).
    pub fn into_objects(self) -> Vec<Value> {
        match self {
            Records::Objects(records) => records,
            Records::Rows { fields, rows } => rows
                .into_iter()
                .map(|row| object_of(&fields, row))
                .collect(),
        }
    }

    /// The records as objects, borrowed where they are objects already.
    pub fn objects(&self) -> Cow<'_, [Value]> {
        match self {
            Records::Objects(records) => Cow::Borrowed(records),
            Records::Rows { fields, rows } => Cow::Owned(
                rows.iter()
                    .map(|row| object_of(fields, row.clone()))
                    .collect(),
            ),
        }
    }
}

/// The record a row was sent as.
pub fn object_of(fields: &[String], row: Vec<Value>) -> Value {
    let object: Map<String, Value> = fields.iter().cloned().zip(row).collect();
    Value::Object(object)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn rows_come_back_as_the_objects_they_were_sent_as() {
        let fields: Arc<[String]> = Arc::from(vec!["b".to_owned(), "a".to_owned()]);
        let records = Records::Rows {
            fields,
            rows: vec![vec![json!(1), json!("x")], vec![json!(null), json!([2])]],
        };
        let expected = vec![json!({"b": 1, "a": "x"}), json!({"b": null, "a": [2]})];
        assert_eq!(records.objects().to_vec(), expected);
        assert_eq!(records.objects()[0].to_string(), r#"{"b":1,"a":"x"}"#);
        assert_eq!(records.len(), 2);
        assert_eq!(records.into_objects(), expected);
    }
}
