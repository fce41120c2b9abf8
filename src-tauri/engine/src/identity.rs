//! IDENTITY: BK_HASH and DATA_HASH over a documented canonical form (docs/identity.md).
//!
//! Canonical form: a JSON object whose keys are the source field names sorted by their UTF-8 bytes, values the
//! normalised values (objects inside sorted the same way), no whitespace. Scalars outside JSON-typed fields are
//! written as the JSON string of their spelling (`12.50` → `"12.50"`, `true` → `"true"`), and null fields are left
//! out — null and absent land alike in the target — so that neither a column widened from number to text nor a
//! field that first appears in a later page changes the hashes of records it does not touch.
//! BK_HASH = xxh3-128 of the canonical form of the business-key fields, 32 lowercase hex digits.
//! DATA_HASH = BLAKE3 of the canonical form of every mapped field, 64 lowercase hex digits.

use crate::schema::{ColumnType, Mapping};
use serde_json::Value;

/// BK_HASH and DATA_HASH of a normalised record (values in mapping order).
pub fn record_hashes(
    mapping: &Mapping,
    values: &[Value],
    key_fields: &[String],
) -> (String, String) {
    RecordHasher::new(mapping, key_fields).hashes(values)
}

/// Writes the canonical forms of one mapping's records and hashes them: the fields' canonical order and their
/// escaped names are worked out once, and the buffers are reused from record to record.
pub struct RecordHasher {
    order: Vec<CanonicalField>,
    data: Vec<u8>,
    key: Vec<u8>,
}

struct CanonicalField {
    /// Where the field's value is in a record's values.
    index: usize,
    /// `"name":`
    name: Vec<u8>,
    in_key: bool,
    ty: ColumnType,
}

impl RecordHasher {
    pub fn new(mapping: &Mapping, key_fields: &[String]) -> RecordHasher {
        let mut order: Vec<CanonicalField> = mapping
            .fields
            .iter()
            .enumerate()
            .map(|(index, f)| {
                let mut name = Value::String(f.source.clone()).to_string().into_bytes();
                name.push(b':');
                CanonicalField {
                    index,
                    name,
                    in_key: key_fields.contains(&f.source),
                    ty: f.ty,
                }
            })
            .collect();
        order.sort_by(|a, b| {
            let name = |f: &CanonicalField| mapping.fields[f.index].source.as_bytes();
            name(a).cmp(name(b))
        });
        RecordHasher {
            order,
            data: Vec::with_capacity(512),
            key: Vec::with_capacity(64),
        }
    }

    /// BK_HASH and DATA_HASH of a normalised record (values in mapping order).
    pub fn hashes(&mut self, values: &[Value]) -> (String, String) {
        self.data.clear();
        self.key.clear();
        self.data.push(b'{');
        self.key.push(b'{');
        for field in &self.order {
            let value = match values.get(field.index) {
                None | Some(Value::Null) => continue,
                Some(v) => v,
            };
            let start = self.data.len();
            if start > 1 {
                self.data.push(b',');
            }
            self.data.extend_from_slice(&field.name);
            write_field_value(value, field.ty, &mut self.data);
            if field.in_key {
                if self.key.len() > 1 {
                    self.key.push(b',');
                }
                let written = if start > 1 { start + 1 } else { start };
                self.key.extend_from_slice(&self.data[written..]);
            }
        }
        self.data.push(b'}');
        self.key.push(b'}');
        (
            encode_hex(&xxhash_rust::xxh3::xxh3_128(&self.key).to_be_bytes()),
            encode_hex(blake3::hash(&self.data).as_bytes()),
        )
    }
}

/// A field's value in the canonical form (see the module's documentation).
fn write_field_value(value: &Value, ty: ColumnType, out: &mut Vec<u8>) {
    let written = match value {
        Value::String(text) => write_json_string(text, out),
        Value::Number(n) if ty != ColumnType::Json => {
            out.push(b'"');
            let written = serde_json::to_writer(&mut *out, n);
            out.push(b'"');
            written
        }
        Value::Bool(b) if ty != ColumnType::Json => {
            out.extend_from_slice(if *b { b"\"true\"" } else { b"\"false\"" });
            Ok(())
        }
        nested => {
            let mut text = String::new();
            write_canonical_value(nested, &mut text);
            out.extend_from_slice(text.as_bytes());
            Ok(())
        }
    };
    // Writing JSON into memory cannot fail.
    debug_assert!(written.is_ok());
}

/// `text` as a JSON string, exactly as `serde_json` writes it. Most text needs no escape: that is checked a chunk
/// at a time (a check the compiler vectorises) and the text copied whole, instead of escaping it byte by byte.
fn write_json_string(text: &str, out: &mut Vec<u8>) -> Result<(), serde_json::Error> {
    if !needs_escape(text.as_bytes()) {
        out.reserve(text.len() + 2);
        out.push(b'"');
        out.extend_from_slice(text.as_bytes());
        out.push(b'"');
        return Ok(());
    }
    serde_json::to_writer(&mut *out, text)
}

/// Whether `bytes` hold a byte JSON strings escape: a control character, `"` or `\`.
fn needs_escape(bytes: &[u8]) -> bool {
    bytes.chunks(32).any(|chunk| {
        chunk.iter().fold(false, |seen, &b| {
            seen | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    })
}

#[cfg(test)]
fn canonical_field_value(value: &Value, ty: ColumnType) -> std::borrow::Cow<'_, Value> {
    use std::borrow::Cow;
    match (value, ty) {
        (Value::Number(_) | Value::Bool(_), t) if t != ColumnType::Json => {
            Cow::Owned(Value::String(value.to_string()))
        }
        _ => Cow::Borrowed(value),
    }
}

/// Writes the canonical JSON of `(name, value)` pairs.
pub fn canonical<'a>(fields: impl IntoIterator<Item = (&'a str, &'a Value)>) -> String {
    let mut pairs: Vec<(&str, &Value)> = fields.into_iter().collect();
    pairs.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
    let mut out = String::from("{");
    for (i, (name, value)) in pairs.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&Value::String(name.to_owned()).to_string());
        out.push(':');
        write_canonical_value(value, &mut out);
    }
    out.push('}');
    out
}

fn write_canonical_value(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => out.push_str(&canonical(map.iter().map(|(k, v)| (k.as_str(), v)))),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical_value(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// Each byte's value as a hex digit, or 0xFF: hashes are decoded for every row a page writes, where a match per
/// digit cost more than the rest of the row's encoding.
const HEX_DIGITS: [u8; 256] = {
    let mut table = [0xFFu8; 256];
    let mut i = 0;
    while i < 10 {
        table[b'0' as usize + i] = i as u8;
        i += 1;
    }
    let mut i = 0;
    while i < 6 {
        table[b'a' as usize + i] = 10 + i as u8;
        table[b'A' as usize + i] = 10 + i as u8;
        i += 1;
    }
    table
};

/// `bytes` as lowercase hex, the form hashes travel in (the same digits as `{:032x}` of a big-endian u128).
pub fn encode_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Written into place rather than pushed (two hashes per record: the pushes' capacity checks showed).
    let mut text = vec![0u8; bytes.len() * 2];
    for (pair, byte) in text.chunks_exact_mut(2).zip(bytes) {
        pair[0] = DIGITS[usize::from(byte >> 4)];
        pair[1] = DIGITS[usize::from(byte & 0x0F)];
    }
    // Hex digits are ASCII: this never falls back.
    String::from_utf8(text).unwrap_or_default()
}

/// Decodes `hex` (exactly two digits per byte of `into`) into `into`; false when it is not that.
pub fn decode_hex(hex: &str, into: &mut [u8]) -> bool {
    if hex.len() != into.len() * 2 {
        return false;
    }
    let mut bad = 0u8;
    for (byte, pair) in into.iter_mut().zip(hex.as_bytes().chunks_exact(2)) {
        let (high, low) = (HEX_DIGITS[pair[0] as usize], HEX_DIGITS[pair[1] as usize]);
        bad |= high | low;
        *byte = high << 4 | (low & 0x0F);
    }
    bad & 0xF0 == 0
}

pub fn key_hash(canonical_key: &str) -> String {
    encode_hex(&xxhash_rust::xxh3::xxh3_128(canonical_key.as_bytes()).to_be_bytes())
}

pub fn data_hash(canonical_record: &str) -> String {
    blake3::hash(canonical_record.as_bytes())
        .to_hex()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The canonical form as first written (one value at a time through serde_json's `Value`): the reference the
    /// reusable writer must match byte for byte, since stored hashes must not change.
    fn reference_hashes(
        mapping: &Mapping,
        values: &[Value],
        key_fields: &[String],
    ) -> (String, String) {
        let fields: Vec<(&str, std::borrow::Cow<'_, Value>)> = mapping
            .fields
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.is_null())
            .map(|(f, v)| (f.source.as_str(), canonical_field_value(v, f.ty)))
            .collect();
        let key = canonical(
            fields
                .iter()
                .filter(|(n, _)| key_fields.iter().any(|k| k == n))
                .map(|(n, v)| (*n, v.as_ref())),
        );
        let data = canonical(fields.iter().map(|(n, v)| (*n, v.as_ref())));
        (key_hash(&key), data_hash(&data))
    }

    #[test]
    fn strings_are_written_as_serde_json_writes_them() {
        let long_plain =
            "a plain value long enough to span more than one chunk of the check ".repeat(3);
        let mut samples = vec![
            String::new(),
            "plain".to_owned(),
            long_plain.clone(),
            format!("{long_plain}\"quoted\""),
            format!("{long_plain}\\"),
            "Ünïcode ✓ \u{7f} \u{2028}".to_owned(),
        ];
        samples.extend((0u8..0x20).map(|c| format!("{long_plain}{}", char::from(c))));
        for text in samples {
            let mut ours = Vec::new();
            write_json_string(&text, &mut ours).unwrap();
            assert_eq!(ours, serde_json::to_vec(&text).unwrap(), "{text:?}");
        }
    }

    #[test]
    fn hex_is_lowercase_and_round_trips() {
        let bytes: Vec<u8> = (0..=255).collect();
        let hex = encode_hex(&bytes);
        assert_eq!(&hex[..8], "00010203");
        assert_eq!(&hex[hex.len() - 4..], "feff");
        let mut back = vec![0u8; bytes.len()];
        assert!(decode_hex(&hex, &mut back));
        assert_eq!(back, bytes);
    }

    #[test]
    fn the_reusable_writer_hashes_exactly_as_the_reference() {
        let records = vec![
            json!({"id": 1, "name": "Ünïcode \"quoted\" \\ back\nslash \u{1} ctl", "price": 12.5, "ok": true,
                   "meta": {"b": [1, {"z": null, "a": "x"}], "a": false}, "none": null, "zeta": "z", "Alpha": "A", "flag": true}),
            json!({"id": "0042", "name": "", "price": "1,000.50", "ok": false, "meta": [3, 2, 1], "zeta": 7, "flag": false}),
            json!({"id": 3, "price": 1e21, "ok": "yes", "meta": "text in json", "日本": "語", "": "empty name"}),
            json!({"id": -7, "name": null, "price": 0.1, "meta": null}),
        ];
        let mapping = Mapping::infer(&records);
        for keys in [
            vec!["id".to_owned()],
            vec!["zeta".to_owned(), "id".to_owned()],
            vec![],
        ] {
            let mut hasher = RecordHasher::new(&mapping, &keys);
            for record in &records {
                let values =
                    crate::normalize::normalize_record(record.as_object().unwrap(), &mapping)
                        .unwrap();
                assert_eq!(
                    hasher.hashes(&values),
                    reference_hashes(&mapping, &values, &keys),
                    "{record} keyed by {keys:?}"
                );
            }
        }
    }

    fn hashes_of(records: &[Value], key: &str) -> Vec<(String, String)> {
        let mapping = Mapping::infer(records);
        records
            .iter()
            .map(|r| {
                let values =
                    crate::normalize::normalize_record(r.as_object().unwrap(), &mapping).unwrap();
                record_hashes(&mapping, &values, &[key.to_owned()])
            })
            .collect()
    }

    #[test]
    fn a_new_field_elsewhere_or_a_widened_column_keeps_hashes() {
        let before = hashes_of(&[json!({"id": 1, "qty": 5, "note": null})], "id");
        let after = hashes_of(
            &[
                json!({"id": 1, "qty": 5}),
                json!({"id": 2, "qty": "N/A", "late": "x"}),
            ],
            "id",
        );
        assert_eq!(before[0], after[0]);
    }

    #[test]
    fn a_changed_value_changes_only_the_data_hash() {
        let a = hashes_of(&[json!({"id": 1, "qty": 5})], "id");
        let b = hashes_of(&[json!({"id": 1, "qty": 6})], "id");
        assert_eq!(a[0].0, b[0].0);
        assert_ne!(a[0].1, b[0].1);
    }

    #[test]
    fn canonical_form_ignores_field_order() {
        let (a, b) = (
            json!({"x": 1, "y": {"b": 2, "a": null}}),
            json!({"y": {"a": null, "b": 2}, "x": 1}),
        );
        let ca = canonical(a.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v)));
        let cb = canonical(b.as_object().unwrap().iter().map(|(k, v)| (k.as_str(), v)));
        assert_eq!(ca, cb);
        assert_eq!(ca, r#"{"x":1,"y":{"a":null,"b":2}}"#);
    }

    #[test]
    fn hex_goes_both_ways_as_format_writes_it() {
        let n: u128 = 0x0123_4567_89ab_cdef_fedc_ba98_7654_3210;
        let text = encode_hex(&n.to_be_bytes());
        assert_eq!(text, format!("{n:032x}"));
        let mut back = [0u8; 16];
        assert!(decode_hex(&text, &mut back));
        assert_eq!(u128::from_be_bytes(back), n);
        assert!(decode_hex(&text.to_uppercase(), &mut back));
        assert!(!decode_hex("0g", &mut [0u8; 1]));
        assert!(!decode_hex("abc", &mut [0u8; 1]));
        assert_eq!(
            encode_hex(blake3::hash(b"").as_bytes()),
            blake3::hash(b"").to_hex().as_str()
        );
    }

    #[test]
    fn hashes_have_the_documented_shape_and_are_stable() {
        let k = key_hash(r#"{"part_no":"PART-12345"}"#);
        assert_eq!(k.len(), 32);
        assert_eq!(k, key_hash(r#"{"part_no":"PART-12345"}"#));
        assert_ne!(k, key_hash(r#"{"part_no":"PART-12346"}"#));
        let d = data_hash(r#"{"a":1}"#);
        assert_eq!(d.len(), 64);
        // BLAKE3 of a fixed input is fixed across machines: pin it so a change of canonical form is noticed.
        assert_eq!(
            data_hash(""),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
