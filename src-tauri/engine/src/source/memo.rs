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
    /// Read and parsed: the digest of its reply and the listing check's fingerprint of its records, remembered once
    /// the page is written.
    Read {
        cursor: String,
        digest: u128,
        fingerprint: Option<u64>,
    },
    /// The reply is the one the last pass wrote: not parsed; the page holds `records` records as it did then.
    Unchanged {
        cursor: String,
        records: u64,
        fingerprint: Option<u64>,
    },
}

/// The digest of a reply: its body and the next-page link of its headers (which `link` pagination follows). The
/// whole body counts: finding the records in it without parsing would cost a tenth of what parsing does (measured
/// with `syncflow-page-bench`), on every page of every pass, while a reply whose records are unchanged but whose
/// other parts changed (a total) is read in full, the usual way, and remembered again.
pub fn reply_digest(body: &[u8], link: Option<&str>) -> u128 {
    let mut hasher = xxhash_rust::xxh3::Xxh3::new();
    hasher.update(body);
    if let Some(link) = link {
        hasher.update(b"\0link\0");
        hasher.update(link.as_bytes());
    }
    hasher.digest128()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_differ_by_body_or_link() {
        let body = br#"{"items":[{"id":1}]}"#;
        assert_eq!(reply_digest(body, None), reply_digest(body, None));
        assert_ne!(
            reply_digest(body, None),
            reply_digest(br#"{"items":[{"id":2}]}"#, None)
        );
        assert_ne!(
            reply_digest(body, None),
            reply_digest(body, Some("/items?page=2"))
        );
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
