//! What a source needs of the page memo (ADR 0015): the digest of each page's reply as the entity's last complete
//! pass wrote it. A reply with the same digest at the same cursor is not parsed again: its page goes on as
//! unchanged, with the record count and next cursor the memo kept.

use super::PageCursor;
use std::collections::HashMap;

/// One remembered page.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoEntry {
    pub digest: u128,
    pub next: Option<PageCursor>,
    pub records: u64,
    /// The listing check's fingerprint of the page (None: it was empty).
    pub fingerprint: Option<u64>,
}

/// The pages a pass may skip, by cursor (none when every page must be read); a pass given a memo also has each
/// page it reads noted with its reply's digest, to remember it once written.
#[derive(Debug, Default)]
pub struct PageMemo {
    pages: HashMap<String, MemoEntry>,
}

impl PageMemo {
    pub fn new(pages: HashMap<String, MemoEntry>) -> PageMemo {
        PageMemo { pages }
    }

    /// The memo's name for a cursor; None for one an incremental pass uses (such pages are never remembered).
    pub fn cursor_key(cursor: &PageCursor) -> Option<String> {
        if cursor.is_incremental() {
            return None;
        }
        serde_json::to_string(cursor).ok()
    }

    pub fn entry(&self, cursor: &str) -> Option<&MemoEntry> {
        self.pages.get(cursor)
    }

    pub fn len(&self) -> usize {
        self.pages.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }
}

/// How a fetched page stands with the memo.
#[derive(Debug, Clone, PartialEq)]
pub enum MemoNote {
    /// Read and parsed: the digest of its reply, remembered once the page is written.
    Read { cursor: String, digest: u128 },
    /// The reply is the one the last pass wrote: not parsed; the page holds `records` records as it did then.
    Unchanged {
        cursor: String,
        records: u64,
        fingerprint: Option<u64>,
    },
}

/// The parts of a reply that make its page: the records (at a JSON pointer; empty: the reply itself when it is a
/// list, else `/data`) and the next page's token or link when the body carries it. What else a reply says — a
/// total, the time it was made — changes nothing the pass writes, so it is left out of the digest.
#[derive(Debug, Clone, PartialEq)]
pub struct ReplyParts {
    pub records: String,
    pub next: Option<String>,
}

impl ReplyParts {
    /// The digest of a reply: its records, the next-page token or link in its body, and the next-page link of its
    /// headers. A reply whose records cannot be found without parsing it is digested whole.
    pub fn digest(&self, body: &[u8], link: Option<&str>) -> u128 {
        let mut hasher = xxhash_rust::xxh3::Xxh3::new();
        match records_span(body, &self.records) {
            Some(span) => {
                hasher.update(b"records\0");
                hasher.update(&body[span]);
            }
            None => {
                hasher.update(b"body\0");
                hasher.update(body);
            }
        }
        if let Some(pointer) = &self.next {
            match span_at(body, pointer) {
                Some(span) => {
                    hasher.update(b"\0next\0");
                    hasher.update(&body[span]);
                }
                None => hasher.update(b"\0no next\0"),
            }
        }
        if let Some(link) = link {
            hasher.update(b"\0link\0");
            hasher.update(link.as_bytes());
        }
        hasher.digest128()
    }
}

fn records_span(body: &[u8], pointer: &str) -> Option<std::ops::Range<usize>> {
    if pointer.is_empty() {
        let mut scan = Scan { b: body, i: 0 };
        scan.ws();
        if scan.peek()? == b'[' {
            return span_at(body, "");
        }
        return span_at(body, "/data");
    }
    span_at(body, pointer)
}

/// Where the value at a JSON pointer lies in a document, found without parsing it; None when it is not there, or
/// cannot be told for sure this way (a key written with escapes, a key given twice).
pub fn span_at(body: &[u8], pointer: &str) -> Option<std::ops::Range<usize>> {
    let mut scan = Scan { b: body, i: 0 };
    let tokens = pointer.split('/').skip(1);
    for token in tokens {
        let token = token.replace("~1", "/").replace("~0", "~");
        scan.ws();
        match scan.peek()? {
            b'{' => scan.enter_member(token.as_bytes())?,
            b'[' => scan.enter_element(token.parse().ok()?)?,
            _ => return None,
        }
    }
    scan.ws();
    let start = scan.i;
    scan.skip_value()?;
    Some(start..scan.i)
}

/// A cursor over JSON text that skips values without building them.
struct Scan<'a> {
    b: &'a [u8],
    i: usize,
}

impl Scan<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Option<()> {
        self.ws();
        (self.peek()? == byte).then(|| self.i += 1)
    }

    /// Past a string (at its opening quote).
    fn skip_string(&mut self) -> Option<()> {
        self.i += 1;
        loop {
            let at = memchr::memchr2(b'"', b'\\', &self.b[self.i..])?;
            self.i += at;
            if self.b[self.i] == b'\\' {
                self.i += 2;
            } else {
                self.i += 1;
                return Some(());
            }
        }
    }

    /// A key's raw bytes (at its opening quote); None for one written with escapes.
    fn key(&mut self) -> Option<&[u8]> {
        let start = self.i + 1;
        self.skip_string()?;
        let key = &self.b[start..self.i - 1];
        (!key.contains(&b'\\')).then_some(key)
    }

    fn skip_value(&mut self) -> Option<()> {
        self.ws();
        match self.peek()? {
            b'"' => self.skip_string(),
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.skip_string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let end = self.b[self.i..]
                    .iter()
                    .position(|c| matches!(c, b',' | b'}' | b']' | b' ' | b'\n' | b'\r' | b'\t'))
                    .unwrap_or(self.b.len() - self.i);
                (end > 0).then(|| self.i += end)
            }
        }
    }

    /// Into the value of member `name` of the object here; the rest of the object is read too, so that a key
    /// given twice (the last one counts when parsed) is caught.
    fn enter_member(&mut self, name: &[u8]) -> Option<()> {
        self.i += 1;
        let mut found = None;
        loop {
            self.ws();
            match self.peek()? {
                b'}' if found.is_none() => return None,
                b'}' => break,
                b'"' => {}
                _ => return None,
            }
            let is_it = self.key()? == name;
            self.expect(b':')?;
            self.ws();
            if is_it {
                if found.is_some() {
                    return None;
                }
                found = Some(self.i);
            }
            self.skip_value()?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {}
                _ => return None,
            }
        }
        self.i = found?;
        Some(())
    }

    /// Into element `index` of the array here.
    fn enter_element(&mut self, index: usize) -> Option<()> {
        self.i += 1;
        for _ in 0..index {
            self.skip_value()?;
            self.expect(b',')?;
        }
        self.ws();
        (self.peek()? != b']').then_some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(records: &str, next: Option<&str>) -> ReplyParts {
        ReplyParts {
            records: records.into(),
            next: next.map(Into::into),
        }
    }

    #[test]
    fn a_reply_is_known_by_its_records_and_next_page_whatever_else_it_says() {
        let p = parts("/items", Some("/meta/next"));
        let digest = |body: &str, link: Option<&str>| p.digest(body.as_bytes(), link);
        let page = r#"{"total": 10, "items": [{"id": 1, "n": "a\"]}"}], "meta": {"next": "c2"}}"#;
        let same =
            r#"{ "items":[{"id": 1, "n": "a\"]}"}],"total":11,"meta":{"at":"now","next":"c2"} }"#;
        assert_eq!(digest(page, None), digest(same, None));
        let respaced =
            r#"{"total": 10, "items": [{"id":1, "n": "a\"]}"}], "meta": {"next": "c2"}}"#;
        assert_ne!(
            digest(page, None),
            digest(respaced, None),
            "the records are compared byte for byte"
        );
        let other_record =
            r#"{"total": 10, "items": [{"id": 2, "n": "a\"]}"}], "meta": {"next": "c2"}}"#;
        assert_ne!(digest(page, None), digest(other_record, None));
        let other_next =
            r#"{"total": 10, "items": [{"id": 1, "n": "a\"]}"}], "meta": {"next": "c3"}}"#;
        assert_ne!(digest(page, None), digest(other_next, None));
        assert_ne!(digest(page, None), digest(page, Some("/items?page=2")));
        // Records not found for sure: the whole reply counts.
        let twice = r#"{"items": [{"id": 1}], "items": [{"id": 2}], "total": 1}"#;
        let twice_other_total = r#"{"items": [{"id": 1}], "items": [{"id": 2}], "total": 2}"#;
        assert_ne!(digest(twice, None), digest(twice_other_total, None));
        assert_eq!(span_at(twice.as_bytes(), "/items"), None);
        assert_eq!(span_at(br#"{"a\u0062": []}"#, "/ab"), None);
        // The default pointer: the reply itself when a list, else /data.
        let list = br#" [{"id": 1}] "#;
        assert_eq!(records_span(list, ""), Some(1..12));
        assert_eq!(
            records_span(br#"{"data": [1, 2], "total": 2}"#, ""),
            Some(9..15)
        );
        assert_eq!(
            span_at(br#"{"a": [10, {"b": [true, "x"]}]}"#, "/a/1/b/1"),
            Some(24..27)
        );
        assert_eq!(span_at(br#"{"a": [10]}"#, "/a/1"), None);
    }

    #[test]
    fn incremental_cursors_are_never_remembered() {
        assert_eq!(
            PageMemo::cursor_key(&PageCursor::Offset(5000)).as_deref(),
            Some(r#"{"offset":5000}"#)
        );
        let since = PageCursor::Since {
            since: "2026-01-01".into(),
            page: Box::new(PageCursor::Offset(0)),
        };
        assert_eq!(PageMemo::cursor_key(&since), None);
    }
}
