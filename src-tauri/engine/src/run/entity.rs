//! One entity's pages through the stages.

use super::memo::{MemoBatch, PassMemo};
use super::tracker::{Owner, Tracked, Tracker};
use super::{Progress, RunEvent, RunOptions, StopSignal};
use crate::config::{ConflictStrategy, Entity};
use crate::identity;
use crate::records::Records;
use crate::schema::Mapping;
use crate::sink::postgres::CopyStream;
use crate::sink::DetectedConflict;
use crate::sink::MergeCounts;
use crate::sink::{Checkpoint, FailedPage, PageWrite, PreparedRow, Sink, SinkError};
use crate::source::memo::MemoNote;
use crate::source::{FetchedPage, PageCursor, Source, StreamEnd};
use crate::store::ConflictScope;
use crate::store::{BatchMetrics, FailedRecord, HeldChild, Store};
use crate::track::EntityCounts;
use futures_util::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::mpsc;

pub(super) enum Stop {
    Paused,
    Failed {
        message: String,
        invalid: bool,
    },
    /// The pass completed, but its deletes went past the delete guard: none were made.
    DeletesHeld {
        message: String,
        rows: u64,
    },
    /// The database refused rows of a batch (nothing was written); the refused rows are looked for next.
    Refused {
        message: String,
    },
    /// The target refused these rows of the batch on their own (a REST target; the others were written): they are
    /// filed as failed records and the batch is written again without them.
    RefusedRows {
        rows: Vec<(usize, String)>,
    },
    /// The page needs a change of the target's schema that nobody reviewed: nothing of it was written, the pass
    /// resumes at it once the schema is applied.
    NeedsReview {
        message: String,
    },
}

pub(super) struct EntityRun<'a> {
    pub pipeline: &'a str,
    pub run_id: &'a str,
    pub entity: &'a Entity,
    /// RESOLVE: the entity's parents in this pipeline.
    pub parents: &'a [crate::parents::ParentLink],
    pub source: &'a Source,
    /// The fields the source declares for the entity.
    pub declared: Vec<crate::schema::Declared>,
    pub sink: &'a Sink,
    pub store: &'a Store,
    pub options: &'a RunOptions,
    pub progress: Progress<'a>,
    pub stop: &'a StopSignal,
    pub log: &'a super::log::RunLog,
}

fn failed(message: impl std::fmt::Display) -> Stop {
    Stop::Failed {
        message: message.to_string(),
        invalid: false,
    }
}

fn invalid(message: impl std::fmt::Display) -> Stop {
    Stop::Failed {
        message: message.to_string(),
        invalid: true,
    }
}

fn sink_stop(e: SinkError) -> Stop {
    match e {
        SinkError::MissingTable { .. }
        | SinkError::MissingColumn { .. }
        | SinkError::MissingTracking { .. } => invalid(e),
        SinkError::Secret(_) => invalid(e),
        other => failed(other),
    }
}

fn source_stop(e: crate::source::SourceError) -> Stop {
    match e {
        crate::source::SourceError::Secret(_) => invalid(e),
        other => failed(other),
    }
}

/// The records of a page that need a change of `mapping` (at most [`EVIDENCE_RECORDS`]); the page's first records
/// when no record needs one alone (a type only the page as a whole decides).
fn records_needing_change(mapping: &Mapping, page: &[Value]) -> Vec<Value> {
    let needing: Vec<Value> = page
        .iter()
        .filter(|record| {
            !mapping
                .clone()
                .learn(std::slice::from_ref(*record))
                .is_empty()
        })
        .take(EVIDENCE_RECORDS)
        .cloned()
        .collect();
    if needing.is_empty() {
        page.iter().take(EVIDENCE_RECORDS).cloned().collect()
    } else {
        needing
    }
}

/// Records kept per entity for the schema review when a run stops for it.
const EVIDENCE_RECORDS: usize = 100;

/// What a page would change in the target's schema, and how to let it (the run's error when it stops for review).
fn unreviewed_change(
    table: &str,
    exists: bool,
    change: &crate::schema::SchemaChange,
    before: &Mapping,
    after: &Mapping,
) -> String {
    const HOW: &str = "review the schema and apply it (console: Schema → Apply; CLI: run again with --apply-schema), then run again: the run resumes here";
    if !exists {
        return format!("schema review needed: target table {table} does not exist yet; {HOW}");
    }
    let type_of = |m: &Mapping, field: &str| {
        m.fields
            .iter()
            .find(|f| f.source == field)
            .map(|f| f.ty.postgres())
    };
    let mut what: Vec<String> = change
        .added
        .iter()
        .map(|f| format!("a column for the new source field \"{f}\""))
        .collect();
    what.extend(change.retyped.iter().map(|f| {
        format!(
            "column of \"{f}\" from {} to {}",
            type_of(before, f).unwrap_or("?"),
            type_of(after, f).unwrap_or("?")
        )
    }));
    format!(
        "schema review needed: table {table} would get {}; {HOW}",
        what.join(", ")
    )
}

/// A prepared row as a record (its source field names and values as normalised), for the failed records.
fn as_record(mapping: &Mapping, row: &PreparedRow) -> Value {
    Value::Object(
        mapping
            .fields
            .iter()
            .zip(&row.values)
            .map(|(f, v)| (f.source.clone(), v.clone()))
            .collect(),
    )
}

/// The records of one page after the transform stages.
#[derive(Default)]
pub struct Transformed {
    pub rows: Vec<PreparedRow>,
    pub failed: Vec<FailedRecord>,
    pub duplicates: u64,
    /// Children RESOLVE held back (their parent is not in the target yet).
    pub held: Vec<HeldChild>,
    /// `rows` encoded for the target's COPY ahead of their write (a pass of new rows into PostgreSQL).
    pub copy: Option<CopyStream>,
}

impl EntityRun<'_> {
    /// Runs the entity to its end; returns its counts and why it stopped early, if it did.
    pub async fn run(&self) -> (EntityCounts, Option<Stop>) {
        let mut counts = EntityCounts::default();
        let stopped = self.pages(&mut counts).await.err();
        let status = match &stopped {
            None => "completed",
            Some(Stop::Paused) => "paused",
            Some(
                Stop::Failed { .. }
                | Stop::DeletesHeld { .. }
                | Stop::Refused { .. }
                | Stop::RefusedRows { .. }
                | Stop::NeedsReview { .. },
            ) => "failed",
        };
        if !self.options.dry_run {
            if let Err(e) = self
                .store
                .save_entity_counts(self.run_id, &self.entity.name, status, 0, &counts)
                .await
            {
                tracing::warn!("could not record counts of {}: {e}", self.entity.name);
            }
        }
        (counts, stopped)
    }

    async fn pages(&self, counts: &mut EntityCounts) -> Result<(), Stop> {
        let table = self.entity.table_name();
        let saved = if self.options.dry_run {
            None
        } else {
            self.sink
                .read_checkpoint(self.pipeline, &self.entity.name)
                .await
                .map_err(sink_stop)?
        };
        // A pass whose deletes the guard held starts again unless they are confirmed now: the source may have been
        // fixed since.
        let saved = saved.filter(|c| c.held_deletes.is_none() || self.options.confirm_deletes);
        let (cursor, page_no, failed_pages, resumed) = match saved {
            Some(c) if c.run_id == self.run_id || c.held_deletes.is_some() => {
                *counts = c.counts;
                if c.held_deletes.is_some() {
                    return self.confirm_held_deletes(c, counts).await;
                }
                if c.cursor.is_none() && c.failed_pages.is_empty() {
                    return Ok(());
                }
                let resumed = (c.fresh, c.seen_keys);
                (c.cursor, c.page_no, c.failed_pages, Some(resumed))
            }
            _ => (Some(self.start_cursor(table).await?), 0, Vec::new(), None),
        };
        let incremental = cursor
            .as_ref()
            .or(failed_pages.first().map(|f| &f.cursor))
            .is_some_and(PageCursor::is_incremental);
        // An incremental pass sees only what changed: it must never take the rest for deleted. A full refresh
        // decides on the rows it did not bring as it swaps its table in, not by seen keys.
        let deletes = if incremental || self.full_refresh().is_some() {
            crate::config::DeleteMode::None
        } else {
            self.entity.deletes
        };
        if self.options.apply_schema && !self.options.dry_run {
            self.convert_tracking(table).await?;
        }
        let edits_tracked = self
            .sink
            .prepare_edit_tracking(
                table,
                self.entity.conflicts != ConflictStrategy::SourceWins,
                self.options.apply_schema && !self.options.dry_run,
            )
            .await
            .map_err(sink_stop)?;
        let existing = self.sink.columns(table).await.map_err(sink_stop)?;
        let table_exists = existing.is_some();
        // Into a table that was empty when this (fresh) run began, every key is new: no hash lookups needed.
        let fresh_start = page_no == 0
            && (!table_exists || self.sink.is_empty(table).await.map_err(sink_stop)?);
        // A pass that began into an empty table stays fresh when resumed: every row in the table is its own.
        let (fresh, seen_keys) = resumed.unwrap_or((fresh_start, Some(0)));
        let mapping = existing.map(|columns| {
            Mapping::from_columns(columns, self.entity)
                .with_declared(self.declared.clone())
                .with_fold_case(self.sink.folds_case())
        });

        // Fetch, transform and ingest overlap: each stage hands pages to the next through a bounded channel,
        // so memory holds a few pages whatever the table's size, and the CPU work runs while PostgreSQL ingests.
        let page_size = self.source.page_size(self.entity).max(1);
        let (fetched_tx, fetched_rx) =
            mpsc::channel::<FetchedPage>((ROWS_IN_FLIGHT / page_size).clamp(1, PAGES_IN_FLIGHT));
        let (ready_tx, ready_rx) = mpsc::channel::<Ready>((BATCH_ROWS / page_size).max(1));
        // The first pages to come are the passed-over ones, one each, in the order they were asked for.
        let numbers = PageNumbers {
            last: page_no,
            retried: failed_pages.iter().map(|p| p.page_no).collect(),
        };
        let retry = failed_pages.clone();
        // A pass that deletes compares the table's keys with its own at its end. The table's rows are counted now,
        // while the pass runs: when its lookups find as many of them, every row was seen and no key is read then.
        let deleting = deletes != crate::config::DeleteMode::None && !fresh && table_exists;
        let (count_tx, count_rx) = tokio::sync::oneshot::channel::<u64>();
        let all_rows = deletes == crate::config::DeleteMode::Hard && !self.options.dry_run;
        let count_rows = async {
            if !deleting {
                return;
            }
            let mut count_tx = count_tx;
            let counted = tokio::select! {
                counted = self.sink.rows_in(table, all_rows) => counted,
                // The pass ended (or paused) first: the count is not needed any more.
                _ = count_tx.closed() => return,
            };
            match counted {
                Ok(Some(rows)) => {
                    let _ = count_tx.send(rows);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(
                    entity = self.entity.name,
                    "the table's rows were not counted (its keys are read at the end of the pass): {e}"
                ),
            }
        };
        // A page memo (ADR 0015) for a whole pass from a REST source into PostgreSQL whose rows are the source's
        // pages as they come: not one that reads only changes, refreshes, holds conflicts or children, or resumes.
        let memo_eligible = self.sink.counts_changes()
            && self.source.remembers_replies()
            && !incremental
            && self.full_refresh().is_none()
            && self.entity.conflicts == ConflictStrategy::SourceWins
            && self.parents.is_empty()
            && page_no == 0
            && failed_pages.is_empty();
        let memo = self.open_memo(memo_eligible, mapping.as_ref(), fresh).await;
        let memo = memo.as_ref();
        // Every row a fresh pass finds in the table is its own (a key the source repeated is resolved as the
        // pass's indexes are built): no lookups, even when it resumes.
        let skip_unchanged = !fresh && self.full_refresh().is_none();
        // Rows written as they come (no lookups, no children held back) are encoded for the target beside the
        // transform, off the ingest stage's path.
        let encode_ahead = self.sink.takes_copy_streams()
            && !skip_unchanged
            && self.parents.is_empty()
            && !self.options.dry_run;
        let (fetching, transforming, ingesting, ()) = tokio::join!(
            self.fetch_stage(cursor, &retry, fetched_tx, memo),
            self.transform_stage(
                fetched_rx,
                numbers,
                ready_tx,
                TransformPlan {
                    mapping,
                    table_exists,
                    encode_ahead,
                },
                memo,
            ),
            self.ingest_stage(
                ready_rx,
                memo,
                counts,
                Pass {
                    skip_unchanged,
                    starts_pass: page_no == 0,
                    deletes,
                    edits_tracked,
                    failed_pages,
                    fresh,
                    seen_keys,
                    rows_before: deleting.then_some(count_rx),
                },
            ),
            count_rows,
        );
        let (ingested, still_failed) = ingesting?;
        if let FetchEnd::Paused = ingested {
            // The stages before stopped because ingest stopped listening: a pause, whatever they say.
            return Err(Stop::Paused);
        }
        transforming?;
        match fetching? {
            FetchEnd::Done if still_failed.is_empty() => {
                if let Some(memo) = memo {
                    self.seal(memo).await;
                }
                Ok(())
            }
            FetchEnd::Done => Err(failed(pages_not_fetched(&still_failed))),
            FetchEnd::Paused => Err(Stop::Paused),
        }
    }

    /// FETCH: first the pages an earlier try of this pass could not fetch, each alone; then the source yields pages
    /// in order from `cursor` until the last (or a pause). The source hands its pages straight to the next stage.
    async fn fetch_stage(
        &self,
        cursor: Option<PageCursor>,
        retry: &[FailedPage],
        out: mpsc::Sender<FetchedPage>,
        memo: Option<&PassMemo>,
    ) -> Result<FetchEnd, Stop> {
        let end = match self.fetch_again(retry, &cursor, &out).await {
            StreamEnd::Done => match &cursor {
                Some(cursor) => self
                    .source
                    .stream(
                        self.entity,
                        cursor,
                        &out,
                        self.stop,
                        memo.map(|m| &m.lookup),
                    )
                    .await
                    .map_err(source_stop)?,
                None => StreamEnd::Done,
            },
            paused => paused,
        };
        Ok(match end {
            StreamEnd::Done => FetchEnd::Done,
            StreamEnd::Paused => FetchEnd::Paused,
        })
    }

    /// The pages passed over earlier in this pass, fetched again one by one. Each goes on with the pass's cursor as
    /// its `next`, so its checkpoint leaves the pass where it stood; one that fails again stays filed, with its new
    /// error.
    async fn fetch_again(
        &self,
        retry: &[FailedPage],
        resume_at: &Option<PageCursor>,
        out: &mpsc::Sender<FetchedPage>,
    ) -> StreamEnd {
        for filed in retry {
            if self.stop.requested() {
                return StreamEnd::Paused;
            }
            tracing::info!(
                entity = self.entity.name,
                page = filed.cursor.describe(),
                "fetching a page passed over before"
            );
            let page = match self.source.fetch_page(self.entity, &filed.cursor).await {
                Ok(page) => FetchedPage {
                    next: resume_at.clone(),
                    ..page
                },
                Err(e) => FetchedPage::failed(filed.cursor.clone(), resume_at.clone(), &e),
            };
            if out.send(page).await.is_err() {
                return StreamEnd::Done;
            }
        }
        StreamEnd::Done
    }

    /// NORMALIZE … DELTA: learns each page's fields (DDL when allowed), then transforms it on a blocking thread.
    async fn transform_stage(
        &self,
        mut input: mpsc::Receiver<FetchedPage>,
        mut numbers: PageNumbers,
        out: mpsc::Sender<Ready>,
        plan: TransformPlan,
        memo: Option<&PassMemo>,
    ) -> Result<(), Stop> {
        let TransformPlan {
            mut mapping,
            mut table_exists,
            encode_ahead,
        } = plan;
        let key_fields = Arc::new(self.entity.key_fields());
        let run_id: Arc<str> = Arc::from(self.run_id);
        let rowversion = Arc::new(self.entity.rowversion.clone());
        while let Some(page) = input.recv().await {
            let (page_no, retry_of) = numbers.next();
            let fetch_ms = page.fetch_ms;
            if let (
                Some(MemoNote::Unchanged {
                    cursor, records, ..
                }),
                Some(memo),
                Some(m),
            ) = (&page.memo, memo, &mapping)
            {
                let keys = self
                    .store
                    .memo_keys(self.pipeline, &self.entity.name, cursor)
                    .await
                    .map_err(failed)?;
                memo.skipped();
                let ready = Ready {
                    expected: page.expected,
                    page_no,
                    next: page.next,
                    records: *records,
                    mapping: Some(Arc::new(m.clone())),
                    table_exists,
                    transformed: Transformed::default(),
                    fetch_ms,
                    transform_ms: 0,
                    failed_pages: Vec::new(),
                    retried: retry_of.into_iter().collect(),
                    memo: MemoBatch {
                        unchanged: vec![cursor.clone()],
                        unchanged_keys: keys,
                        unchanged_records: *records,
                        ..Default::default()
                    },
                };
                if out.send(ready).await.is_err() {
                    return Ok(());
                }
                continue;
            }
            let failed_pages: Vec<FailedPage> = page
                .failure
                .map(|f| FailedPage {
                    page_no: retry_of.unwrap_or(page_no),
                    cursor: f.cursor,
                    error: f.error,
                })
                .into_iter()
                .collect();
            let started = Instant::now();
            // Children held back keep their record as fetched: only without parents are values moved out (the
            // transform makes rows into objects for them).
            let take = self.parents.is_empty();
            let records = Arc::new(page.records);
            if !records.is_empty() {
                let existed = table_exists;
                table_exists = self
                    .prepare_table(&mut mapping, records.clone(), table_exists)
                    .await?;
                if let (false, true, Some(memo)) = (existed, table_exists, memo) {
                    self.count_new_table(memo).await;
                }
            }
            let page_mapping = Arc::new(mapping.clone().unwrap_or_else(|| self.new_mapping()));
            let (mut transformed, records) = {
                let (m, keys, rv, run_id) = (
                    page_mapping.clone(),
                    key_fields.clone(),
                    rowversion.clone(),
                    run_id.clone(),
                );
                let encode = encode_ahead && mapping.is_some();
                tokio::task::spawn_blocking(move || {
                    // The page's only holder by now (LEARN is done with it), so nothing else sees it emptied.
                    let mut records =
                        Arc::try_unwrap(records).unwrap_or_else(|shared| (*shared).clone());
                    let mut transformed =
                        transform_records(&mut records, &m, &keys, rv.as_deref(), page_no, take);
                    if encode && !transformed.rows.is_empty() {
                        transformed.copy = CopyStream::encode(&transformed.rows, &m, &run_id);
                    }
                    (transformed, records)
                })
                .await
                .map_err(|e| failed(format!("transform stage stopped: {e}")))?
            };
            if let Some(cause) = one_cause_for_all(&transformed, &records, &key_fields, page_no) {
                return Err(failed(cause));
            }
            if table_exists {
                self.hold_orphans(&mut transformed, &page_mapping, &records)
                    .await?;
            }
            if let Some(samples) = self
                .options
                .samples
                .as_ref()
                .filter(|_| self.options.dry_run)
            {
                let table = self.entity.table_name();
                samples.offer(&self.entity.name, table, &page_mapping, &transformed.rows);
            }
            if !self.options.dry_run {
                self.keep_failed(&transformed.failed).await?;
            }
            if let Some(memo) = memo {
                memo.read();
            }
            let clean = mapping.is_some()
                && transformed.failed.is_empty()
                && transformed.duplicates == 0
                && transformed.held.is_empty()
                && transformed.rows.len() == records.len();
            let noted = match memo.filter(|_| clean) {
                Some(memo) => {
                    let keys: Vec<u128> = transformed
                        .rows
                        .iter()
                        .filter_map(|r| crate::sink::key_bits(&r.key_hash))
                        .collect();
                    (keys.len() == records.len())
                        .then(|| {
                            memo.note(
                                self.entity,
                                &page_mapping,
                                &page.memo,
                                &page.next,
                                records.len(),
                                keys,
                            )
                        })
                        .flatten()
                }
                None => None,
            };
            let ready = Ready {
                expected: page.expected,
                page_no,
                next: page.next,
                records: records.len() as u64,
                mapping: mapping.is_some().then_some(page_mapping),
                table_exists,
                transformed,
                fetch_ms,
                transform_ms: started.elapsed().as_millis() as u64,
                failed_pages,
                retried: retry_of.into_iter().collect(),
                memo: MemoBatch {
                    noted: noted.into_iter().collect(),
                    ..Default::default()
                },
            };
            // The page as fetched is not needed past here: freed before waiting on the ingest stage.
            drop(records);
            if out.send(ready).await.is_err() {
                return Ok(());
            }
        }
        Ok(())
    }

    /// RESOLVE: rows whose parent the target does not have yet are held back with their record as fetched.
    async fn hold_orphans(
        &self,
        transformed: &mut Transformed,
        mapping: &Mapping,
        records: &Records,
    ) -> Result<(), Stop> {
        if self.parents.is_empty() {
            return Ok(());
        }
        let records = records.objects();
        let rows = std::mem::take(&mut transformed.rows);
        let (kept, held) = crate::parents::hold_orphans(self.sink, self.parents, mapping, rows)
            .await
            .map_err(sink_stop)?;
        transformed.rows = kept;
        transformed.held = held
            .into_iter()
            .map(|h| super::pending::held_child(h, &records))
            .collect();
        Ok(())
    }

    /// Rows the target refused because it lacks their parent (a REST target's 404) join the waiting children,
    /// held by the first parent they name; returns how many were held, and those naming no parent (failed).
    async fn hold_refused_orphans(
        &self,
        mapping: &Mapping,
        rows: &[PreparedRow],
        orphans: &[(usize, String)],
    ) -> Result<(u64, Vec<(usize, String)>), Stop> {
        if orphans.is_empty() {
            return Ok((0, Vec::new()));
        }
        let picked: Vec<PreparedRow> = orphans
            .iter()
            .filter_map(|(i, _)| rows.get(*i).cloned())
            .collect();
        // Every parent counts as missing: the target said so.
        let nothing_present = vec![std::collections::HashSet::new(); self.parents.len()];
        let (no_parent, held) =
            crate::parents::split_orphans(picked, mapping, self.parents, &nothing_present);
        let children: Vec<HeldChild> = held
            .into_iter()
            .map(|h| {
                let raw = rows
                    .iter()
                    .find(|r| r.key_hash == h.key_hash)
                    .map(|r| as_record(mapping, r).to_string())
                    .unwrap_or_default();
                HeldChild {
                    key_hash: h.key_hash,
                    field: h.field,
                    parent_entity: h.parent_entity,
                    parent_key: h.parent_key.to_string(),
                    raw,
                }
            })
            .collect();
        if !children.is_empty() && !self.options.dry_run {
            self.store
                .settle_children(
                    self.pipeline,
                    &self.entity.name,
                    self.run_id,
                    &[],
                    &children,
                )
                .await
                .map_err(failed)?;
        }
        let unheld = orphans
            .iter()
            .filter(|(i, _)| {
                rows.get(*i)
                    .is_some_and(|r| no_parent.iter().any(|n| n.key_hash == r.key_hash))
            })
            .cloned()
            .collect();
        Ok((children.len() as u64, unheld))
    }

    /// The queue of waiting children follows each page, before the page commits (see `Store::settle_children`).
    async fn settle_children(&self, transformed: &Transformed) -> Result<(), Stop> {
        let landed: Vec<&str> = transformed
            .rows
            .iter()
            .map(|r| r.key_hash.as_str())
            .collect();
        self.store
            .settle_children(
                self.pipeline,
                &self.entity.name,
                self.run_id,
                &landed,
                &transformed.held,
            )
            .await
            .map_err(failed)
    }

    /// INGEST and TRACK: pages in order, each with its checkpoint in one target transaction.
    async fn ingest_stage(
        &self,
        input: mpsc::Receiver<Ready>,
        memo: Option<&PassMemo>,
        counts: &mut EntityCounts,
        pass: Pass,
    ) -> Result<(FetchEnd, Vec<FailedPage>), Stop> {
        let tracker = Tracker::start(
            (!self.options.dry_run).then(|| self.store.clone()),
            Owner {
                pipeline: self.pipeline.to_owned(),
                entity: self.entity.name.clone(),
                run_id: self.run_id.to_owned(),
            },
        );
        let ingested = self.ingest_pages(input, memo, counts, pass, &tracker).await;
        tracker.finish().await;
        ingested
    }

    async fn ingest_pages(
        &self,
        mut input: mpsc::Receiver<Ready>,
        memo: Option<&PassMemo>,
        counts: &mut EntityCounts,
        pass: Pass,
        tracker: &Tracker,
    ) -> Result<(FetchEnd, Vec<FailedPage>), Stop> {
        let Pass {
            skip_unchanged,
            mut starts_pass,
            deletes,
            edits_tracked,
            failed_pages: mut open_pages,
            fresh,
            mut seen_keys,
            mut rows_before,
        } = pass;
        let records_seen = deletes != crate::config::DeleteMode::None && !fresh;
        let interrupted = || self.stop.requested();
        // The pass's keys, compared with the table's at its end; a resumed pass starts from those it recorded.
        let mut pass_keys: Vec<u128> = Vec::new();
        let found_before = std::sync::Mutex::new(Vec::<u128>::new());
        if records_seen && !starts_pass {
            pass_keys = self
                .sink
                .recorded_seen(self.pipeline, &self.entity.name)
                .await
                .map_err(sink_stop)?;
            if self.sink.keeps_seen_keys() && seen_keys != Some(pass_keys.len() as u64) {
                tracing::warn!(
                    entity = self.entity.name,
                    recorded = pass_keys.len(),
                    expected = seen_keys,
                    "the keys this pass recorded as seen are not all there: no deletes from this pass"
                );
                seen_keys = None;
            }
        }
        let started = Instant::now();
        let fetched_before = counts.fetched;
        // Each stage's time over this run's batches of the entity, for its rate (records / the stage's seconds).
        let mut stage_totals = crate::store::StageTimes::default();
        // Only entities with waiting children (or that hold some in this pass) keep the queue in step.
        let mut children_waiting = !self.options.dry_run
            && !self.parents.is_empty()
            && self
                .store
                .open_children(self.pipeline, &self.entity.name)
                .await
                .map_err(failed)?
                > 0;
        let mut pending: Option<Ready> = None;
        let mut expected: Option<u64> = None;
        loop {
            let mut page = match pending.take() {
                Some(page) => page,
                None => match input.recv().await {
                    Some(page) => page,
                    None => break,
                },
            };
            // A pause takes effect after the batch in hand: pages queued behind it are fetched again on resume.
            // Entities side by side share a budget: a page is taken only while some is left.
            let budget = self.options.budget.as_ref();
            if self.stop.requested() || budget.is_some_and(|b| !b.take_page(page.records)) {
                return Ok((FetchEnd::Paused, open_pages));
            }
            // Pages that queued up while the last batch was written go in one transaction with this one.
            let mut absorbed = false;
            while let Some(more) = (!self.stop.requested())
                .then(|| input.try_recv().ok())
                .flatten()
            {
                if page.can_absorb(&more) && budget.is_none_or(|b| b.take_fitting(more.records)) {
                    page.absorb(more);
                    absorbed = true;
                } else {
                    pending = Some(more);
                    break;
                }
            }
            if absorbed {
                page.dedupe();
            }
            let Ready {
                page_no,
                next,
                records,
                mapping,
                table_exists,
                mut transformed,
                fetch_ms,
                transform_ms,
                expected: page_expected,
                failed_pages,
                retried,
                memo: mut memo_batch,
            } = page;
            open_pages.retain(|p| !retried.contains(&p.page_no));
            open_pages.extend(failed_pages);
            expected = page_expected.or(expected);
            let mut after = *counts;
            after.fetched += records;
            after.failed += transformed.failed.len() as u64;
            after.skipped += transformed.duplicates + memo_batch.unchanged_records;
            after.pending += transformed.held.len() as u64;
            children_waiting |= !transformed.held.is_empty() && !self.options.dry_run;
            if children_waiting {
                self.settle_children(&transformed).await?;
            }
            // The page's keys and its held children's (they are in the source, so they count as seen).
            let page_start = pass_keys.len();
            if records_seen && mapping.is_some() {
                let rows = transformed.rows.iter().map(|r| r.key_hash.as_str());
                let held = transformed.held.iter().map(|h| h.key_hash.as_str());
                pass_keys.extend(rows.chain(held).filter_map(crate::sink::key_bits));
                pass_keys.extend(&memo_batch.unchanged_keys);
                // Skipped as unchanged since the last pass, so in the table as this pass began.
                if let Ok(mut found) = found_before.lock() {
                    found.extend(&memo_batch.unchanged_keys);
                }
                let recorded = (pass_keys.len() - page_start) as u64;
                let counted = if starts_pass { Some(0) } else { seen_keys };
                seen_keys = counted.map(|n| n + recorded);
            }
            // The pass's last write compares the table's keys with the pass's.
            let rows_at_start = match (next.is_none(), rows_before.take()) {
                (true, Some(counted)) => counted.await.ok(),
                (false, counting) => {
                    rows_before = counting;
                    None
                }
                (true, None) => None,
            };
            let mut refused_count = 0u64;
            let mut checkpoint = Checkpoint {
                run_id: self.run_id.to_owned(),
                cursor: next,
                page_no,
                counts: after,
                failed_pages: open_pages.clone(),
                fresh,
                seen_keys,
                held_deletes: None,
            };
            let t_ingest = Instant::now();
            let merged = match (&mapping, table_exists || !self.options.dry_run) {
                (Some(m), true) => {
                    let key_columns: Vec<String> = m
                        .fields
                        .iter()
                        .filter(|f| m.key.contains(&f.source))
                        .map(|f| f.column.clone())
                        .collect();
                    let starts = std::mem::take(&mut starts_pass);
                    loop {
                        let file_conflicts =
                            |found: Vec<DetectedConflict>| -> BoxFuture<'_, Result<(), String>> {
                                let key_columns = &key_columns;
                                Box::pin(async move {
                                    self.store
                                        .record_conflicts(
                                            &ConflictScope {
                                                pipeline: self.pipeline,
                                                entity: &self.entity.name,
                                                table: self.entity.table_name(),
                                                run_id: self.run_id,
                                                key_columns,
                                            },
                                            &found,
                                        )
                                        .await
                                        .map_err(|e| e.to_string())
                                })
                            };
                        let write = PageWrite {
                            pipeline: self.pipeline,
                            entity: &self.entity.name,
                            table: self.entity.table_name(),
                            mapping: m,
                            rows: &transformed.rows,
                            checkpoint: Some(&checkpoint),
                            dry_run: self.options.dry_run,
                            skip_unchanged,
                            deletes,
                            starts_pass: starts,
                            conflicts: self.entity.conflicts,
                            edits_tracked,
                            conflict_log: (!self.options.dry_run).then_some(&file_conflicts),
                            page_keys: &pass_keys[page_start..],
                            pass_keys: records_seen.then_some(pass_keys.as_slice()),
                            rows_before: rows_at_start,
                            found_before: records_seen.then_some(&found_before),
                            interrupted: Some(&interrupted),
                            never_older: false,
                            delete_guard: self.delete_guard(),
                            late: false,
                            full_refresh: self.full_refresh(),
                            copy: transformed.copy.as_ref(),
                        };
                        let refused = match self.write_or_find_refused(&write).await? {
                            Ok(merged) => break merged,
                            Err(refused) => refused,
                        };
                        // Rows the target refused for a parent it lacks wait for it, like RESOLVE's.
                        let (orphans, refused): (Vec<_>, Vec<_>) =
                            refused.into_iter().partition(|(_, reason)| {
                                !self.parents.is_empty()
                                    && reason.starts_with(crate::sink::rest::PARENT_MISSING)
                            });
                        let (held, unheld) = self
                            .hold_refused_orphans(m, &transformed.rows, &orphans)
                            .await?;
                        let refused: Vec<(usize, String)> =
                            refused.into_iter().chain(unheld).collect();
                        // The refused rows leave the batch as failed records; the pass infers no deletes now.
                        self.file_refused(m, &transformed.rows, &refused, page_no)
                            .await?;
                        transformed.copy = None;
                        let mut index = 0;
                        transformed.rows.retain(|_| {
                            index += 1;
                            !refused.iter().chain(&orphans).any(|(r, _)| *r == index - 1)
                        });
                        checkpoint.counts.failed += refused.len() as u64;
                        checkpoint.counts.pending += held;
                        children_waiting |= held > 0 && !self.options.dry_run;
                        refused_count += refused.len() as u64;
                    }
                }
                // A dry run against a table that does not exist yet: every row would be new.
                (Some(_), false) => MergeCounts {
                    inserted: transformed.rows.len() as u64,
                    ..Default::default()
                },
                (None, _) => {
                    self.write_checkpoint_only(
                        &checkpoint,
                        std::mem::take(&mut starts_pass),
                        deletes,
                        None,
                        self.delete_guard(),
                    )
                    .await?
                }
            };
            checkpoint.counts.inserted =
                (checkpoint.counts.inserted + merged.inserted).saturating_sub(merged.repeated);
            checkpoint.counts.updated += merged.updated + merged.repeated;
            checkpoint.counts.skipped += merged.skipped;
            checkpoint.counts.deleted += merged.deleted;
            checkpoint.counts.conflicts += merged.conflicts;
            *counts = checkpoint.counts;
            let unchanged_records = memo_batch.unchanged_records;
            if let Some(memo) = memo {
                if refused_count > 0 {
                    memo_batch.noted.clear();
                }
                if memo_batch.repeated || merged.repeated > 0 {
                    memo.spoil("a key came on two pages");
                }
                if records_seen && mapping.is_some() {
                    // The batch's keys, decoded already for the pass's seen keys.
                    memo.written(pass_keys[page_start..].iter().copied());
                } else {
                    let written = transformed
                        .rows
                        .iter()
                        .filter_map(|r| crate::sink::key_bits(&r.key_hash));
                    memo.written(written.chain(memo_batch.unchanged_keys.iter().copied()));
                }
                self.remember(memo, memo_batch).await;
            }
            let ingest_ms = t_ingest.elapsed().as_millis() as u64;
            stage_totals.batches += 1;
            stage_totals.fetch_ms += fetch_ms;
            stage_totals.transform_ms += transform_ms;
            stage_totals.ingest_ms += ingest_ms;
            let metrics = BatchMetrics {
                page_no,
                records,
                inserted: merged.inserted,
                updated: merged.updated,
                skipped: merged.skipped + transformed.duplicates + unchanged_records,
                failed: transformed.failed.len() as u64 + refused_count,
                fetch_ms,
                transform_ms,
                ingest_ms,
            };
            // Freeing a page's rows is milliseconds of CPU that need not hold up the next page's write.
            tokio::task::spawn_blocking(move || drop(transformed));
            tracker
                .push(Tracked {
                    cursor: checkpoint
                        .cursor
                        .as_ref()
                        .and_then(|c| serde_json::to_string(c).ok()),
                    page_no: checkpoint.page_no,
                    counts: checkpoint.counts,
                    metrics,
                })
                .await;
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            (self.progress)(RunEvent::Page {
                entity: self.entity.name.clone(),
                page_no,
                counts: *counts,
                rows_per_s: (counts.fetched - fetched_before) as f64 / secs,
                expected,
                records,
                stages: stage_totals,
                stage_records: counts.fetched - fetched_before,
                target_calls: self.sink.write_calls(),
            });
            if let Some(held) = merged.held_deletes {
                return Err(Stop::DeletesHeld {
                    message: held.explain(self.entity.table_name(), self.entity.delete_guard()),
                    rows: held.rows,
                });
            }
        }
        Ok((FetchEnd::Done, open_pages))
    }

    /// Learns the page's fields; creates, extends or widens the table when allowed. Returns whether the table
    /// exists.
    async fn prepare_table(
        &self,
        mapping: &mut Option<Mapping>,
        records: Arc<Records>,
        exists: bool,
    ) -> Result<bool, Stop> {
        let table = self.entity.table_name();
        let before = mapping.take().unwrap_or_else(|| self.new_mapping());
        // Learning reads every value of the page: on a blocking thread, like the transform, so that fetching and
        // ingesting (polled on this task) go on meanwhile.
        let page = records.clone();
        let (learned, before, change) = tokio::task::spawn_blocking(move || {
            let mut learned = before.clone();
            let change = learned.learn_records(&records);
            (learned, before, change)
        })
        .await
        .map_err(|e| failed(format!("transform stage stopped: {e}")))?;
        let current = mapping.insert(learned);
        // A REST target takes the fields as they are learnt: there is no table to review or alter.
        if change.is_empty() || self.sink.schemaless() {
            return Ok(exists);
        }
        if !self.options.apply_schema {
            // Only a reviewed apply alters a table: the run stops before writing the page that needs it, and keeps
            // the records that need the change for the review to learn from.
            let message = unreviewed_change(table, exists, &change, &before, current);
            if !self.options.dry_run {
                let evidence = records_needing_change(&before, &page.objects());
                if let Err(e) = self
                    .store
                    .save_schema_evidence(self.pipeline, &self.entity.name, &evidence)
                    .await
                {
                    tracing::warn!("records needing a schema change not kept for the review: {e}");
                }
            }
            return Err(Stop::NeedsReview { message });
        }
        if self.options.dry_run {
            return Ok(exists);
        }
        let statements = self.sink.ddl(table, current, &change, exists);
        for statement in &statements {
            tracing::info!(table, "applying schema: {statement}");
        }
        self.sink
            .apply(table, &statements)
            .await
            .map_err(sink_stop)?;
        Ok(true)
    }

    /// With the schema applied: a table made before the lean tracking columns is converted to them (ADR 0013).
    async fn convert_tracking(&self, table: &str) -> Result<(), Stop> {
        let statements = self.sink.lean_conversion(table).await.map_err(sink_stop)?;
        if statements.is_empty() {
            return Ok(());
        }
        tracing::info!(
            table,
            "converting the tracking columns to the lean shape (bytea hashes, uuid run id)"
        );
        self.sink.apply(table, &statements).await.map_err(sink_stop)
    }

    /// Where a new pass starts: with `delta = "rowversion"`, at the target's highest rowversion when the source can
    /// select by change; otherwise at the first page.
    async fn start_cursor(&self, table: &str) -> Result<PageCursor, Stop> {
        if self.entity.delta == crate::config::DeltaStrategy::Rowversion
            && self.sink.columns(table).await.map_err(sink_stop)?.is_some()
        {
            if let Some(since) = self
                .sink
                .max_rowversion(self.pipeline, &self.entity.name, table)
                .await
                .map_err(sink_stop)?
            {
                if let Some(cursor) = self.source.changed_since(self.entity, &since) {
                    tracing::info!(entity = self.entity.name, since, "incremental pass");
                    return Ok(cursor);
                }
            }
        }
        Ok(self.source.first_cursor(self.entity))
    }

    fn new_mapping(&self) -> Mapping {
        Mapping::for_entity(self.entity)
            .with_declared(self.declared.clone())
            .with_fold_case(self.sink.folds_case())
    }

    /// Writes a checkpoint without rows (a page with no records, or the confirmation of held deletes, which
    /// compares `pass_keys` with the table's under `delete_guard`).
    /// With `delta = "full"` into PostgreSQL (not in a dry run): the deletes mode the swap applies.
    fn full_refresh(&self) -> Option<crate::config::DeleteMode> {
        (self.entity.delta == crate::config::DeltaStrategy::Full
            && !self.options.dry_run
            && self.sink.swaps_full_refresh())
        .then_some(self.entity.deletes)
    }

    async fn write_checkpoint_only(
        &self,
        checkpoint: &Checkpoint,
        starts_pass: bool,
        deletes: crate::config::DeleteMode,
        pass_keys: Option<&[u128]>,
        delete_guard: Option<f64>,
    ) -> Result<MergeCounts, Stop> {
        let empty = Mapping::default();
        let write = PageWrite {
            pipeline: self.pipeline,
            entity: &self.entity.name,
            table: self.entity.table_name(),
            mapping: &empty,
            rows: &[],
            checkpoint: Some(checkpoint),
            dry_run: self.options.dry_run,
            skip_unchanged: false,
            deletes,
            starts_pass,
            conflicts: ConflictStrategy::SourceWins,
            edits_tracked: false,
            conflict_log: None,
            page_keys: &[],
            pass_keys,
            rows_before: None,
            found_before: None,
            interrupted: None,
            never_older: false,
            delete_guard,
            late: false,
            full_refresh: self.full_refresh(),
            copy: None,
        };
        self.write_riding_out_restarts(&write).await
    }

    /// The delete guard of this run: the entity's share, or none when the run confirms held deletes.
    fn delete_guard(&self) -> Option<f64> {
        (!self.options.confirm_deletes).then(|| self.entity.delete_guard())
    }

    /// Applies the deletes the guard held at the end of a completed pass, from the keys that pass recorded as seen
    /// (the source is not read again), with the checkpoint that closes the pass in the same transaction.
    async fn confirm_held_deletes(
        &self,
        saved: Checkpoint,
        counts: &mut EntityCounts,
    ) -> Result<(), Stop> {
        let pass_keys = self
            .sink
            .recorded_seen(self.pipeline, &self.entity.name)
            .await
            .map_err(sink_stop)?;
        if self.sink.keeps_seen_keys()
            && self.full_refresh().is_none()
            && saved.seen_keys != Some(pass_keys.len() as u64)
        {
            return Err(failed(format!(
                "the held deletes of {} cannot be confirmed: the keys its pass saw are no longer all in the target; \
                 run again without --confirm-deletes for a new pass",
                self.entity.table_name()
            )));
        }
        let checkpoint = Checkpoint {
            run_id: self.run_id.to_owned(),
            held_deletes: None,
            ..saved.clone()
        };
        let merged = self
            .write_checkpoint_only(
                &checkpoint,
                false,
                self.entity.deletes,
                Some(&pass_keys),
                None,
            )
            .await?;
        counts.deleted += merged.deleted;
        tracing::info!(
            entity = self.entity.name,
            deleted = merged.deleted,
            "held deletes confirmed"
        );
        Ok(())
    }

    /// Writes a page with its checkpoint; a lost connection (a restart, a failover) is retried on a new one with
    /// backoff until the target's reconnect budget is spent, showing "waiting for the target" meanwhile.
    ///
    /// A connection lost while COMMIT was under way leaves it unknown whether the page landed: the target's
    /// checkpoint says. If it is this page's, the page is done (writing it again could apply the end-of-pass
    /// deletes a second time against a cleared seen set).
    async fn write_riding_out_restarts(&self, write: &PageWrite<'_>) -> Result<MergeCounts, Stop> {
        let started = Instant::now();
        let budget = self.sink.reconnect_budget();
        let mut wait = std::time::Duration::from_millis(250);
        loop {
            let lost = match self.sink.write_page(write, self.run_id).await {
                Ok(merged) => return Ok(merged),
                Err(SinkError::Interrupted { .. }) => return Err(Stop::Paused),
                Err(SinkError::Rejected { message, .. })
                    if !write.rows.is_empty() && !write.dry_run =>
                {
                    return Err(Stop::Refused { message });
                }
                Err(SinkError::RefusedRows { rows, .. }) => return Err(Stop::RefusedRows { rows }),
                Err(SinkError::ConnectionLost { message, .. }) => message,
                Err(other) => return Err(sink_stop(other)),
            };
            let waited = started.elapsed();
            if waited + wait > budget {
                return Err(failed(format!(
                    "lost the connection to the target and could not get it back within {} s ({lost}); the \
                     page was not written — run again to resume (target.connection.reconnect_s sets how long to wait)",
                    budget.as_secs()
                )));
            }
            tracing::warn!(
                entity = self.entity.name,
                "lost the target ({lost}); trying again in {wait:?}"
            );
            (self.progress)(RunEvent::Waiting {
                entity: self.entity.name.clone(),
                on: "target".into(),
                message: lost,
                waited_s: waited.as_secs(),
                budget_s: budget.as_secs(),
            });
            tokio::time::sleep(wait).await;
            wait = (wait * 2).min(std::time::Duration::from_secs(5));
            if self.stop.requested() {
                return Err(Stop::Paused);
            }
            if let Some(merged) = self.landed_already(write).await {
                return Ok(merged);
            }
        }
    }

    /// Writes the batch; when the database refuses some of its rows, says which (with its reasons) instead, having
    /// written nothing — the caller files them as failed records and writes the rest (one bad record fails one
    /// record).
    async fn write_or_find_refused(
        &self,
        write: &PageWrite<'_>,
    ) -> Result<Result<MergeCounts, Vec<(usize, String)>>, Stop> {
        match self.write_riding_out_restarts(write).await {
            Err(Stop::RefusedRows { rows }) => {
                tracing::warn!(
                    entity = self.entity.name,
                    refused = rows.len(),
                    "the target refused records of the batch; the rest is written"
                );
                Ok(Err(rows))
            }
            Err(Stop::Refused { message }) => {
                let refused = self.refused_rows(write).await?;
                if refused.is_empty() {
                    // The batch as a whole is refused, no row alone (a constraint across rows).
                    return Err(failed(format!(
                        "target {} refused the batch: {message}",
                        write.table
                    )));
                }
                tracing::warn!(
                    entity = self.entity.name,
                    refused = refused.len(),
                    "the target refused records of the batch; the rest is written"
                );
                Ok(Err(refused))
            }
            other => other.map(Ok),
        }
    }

    /// The rows of the batch the database refuses on their own, with its reason: halves are written in transactions
    /// that roll back until each refusal is pinned to one row (a few dozen writes for one bad row in thousands).
    async fn refused_rows(&self, write: &PageWrite<'_>) -> Result<Vec<(usize, String)>, Stop> {
        let mut refused = Vec::new();
        let mut parts = vec![(0, write.rows.len())];
        while let Some((start, end)) = parts.pop() {
            match self
                .sink
                .write_page(&write.probe(&write.rows[start..end]), self.run_id)
                .await
            {
                Ok(_) => {}
                Err(SinkError::Rejected { message, .. }) if end - start == 1 => {
                    refused.push((start, message));
                }
                Err(SinkError::Rejected { .. }) => {
                    let middle = start + (end - start) / 2;
                    parts.push((middle, end));
                    parts.push((start, middle));
                }
                Err(SinkError::Interrupted { .. }) => return Err(Stop::Paused),
                Err(other) => return Err(sink_stop(other)),
            }
        }
        Ok(refused)
    }

    /// Files the rows the database refused as failed records (as far as they got: normalised values by source
    /// field), with its reason.
    async fn file_refused(
        &self,
        mapping: &Mapping,
        rows: &[PreparedRow],
        refused: &[(usize, String)],
        page_no: u64,
    ) -> Result<(), Stop> {
        let records: Vec<FailedRecord> = refused
            .iter()
            .filter_map(|(i, reason)| rows.get(*i).map(|row| (row, reason)))
            .map(|(row, reason)| FailedRecord {
                page_no,
                record_index: u64::from(row.record_index),
                stage: "ingest",
                error_type: "refused",
                message: format!("the target refused the record: {reason}"),
                raw: as_record(mapping, row).to_string(),
                processed: None,
            })
            .collect();
        self.keep_failed(&records).await
    }

    /// Failed records go to the queue (state database) and, where and why only, to the run's log.
    async fn keep_failed(&self, records: &[FailedRecord]) -> Result<(), Stop> {
        for record in records {
            self.log.record_failed(
                &self.entity.name,
                record.page_no,
                record.record_index,
                record.stage,
                &record.message,
            );
        }
        self.store
            .record_failed(self.run_id, self.pipeline, &self.entity.name, records)
            .await
            .map_err(failed)
    }

    /// The page's merge counts if the target's checkpoint shows the page committed (read back after a lost
    /// connection); None if it did not, or the target cannot be asked yet.
    async fn landed_already(&self, write: &PageWrite<'_>) -> Option<MergeCounts> {
        let written = write.checkpoint?;
        if write.dry_run {
            return None;
        }
        let stored = self
            .sink
            .read_checkpoint(self.pipeline, &self.entity.name)
            .await
            .ok()??;
        let same = stored.run_id == written.run_id
            && stored.page_no == written.page_no
            && stored.cursor == written.cursor;
        same.then(|| {
            tracing::info!(
                entity = self.entity.name,
                page = written.page_no,
                "the page had landed before the connection was lost"
            );
            let (now, then) = (stored.counts, written.counts);
            MergeCounts {
                inserted: now.inserted.saturating_sub(then.inserted),
                updated: now.updated.saturating_sub(then.updated),
                skipped: now.skipped.saturating_sub(then.skipped),
                deleted: now.deleted.saturating_sub(then.deleted),
                conflicts: now.conflicts.saturating_sub(then.conflicts),
                held_deletes: stored.held_deletes,
                repeated: 0,
            }
        })
    }
}

/// NORMALIZE → VALIDATE → MAP → IDENTITY → DELTA for one page (pure CPU work).
/// A page needs this many records before "every record failed the same way" reads as one mistake.
const ONE_CAUSE_MIN_RECORDS: usize = 10;

/// A page whose every record failed the same way (the same stage, the same kind of error) is one mistake — a
/// business key the source does not have, a field typed wrongly — not that many bad records: the run stops with the
/// cause instead of filing them all as failed records. Nothing is lost: the page was not written, the next run
/// reads it again.
pub(super) fn one_cause_for_all(
    transformed: &Transformed,
    records: &Records,
    key_fields: &[String],
    page_no: u64,
) -> Option<String> {
    let first = transformed.failed.first()?;
    let all_failed = records.len() >= ONE_CAUSE_MIN_RECORDS
        && transformed.rows.is_empty()
        && transformed.held.is_empty()
        && transformed.failed.len() == records.len();
    if !all_failed
        || !transformed
            .failed
            .iter()
            .all(|f| f.stage == first.stage && f.error_type == first.error_type)
    {
        return None;
    }
    let count = records.len();
    // Only a page whose every record failed gets here: rows are made into objects for it alone.
    let records = records.objects();
    let absent: Vec<String> = key_fields
        .iter()
        .filter(|key| {
            !records
                .iter()
                .any(|r| r.get(key.as_str()).is_some_and(|v| !v.is_null()))
        })
        .map(|key| format!("`{key}`"))
        .collect();
    if absent.is_empty() {
        return Some(format!(
            "every one of the {count} records of page {page_no} failed in {} the same way; the first: {}. The run \
             stopped instead of filing them all as failed records: fix the mapping (or the source), then run again",
            first.stage, first.message
        ));
    }
    Some(format!(
        "business key {} is in none of the {count} records of page {page_no}; fields seen: {}. Choose the key among \
         them (Mapping, or business_key in the pipeline file), then run again",
        absent.join(", "),
        fields_seen(&records).join(", ")
    ))
}

/// The field names of the first records, in order of appearance (at most 20).
fn fields_seen(records: &[Value]) -> Vec<String> {
    let mut seen: Vec<String> = Vec::new();
    for record in records.iter().take(100) {
        for key in record.as_object().into_iter().flat_map(|o| o.keys()) {
            if !seen.contains(key) {
                seen.push(key.clone());
            }
        }
    }
    seen.truncate(20);
    seen
}

/// TRANSFORM of one page. With `take`, the values of every record that becomes a row are moved out of it (the
/// record is left empty; a record that fails keeps all its values, for its raw JSON): a caller that still needs the
/// records as fetched (children held back with their record) passes false.
pub(crate) fn transform(
    records: &mut [Value],
    mapping: &Mapping,
    key_fields: &[String],
    rowversion: Option<&str>,
    page_no: u64,
    take: bool,
) -> Transformed {
    let mut making = PageMaking::new(mapping, key_fields, rowversion, page_no, records.len());
    let mut taken = crate::normalize::TakenRecord::default();
    for (index, record) in records.iter_mut().enumerate() {
        let normalizer = &making.normalizer;
        let values = match take {
            true => values_taken(record, normalizer, &mut taken, mapping, key_fields),
            false => values_copied(record, normalizer, mapping, key_fields),
        };
        making.record(index, values, || record.to_string());
    }
    making.done()
}

/// TRANSFORM of one page's records, read as objects or as rows (the same rows and failed records either way).
pub(crate) fn transform_records(
    records: &mut Records,
    mapping: &Mapping,
    key_fields: &[String],
    rowversion: Option<&str>,
    page_no: u64,
    take: bool,
) -> Transformed {
    if !take && matches!(records, Records::Rows { .. }) {
        *records = Records::Objects(std::mem::take(records).into_objects());
    }
    match records {
        Records::Objects(objects) => {
            transform(objects, mapping, key_fields, rowversion, page_no, take)
        }
        Records::Rows { fields, rows } => {
            transform_rows(fields, rows, mapping, key_fields, rowversion, page_no)
        }
    }
}

/// [`transform`] of records read as rows, values moved out of every row that becomes a row of the target.
fn transform_rows(
    fields: &[String],
    records: &mut [Vec<Value>],
    mapping: &Mapping,
    key_fields: &[String],
    rowversion: Option<&str>,
    page_no: u64,
) -> Transformed {
    let mut making = PageMaking::new(mapping, key_fields, rowversion, page_no, records.len());
    let mut taker = crate::normalize::RowTaker::new(mapping, fields);
    for (index, record) in records.iter_mut().enumerate() {
        let values = row_values_taken(record, &making.normalizer, &mut taker, mapping, key_fields);
        making.record(index, values, || {
            crate::records::object_of(fields, record.clone()).to_string()
        });
    }
    making.done()
}

/// What TRANSFORM makes of a page as it goes through its records: rows, and failed records.
struct PageMaking<'m> {
    normalizer: crate::normalize::RecordNormalizer<'m>,
    hasher: identity::RecordHasher,
    rowversion_at: Option<usize>,
    page_no: u64,
    rows: Vec<PreparedRow>,
    failed: Vec<FailedRecord>,
}

impl<'m> PageMaking<'m> {
    fn new(
        mapping: &'m Mapping,
        key_fields: &[String],
        rowversion: Option<&str>,
        page_no: u64,
        records: usize,
    ) -> PageMaking<'m> {
        PageMaking {
            normalizer: crate::normalize::RecordNormalizer::new(mapping),
            hasher: identity::RecordHasher::new(mapping, key_fields),
            rowversion_at: rowversion
                .and_then(|field| mapping.fields.iter().position(|f| f.source == field)),
            page_no,
            rows: Vec::with_capacity(records),
            failed: Vec::new(),
        }
    }

    /// The record at `index` made a row of its values, or filed as failed with its `raw` JSON.
    fn record(
        &mut self,
        index: usize,
        values: Result<Vec<Value>, Rejected>,
        raw: impl FnOnce() -> String,
    ) {
        match values {
            Ok(values) => self.rows.push(identify(
                values,
                &mut self.hasher,
                self.rowversion_at,
                index as u32,
            )),
            Err(rejected) => self
                .failed
                .push(rejected.failed_record(self.page_no, index, raw())),
        }
    }

    /// The page's rows (the last of each key kept) and failed records.
    fn done(self) -> Transformed {
        let (rows, duplicates) = crate::delta::dedupe_by_key(self.rows, |r| r.key_hash.as_str());
        Transformed {
            rows,
            failed: self.failed,
            duplicates: duplicates as u64,
            held: Vec::new(),
            copy: None,
        }
    }
}

/// Why a record did not become a row (its failed record, but for what the record itself says).
struct Rejected {
    stage: &'static str,
    error_type: &'static str,
    message: String,
    /// Its normalised values under their column names, when it got that far.
    processed: Option<String>,
}

impl Rejected {
    /// The failed record of the record at `index` of the page, `raw` as fetched.
    fn failed_record(self, page_no: u64, index: usize, raw: String) -> FailedRecord {
        FailedRecord {
            page_no,
            record_index: index as u64,
            stage: self.stage,
            error_type: self.error_type,
            message: self.message,
            raw,
            processed: self.processed,
        }
    }

    fn not_an_object() -> Rejected {
        Rejected {
            stage: "normalize",
            error_type: "not_an_object",
            message: "the record is not a JSON object".into(),
            processed: None,
        }
    }

    fn normalize(e: crate::normalize::NormalizeError) -> Rejected {
        Rejected {
            stage: "normalize",
            error_type: "type",
            message: e.to_string(),
            processed: None,
        }
    }

    fn validate(message: String, values: &[Value], mapping: &Mapping) -> Rejected {
        Rejected {
            stage: "validate",
            error_type: "invalid",
            message,
            processed: Some(as_far_as_it_got(values, mapping)),
        }
    }
}

/// NORMALIZE and VALIDATE of a record, its values copied (the record stays as fetched).
fn values_copied(
    record: &Value,
    normalizer: &crate::normalize::RecordNormalizer<'_>,
    mapping: &Mapping,
    key_fields: &[String],
) -> Result<Vec<Value>, Rejected> {
    let object = record.as_object().ok_or_else(Rejected::not_an_object)?;
    let values = normalizer.normalize(object).map_err(Rejected::normalize)?;
    crate::validate::validate_record(&values, mapping, key_fields)
        .map_err(|message| Rejected::validate(message, &values, mapping))?;
    Ok(values)
}

/// NORMALIZE and VALIDATE of a record, its values moved out when it becomes a row; a rejected record is given
/// everything back.
fn values_taken(
    record: &mut Value,
    normalizer: &crate::normalize::RecordNormalizer<'_>,
    taken: &mut crate::normalize::TakenRecord,
    mapping: &Mapping,
    key_fields: &[String],
) -> Result<Vec<Value>, Rejected> {
    let object = record.as_object_mut().ok_or_else(Rejected::not_an_object)?;
    taken.take(object);
    let values = match normalizer.normalize_taking(taken) {
        Ok(values) => values,
        Err(e) => {
            taken.give_back(object, Vec::new());
            return Err(Rejected::normalize(e));
        }
    };
    if let Err(message) = crate::validate::validate_record(&values, mapping, key_fields) {
        let rejected = Rejected::validate(message, &values, mapping);
        taken.give_back(object, values);
        return Err(rejected);
    }
    taken.clear();
    Ok(values)
}

/// [`values_taken`] of a record read as a row.
fn row_values_taken(
    row: &mut [Value],
    normalizer: &crate::normalize::RecordNormalizer<'_>,
    taker: &mut crate::normalize::RowTaker,
    mapping: &Mapping,
    key_fields: &[String],
) -> Result<Vec<Value>, Rejected> {
    let values = normalizer
        .normalize_row(taker, row)
        .map_err(Rejected::normalize)?;
    if let Err(message) = crate::validate::validate_record(&values, mapping, key_fields) {
        let rejected = Rejected::validate(message, &values, mapping);
        taker.give_back(row, values);
        return Err(rejected);
    }
    Ok(values)
}

/// A record's normalised values under their column names (what the dead-letter browser shows as "as far as it
/// got"): a bare array would leave the analyst counting positions.
fn as_far_as_it_got(values: &[Value], mapping: &Mapping) -> String {
    let named: serde_json::Map<String, Value> = mapping
        .fields
        .iter()
        .zip(values)
        .map(|(field, value)| (field.column.clone(), value.clone()))
        .collect();
    Value::Object(named).to_string()
}

fn identify(
    values: Vec<Value>,
    hasher: &mut identity::RecordHasher,
    rowversion_at: Option<usize>,
    record_index: u32,
) -> PreparedRow {
    let (key_hash, data_hash) = hasher.hashes(&values);
    let rowversion = rowversion_at.and_then(|i| match values.get(i) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(other) => Some(other.to_string()),
    });
    PreparedRow {
        id: uuid::Uuid::now_v7(),
        key_hash,
        data_hash,
        rowversion,
        values,
        record_index,
    }
}

/// Pages a stage may hold ahead of the next one: two small ones, or one of `ROWS_IN_FLIGHT` rows or more (each
/// stage holds one more while it waits to hand it on, so a large page is not queued twice).
const PAGES_IN_FLIGHT: usize = 2;
const ROWS_IN_FLIGHT: usize = 4_000;

/// Rows one target transaction takes at most when pages queue up: small pages (Bubble's 100) are written together,
/// so the cost of a transaction and its checkpoint is paid once per batch rather than once per page.
const BATCH_ROWS: usize = 2_000;

/// Numbers the pages as they come: each its own, and a passed-over page fetched again also the number it had.
struct PageNumbers {
    last: u64,
    retried: std::collections::VecDeque<u64>,
}

impl PageNumbers {
    /// The next page's number, and the number of the passed-over page it fetches again.
    fn next(&mut self) -> (u64, Option<u64>) {
        self.last += 1;
        (self.last, self.retried.pop_front())
    }
}

/// What the transform stage starts a pass with.
struct TransformPlan {
    /// The mapping so far (None: learnt from the first page).
    mapping: Option<Mapping>,
    table_exists: bool,
    /// Encode each page's rows for the target beside the transform (see `pages`).
    encode_ahead: bool,
}

/// A transformed page on its way to the ingest stage, with the mapping it was transformed under.
struct Ready {
    page_no: u64,
    next: Option<PageCursor>,
    records: u64,
    mapping: Option<Arc<Mapping>>,
    table_exists: bool,
    transformed: Transformed,
    fetch_ms: u64,
    transform_ms: u64,
    expected: Option<u64>,
    /// Pages passed over in this batch (or fetched again and failed again).
    failed_pages: Vec<FailedPage>,
    /// Numbers of passed-over pages this batch fetched again.
    retried: Vec<u64>,
    /// The batch's pages as the page memo sees them.
    memo: MemoBatch,
}

impl Ready {
    /// Whether `other` can be written in the same transaction (same mapping and table state, batch not full).
    fn can_absorb(&self, other: &Ready) -> bool {
        let same_mapping = match (&self.mapping, &other.mapping) {
            (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
            (None, None) => true,
            _ => false,
        };
        same_mapping
            && self.table_exists == other.table_exists
            && self.transformed.rows.len() + other.transformed.rows.len() <= BATCH_ROWS
    }

    /// Takes `other` (the following page) into this batch; the batch ends where `other` ends.
    fn absorb(&mut self, other: Ready) {
        self.page_no = other.page_no;
        self.next = other.next;
        self.records += other.records;
        self.fetch_ms += other.fetch_ms;
        self.transform_ms += other.transform_ms;
        self.expected = other.expected.or(self.expected);
        self.transformed.rows.extend(other.transformed.rows);
        self.transformed.failed.extend(other.transformed.failed);
        self.transformed.duplicates += other.transformed.duplicates;
        self.transformed.held.extend(other.transformed.held);
        self.transformed.copy = match (self.transformed.copy.take(), other.transformed.copy) {
            (Some(mut mine), Some(theirs)) => {
                mine.append(theirs);
                Some(mine)
            }
            _ => None,
        };
        self.failed_pages.extend(other.failed_pages);
        self.retried.extend(other.retried);
        self.memo.absorb(other.memo);
    }

    /// Repeated keys across the absorbed pages: the last wins, as within a page.
    fn dedupe(&mut self) {
        let rows = std::mem::take(&mut self.transformed.rows);
        let (rows, dropped) = crate::delta::dedupe_by_key(rows, |r| r.key_hash.as_str());
        self.transformed.rows = rows;
        self.transformed.duplicates += dropped as u64;
        if dropped > 0 {
            self.transformed.copy = None;
        }
        // A key on two of the batch's pages: the earlier page's record lost, so it is not what its page says.
        if dropped > 0 {
            self.memo.noted.clear();
            self.memo.repeated = true;
        }
    }
}

/// How the ingest stage writes this pass's pages.
struct Pass {
    skip_unchanged: bool,
    starts_pass: bool,
    deletes: crate::config::DeleteMode,
    edits_tracked: bool,
    /// Pages of the pass filed as not fetched (from the checkpoint).
    failed_pages: Vec<FailedPage>,
    /// The pass began into an empty table (nothing to delete at its end, no keys to record).
    fresh: bool,
    /// Keys recorded as seen so far in the pass (None: unknown, so no deletes from this pass).
    seen_keys: Option<u64>,
    /// How many rows the table held as the pass began, counted while it runs (PostgreSQL, a pass that deletes).
    rows_before: Option<tokio::sync::oneshot::Receiver<u64>>,
}

/// Why the entity is not done: the pages the pass went on without.
fn pages_not_fetched(pages: &[FailedPage]) -> String {
    let listed: Vec<String> = pages
        .iter()
        .map(|p| format!("{} ({})", p.cursor.describe(), p.error))
        .collect();
    format!(
        "{} page(s) could not be fetched and were passed over: {}; every other page is synced — run the pipeline \
         again to fetch just these",
        pages.len(),
        listed.join("; ")
    )
}

enum FetchEnd {
    Done,
    Paused,
}
