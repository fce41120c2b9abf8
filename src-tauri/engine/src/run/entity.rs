//! One entity's pages through the stages.

use super::{Progress, RunEvent, RunOptions, StopSignal};
use crate::config::Entity;
use crate::identity;
use crate::schema::Mapping;
use crate::sink::{Checkpoint, PageWrite, PreparedRow, Sink, SinkError};
use crate::source::rest::RestClient;
use crate::store::{BatchMetrics, FailedRecord, Store};
use crate::track::EntityCounts;
use serde_json::Value;
use std::time::Instant;

pub(super) enum Stop {
    Paused,
    Failed { message: String, invalid: bool },
}

pub(super) struct EntityRun<'a> {
    pub pipeline: &'a str,
    pub run_id: &'a str,
    pub entity: &'a Entity,
    pub client: &'a RestClient,
    pub sink: &'a Sink,
    pub store: &'a Store,
    pub options: &'a RunOptions,
    pub progress: Progress<'a>,
    pub stop: &'a StopSignal,
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

/// The records of one page after the transform stages.
struct Transformed {
    rows: Vec<PreparedRow>,
    failed: Vec<FailedRecord>,
    duplicates: u64,
}

impl EntityRun<'_> {
    /// Runs the entity to its end; returns its counts and why it stopped early, if it did.
    pub async fn run(&self) -> (EntityCounts, Option<Stop>) {
        let mut counts = EntityCounts::default();
        let stopped = self.pages(&mut counts).await.err();
        let status = match &stopped {
            None => "completed",
            Some(Stop::Paused) => "paused",
            Some(Stop::Failed { .. }) => "failed",
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
        let (mut cursor, mut page_no) = match saved {
            Some(c) if c.run_id == self.run_id => {
                *counts = c.counts;
                match c.cursor {
                    None => return Ok(()),
                    Some(cursor) => (cursor, c.page_no),
                }
            }
            _ => (RestClient::first_cursor(self.entity), 0),
        };
        let existing = self.sink.columns(table).await.map_err(sink_stop)?;
        let mut table_exists = existing.is_some();
        let mut mapping: Option<Mapping> =
            existing.map(|columns| Mapping::from_columns(columns, self.entity));
        let started = Instant::now();
        let fetched_before = counts.fetched;
        loop {
            if self.stop.requested() {
                return Err(Stop::Paused);
            }
            let t_fetch = Instant::now();
            let page = self
                .client
                .fetch_page(self.entity, &cursor)
                .await
                .map_err(source_stop)?;
            let fetch_ms = t_fetch.elapsed().as_millis() as u64;
            page_no += 1;
            let t_transform = Instant::now();
            if !page.records.is_empty() {
                table_exists = self
                    .prepare_table(&mut mapping, &page.records, table_exists)
                    .await?;
            }
            let transformed = match &mapping {
                Some(m) => self.transform(&page.records, m, page_no),
                None => Transformed {
                    rows: Vec::new(),
                    failed: Vec::new(),
                    duplicates: 0,
                },
            };
            let transform_ms = t_transform.elapsed().as_millis() as u64;
            if !self.options.dry_run {
                self.store
                    .record_failed(
                        self.run_id,
                        self.pipeline,
                        &self.entity.name,
                        &transformed.failed,
                    )
                    .await
                    .map_err(failed)?;
            }
            let mut after = *counts;
            after.fetched += page.records.len() as u64;
            after.failed += transformed.failed.len() as u64;
            after.skipped += transformed.duplicates;
            let mut checkpoint = Checkpoint {
                run_id: self.run_id.to_owned(),
                cursor: page.next.clone(),
                page_no,
                counts: after,
            };
            let t_ingest = Instant::now();
            let merged = match (&mapping, table_exists || !self.options.dry_run) {
                (Some(m), true) => {
                    let write = PageWrite {
                        pipeline: self.pipeline,
                        entity: &self.entity.name,
                        table,
                        mapping: m,
                        rows: &transformed.rows,
                        checkpoint: &checkpoint,
                        dry_run: self.options.dry_run,
                    };
                    self.sink
                        .write_page(&write, self.run_id)
                        .await
                        .map_err(sink_stop)?
                }
                // A dry run against a table that does not exist yet: every row would be new.
                (Some(_), false) => crate::sink::MergeCounts {
                    inserted: transformed.rows.len() as u64,
                    ..Default::default()
                },
                (None, _) => {
                    self.write_checkpoint_only(&checkpoint).await?;
                    Default::default()
                }
            };
            checkpoint.counts.inserted += merged.inserted;
            checkpoint.counts.updated += merged.updated;
            checkpoint.counts.skipped += merged.skipped;
            *counts = checkpoint.counts;
            let ingest_ms = t_ingest.elapsed().as_millis() as u64;
            self.track(
                &checkpoint,
                BatchMetrics {
                    page_no,
                    records: page.records.len() as u64,
                    inserted: merged.inserted,
                    updated: merged.updated,
                    skipped: merged.skipped + transformed.duplicates,
                    failed: transformed.failed.len() as u64,
                    fetch_ms,
                    transform_ms,
                    ingest_ms,
                },
            )
            .await;
            let secs = started.elapsed().as_secs_f64().max(1e-3);
            (self.progress)(RunEvent::Page {
                entity: self.entity.name.clone(),
                page_no,
                counts: *counts,
                rows_per_s: (counts.fetched - fetched_before) as f64 / secs,
            });
            match page.next {
                Some(next) => cursor = next,
                None => return Ok(()),
            }
        }
    }

    /// Learns the page's fields; creates, extends or widens the table when allowed. Returns whether the table
    /// exists.
    async fn prepare_table(
        &self,
        mapping: &mut Option<Mapping>,
        records: &[Value],
        exists: bool,
    ) -> Result<bool, Stop> {
        let table = self.entity.table_name();
        let current = mapping.get_or_insert_with(|| Mapping::for_entity(self.entity));
        let before = current.clone();
        let change = current.learn(records);
        if change.is_empty() {
            return Ok(exists);
        }
        if !self.options.apply_schema {
            // Keep the old mapping: records that do not fit fail one by one, each with its field named.
            *current = before;
            return match (exists, change.added.first()) {
                (false, _) => Err(sink_stop(SinkError::MissingTable {
                    table: table.to_owned(),
                })),
                (true, Some(field)) => Err(sink_stop(SinkError::MissingColumn {
                    table: table.to_owned(),
                    field: field.clone(),
                })),
                (true, None) => Ok(true),
            };
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

    /// NORMALIZE → VALIDATE → MAP → IDENTITY → DELTA for one page.
    fn transform(&self, records: &[Value], mapping: &Mapping, page_no: u64) -> Transformed {
        let key_fields = self.entity.key_fields();
        let mut rows = Vec::with_capacity(records.len());
        let mut failures = Vec::new();
        for (index, record) in records.iter().enumerate() {
            let reject = |stage: &'static str,
                          error_type: &'static str,
                          message: String,
                          processed: Option<&Vec<Value>>| FailedRecord {
                page_no,
                record_index: index as u64,
                stage,
                error_type,
                message,
                raw: record.to_string(),
                processed: processed.map(|p| Value::Array(p.clone()).to_string()),
            };
            let Some(object) = record.as_object() else {
                failures.push(reject(
                    "normalize",
                    "not_an_object",
                    "the record is not a JSON object".into(),
                    None,
                ));
                continue;
            };
            let values = match crate::normalize::normalize_record(object, mapping) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(reject("normalize", "type", e.to_string(), None));
                    continue;
                }
            };
            if let Err(message) = crate::validate::validate_record(&values, mapping, &key_fields) {
                failures.push(reject("validate", "invalid", message, Some(&values)));
                continue;
            }
            rows.push(self.identify(values, mapping, &key_fields));
        }
        let (rows, duplicates) = crate::delta::dedupe_by_key(rows, |r| r.key_hash.as_str());
        Transformed {
            rows,
            failed: failures,
            duplicates: duplicates as u64,
        }
    }

    fn identify(
        &self,
        values: Vec<Value>,
        mapping: &Mapping,
        key_fields: &[String],
    ) -> PreparedRow {
        let (key_hash, data_hash) = identity::record_hashes(mapping, &values, key_fields);
        let pairs = || {
            mapping
                .fields
                .iter()
                .map(|f| f.source.as_str())
                .zip(values.iter())
        };
        let rowversion = self.entity.rowversion.as_ref().and_then(|field| {
            pairs()
                .find(|(name, _)| name == field)
                .and_then(|(_, v)| match v {
                    Value::Null => None,
                    Value::String(s) => Some(s.clone()),
                    other => Some(other.to_string()),
                })
        });
        PreparedRow {
            id: uuid::Uuid::now_v7(),
            key_hash,
            data_hash,
            rowversion,
            values,
        }
    }

    async fn write_checkpoint_only(&self, checkpoint: &Checkpoint) -> Result<(), Stop> {
        let empty = Mapping::default();
        let write = PageWrite {
            pipeline: self.pipeline,
            entity: &self.entity.name,
            table: self.entity.table_name(),
            mapping: &empty,
            rows: &[],
            checkpoint,
            dry_run: self.options.dry_run,
        };
        self.sink
            .write_page(&write, self.run_id)
            .await
            .map_err(sink_stop)
            .map(|_| ())
    }

    /// TRACK: the state DB follows the target's commit.
    async fn track(&self, checkpoint: &Checkpoint, metrics: BatchMetrics) {
        if self.options.dry_run {
            return;
        }
        let cursor = checkpoint
            .cursor
            .as_ref()
            .and_then(|c| serde_json::to_string(c).ok());
        let results = [
            self.store
                .save_checkpoint(
                    self.pipeline,
                    &self.entity.name,
                    self.run_id,
                    cursor.as_deref(),
                    checkpoint.page_no,
                )
                .await,
            self.store
                .save_entity_counts(
                    self.run_id,
                    &self.entity.name,
                    "running",
                    checkpoint.page_no,
                    &checkpoint.counts,
                )
                .await,
            self.store
                .record_batch(self.run_id, &self.entity.name, &metrics)
                .await,
        ];
        for result in results {
            if let Err(e) = result {
                // The target holds the truth; a lagging state DB only delays what the console shows.
                tracing::warn!("state database not updated: {e}");
            }
        }
    }
}
