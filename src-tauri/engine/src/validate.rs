//! VALIDATE: required fields and values the target can store; a record that fails goes to failed_records.

use crate::schema::Mapping;
use serde_json::Value;

/// Checks a normalised record (values in mapping order); returns the first problem, naming the field.
pub fn validate_record(
    values: &[Value],
    mapping: &Mapping,
    key_fields: &[String],
) -> Result<(), String> {
    for key in key_fields {
        let present = mapping
            .fields
            .iter()
            .position(|f| &f.source == key)
            .and_then(|i| values.get(i))
            .is_some_and(|v| !v.is_null());
        if !present {
            return Err(format!("business key field \"{key}\" is missing or null"));
        }
    }
    for (field, value) in mapping.fields.iter().zip(values) {
        if value.is_null() && mapping.rules.get(&field.source).is_some_and(|r| r.required) {
            return Err(format!(
                "required field \"{}\" is missing or empty",
                field.source
            ));
        }
        if !may_hold_unstorable(value) {
            continue;
        }
        if holds(value, '\0') {
            return Err(format!(
                "field \"{}\" contains a NUL character (U+0000), which the target cannot store",
                field.source
            ));
        }
        if holds(value, crate::source::LONE_SURROGATE) {
            return Err(format!(
                "field \"{}\" holds a lone UTF-16 surrogate escape (such as \\ud800), which is not a character: the \
                 source sent invalid Unicode; fix the record at the source",
                field.source
            ));
        }
    }
    Ok(())
}

/// Whether a value may hold NUL or the lone-surrogate mark: one pass over its bytes for the NUL byte and the first
/// byte of U+FDD0's UTF-8 form, so that the usual value is read once rather than once per character looked for.
fn may_hold_unstorable(value: &Value) -> bool {
    const MARK_LEAD: u8 = 0xEF;
    let suspicious = |text: &str| memchr::memchr2(0, MARK_LEAD, text.as_bytes()).is_some();
    match value {
        Value::String(s) => suspicious(s),
        Value::Array(items) => items.iter().any(may_hold_unstorable),
        Value::Object(map) => map
            .iter()
            .any(|(k, v)| suspicious(k) || may_hold_unstorable(v)),
        _ => false,
    }
}

fn holds(value: &Value, c: char) -> bool {
    match value {
        Value::String(s) => s.contains(c),
        Value::Array(items) => items.iter().any(|v| holds(v, c)),
        Value::Object(map) => map.iter().any(|(k, v)| k.contains(c) || holds(v, c)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn mapping() -> Mapping {
        Mapping::infer(&[json!({"id": 1, "note": "x"})])
    }

    #[test]
    fn missing_key_is_reported() {
        let err =
            validate_record(&[Value::Null, json!("x")], &mapping(), &["id".into()]).unwrap_err();
        assert!(err.contains("\"id\""));
    }

    #[test]
    fn nul_in_text_is_reported_with_the_field() {
        let err =
            validate_record(&[json!(1), json!("a\0b")], &mapping(), &["id".into()]).unwrap_err();
        assert!(err.contains("\"note\""));
    }

    #[test]
    fn a_good_record_passes() {
        validate_record(&[json!(1), json!("fine\ttext")], &mapping(), &["id".into()]).unwrap();
    }
}
