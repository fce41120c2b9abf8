//! Parses a page's JSON into `serde_json::Value`s, sizing each object and array from the last one seen at its depth.
//!
//! A page holds thousands of records with the same fields: `serde_json`'s own parser starts every object empty and
//! grows it (and rehashes its index) as the fields come, which was a tenth of a sync's CPU. The result is the same
//! `Value`, field order and duplicate keys included (the last one wins, as in `serde_json`).

use serde::de::{DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::fmt;

/// The key under which `serde_json` (with `arbitrary_precision`) hands a number to a visitor, as a one-entry map.
const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Deepest level whose sizes are remembered; deeper values are parsed with no size hint.
const DEPTHS: usize = 8;

/// Parses one JSON document (the whole reply) into a `Value`.
pub fn parse(bytes: &[u8]) -> Result<Value, serde_json::Error> {
    Parser::default().parse(bytes)
}

/// Parses documents of one kind one after another (a table's rows as JSON), each sized from those before it.
#[derive(Default)]
pub struct Parser {
    sizes: Sizes,
}

impl Parser {
    /// A parser that sizes as one that has parsed documents of `sizes`' kind before.
    fn with_sizes(sizes: Sizes) -> Parser {
        Parser { sizes }
    }

    /// What the documents parsed so far looked like (for [`Parser::with_sizes`]).
    fn sizes(&self) -> Sizes {
        self.sizes
    }

    pub fn parse(&mut self, bytes: &[u8]) -> Result<Value, serde_json::Error> {
        let mut deserializer = serde_json::Deserializer::from_slice(bytes);
        let value = Sized {
            sizes: &mut self.sizes,
            depth: 0,
        }
        .deserialize(&mut deserializer)?;
        deserializer.end()?;
        Ok(value)
    }
}

/// The shape of a source's last page, shared by its requests (which run on blocking threads): each page is parsed
/// into containers of the sizes the last one had, instead of growing them.
#[derive(Debug, Default, Clone)]
pub struct LastShape(std::sync::Arc<std::sync::Mutex<Sizes>>);

impl LastShape {
    /// A parser sized like the last page.
    pub fn parser(&self) -> Parser {
        Parser::with_sizes(self.0.lock().map(|s| *s).unwrap_or_default())
    }

    /// Keeps what `parser` saw for the next page.
    pub fn keep(&self, parser: &Parser) {
        if let Ok(mut sizes) = self.0.lock() {
            *sizes = parser.sizes();
        }
    }
}

/// The length of the last object and array seen at each depth.
#[derive(Debug, Default, Clone, Copy)]
struct Sizes {
    objects: [usize; DEPTHS],
    arrays: [usize; DEPTHS],
}

struct Sized<'a> {
    sizes: &'a mut Sizes,
    depth: usize,
}

impl Sized<'_> {
    fn deeper(&mut self) -> Sized<'_> {
        Sized {
            sizes: self.sizes,
            depth: self.depth + 1,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Sized<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Sized<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_any(self)
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let hint = self.sizes.arrays.get(self.depth).copied().unwrap_or(0);
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(hint));
        while let Some(item) = seq.next_element_seed(self.deeper())? {
            items.push(item);
        }
        if let Some(size) = self.sizes.arrays.get_mut(self.depth) {
            *size = items.len();
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut access: A) -> Result<Value, A::Error> {
        // The first key is read borrowed: every number comes as a map whose key is the token, and allocating
        // the token for each was a tenth of the parse.
        let Some(first) = access.next_key_seed(FirstKey)? else {
            return Ok(Value::Object(Map::new()));
        };
        if first == NUMBER_TOKEN {
            let digits: String = access.next_value()?;
            return number(digits).map_err(A::Error::custom);
        }
        let hint = self.sizes.objects.get(self.depth).copied().unwrap_or(0);
        let mut object = Map::with_capacity(hint.max(1));
        object.insert(first.into_owned(), access.next_value_seed(self.deeper())?);
        while let Some(key) = access.next_key::<String>()? {
            let value = access.next_value_seed(self.deeper())?;
            object.insert(key, value);
        }
        if let Some(size) = self.sizes.objects.get_mut(self.depth) {
            *size = object.len();
        }
        Ok(Value::Object(object))
    }
}

/// A reply whose records all list `fields`, in that order, read positionally: each record parsed into its values
/// alone (no map, no key kept). `at` names the object keys leading to the records array (empty: the reply is the
/// array); the rest of the reply is parsed as usual, the records' place in it left null. Any record of another
/// shape (another field, one missing or out of order, not an object), records not found at `at`, or any JSON error
/// give None: the caller parses the reply as objects instead (which also says what is wrong with bad JSON).
pub fn parse_rows_at(
    bytes: &[u8],
    at: &[String],
    fields: &[String],
) -> Option<(Value, Vec<Vec<Value>>)> {
    let mut sizes = Sizes::default();
    let mut rows = None;
    match at {
        [] => return Some((Value::Null, read_rows(bytes, fields, &mut sizes)?)),
        [key] => {
            if let Some(read) = super::scan::scan_envelope(bytes, key, fields) {
                return Some(read);
            }
        }
        _ => {}
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let envelope = deserializer
        .deserialize_map(Envelope {
            at,
            fields,
            sizes: &mut sizes,
            rows: &mut rows,
            depth: 0,
        })
        .ok()?;
    deserializer.end().ok()?;
    Some((envelope, rows?))
}

/// A JSON array of records as rows of `fields`: read by hand where it can be ([`super::scan`]), else by
/// `serde_json`; None when a record is of another shape or the JSON is bad.
fn read_rows(bytes: &[u8], fields: &[String], sizes: &mut Sizes) -> Option<Vec<Vec<Value>>> {
    if let Some(rows) = super::scan::scan_rows(bytes, fields) {
        return Some(rows);
    }
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let rows = Rows { fields, sizes }.deserialize(&mut deserializer).ok()?;
    deserializer.end().ok()?;
    Some(rows)
}

/// The objects around a page's records, down to them.
struct Envelope<'a> {
    at: &'a [String],
    fields: &'a [String],
    sizes: &'a mut Sizes,
    rows: &'a mut Option<Vec<Vec<Value>>>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for Envelope<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Envelope<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object holding the records")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let Some((step, rest)) = self.at.split_first() else {
            return Err(A::Error::custom("no step left"));
        };
        let mut object = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if key == NUMBER_TOKEN {
                return Err(A::Error::custom("a number, not an object"));
            }
            let value = match (key == *step, rest.is_empty()) {
                (true, true) => {
                    let records: &'de serde_json::value::RawValue = access.next_value()?;
                    let read = read_rows(records.get().as_bytes(), self.fields, self.sizes);
                    *self.rows = Some(read.ok_or_else(|| A::Error::custom(NOT_OF_SHAPE))?);
                    Value::Null
                }
                (true, false) => access.next_value_seed(Envelope {
                    at: rest,
                    fields: self.fields,
                    sizes: self.sizes,
                    rows: self.rows,
                    depth: self.depth + 1,
                })?,
                (false, _) => access.next_value_seed(Sized {
                    sizes: self.sizes,
                    depth: self.depth + 1,
                })?,
            };
            object.insert(key, value);
        }
        Ok(Value::Object(object))
    }
}

struct Rows<'a> {
    fields: &'a [String],
    sizes: &'a mut Sizes,
}

impl<'de> DeserializeSeed<'de> for Rows<'_> {
    type Value = Vec<Vec<Value>>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_seq(self)
    }
}

/// What [`Row`] expects (and says when refusing a record of another shape).
const NOT_OF_SHAPE: &str = "a record of the page's shape";

impl<'de> Visitor<'de> for Rows<'_> {
    type Value = Vec<Vec<Value>>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of records")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(row) = seq.next_element_seed(Row {
            fields: self.fields,
            sizes: self.sizes,
        })? {
            rows.push(row);
        }
        Ok(rows)
    }
}

struct Row<'a> {
    fields: &'a [String],
    sizes: &'a mut Sizes,
}

impl<'de> DeserializeSeed<'de> for Row<'_> {
    type Value = Vec<Value>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for Row<'_> {
    type Value = Vec<Value>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(NOT_OF_SHAPE)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Self::Value, A::Error> {
        let mut values = Vec::with_capacity(self.fields.len());
        for field in self.fields {
            match access.next_key_seed(FirstKey)? {
                Some(key) if key == field.as_str() => {}
                _ => return Err(A::Error::custom(NOT_OF_SHAPE)),
            }
            values.push(access.next_value_seed(Sized {
                sizes: self.sizes,
                depth: 1,
            })?);
        }
        match access.next_key_seed(FirstKey)? {
            None => Ok(values),
            Some(_) => Err(A::Error::custom(NOT_OF_SHAPE)),
        }
    }
}

/// An object's first key, borrowed from the input when it has no escapes.
struct FirstKey;

impl<'de> DeserializeSeed<'de> for FirstKey {
    type Value = std::borrow::Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for FirstKey {
    type Value = std::borrow::Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }

    fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(v))
    }
}

/// A number as written, kept as its digits (arbitrary precision) without reading them again. The digits come from
/// the parser's own scan — unless a document holds an object whose first key is the token itself, so the
/// grammar is checked (that object is refused, as `serde_json` refuses it).
fn number(digits: String) -> Result<Value, serde_json::Error> {
    if !is_json_number(digits.as_bytes()) {
        return Err(serde_json::Error::custom(format!(
            "{digits:?} is not a number"
        )));
    }
    Ok(Value::Number(Number::from_string_unchecked(digits)))
}

/// Whether `text` is a JSON number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn is_json_number(text: &[u8]) -> bool {
    let digits = |at: usize| {
        text[at.min(text.len())..]
            .iter()
            .take_while(|b| b.is_ascii_digit())
            .count()
    };
    let mut at = usize::from(text.first() == Some(&b'-'));
    match text.get(at) {
        Some(b'0') => at += 1,
        Some(b'1'..=b'9') => at += digits(at),
        _ => return false,
    }
    if text.get(at) == Some(&b'.') {
        let n = digits(at + 1);
        if n == 0 {
            return false;
        }
        at += 1 + n;
    }
    if matches!(text.get(at), Some(b'e' | b'E')) {
        at += 1;
        if matches!(text.get(at), Some(b'+' | b'-')) {
            at += 1;
        }
        let n = digits(at);
        if n == 0 {
            return false;
        }
        at += n;
    }
    at == text.len()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn both(text: &str) -> (Value, Value) {
        (
            parse(text.as_bytes()).unwrap(),
            serde_json::from_str(text).unwrap(),
        )
    }

    #[test]
    fn parses_what_serde_json_parses_into_the_same_value() {
        let text = r#"{"data": [{"id": 1, "price": 12.50, "big": 123456789012345678901234567890,
            "neg": -3, "f": 1e3, "name": "Ä \"q\" \u00e9", "tags": ["a", null, true], "nested": {"x": {"y": []}},
            "empty": {}, "late": false}, {"id": 2, "z": 1, "a": 2}, {"id": 3, "id": 4}], "next": null}"#;
        let (ours, theirs) = both(text);
        assert_eq!(ours, theirs);
        assert_eq!(ours.to_string(), theirs.to_string());
        // The number keeps its digits as written (arbitrary precision), as serde_json's own parser does.
        assert_eq!(ours["data"][0]["price"].to_string(), "12.50");
        let keys: Vec<&String> = ours["data"][1].as_object().unwrap().keys().collect();
        assert_eq!(keys, ["id", "z", "a"]);
        assert_eq!(ours["data"][2]["id"], 4);
    }

    #[test]
    fn numbers_keep_their_digits() {
        for text in [
            "0",
            "-0",
            "7",
            "-7",
            "123456789012345678",
            "-123456789012345678",
            "1234567890123456789",
            "99999999999999999999",
            "0.0",
            "1.50",
            "-2.5e-3",
            "1E+2",
            "1e400",
        ] {
            let (ours, theirs) = both(text);
            assert_eq!(ours, theirs, "{text}");
            assert_eq!(ours.to_string(), theirs.to_string(), "{text}");
            if !text.contains(['e', 'E']) {
                assert_eq!(ours.to_string(), text, "{text}");
            }
        }
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        for bad in [
            r#"{"a": 1"#,
            r#"{"a": 1} x"#,
            "[1,]",
            r#"{"a" 1}"#,
            "\"\\ud800\"",
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn an_object_keyed_by_the_number_token_is_not_a_number() {
        for bad in [
            r#"{"$serde_json::private::Number": "abc"}"#,
            r#"{"$serde_json::private::Number": "1 "}"#,
            r#"{"$serde_json::private::Number": "01"}"#,
        ] {
            assert!(parse(bad.as_bytes()).is_err(), "{bad}");
            assert!(serde_json::from_str::<Value>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_number_grammar_is_json_s() {
        for good in [
            "0",
            "-0",
            "7",
            "-7",
            "10",
            "1.5",
            "0.25",
            "1e5",
            "1E+5",
            "-2.5e-3",
            "123456789012345678901",
        ] {
            assert!(is_json_number(good.as_bytes()), "{good}");
        }
        for bad in [
            "", "-", "01", "1.", ".5", "1e", "1e+", "+1", "1.5.5", "0x1", "1 ", "NaN", "--1",
        ] {
            assert!(!is_json_number(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn deep_documents_parse() {
        let deep = format!("{}1{}", "[".repeat(100), "]".repeat(100));
        let (ours, theirs) = both(&deep);
        assert_eq!(ours, theirs);
    }

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| n.to_string()).collect()
    }

    #[test]
    fn rows_hold_what_the_records_parsed_as_objects_hold() {
        let text = r#"{"total": 3, "data": [
            {"id": 1, "name": "caf\u00e9 \"x\"", "price": 12.50, "tags": [1, "x", {"k": null}], "big": 123456789012345678901234567890},
            {"id": 2, "name": "", "price": -0.0, "tags": [], "big": 1e400},
            {"id": 3, "name": "\ud83d\ude00", "price": null, "tags": {"a": [true]}, "big": false}
        ], "next": "abc"}"#;
        let names = fields(&["id", "name", "price", "tags", "big"]);
        let (envelope, rows) = parse_rows_at(text.as_bytes(), &fields(&["data"]), &names).unwrap();
        let whole = parse(text.as_bytes()).unwrap();
        let objects = whole["data"].as_array().unwrap();
        assert_eq!(rows.len(), 3);
        for (row, object) in rows.iter().zip(objects) {
            let made = crate::records::object_of(&names, row.clone());
            assert_eq!(&made, object);
            assert_eq!(
                made.to_string(),
                object.to_string(),
                "numbers keep their digits"
            );
        }
        assert_eq!(envelope["next"], "abc");
        assert_eq!(envelope["total"], 3);
        assert!(envelope["data"].is_null(), "the records are not kept twice");
    }

    #[test]
    fn records_are_found_in_the_reply_itself_and_deeper() {
        let names = fields(&["a"]);
        let (_, rows) = parse_rows_at(br#" [{"a": 1}, {"a": "x"}]"#, &[], &names).unwrap();
        assert_eq!(rows, vec![vec![json!(1)], vec![json!("x")]]);
        let deep = br#"{"x": {"y": 1, "items": [{"a": true}]}, "z": [1]}"#;
        let (envelope, rows) = parse_rows_at(deep, &fields(&["x", "items"]), &names).unwrap();
        assert_eq!(rows, vec![vec![json!(true)]]);
        assert_eq!(envelope, json!({"x": {"y": 1, "items": null}, "z": [1]}));
        let (_, empty) = parse_rows_at(br#"{"data": []}"#, &fields(&["data"]), &names).unwrap();
        assert!(empty.is_empty());
    }

    #[test]
    fn a_page_not_all_of_the_shape_is_left_to_the_objects_parse() {
        let names = fields(&["a", "b"]);
        let data = fields(&["data"]);
        for text in [
            r#"{"data": [{"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}]}"#,
            r#"{"data": [{"a": 1, "b": 2}, {"a": 1}]}"#,
            r#"{"data": [{"b": 2, "a": 1}]}"#,
            r#"{"data": [{"a": 1, "a": 2}]}"#,
            r#"{"data": [{"a": 1, "b": 2}, 7]}"#,
            r#"{"data": [{"a": 1, "b": 2}, "text"]}"#,
            r#"{"data": [{"a": 1, "b": 2}, null]}"#,
            r#"{"data": [[1, 2]]}"#,
            r#"{"data": [{}]}"#,
            r#"{"data": null}"#,
            r#"{"data": {"a": 1, "b": 2}}"#,
            r#"{"items": [{"a": 1, "b": 2}]}"#,
            r#"[{"a": 1, "b": 2}]"#,
            r#"{"data": [{"a": 1, "b": 2},]}"#,
            r#"{"data": [{"a": 1, "b": 2}]"#,
            r#"{"data": [{"a": 1, "b": 2}]} x"#,
            r#"{"data": [{"a": "\ud800", "b": 2}]}"#,
            r#"{"data": [{"a": 1, "b": 2}], "data": 5}"#,
            r#"{"$serde_json::private::Number": "1"}"#,
            r#"7"#,
        ] {
            assert!(
                parse_rows_at(text.as_bytes(), &data, &names).is_none(),
                "read as rows: {text}"
            );
        }
    }
}
