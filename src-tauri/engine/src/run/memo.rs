//! The page memo of a pass (ADR 0015). A pass into a PostgreSQL table from a REST source remembers, per page, the
//! digest of the reply it wrote and the page's keys; the next pass skips a page whose reply is the same at the same
//! cursor — no parse, no transform, no lookups — as long as nothing but this entity's page writes changed the table
//! since (its change count, kept by a statement trigger, stands where the last pass left it). Anything the memo
//! cannot vouch for — a table changed by someone else, an undo, a key on two pages, a pass that did not complete —
//! leaves it unsealed, and the next pass reads every page in full.

use super::entity::EntityRun;
use crate::config::Entity;
use crate::schema::Mapping;
use crate::source::memo::{MemoEntry, MemoNote, PageMemo};
use crate::source::PageCursor;
use crate::store::{MemoPage, SealedPass};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// What the pages of a pass are remembered under: the engine's version, the entity's settings and the table's
/// columns with their types. A page remembered under another is read in full.
pub fn config_of(entity: &Entity, mapping: &Mapping) -> String {
    let columns: Vec<(&str, crate::schema::ColumnType)> = mapping
        .fields
        .iter()
        .map(|f| (f.column.as_str(), f.ty))
        .collect();
    let text = format!("{}\0{entity:?}\0{columns:?}", env!("CARGO_PKG_VERSION"));
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(text.as_bytes()))
}

/// The memo of one pass: what it may skip, and what it learns to remember.
pub(super) struct PassMemo {
    /// The pages this pass may skip as unchanged (empty when it must read them all).
    pub lookup: PageMemo,
    owner: String,
    /// The table's change count as the pass began (None until a table this pass creates is counted).
    baseline: Mutex<Option<i64>>,
    /// The low 64 bits of every key the pass wrote or skipped: a key on two pages spoils the memo. A pass into an
    /// empty table keeps none: its index build finds such keys (`repeated`).
    prints: Mutex<Vec<u64>>,
    fresh: bool,
    /// Set when something happened that the memo cannot vouch for.
    spoiled: AtomicBool,
    pages_skipped: AtomicU64,
    pages_read: AtomicU64,
    /// Batches being remembered (in the state database, beside the pass's writes to the target).
    remembering: tokio::sync::Mutex<tokio::task::JoinSet<Result<(), crate::store::StoreError>>>,
}

/// The memo side of a batch on its way to the ingest stage.
#[derive(Default)]
pub(super) struct MemoBatch {
    /// Pages read in full and clean (every record written as it came), with their keys: remembered once written.
    pub noted: Vec<(MemoPage, Vec<u128>)>,
    /// Cursors of the pages skipped as unchanged.
    pub unchanged: Vec<String>,
    /// Their keys (seen by this pass, found in the table).
    pub unchanged_keys: Vec<u128>,
    pub unchanged_records: u64,
    /// A key came on two of the batch's pages (the later page's record won).
    pub repeated: bool,
}

impl MemoBatch {
    pub fn absorb(&mut self, other: MemoBatch) {
        self.noted.extend(other.noted);
        self.unchanged.extend(other.unchanged);
        self.unchanged_keys.extend(other.unchanged_keys);
        self.unchanged_records += other.unchanged_records;
        self.repeated |= other.repeated;
    }
}

impl PassMemo {
    /// A clean page read in full, to remember once written.
    pub fn note(
        &self,
        entity: &Entity,
        mapping: &Mapping,
        note: &Option<MemoNote>,
        next: &Option<PageCursor>,
        records: usize,
        keys: Vec<u128>,
    ) -> Option<(MemoPage, Vec<u128>)> {
        let Some(MemoNote::Read {
            cursor,
            digest,
            fingerprint,
        }) = note
        else {
            return None;
        };
        let next = match next {
            Some(n) => Some(serde_json::to_string(n).ok()?),
            None => None,
        };
        let page = MemoPage {
            cursor: cursor.clone(),
            digest: *digest,
            next,
            records: records as u64,
            fingerprint: *fingerprint,
            config: config_of(entity, mapping),
        };
        Some((page, keys))
    }

    /// A page skipped as unchanged.
    pub fn skipped(&self) {
        self.pages_skipped.fetch_add(1, Ordering::Relaxed);
    }

    /// A page read in full.
    pub fn read(&self) {
        self.pages_read.fetch_add(1, Ordering::Relaxed);
    }

    /// A written batch's keys, for the check that no key is on two pages.
    pub fn written(&self, keys: impl Iterator<Item = u128>) {
        if self.fresh {
            return;
        }
        if let Ok(mut prints) = self.prints.lock() {
            prints.extend(keys.map(|k| k as u64));
        }
    }

    /// Something happened that the memo cannot vouch for (`why` goes to the log).
    pub fn spoil(&self, why: &str) {
        if !self.spoiled.swap(true, Ordering::Relaxed) {
            tracing::info!("the page memo will not be kept: {why}");
        }
    }

    /// Whether two of the pass's pages held the same key (the later one's record won, which a page skipped
    /// next time would not repeat).
    fn key_on_two_pages(&self) -> bool {
        let Ok(mut prints) = self.prints.lock() else {
            return true;
        };
        prints.sort_unstable();
        prints.windows(2).any(|w| w[0] == w[1])
    }
}

impl EntityRun<'_> {
    /// The memo a pass goes by. `eligible`: the pass may remember its pages (see `pages`); any other pass that
    /// writes forgets the entity's memo, since its writes do not count as changes of the table.
    pub(super) async fn open_memo(
        &self,
        eligible: bool,
        mapping: Option<&Mapping>,
        fresh: bool,
    ) -> Option<PassMemo> {
        if self.options.dry_run {
            return None;
        }
        let owner = crate::sink::memo_owner(self.pipeline, &self.entity.name);
        let table = self.entity.table_name();
        let sealed = self
            .store
            .sealed_memo(self.pipeline, &self.entity.name)
            .await
            .ok()
            .flatten();
        // Unsealed while the pass runs: a pass cut short leaves nothing to trust.
        let reset = if eligible {
            self.store
                .unseal_memo(self.pipeline, &self.entity.name)
                .await
        } else {
            self.store
                .forget_memo(self.pipeline, &self.entity.name)
                .await
        };
        if let Err(e) = reset {
            tracing::warn!(
                entity = self.entity.name,
                "the page memo was not reset: {e}"
            );
            return None;
        }
        if !eligible {
            return None;
        }
        let baseline = match mapping {
            Some(_) => match self
                .sink
                .change_count(table, &owner, self.options.apply_schema)
                .await
            {
                Ok(Some(count)) => Some(count),
                Ok(None) => return None,
                Err(e) => {
                    tracing::warn!(
                        entity = self.entity.name,
                        "the table's change count was not read: {e}"
                    );
                    return None;
                }
            },
            None => None,
        };
        let mut lookup = PageMemo::default();
        let unchanged_table = sealed.as_ref().is_some_and(|s| baseline == Some(s.changes));
        if let (Some(sealed), Some(mapping), false, true) =
            (&sealed, mapping, fresh, unchanged_table)
        {
            let waiting = self
                .store
                .open_children(self.pipeline, &self.entity.name)
                .await
                .unwrap_or(1);
            if waiting == 0 {
                lookup = self.memo_lookup(sealed, mapping).await;
            }
        }
        let why_not = match (&sealed, unchanged_table) {
            _ if !lookup.is_empty() => None,
            (None, _) => Some("no earlier complete pass remembered its pages"),
            (Some(_), false) => {
                Some("the table changed since the last pass (not by this pipeline's page writes)")
            }
            (Some(_), true) => {
                Some("the last pass's pages were remembered under other settings or columns")
            }
        };
        if let (Some(why), false) = (why_not, fresh) {
            self.log.memo(
                &self.entity.name,
                &format!("{}: every page is read in full: {why}", self.entity.name),
                0,
                0,
            );
        }
        Some(PassMemo {
            lookup,
            owner,
            baseline: Mutex::new(baseline),
            prints: Mutex::new(Vec::new()),
            fresh,
            spoiled: AtomicBool::new(false),
            pages_skipped: AtomicU64::new(0),
            pages_read: AtomicU64::new(0),
            remembering: tokio::sync::Mutex::new(tokio::task::JoinSet::new()),
        })
    }

    async fn memo_lookup(&self, sealed: &SealedPass, mapping: &Mapping) -> PageMemo {
        let config = config_of(self.entity, mapping);
        let pages = match self
            .store
            .memo_pages(self.pipeline, &self.entity.name, &sealed.pass, &config)
            .await
        {
            Ok(pages) => pages,
            Err(e) => {
                tracing::warn!(entity = self.entity.name, "the page memo was not read: {e}");
                return PageMemo::default();
            }
        };
        let entries: HashMap<String, MemoEntry> = pages
            .into_iter()
            .filter_map(|page| {
                let next = match &page.next {
                    Some(text) => Some(serde_json::from_str::<PageCursor>(text).ok()?),
                    None => None,
                };
                let entry = MemoEntry {
                    digest: page.digest,
                    next,
                    records: page.records,
                    fingerprint: page.fingerprint,
                };
                Some((page.cursor, entry))
            })
            .collect();
        PageMemo::new(entries)
    }

    /// A table this pass created is counted from now on (nobody else can have changed it yet).
    pub(super) async fn count_new_table(&self, memo: &PassMemo) {
        let table = self.entity.table_name();
        match self.sink.change_count(table, &memo.owner, true).await {
            Ok(Some(count)) => {
                if let Ok(mut baseline) = memo.baseline.lock() {
                    *baseline = Some(count);
                }
            }
            Ok(None) => memo.spoil("the new table's changes cannot be counted"),
            Err(e) => memo.spoil(&e.to_string()),
        }
    }

    /// Remembers a written batch's pages, beside the pass's next writes (the pass waits for it before it seals).
    pub(super) async fn remember(&self, memo: &PassMemo, batch: MemoBatch) {
        if batch.noted.is_empty() && batch.unchanged.is_empty() {
            return;
        }
        let (store, pipeline, entity, pass) = (
            self.store.clone(),
            self.pipeline.to_owned(),
            self.entity.name.clone(),
            self.run_id.to_owned(),
        );
        memo.remembering.lock().await.spawn(async move {
            store
                .remember_pages(&pipeline, &entity, &pass, &batch.noted, &batch.unchanged)
                .await
        });
    }

    /// Waits for the batches being remembered.
    async fn remembered(&self, memo: &PassMemo) {
        let mut remembering = memo.remembering.lock().await;
        while let Some(done) = remembering.join_next().await {
            match done {
                Ok(Ok(())) => {}
                Ok(Err(e)) => memo.spoil(&format!("the pages were not remembered: {e}")),
                Err(e) => memo.spoil(&format!("the pages were not remembered: {e}")),
            }
        }
    }

    /// At the end of a complete pass: seals its memo for the next pass if it can vouch for it, forgets it if not.
    pub(super) async fn seal(&self, memo: &PassMemo) {
        self.remembered(memo).await;
        let table = self.entity.table_name();
        let baseline = memo.baseline.lock().ok().and_then(|b| *b);
        let now = self
            .sink
            .change_count(table, &memo.owner, false)
            .await
            .ok()
            .flatten();
        if baseline.is_none() || now != baseline {
            memo.spoil("the table changed while the pass ran (not by its page writes)");
        }
        if memo.key_on_two_pages() {
            memo.spoil("a key came on two pages");
        }
        let (skipped, read) = (
            memo.pages_skipped.load(Ordering::Relaxed),
            memo.pages_read.load(Ordering::Relaxed),
        );
        let kept = match (memo.spoiled.load(Ordering::Relaxed), baseline) {
            (false, Some(changes)) => {
                let sealed = SealedPass {
                    pass: self.run_id.to_owned(),
                    changes,
                };
                self.store
                    .seal_memo(self.pipeline, &self.entity.name, &sealed)
                    .await
                    .is_ok()
            }
            _ => false,
        };
        if !kept {
            let _ = self
                .store
                .forget_memo(self.pipeline, &self.entity.name)
                .await;
        }
        // A first sync says nothing unless its pages could not be remembered.
        if skipped > 0 || !kept || !memo.lookup.is_empty() {
            let message = format!(
                "{}: {skipped} page(s) unchanged since the last pass were not read again, {read} read in full{}",
                self.entity.name,
                if kept { "" } else { "; the pages are not remembered for the next pass (it reads every page)" }
            );
            self.log.memo(&self.entity.name, &message, skipped, read);
        }
    }
}
