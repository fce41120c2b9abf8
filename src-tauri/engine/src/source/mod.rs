//! FETCH: sources yield pages of records. One module per connector.

pub mod bubble;
pub mod demo;
pub mod json;
pub mod memo;
pub mod postgres;
pub mod rest;
mod scan;
pub mod throttle;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the next page starts; saved in checkpoints so a run resumes exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageCursor {
    Page(u64),
    Offset(u64),
    /// The token of the next page (`cursor` pagination); None before the first.
    Token(Option<String>),
    /// The next page's URL (`link` pagination); None before the first.
    Url(Option<String>),
    /// The business key of the last row read (PostgreSQL keyset pages); None before the first.
    Key(Option<Vec<Value>>),
    Bubble(bubble::BubbleCursor),
    /// An incremental pass (REST, PostgreSQL): records changed at or after `since` (the target's highest
    /// rowversion; records stamped `since` itself are read again and skipped as unchanged), paged by `page`.
    Since {
        since: String,
        page: Box<PageCursor>,
    },
}

impl PageCursor {
    /// Whether the pass reads only what changed (and so must not detect deletes).
    pub fn is_incremental(&self) -> bool {
        match self {
            PageCursor::Bubble(c) => c.field.is_some(),
            PageCursor::Since { .. } => true,
            _ => false,
        }
    }

    /// The paging cursor and the stamp of an incremental pass, if it is one.
    pub fn split_since(&self) -> (&PageCursor, Option<&str>) {
        match self {
            PageCursor::Since { since, page } => (page, Some(since)),
            other => (other, None),
        }
    }

    /// Where the page after this one starts when this one could not be fetched: only paginations whose next page
    /// does not depend on the reply (page numbers, offsets — `last_len` records a page, as the last page that came
    /// had — and Bubble's offsets) can go on past a failed page; a token, link or keyset page cannot.
    pub fn past_failed(&self, last_len: u64) -> Option<PageCursor> {
        let next = match self.split_since().0 {
            PageCursor::Page(n) => PageCursor::Page(n + 1),
            PageCursor::Offset(n) if last_len > 0 => PageCursor::Offset(n + last_len),
            PageCursor::Bubble(c) => PageCursor::Bubble(bubble::BubbleCursor {
                offset: c.offset + bubble::PAGE_LIMIT,
                ..c.clone()
            }),
            _ => return None,
        };
        Some(self.carry_since(next))
    }

    /// The page, as a person reads it in an error message.
    pub fn describe(&self) -> String {
        match self {
            PageCursor::Page(n) => format!("page {n}"),
            PageCursor::Offset(n) => format!("offset {n}"),
            PageCursor::Token(None) | PageCursor::Url(None) | PageCursor::Key(None) => {
                "the first page".into()
            }
            PageCursor::Token(Some(t)) => format!("cursor {t}"),
            PageCursor::Url(Some(u)) => format!("page {u}"),
            PageCursor::Key(Some(k)) => format!("the page after key {}", Value::Array(k.clone())),
            PageCursor::Bubble(c) => match &c.after {
                Some(after) => format!(
                    "cursor {} of things with {} after {after}",
                    c.offset,
                    c.field()
                ),
                None => format!("cursor {}", c.offset),
            },
            PageCursor::Since { since, page } => {
                format!("{} of the records changed since {since}", page.describe())
            }
        }
    }

    /// `next` in the same pass as `self` (an incremental pass stays one).
    pub fn carry_since(&self, next: PageCursor) -> PageCursor {
        match self {
            PageCursor::Since { since, .. } => PageCursor::Since {
                since: since.clone(),
                page: Box::new(next),
            },
            _ => next,
        }
    }
}

/// One page of raw records and where the following page starts (None: this was the last).
#[derive(Debug)]
pub struct FetchedPage {
    pub records: crate::records::Records,
    pub next: Option<PageCursor>,
    /// How long the request took.
    pub fetch_ms: u64,
    /// How many records the entity has in all, when the source says (Bubble's `remaining`); for progress and ETA.
    pub expected: Option<u64>,
    /// Set when the page could not be fetched even after its retries and the pass went on past it: `records` is
    /// empty and the page is filed with its cursor, so that a re-run fetches just that page.
    pub failure: Option<PageFailure>,
    /// How the page stands with the pass's page memo (None: the pass keeps none).
    pub memo: Option<memo::MemoNote>,
}

/// A page the pass went on without.
#[derive(Debug, Clone)]
pub struct PageFailure {
    pub cursor: PageCursor,
    pub error: String,
}

impl FetchedPage {
    /// The stand-in for a page that could not be fetched at `cursor`; the pass goes on at `next`.
    pub fn failed(
        cursor: PageCursor,
        next: Option<PageCursor>,
        error: &SourceError,
    ) -> FetchedPage {
        tracing::warn!(
            page = cursor.describe(),
            "page not fetched, going on without it: {error}"
        );
        FetchedPage {
            records: crate::records::Records::default(),
            next,
            fetch_ms: 0,
            expected: None,
            failure: Some(PageFailure {
                cursor,
                error: error.to_string(),
            }),
            memo: None,
        }
    }
}

/// Pages in a row that may fail before the source is taken for down and the run stops.
pub const FAILED_PAGES_IN_A_ROW: u32 = 3;

/// Why a source stopped yielding pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The last page was yielded (or the receiver stopped listening).
    Done,
    /// A pause was asked for; the pages yielded so far are complete.
    Paused,
}

/// A connected source of any kind.
pub enum Source {
    Rest(Box<rest::RestClient>),
    Bubble(Box<bubble::BubbleClient>),
    Postgres(Box<postgres::PgSource>),
}

impl Source {
    /// The cursor of an entity's first page.
    pub fn first_cursor(&self, entity: &crate::config::Entity) -> PageCursor {
        match self {
            Source::Rest(_) => rest::RestClient::first_cursor(entity),
            Source::Bubble(_) => bubble::BubbleClient::first_cursor(),
            Source::Postgres(_) => postgres::PgSource::first_cursor(),
        }
    }

    /// Where an incremental pass starts: records changed since `since` (the target's highest rowversion); None
    /// when the source cannot select by change (then the pass reads everything and skips what is unchanged).
    pub fn changed_since(&self, entity: &crate::config::Entity, since: &str) -> Option<PageCursor> {
        match self {
            Source::Rest(_) => {
                entity.since_param.as_ref()?;
                Some(PageCursor::Since {
                    since: since.to_owned(),
                    page: Box::new(rest::RestClient::first_cursor(entity)),
                })
            }
            Source::Postgres(_) => {
                entity.rowversion.as_ref()?;
                Some(PageCursor::Since {
                    since: since.to_owned(),
                    page: Box::new(postgres::PgSource::first_cursor()),
                })
            }
            Source::Bubble(_) => {
                bubble::BubbleClient::changed_since(entity.rowversion.as_deref()?, since)
            }
        }
    }

    /// One page.
    pub async fn fetch_page(
        &self,
        entity: &crate::config::Entity,
        cursor: &PageCursor,
    ) -> Result<FetchedPage, SourceError> {
        match self {
            Source::Rest(c) => c.fetch_page(entity, cursor).await,
            Source::Bubble(c) => c.fetch_page(entity, cursor).await,
            Source::Postgres(c) => c.fetch_page(entity, cursor).await,
        }
    }

    /// Every page from `cursor` on, in order, into `out`, until the last or a pause.
    pub async fn stream(
        &self,
        entity: &crate::config::Entity,
        cursor: &PageCursor,
        out: &tokio::sync::mpsc::Sender<FetchedPage>,
        stop: &crate::stop::StopSignal,
        memo: Option<&memo::PageMemo>,
    ) -> Result<StreamEnd, SourceError> {
        match self {
            Source::Rest(_) => stream_in_order(self, entity, cursor, out, stop, memo).await,
            Source::Bubble(c) => c.stream(entity, cursor, out, stop).await,
            Source::Postgres(_) => stream_in_order(self, entity, cursor, out, stop, None).await,
        }
    }

    /// Whether the source's pages can be remembered by their replies (a page memo, ADR 0015): REST.
    pub fn remembers_replies(&self) -> bool {
        matches!(self, Source::Rest(_))
    }

    /// Records a page holds at most (for sizing the batches pages are written in).
    pub fn page_size(&self, entity: &crate::config::Entity) -> usize {
        match self {
            Source::Rest(_) => match &entity.pagination {
                Some(crate::config::Pagination::Page { size, .. })
                | Some(crate::config::Pagination::Offset { size, .. })
                | Some(crate::config::Pagination::Cursor { size, .. }) => *size as usize,
                Some(crate::config::Pagination::Link { .. }) | None => 1000,
            },
            Source::Bubble(_) => bubble::PAGE_LIMIT as usize,
            Source::Postgres(c) => c.page_size(),
        }
    }

    /// The fields the source declares for an entity (with types), before any record is read.
    pub fn declared(&self, entity: &crate::config::Entity) -> Vec<crate::schema::Declared> {
        match self {
            Source::Rest(_) => Vec::new(),
            Source::Bubble(c) => c.declared(entity),
            Source::Postgres(c) => c.declared(entity),
        }
    }
}

/// Pages one after the other, each from the cursor the last one gave.
async fn stream_in_order(
    source: &Source,
    entity: &crate::config::Entity,
    cursor: &PageCursor,
    out: &tokio::sync::mpsc::Sender<FetchedPage>,
    stop: &crate::stop::StopSignal,
    memo: Option<&memo::PageMemo>,
) -> Result<StreamEnd, SourceError> {
    let mut cursor = cursor.clone();
    // Records in the last page that came (0: none came yet, so a failure stops the run).
    let mut last_len = 0;
    let mut failed_in_a_row = 0;
    let mut listing = ListingCheck::new(entity);
    loop {
        if stop.requested() {
            return Ok(StreamEnd::Paused);
        }
        let fetched = match (source, memo) {
            (Source::Rest(c), Some(memo)) => c.fetch_page_memo(entity, &cursor, Some(memo)).await,
            _ => source.fetch_page(entity, &cursor).await,
        };
        let page = match fetched {
            Ok(mut page) => {
                let print = listing.check(&cursor, &page)?;
                if let Some(memo::MemoNote::Read { fingerprint, .. }) = &mut page.memo {
                    *fingerprint = print;
                }
                failed_in_a_row = 0;
                last_len = match &page.memo {
                    Some(memo::MemoNote::Unchanged { records, .. }) => *records,
                    _ => page.records.len() as u64,
                };
                page
            }
            Err(e) => {
                failed_in_a_row += 1;
                let past =
                    (last_len > 0 && e.is_transient() && failed_in_a_row < FAILED_PAGES_IN_A_ROW)
                        .then(|| cursor.past_failed(last_len))
                        .flatten();
                match past {
                    Some(next) => FetchedPage::failed(cursor.clone(), Some(next), &e),
                    None => return Err(e),
                }
            }
        };
        let next = page.next.clone();
        if out.send(page).await.is_err() {
            return Ok(StreamEnd::Done);
        }
        match next {
            Some(n) => cursor = n,
            None => return Ok(StreamEnd::Done),
        }
    }
}

/// Catches a listing that goes round in circles, which would otherwise read the same records forever (and, once it
/// ends, take everything it never reached for deleted): a page that holds the records of the page before it (a
/// server that ignores the paging parameter), or a next-page cursor or link that was read before in the pass.
pub struct ListingCheck {
    key_fields: Vec<String>,
    last: Option<u64>,
    cursors: std::collections::HashSet<String>,
}

impl ListingCheck {
    pub fn new(entity: &crate::config::Entity) -> ListingCheck {
        ListingCheck {
            key_fields: entity.key_fields(),
            last: None,
            cursors: std::collections::HashSet::new(),
        }
    }

    /// Checks the page fetched at `at` against the pages before it; returns the page's fingerprint.
    pub fn check(
        &mut self,
        at: &PageCursor,
        page: &FetchedPage,
    ) -> Result<Option<u64>, SourceError> {
        let print = match &page.memo {
            Some(memo::MemoNote::Unchanged { fingerprint, .. }) => *fingerprint,
            _ => page_fingerprint(&page.records, &self.key_fields),
        };
        if print.is_some() && print == self.last {
            return Err(SourceError::BrokenListing {
                page: at.describe(),
                problem: "it holds the same records as the page before it; the server seems to ignore the paging \
                          parameter (check the entity's pagination)"
                    .into(),
            });
        }
        self.last = print;
        if let Some(next) = &page.next {
            if matches!(
                next.split_since().0,
                PageCursor::Token(_) | PageCursor::Url(_)
            ) && !self.cursors.insert(format!("{next:?}"))
            {
                return Err(SourceError::BrokenListing {
                    page: at.describe(),
                    problem: format!(
                        "its next page ({}) was read before in this pass; the listing goes round in circles",
                        next.describe()
                    ),
                });
            }
        }
        Ok(print)
    }
}

/// What identifies a page's records, in order: a hash of their key values (of the whole record where it has no key
/// value); None for an empty page. The same for a page read as rows as for the same page read as objects.
pub fn page_fingerprint(records: &crate::records::Records, key_fields: &[String]) -> Option<u64> {
    match records {
        crate::records::Records::Objects(records) => objects_fingerprint(records, key_fields),
        crate::records::Records::Rows { fields, rows } => {
            if rows.is_empty() {
                return None;
            }
            let mut print = Fingerprint::default();
            let at: Vec<usize> = key_fields
                .iter()
                .filter_map(|k| fields.iter().position(|f| f == k))
                .collect();
            for row in rows {
                let keys = at.iter().filter_map(|i| row.get(*i));
                print.record(keys, || {
                    crate::records::object_of(fields, row.clone()).to_string()
                });
            }
            Some(print.hasher.digest())
        }
    }
}

/// [`page_fingerprint`] of records parsed as objects.
pub fn objects_fingerprint(records: &[Value], key_fields: &[String]) -> Option<u64> {
    if records.is_empty() {
        return None;
    }
    let mut print = Fingerprint::default();
    for record in records {
        let keys = key_fields.iter().filter_map(|k| record.get(k));
        print.record(keys, || record.to_string());
    }
    Some(print.hasher.digest())
}

/// A page fingerprint as it is taken, record by record.
#[derive(Default)]
struct Fingerprint {
    hasher: xxhash_rust::xxh3::Xxh3,
    /// A key value's JSON, written here instead of into a new string for each.
    json: Vec<u8>,
}

impl Fingerprint {
    /// One record's part: its non-null key values, or the whole record when it has none.
    fn record<'v>(
        &mut self,
        keys: impl Iterator<Item = &'v Value>,
        whole: impl FnOnce() -> String,
    ) {
        let mut any = false;
        for key in keys.filter(|v| !v.is_null()) {
            self.json.clear();
            // Writing JSON into memory cannot fail.
            let _ = serde_json::to_writer(&mut self.json, key);
            self.hasher.update(&self.json);
            self.hasher.update(b"\x1f");
            any = true;
        }
        if !any {
            self.hasher.update(whole().as_bytes());
        }
        self.hasher.update(b"\x1e");
    }
}

/// What a lone UTF-16 surrogate escape (`"\ud800"`, which is not a character and which a strict JSON parser refuses)
/// becomes when a reply is parsed leniently: a noncharacter that VALIDATE fails the record for, naming the field,
/// so that one bad record does not cost its page.
pub const LONE_SURROGATE: char = '\u{FDD0}';

/// The reply with every lone surrogate escape replaced by [`LONE_SURROGATE`]'s escape (same length); None when it
/// has none. Only escapes inside strings count (`"\\ud800"` is a backslash and text).
pub fn mark_lone_surrogates(json: &[u8]) -> Option<Vec<u8>> {
    let unit_at = |at: usize| -> Option<u16> {
        let hex = json.get(at..at + 4)?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let escape_at = |at: usize| -> Option<u16> {
        (json.get(at) == Some(&b'\\') && json.get(at + 1) == Some(&b'u'))
            .then(|| unit_at(at + 2))
            .flatten()
    };
    let mut out: Option<Vec<u8>> = None;
    let mut in_string = false;
    let mut i = 0;
    while i < json.len() {
        match (in_string, json[i]) {
            (false, b'"') | (true, b'"') => {
                in_string = !in_string;
                i += 1;
            }
            (true, b'\\') => match escape_at(i) {
                Some(0xD800..=0xDBFF) if matches!(escape_at(i + 6), Some(0xDC00..=0xDFFF)) => {
                    i += 12
                }
                Some(0xD800..=0xDFFF) => {
                    let marked = out.get_or_insert_with(|| json.to_vec());
                    marked[i..i + 6].copy_from_slice(b"\\ufdd0");
                    i += 6;
                }
                _ => i += 2,
            },
            _ => i += 1,
        }
    }
    out
}

impl SourceError {
    /// Whether asking again later may succeed (the source was down, slow, overloaded or cut the reply short), as
    /// opposed to a refusal or a reply of the wrong shape.
    pub fn is_transient(&self) -> bool {
        match self {
            SourceError::Unreachable { .. } | SourceError::InvalidJson { .. } => true,
            SourceError::Status { status, .. } => {
                *status >= 500 || *status == 429 || *status == 408
            }
            _ => false,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach the source at {url}: {reason}; check the source's base URL (base_url) and that the server is running")]
    Unreachable { url: String, reason: String },
    #[error("the source refused the credentials ({status} from {url}); check the source's credentials (its token, API key or password: auth)")]
    Unauthorized { url: String, status: u16 },
    #[error("the source answered {status} for {url}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the reply from {url} is not valid JSON: {reason}")]
    InvalidJson { url: String, reason: String },
    #[error("the reply from {url} has no array of records at {pointer}; set `records` to the JSON pointer of the list (e.g. \"/data\")")]
    NoRecords { url: String, pointer: String },
    /// The listing cannot be trusted past this page (it is never taken for the end of the data).
    #[error("the source's listing broke at {page}: {problem}")]
    BrokenListing { page: String, problem: String },
    /// A next-page link or a redirect to another origin than base_url's (credentials go only there).
    #[error("{what} leads to {origin}, not to source.base_url's origin {home}: the source's credentials are only sent to base_url's origin, so it was not followed")]
    OtherOrigin {
        what: String,
        origin: String,
        home: String,
    },
    /// A reply larger than `max_page_bytes`.
    #[error("the reply from {url} is larger than source.max_page_bytes ({limit} bytes); nothing of it was used. Ask the source for smaller pages (the entity's pagination size), or raise max_page_bytes if such pages are expected")]
    TooLarge { url: String, limit: u64 },
    #[error("login to {url} failed: {reason}")]
    Login { url: String, reason: String },
    /// A PostgreSQL source failed; the message names what failed and the `source.` key that fixes it.
    #[error("source database: {message}")]
    Database { message: String },
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_paginations_that_do_not_need_the_reply_go_on_past_a_failed_page() {
        assert_eq!(
            PageCursor::Page(3).past_failed(0),
            Some(PageCursor::Page(4))
        );
        assert_eq!(
            PageCursor::Offset(20).past_failed(10),
            Some(PageCursor::Offset(30))
        );
        // The server's page size is learnt from a page that came; before one came there is nothing to go on with.
        assert_eq!(PageCursor::Offset(0).past_failed(0), None);
        assert_eq!(PageCursor::Token(Some("t".into())).past_failed(10), None);
        assert_eq!(PageCursor::Url(None).past_failed(10), None);
        assert_eq!(
            PageCursor::Key(Some(vec![Value::from(7)])).past_failed(10),
            None
        );
        let since = PageCursor::Since {
            since: "2026-01-01T00:00:00Z".into(),
            page: Box::new(PageCursor::Offset(100)),
        };
        assert_eq!(
            since.past_failed(100),
            Some(PageCursor::Since {
                since: "2026-01-01T00:00:00Z".into(),
                page: Box::new(PageCursor::Offset(200)),
            })
        );
        assert_eq!(
            since.describe(),
            "offset 100 of the records changed since 2026-01-01T00:00:00Z"
        );
    }

    fn page(records: Vec<Value>, next: Option<PageCursor>) -> FetchedPage {
        FetchedPage {
            records: records.into(),
            next,
            fetch_ms: 0,
            expected: None,
            failure: None,
            memo: None,
        }
    }

    #[test]
    fn a_page_read_as_rows_has_the_fingerprint_it_has_read_as_objects() {
        use crate::records::{object_of, Records};
        let fields: std::sync::Arc<[String]> = ["name", "id"].map(String::from).into();
        let rows = vec![
            vec![serde_json::json!("a"), serde_json::json!(1)],
            vec![serde_json::json!("no key"), Value::Null],
            vec![serde_json::json!("b"), serde_json::json!("2")],
        ];
        let objects: Vec<Value> = rows.iter().map(|r| object_of(&fields, r.clone())).collect();
        let by_rows = Records::Rows {
            fields,
            rows: rows.clone(),
        };
        for key in [vec!["id".to_owned()], vec!["absent".to_owned()], Vec::new()] {
            let of_objects = page_fingerprint(&Records::Objects(objects.clone()), &key);
            assert!(of_objects.is_some());
            assert_eq!(page_fingerprint(&by_rows, &key), of_objects, "key {key:?}");
        }
        // The bytes hashed are the key values' JSON, or the whole record's, with separators (a fingerprint kept in
        // a page memo must not change with an upgrade).
        let pinned = [
            &b"1\x1f\x1e"[..],
            br#"{"name":"no key","id":null}"#,
            b"\x1e\"2\"\x1f\x1e",
        ]
        .concat();
        assert_eq!(
            page_fingerprint(&by_rows, &["id".to_owned()]),
            Some(xxhash_rust::xxh3::xxh3_64(&pinned))
        );
        let other = Records::Objects(objects[..2].to_vec());
        assert_ne!(
            page_fingerprint(&other, &["id".to_owned()]),
            page_fingerprint(&by_rows, &["id".to_owned()])
        );
    }

    #[test]
    fn a_listing_that_repeats_a_page_or_a_cursor_is_broken() {
        let entity = crate::config::Entity::named("items");
        let mut check = ListingCheck::new(&entity);
        let one = || {
            vec![
                serde_json::json!({"id": 1, "v": "a"}),
                serde_json::json!({"id": 2}),
            ]
        };
        check
            .check(&PageCursor::Page(1), &page(one(), None))
            .unwrap();
        // The same keys again (even with other values): the server ignores the page parameter.
        let mut again = one();
        again[0]["v"] = Value::from("b");
        let err = check
            .check(&PageCursor::Page(2), &page(again, None))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("page 2") && err.contains("same records"),
            "{err}"
        );
        // Empty pages and different pages are fine.
        let mut check = ListingCheck::new(&entity);
        check
            .check(&PageCursor::Page(1), &page(Vec::new(), None))
            .unwrap();
        check
            .check(&PageCursor::Page(2), &page(Vec::new(), None))
            .unwrap();
        // A next cursor read before: round in circles.
        let token = |t: &str| Some(PageCursor::Token(Some(t.into())));
        let mut check = ListingCheck::new(&entity);
        let first = PageCursor::Token(None);
        check.check(&first, &page(one(), token("a"))).unwrap();
        let at_a = PageCursor::Token(Some("a".into()));
        check
            .check(&at_a, &page(vec![serde_json::json!({"id": 3})], token("b")))
            .unwrap();
        let at_b = PageCursor::Token(Some("b".into()));
        let err = check
            .check(&at_b, &page(vec![serde_json::json!({"id": 4})], token("a")))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cursor a") && err.contains("round in circles"),
            "{err}"
        );
    }

    #[test]
    fn lone_surrogates_are_marked_and_pairs_and_escaped_backslashes_are_left() {
        let page = br#"[{"a":"\ud800"},{"b":"\ud83d\ude00"},{"c":"\\ud800"},{"d":"x\udc00y"}]"#;
        let marked = mark_lone_surrogates(page).unwrap();
        let parsed: Value = serde_json::from_slice(&marked).unwrap();
        assert_eq!(parsed[0]["a"], Value::from(LONE_SURROGATE.to_string()));
        assert_eq!(parsed[1]["b"], Value::from("\u{1F600}"));
        assert_eq!(parsed[2]["c"], Value::from("\\ud800"));
        assert_eq!(parsed[3]["d"], Value::from(format!("x{LONE_SURROGATE}y")));
        assert!(serde_json::from_slice::<Value>(page).is_err());
        assert_eq!(
            mark_lone_surrogates(br#"{"ok":"\u00e9\ud83d\ude00"}"#),
            None
        );
    }

    #[test]
    fn refusals_are_not_worth_asking_again_but_outages_are() {
        let status = |status| SourceError::Status {
            url: "u".into(),
            status,
            body: String::new(),
        };
        assert!(
            status(500).is_transient() && status(503).is_transient() && status(429).is_transient()
        );
        assert!(!status(400).is_transient() && !status(404).is_transient());
        assert!(!SourceError::Unauthorized {
            url: "u".into(),
            status: 401
        }
        .is_transient());
    }
}
