//! Reads a JSON array of records that all list the same fields, in the same order, straight into rows of values —
//! by hand: the keys are compared as bytes with the fields' names instead of being parsed, and text without
//! escapes is checked and copied whole. It gives exactly the values `serde_json` gives (numbers as written,
//! `arbitrary_precision`), or None for anything it does not read itself: a key written with escapes, a record of
//! another shape, a lone surrogate, any JSON error. Then the caller reads the records with `serde_json` instead,
//! which also says what is wrong. Arrays and objects inside a record are read by `serde_json`.

use serde_json::{Map, Number, Value};

/// The records of `bytes` (a JSON array, whitespace around it allowed) as rows of `fields`, or None.
pub fn scan_rows(bytes: &[u8], fields: &[String]) -> Option<Vec<Vec<Value>>> {
    if !comparable(fields) {
        return None;
    }
    let mut scan = Scan { b: bytes, at: 0 };
    scan.skip_space();
    let rows = scan.rows(fields)?;
    scan.skip_space();
    (scan.at == bytes.len()).then_some(rows)
}

/// A reply that is an object holding the records under `key` (`{"data": [...], "total": 3}`): the object without
/// them (their place left null) and the records as rows of `fields`; or None.
pub fn scan_envelope(
    bytes: &[u8],
    key: &str,
    fields: &[String],
) -> Option<(Value, Vec<Vec<Value>>)> {
    if !comparable(fields) {
        return None;
    }
    let mut scan = Scan { b: bytes, at: 0 };
    scan.skip_space();
    scan.expect(b'{')?;
    let mut envelope = Map::new();
    let mut rows = None;
    loop {
        scan.skip_space();
        scan.expect(b'"')?;
        let name = scan.text()?;
        scan.skip_space();
        scan.expect(b':')?;
        scan.skip_space();
        // What serde_json hands over as a number (see json.rs); refused there, left to it here.
        if name == NUMBER_TOKEN {
            return None;
        }
        let value = match name == key {
            true => {
                rows = Some(scan.rows(fields)?);
                Value::Null
            }
            false => scan.value()?,
        };
        envelope.insert(name, value);
        scan.skip_space();
        match scan.next()? {
            b',' => continue,
            b'}' => break,
            _ => return None,
        }
    }
    scan.skip_space();
    (scan.at == bytes.len()).then_some((Value::Object(envelope), rows?))
}

const NUMBER_TOKEN: &str = "$serde_json::private::Number";

/// Whether the fields' names are written in JSON as their bytes (so that keys can be compared as bytes).
fn comparable(fields: &[String]) -> bool {
    fields
        .iter()
        .all(|f| f.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\'))
}

struct Scan<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Scan<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.at).copied()
    }

    fn next(&mut self) -> Option<u8> {
        let byte = self.peek()?;
        self.at += 1;
        Some(byte)
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.next()? == byte).then_some(())
    }

    /// An array of records: `[record, …]`.
    fn rows(&mut self, fields: &[String]) -> Option<Vec<Vec<Value>>> {
        self.expect(b'[')?;
        let mut rows = Vec::new();
        self.skip_space();
        if self.peek() == Some(b']') {
            self.at += 1;
            return Some(rows);
        }
        loop {
            rows.push(self.record(fields)?);
            self.skip_space();
            match self.next()? {
                b',' => self.skip_space(),
                b']' => return Some(rows),
                _ => return None,
            }
        }
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.at += 1;
        }
    }

    /// One record: `{"field0": value, "field1": value, …}` with exactly `fields`, in order.
    fn record(&mut self, fields: &[String]) -> Option<Vec<Value>> {
        self.expect(b'{')?;
        let mut row = Vec::with_capacity(fields.len());
        for (i, field) in fields.iter().enumerate() {
            self.skip_space();
            if i > 0 {
                self.expect(b',')?;
                self.skip_space();
            }
            self.expect(b'"')?;
            let name = field.as_bytes();
            if self.b.get(self.at..self.at + name.len())? != name {
                return None;
            }
            self.at += name.len();
            self.expect(b'"')?;
            self.skip_space();
            self.expect(b':')?;
            self.skip_space();
            row.push(self.value()?);
        }
        self.skip_space();
        self.expect(b'}')?;
        Some(row)
    }

    fn value(&mut self) -> Option<Value> {
        match self.peek()? {
            b'"' => {
                self.at += 1;
                self.text().map(Value::String)
            }
            b'-' | b'0'..=b'9' => self.number(),
            b't' => self.word(b"true", Value::Bool(true)),
            b'f' => self.word(b"false", Value::Bool(false)),
            b'n' => self.word(b"null", Value::Null),
            b'[' | b'{' => self.nested(),
            _ => None,
        }
    }

    fn word(&mut self, word: &[u8], value: Value) -> Option<Value> {
        (self.b.get(self.at..self.at + word.len())? == word).then(|| {
            self.at += word.len();
            value
        })
    }

    /// A number as written (`-? (0 | [1-9][0-9]*) (. [0-9]+)?`), kept as its text. One with an exponent is left to
    /// `serde_json`, which spells exponents its own way (`1E5` becomes `1e+5`).
    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        let digits = |scan: &mut Scan| {
            let from = scan.at;
            while matches!(scan.peek(), Some(b'0'..=b'9')) {
                scan.at += 1;
            }
            scan.at - from
        };
        if self.peek() == Some(b'-') {
            self.at += 1;
        }
        match self.peek()? {
            b'0' => self.at += 1,
            b'1'..=b'9' => {
                digits(self);
            }
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.at += 1;
            if digits(self) == 0 {
                return None;
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            return None;
        }
        let text = std::str::from_utf8(&self.b[start..self.at]).ok()?;
        Some(Value::Number(Number::from_string_unchecked(
            text.to_owned(),
        )))
    }

    /// A string's text after its opening quote, up to and past its closing one.
    fn text(&mut self) -> Option<String> {
        let start = self.at;
        let end = start
            + self.b[start..]
                .iter()
                .position(|&b| b == b'"' || b == b'\\' || b < 0x20)?;
        if self.b[end] == b'"' {
            self.at = end + 1;
            return std::str::from_utf8(&self.b[start..end])
                .ok()
                .map(str::to_owned);
        }
        let mut out = Vec::with_capacity(end - start + 16);
        out.extend_from_slice(&self.b[start..end]);
        self.at = end;
        loop {
            match self.next()? {
                b'"' => break,
                b'\\' => self.escape(&mut out)?,
                b if b < 0x20 => return None,
                b => out.push(b),
            }
        }
        String::from_utf8(out).ok()
    }

    /// An escape after its backslash, written out as UTF-8. A lone surrogate is refused (as `serde_json` does).
    fn escape(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let byte = match self.next()? {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0c,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xD800..=0xDBFF => {
                        self.expect(b'\\')?;
                        self.expect(b'u')?;
                        let low = self.hex4()?;
                        if !(0xDC00..=0xDFFF).contains(&low) {
                            return None;
                        }
                        0x10000 + ((u32::from(unit) - 0xD800) << 10) + (u32::from(low) - 0xDC00)
                    }
                    0xDC00..=0xDFFF => return None,
                    unit => u32::from(unit),
                };
                let c = char::from_u32(code)?;
                out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
                return Some(());
            }
            _ => return None,
        };
        out.push(byte);
        Some(())
    }

    fn hex4(&mut self) -> Option<u16> {
        let digits = self.b.get(self.at..self.at + 4)?;
        self.at += 4;
        digits.iter().try_fold(0u16, |n, &d| {
            let v = (d as char).to_digit(16)?;
            Some(n * 16 + v as u16)
        })
    }

    /// An array or object, read by `serde_json` (what records hold there varies too much to pay for by hand).
    fn nested(&mut self) -> Option<Value> {
        let mut stream =
            serde_json::Deserializer::from_slice(&self.b[self.at..]).into_iter::<Value>();
        let value = stream.next()?.ok()?;
        self.at += stream.byte_offset();
        Some(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|n| n.to_string()).collect()
    }

    /// What `serde_json` makes of the same array, as rows.
    fn by_serde(text: &str, fields: &[String]) -> Vec<Vec<Value>> {
        let records: Vec<serde_json::Map<String, Value>> = serde_json::from_str(text).unwrap();
        records
            .into_iter()
            .map(|r| fields.iter().map(|f| r[f].clone()).collect())
            .collect()
    }

    #[test]
    fn reads_what_serde_json_reads() {
        let fields = names(&["id", "s", "n", "b", "z", "nested"]);
        let text = r#" [
            {"id": 1, "s": "plain", "n": 12.50, "b": true, "z": null, "nested": {"k": [1, "x", null]}},
            {"id":-0,"s":"caf\u00e9 \"q\" \\ \/ \b\f\n\r\t \ud83d\ude00 é 😀","n":0.000,"b":false,"z":"","nested":[1e400]} ,
            { "id" : 123456789012345678901234567890 , "s" : "\u0000x" , "n" : -1.5 , "b" : null , "z" : 0 , "nested" : {"e": -1.5E-7} }
        ] "#;
        let rows = scan_rows(text.as_bytes(), &fields).unwrap();
        let expected = by_serde(text, &fields);
        assert_eq!(rows, expected);
        for (a, b) in rows.iter().zip(&expected) {
            assert_eq!(
                Value::from(a.clone()).to_string(),
                Value::from(b.clone()).to_string()
            );
        }
        assert_eq!(scan_rows(b"[]", &fields), Some(Vec::new()));
        assert_eq!(scan_rows(b" [ ] ", &fields), Some(Vec::new()));
    }

    #[test]
    fn finds_the_records_in_an_object_as_serde_json_does() {
        let fields = names(&["a"]);
        let text = r#" {"total": 2, "next": "x\"y", "meta": {"k": [1, {"d": null}]}, "data": [{"a": 1}, {"a": "b"}], "f": -1.5, "t": true} "#;
        let (envelope, rows) = scan_envelope(text.as_bytes(), "data", &fields).unwrap();
        let mut whole: Value = serde_json::from_str(text).unwrap();
        let records = whole["data"].take();
        assert_eq!(envelope, whole);
        assert_eq!(envelope.to_string(), whole.to_string());
        assert_eq!(rows, by_serde(&records.to_string(), &fields));
        for text in [
            r#"{"total": 2}"#,
            r#"{"data": null}"#,
            r#"{"data": {"a": 1}}"#,
            r#"{"data": [{"a": 1}], "data": 7}"#,
            r#"{"data": [{"a": 1}],}"#,
            r#"{"data": [{"a": 1}]"#,
            r#"{"data": [{"a": 1}]} []"#,
            r#"{"n": 1e5, "data": [{"a": 1}]}"#,
            r#"{"$serde_json::private::Number": "1", "data": [{"a": 1}]}"#,
            r#"[{"a": 1}]"#,
        ] {
            assert_eq!(
                scan_envelope(text.as_bytes(), "data", &fields),
                None,
                "read: {text}"
            );
        }
    }

    #[test]
    fn leaves_to_serde_json_what_it_does_not_read_itself() {
        let fields = names(&["a", "b"]);
        for text in [
            r#"[{"a": 1, "b": 2}, {"a": 1, "b": 2, "c": 3}]"#,
            r#"[{"a": 1}]"#,
            r#"[{"b": 2, "a": 1}]"#,
            r#"[{"a": 1, "a": 2}]"#,
            r#"[{"\u0061": 1, "b": 2}]"#,
            r#"[{"ab": 1, "b": 2}]"#,
            r#"[{"a": 1, "b": 2},]"#,
            r#"[{"a": 1, "b": 2}"#,
            r#"[{"a": 1, "b": 2}] x"#,
            r#"[{"a": 01, "b": 2}]"#,
            r#"[{"a": 1., "b": 2}]"#,
            r#"[{"a": .5, "b": 2}]"#,
            r#"[{"a": 1e, "b": 2}]"#,
            r#"[{"a": 1e5, "b": 2}]"#,
            r#"[{"a": 1.5E-7, "b": 2}]"#,
            r#"[{"a": +1, "b": 2}]"#,
            r#"[{"a": tru, "b": 2}]"#,
            r#"[{"a": "\ud800", "b": 2}]"#,
            r#"[{"a": "\udc00", "b": 2}]"#,
            r#"[{"a": "\ud800\u0041", "b": 2}]"#,
            r#"[{"a": "\x", "b": 2}]"#,
            r#"[{"a": "\u12", "b": 2}]"#,
            "[{\"a\": \"tab\there\", \"b\": 2}]",
            r#"[{"a": [1,], "b": 2}]"#,
            r#"[{"a": 1, "b": 2} {"a": 1, "b": 2}]"#,
            r#"[7]"#,
            r#"{"a": 1, "b": 2}"#,
            "",
        ] {
            assert_eq!(scan_rows(text.as_bytes(), &fields), None, "read: {text}");
        }
        let bad_utf8 = b"[{\"a\": \"\xff\", \"b\": 2}]";
        assert_eq!(scan_rows(bad_utf8, &fields), None);
        assert_eq!(scan_rows(br#"[{"a\"": 1}]"#, &names(&["a\""])), None);
    }

    /// Text with what JSON escapes: quotes, backslashes, control characters, and characters past the BMP.
    fn some_text(seed: &mut u64, len: usize) -> String {
        const PIECES: [&str; 12] = [
            "a", "Z", " ", "\"", "\\", "/", "\n", "\u{1}", "é", "€", "😀", "\u{7f}",
        ];
        (0..len)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                PIECES[(*seed % PIECES.len() as u64) as usize]
            })
            .collect()
    }

    /// `text` as JSON with every character past ASCII escaped as `\uXXXX` (as Python's json.dumps writes it).
    fn ascii_only(json: &str) -> String {
        let mut out = String::new();
        for c in json.chars() {
            if c.is_ascii() {
                out.push(c);
            } else {
                for unit in c.encode_utf16(&mut [0; 2]) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
        out
    }

    #[test]
    fn reads_generated_records_as_serde_json_does() {
        let fields = names(&["id", "text", "price", "flag"]);
        let mut seed = 0x9E37_79B9_7F4A_7C15u64;
        for round in 0..200 {
            let records: Vec<Value> = (0..20)
                .map(|i| {
                    serde_json::json!({
                        "id": round * 100 + i,
                        "text": some_text(&mut seed, (i % 7) as usize * 3),
                        "price": serde_json::from_str::<Value>(&format!("-{i}.{round:03}")).unwrap(),
                        "flag": if i % 3 == 0 { Value::Null } else { Value::Bool(i % 2 == 0) },
                    })
                })
                .collect();
            let plain = serde_json::to_string(&records).unwrap();
            for text in [
                plain.clone(),
                ascii_only(&plain),
                serde_json::to_string_pretty(&records).unwrap(),
            ] {
                let rows = scan_rows(text.as_bytes(), &fields).expect("read by hand");
                assert_eq!(rows, by_serde(&text, &fields), "{text}");
            }
        }
    }
}
