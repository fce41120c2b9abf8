//! The REST target (seed 003's INGEST): records go to an API that has no transactions, so the effect is made
//! exactly-once by looking up before writing. A page's keys are looked up by BK_HASH first (unchanged records are
//! skipped with no write call, changed ones PATCHed with their changed fields, the rest created by batch POST); a
//! create whose outcome is unknown (a 5xx, a timeout, a reset) is followed by a lookup of its keys before anything
//! is sent again, a 409 is looked up and updated; and the checkpoint goes to the state database only after every
//! call of the page succeeded. Whatever moment the process dies at, the page is written again from a lookup, so no
//! record is created twice.

use super::{Checkpoint, MergeCounts, PageWrite, PreparedRow, SinkError, UndoRefusal, UndoTable};
use crate::config::RestTarget;
use crate::source::rest::{backoff, RestClient};
use crate::source::SourceError;
use futures_util::stream::{self, StreamExt, TryStreamExt};
use reqwest::{Method, StatusCode, Url};
use serde_json::{Map, Value};
use sqlx::SqlitePool;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

/// How a refusal for a missing parent begins (the engine holds such rows as waiting children when the entity
/// declares its parents).
pub const PARENT_MISSING: &str = "the target lacks the record's parent";

/// Forgets the announced create of a key (see `note_intents`).
const FORGET_INTENT: &str =
    "DELETE FROM rest_target_intents WHERE pipeline = ? AND entity = ? AND key_hash = ?";
/// Keys per lookup request (32 hex digits each: a URL of about 3.5 KB).
const LOOKUP_KEYS: usize = 100;
/// Tries of a create whose outcome was unknown, each after a lookup of what landed.
const CREATE_TRIES: u32 = 6;

/// A connected REST target.
pub struct RestSink {
    client: RestClient,
    target: RestTarget,
    /// The state database: checkpoints, the target ids of the keys written, the keys of the pass in progress.
    state: Option<SqlitePool>,
    /// Set once the target answered 404/405 to a batch POST: it creates one record per POST.
    no_batch: AtomicBool,
    /// Rows written by a page that came back with refused records and no checkpoint yet: the engine writes the page
    /// again without them, and those rows then count as what was done to them, not as unchanged.
    unconfirmed: Mutex<HashMap<String, Done>>,
    /// POST, PATCH and DELETE calls made (the progress shows their rate).
    write_calls: AtomicU64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Done {
    Inserted,
    Updated,
}

/// A record the target holds, as a lookup returned it.
#[derive(Debug, Clone)]
struct Stored {
    id: String,
    data_hash: Option<String>,
    fields: Map<String, Value>,
}

/// What writing one page did.
#[derive(Default)]
struct Written {
    counts: MergeCounts,
    /// The target's id of every key of the page that it now holds.
    ids: Vec<(String, String)>,
    /// Rows the target refused (their index in the page, the target's reply).
    refused: Vec<(usize, String)>,
    done: Vec<(String, Done)>,
}

impl RestSink {
    pub fn connect(target: &RestTarget, state: Option<SqlitePool>) -> Result<RestSink, SinkError> {
        let client =
            RestClient::for_target(target).map_err(|e| SinkError::Connect(target_words(&e)))?;
        Ok(RestSink {
            client,
            target: target.clone(),
            state,
            no_batch: AtomicBool::new(target.batch_size == 0),
            unconfirmed: Mutex::new(HashMap::new()),
            write_calls: AtomicU64::new(0),
        })
    }

    /// The write calls (POST, PATCH, DELETE) this sink has made.
    pub fn write_calls(&self) -> u64 {
        self.write_calls.load(Ordering::Relaxed)
    }

    fn state(&self) -> Result<&SqlitePool, SinkError> {
        self.state.as_ref().ok_or_else(|| {
            SinkError::Connect("a REST target keeps its checkpoints in the state database, which this command does not open".into())
        })
    }

    fn resource(&self, table: &str, tail: &[&str]) -> Result<Url, SinkError> {
        let mut url = Url::parse(&format!("{}/", self.client.base_url()))
            .map_err(|e| SinkError::Connect(format!("target.base_url is not a URL: {e}")))?;
        url.path_segments_mut()
            .map_err(|()| SinkError::Connect("target.base_url cannot take a path".into()))?
            .pop_if_empty()
            .push(table)
            .extend(tail);
        Ok(url)
    }

    /// The records the target holds under `keys` (BK_HASHes), by key: looked up `LOOKUP_KEYS` at a time, with
    /// `concurrency` requests in flight.
    async fn lookup(
        &self,
        table: &str,
        keys: &[&str],
    ) -> Result<HashMap<String, Stored>, SinkError> {
        // Owned chunks: a closure taking borrowed ones makes the stream's future not Send for every lifetime.
        let chunks: Vec<Vec<String>> = keys
            .chunks(LOOKUP_KEYS)
            .map(|c| c.iter().map(|k| (*k).to_owned()).collect())
            .collect();
        let found: Vec<Vec<(String, Stored)>> = stream::iter(chunks)
            .map(|chunk| async move { self.lookup_chunk(table, &chunk).await })
            .buffer_unordered(self.target.concurrency.max(1) as usize)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    async fn lookup_chunk(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<Vec<(String, Stored)>, SinkError> {
        let mut url = self.resource(table, &[])?;
        url.query_pairs_mut()
            .append_pair(&self.target.key_field, &keys.join(","));
        let (status, body) = self
            .client
            .call(Method::GET, &url, None, true)
            .await
            .map_err(|e| self.failed(table, &e))?;
        if !status.is_success() {
            return Err(self.answered(table, "a lookup by key hash", status, &body));
        }
        let records = match body {
            Value::Array(items) => items,
            Value::Object(mut o) => match o.remove("records").or_else(|| o.remove("data")) {
                Some(Value::Array(items)) => items,
                _ => return Err(self.write_err(table, "the lookup's reply holds no list of records (an array, or one under \"records\")")),
            },
            _ => return Err(self.write_err(table, "the lookup's reply is not a list of records")),
        };
        let wanted: HashSet<&str> = keys.iter().map(String::as_str).collect();
        Ok(records
            .into_iter()
            .filter_map(|record| match record {
                Value::Object(fields) => self.stored(fields),
                _ => None,
            })
            .filter(|(key, _)| wanted.contains(key.as_str()))
            .collect())
    }

    fn stored(&self, fields: Map<String, Value>) -> Option<(String, Stored)> {
        let key = fields.get(&self.target.key_field)?.as_str()?.to_owned();
        let id = match fields.get(&self.target.id_field)? {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            _ => return None,
        };
        let data_hash = fields
            .get(&self.target.data_hash_field)
            .and_then(Value::as_str)
            .map(str::to_owned);
        Some((
            key,
            Stored {
                id,
                data_hash,
                fields,
            },
        ))
    }

    /// The record as the target takes it: the mapping's columns and the tracking fields.
    fn body(&self, page: &PageWrite<'_>, row: &PreparedRow) -> Map<String, Value> {
        let mut body: Map<String, Value> = page
            .mapping
            .fields
            .iter()
            .zip(&row.values)
            .map(|(f, v)| (f.column.clone(), v.clone()))
            .collect();
        body.insert(
            self.target.key_field.clone(),
            Value::String(row.key_hash.clone()),
        );
        body.insert(
            self.target.data_hash_field.clone(),
            Value::String(row.data_hash.clone()),
        );
        if let Some(rv) = &row.rowversion {
            body.insert(
                self.target.rowversion_field.clone(),
                Value::String(rv.clone()),
            );
        }
        body
    }

    /// Writes a page and then its checkpoint (see the module's comment).
    pub async fn write_page(
        &self,
        page: &PageWrite<'_>,
        run_id: &str,
    ) -> Result<MergeCounts, SinkError> {
        let mut written = self.write_rows(page, run_id).await?;
        if !written.refused.is_empty() {
            // Nothing is recorded for a page with refused rows: the engine files them and writes the rest again.
            let mut memo = self.unconfirmed.lock().unwrap_or_else(|p| p.into_inner());
            memo.extend(written.done);
            return Err(SinkError::RefusedRows {
                table: page.table.to_owned(),
                rows: written.refused,
            });
        }
        if page.dry_run {
            return Ok(written.counts);
        }
        if page.applies_deletes() {
            if let Some(pass_keys) = page.pass_keys {
                self.settle_intents(page, &written).await?;
                self.delete_unseen(page, pass_keys, &mut written.counts)
                    .await?;
            }
        }
        self.record(page, run_id, &written).await?;
        self.unconfirmed
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(written.counts)
    }

    async fn write_rows(&self, page: &PageWrite<'_>, run_id: &str) -> Result<Written, SinkError> {
        let mut written = Written::default();
        if page.rows.is_empty() {
            return Ok(written);
        }
        let keys: Vec<&str> = page.rows.iter().map(|r| r.key_hash.as_str()).collect();
        let stored = self.lookup(page.table, &keys).await?;
        let memo = std::mem::take(&mut *self.unconfirmed.lock().unwrap_or_else(|p| p.into_inner()));
        let mut creates = Vec::new();
        let mut patches = Vec::new();
        for (i, row) in page.rows.iter().enumerate() {
            match stored.get(&row.key_hash) {
                None => creates.push(i),
                Some(s) if s.data_hash.as_deref() == Some(row.data_hash.as_str()) => {
                    written.ids.push((row.key_hash.clone(), s.id.clone()));
                    match memo.get(&row.key_hash) {
                        Some(Done::Inserted) => written.counts.inserted += 1,
                        Some(Done::Updated) => written.counts.updated += 1,
                        None => written.counts.skipped += 1,
                    }
                }
                Some(s)
                    if super::is_older(
                        row,
                        s.fields
                            .get(&self.target.rowversion_field)
                            .and_then(Value::as_str),
                    ) && page.never_older =>
                {
                    written.ids.push((row.key_hash.clone(), s.id.clone()));
                    written.counts.skipped += 1;
                }
                Some(s) => patches.push((i, s.clone())),
            }
        }
        if page.dry_run {
            written.counts.inserted += creates.len() as u64;
            written.counts.updated += patches.len() as u64;
            return Ok(written);
        }
        let patched: Vec<Result<(usize, String), (usize, String)>> = stream::iter(patches)
            .map(|(i, s)| async move {
                let row = &page.rows[i];
                self.patch(page, row, &s)
                    .await
                    .map(|r| r.map(|()| (i, s.id.clone())).map_err(|e| (i, e)))
            })
            .buffer_unordered(self.target.concurrency.max(1) as usize)
            .try_collect()
            .await?;
        for outcome in patched {
            match outcome {
                Ok((i, id)) => {
                    written.counts.updated += 1;
                    written.ids.push((page.rows[i].key_hash.clone(), id));
                    written
                        .done
                        .push((page.rows[i].key_hash.clone(), Done::Updated));
                }
                Err(refused) => written.refused.push(refused),
            }
        }
        if !creates.is_empty() {
            self.note_intents(page, &creates, run_id).await?;
        }
        self.create(page, &creates, &mut written).await?;
        Ok(written)
    }

    /// PATCHes the fields of `row` that differ from what the target holds, with the new hashes.
    async fn patch(
        &self,
        page: &PageWrite<'_>,
        row: &PreparedRow,
        stored: &Stored,
    ) -> Result<Result<(), String>, SinkError> {
        let changed: Map<String, Value> = self
            .body(page, row)
            .into_iter()
            .filter(|(k, v)| stored.fields.get(k) != Some(v))
            .collect();
        let url = self.resource(page.table, &[&stored.id])?;
        self.write_calls.fetch_add(1, Ordering::Relaxed);
        let (status, body) = self
            .client
            .call(Method::PATCH, &url, Some(&Value::Object(changed)), true)
            .await
            .map_err(|e| self.failed(page.table, &e))?;
        self.record_outcome(page.table, "an update", status, &body)
    }

    /// Whether a write call's status is the record's success (Ok(Ok)), its own refusal (Ok(Err), with the target's
    /// reply), or the page's failure (Err: credentials, server errors after the retries).
    fn record_outcome(
        &self,
        table: &str,
        what: &str,
        status: StatusCode,
        body: &Value,
    ) -> Result<Result<(), String>, SinkError> {
        if status.is_success() {
            Ok(Ok(()))
        } else if status.is_client_error()
            && status != StatusCode::UNAUTHORIZED
            && status != StatusCode::FORBIDDEN
        {
            Ok(Err(format!(
                "the target answered {} to {what}: {}",
                status.as_u16(),
                reply_text(body)
            )))
        } else {
            Err(self.answered(table, what, status, body))
        }
    }

    /// Creates the rows at `indexes` (batch POST, or one POST each), exactly once: a call whose outcome is unknown
    /// is followed by a lookup of its keys, and only what did not land is sent again.
    async fn create(
        &self,
        page: &PageWrite<'_>,
        indexes: &[usize],
        written: &mut Written,
    ) -> Result<(), SinkError> {
        let mut pending: Vec<usize> = indexes.to_vec();
        let mut tries = 0;
        while !pending.is_empty() {
            let size = if self.no_batch.load(Ordering::Relaxed) {
                1
            } else {
                self.target.batch_size.max(1) as usize
            };
            let calls: Vec<Vec<usize>> = pending.chunks(size).map(<[usize]>::to_vec).collect();
            let outcomes: Vec<CallOutcome> = stream::iter(calls)
                .map(|chunk| async move {
                    let outcome = self.post(page, &chunk).await;
                    (chunk, outcome)
                })
                .buffer_unordered(self.target.concurrency.max(1) as usize)
                .collect()
                .await;
            let mut unknown = Vec::new();
            let mut conflicts = Vec::new();
            for (chunk, outcome) in outcomes {
                match outcome {
                    Ok(created) => {
                        for (i, created) in chunk.into_iter().zip(created) {
                            let key = page.rows[i].key_hash.clone();
                            match created {
                                Created::Id(id) => {
                                    written.counts.inserted += 1;
                                    written.ids.push((key.clone(), id));
                                    written.done.push((key, Done::Inserted));
                                }
                                Created::Exists => conflicts.push(i),
                                Created::Refused(reason) => written.refused.push((i, reason)),
                                Created::Unknown => unknown.push(i),
                            }
                        }
                    }
                    Err(Unknown::Page(e)) => return Err(e),
                    Err(Unknown::Outcome(reason)) => {
                        tracing::warn!(
                            table = page.table,
                            records = chunk.len(),
                            "a create's outcome is unknown ({reason}); looking its keys up"
                        );
                        unknown.extend(chunk);
                    }
                    Err(Unknown::NoBatch) => {
                        self.no_batch.store(true, Ordering::Relaxed);
                        unknown.extend(chunk);
                    }
                }
            }
            // A 409: the record is there (created by an earlier, interrupted write, or by someone else): update it if
            // it differs.
            if !conflicts.is_empty() {
                self.update_existing(page, &conflicts, written).await?;
            }
            if unknown.is_empty() {
                break;
            }
            tries += 1;
            if tries >= CREATE_TRIES {
                return Err(self.write_err(page.table, &format!(
                    "{} records could not be created after {CREATE_TRIES} tries (the target kept failing); nothing of the page is lost: run again to resume",
                    unknown.len()
                )));
            }
            backoff(tries).await;
            // What landed despite the failure is found, not sent again.
            let keys: Vec<&str> = unknown
                .iter()
                .map(|&i| page.rows[i].key_hash.as_str())
                .collect();
            let landed = self.lookup(page.table, &keys).await?;
            pending = Vec::new();
            for i in unknown {
                let key = &page.rows[i].key_hash;
                match landed.get(key) {
                    Some(s) => {
                        written.counts.inserted += 1;
                        written.ids.push((key.clone(), s.id.clone()));
                        written.done.push((key.clone(), Done::Inserted));
                    }
                    None => pending.push(i),
                }
            }
        }
        Ok(())
    }

    /// Rows whose create said "already there": looked up, then updated where they differ.
    async fn update_existing(
        &self,
        page: &PageWrite<'_>,
        indexes: &[usize],
        written: &mut Written,
    ) -> Result<(), SinkError> {
        let keys: Vec<&str> = indexes
            .iter()
            .map(|&i| page.rows[i].key_hash.as_str())
            .collect();
        let stored = self.lookup(page.table, &keys).await?;
        for &i in indexes {
            let row = &page.rows[i];
            let Some(s) = stored.get(&row.key_hash) else {
                written.refused.push((i, "the target answered 409 (exists) to its create, but a lookup by its key hash finds no record".into()));
                continue;
            };
            written.ids.push((row.key_hash.clone(), s.id.clone()));
            if s.data_hash.as_deref() == Some(row.data_hash.as_str()) {
                written.counts.inserted += 1;
                written.done.push((row.key_hash.clone(), Done::Inserted));
                continue;
            }
            match self.patch(page, row, s).await? {
                Ok(()) => {
                    written.counts.updated += 1;
                    written.done.push((row.key_hash.clone(), Done::Updated));
                }
                Err(reason) => written.refused.push((i, reason)),
            }
        }
        Ok(())
    }

    /// One create call for the rows at `indexes`: a batch POST, or one POST of one record.
    async fn post(&self, page: &PageWrite<'_>, indexes: &[usize]) -> Result<Vec<Created>, Unknown> {
        let bodies: Vec<Value> = indexes
            .iter()
            .map(|&i| Value::Object(self.body(page, &page.rows[i])))
            .collect();
        let batch = !self.no_batch.load(Ordering::Relaxed);
        let (url, body) = if batch {
            (
                self.resource(page.table, &["batch"]),
                serde_json::json!({ "records": bodies }),
            )
        } else {
            (
                self.resource(page.table, &[]),
                bodies.into_iter().next().unwrap_or(Value::Null),
            )
        };
        let url = url.map_err(Unknown::Page)?;
        self.write_calls.fetch_add(1, Ordering::Relaxed);
        let (status, reply) = match self
            .client
            .call(Method::POST, &url, Some(&body), false)
            .await
        {
            Ok(answer) => answer,
            Err(SourceError::Unreachable { reason, .. }) => return Err(Unknown::Outcome(reason)),
            Err(e) => return Err(Unknown::Page(self.failed(page.table, &e))),
        };
        if batch && (status == StatusCode::NOT_FOUND || status == StatusCode::METHOD_NOT_ALLOWED) {
            tracing::info!(
                table = page.table,
                "the target has no batch create ({status}); one POST per record"
            );
            return Err(Unknown::NoBatch);
        }
        if status.is_server_error() {
            return Err(Unknown::Outcome(format!(
                "the target answered {}",
                status.as_u16()
            )));
        }
        if !batch {
            return Ok(vec![self.created(status, &reply)]);
        }
        if !status.is_success() {
            return match self.record_outcome(page.table, "a batch create", status, &reply) {
                Err(e) => Err(Unknown::Page(e)),
                // The batch as a whole refused: its records are sent one by one to find which.
                Ok(_) => Err(Unknown::NoBatch),
            };
        }
        let results = reply.get("results").and_then(Value::as_array);
        match results {
            Some(results) if results.len() == indexes.len() => Ok(results
                .iter()
                .map(|r| {
                    let status = r
                        .get("status")
                        .and_then(Value::as_u64)
                        .and_then(|s| StatusCode::from_u16(s as u16).ok())
                        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                    self.created(status, r)
                })
                .collect()),
            _ => Err(Unknown::Outcome(format!(
                "the batch reply has no \"results\" list of {} entries",
                indexes.len()
            ))),
        }
    }

    fn created(&self, status: StatusCode, reply: &Value) -> Created {
        // A batch result names the id `uid` (the contract's reply); a single create's reply is the record.
        let id = [self.target.id_field.as_str(), "uid"]
            .iter()
            .find_map(|field| reply.get(*field))
            .and_then(|v| match v {
                Value::String(s) => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        match (status, id) {
            (s, Some(id)) if s.is_success() => Created::Id(id),
            (s, None) if s.is_success() => Created::Unknown,
            (StatusCode::CONFLICT, _) => Created::Exists,
            (StatusCode::NOT_FOUND, _) => Created::Refused(format!(
                "{PARENT_MISSING} (it answered 404 to the create: {}); declare the entity's parents \
                 (`parents = [{{ field, entity }}]`) so that such records wait for it",
                reply_text(reply.get("error").unwrap_or(reply))
            )),
            (s, _) if s.is_client_error() => Created::Refused(format!(
                "the target answered {} to its create: {}",
                s.as_u16(),
                reply_text(reply.get("error").unwrap_or(reply))
            )),
            _ => Created::Unknown,
        }
    }

    /// Before a page's creates are sent: their keys, so that a run killed after a create landed but before its
    /// record leaves a trace (see [`settle_intents`](Self::settle_intents)).
    async fn note_intents(
        &self,
        page: &PageWrite<'_>,
        indexes: &[usize],
        run_id: &str,
    ) -> Result<(), SinkError> {
        let state = self.state()?;
        let mut tx = state.begin().await.map_err(|e| self.state_err(&e))?;
        for &i in indexes {
            sqlx::query(
                "INSERT INTO rest_target_intents (pipeline, entity, tbl, key_hash, run_id) VALUES (?, ?, ?, ?, ?) \
                 ON CONFLICT (pipeline, entity, key_hash) DO UPDATE SET tbl = excluded.tbl, run_id = excluded.run_id",
            )
            .bind(page.pipeline)
            .bind(page.entity)
            .bind(page.table)
            .bind(&page.rows[i].key_hash)
            .bind(run_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.state_err(&e))?;
        }
        tx.commit().await.map_err(|e| self.state_err(&e))
    }

    /// Creates sent earlier without their outcome recorded (the run was killed, or failed, in between): looked up,
    /// and what landed is recorded as written by this pipeline, so the deletes that follow know it. The page being
    /// written (`written`) is recorded right after.
    async fn settle_intents(
        &self,
        page: &PageWrite<'_>,
        written: &Written,
    ) -> Result<(), SinkError> {
        let state = self.state()?;
        let intents: Vec<(String, String)> = sqlx::query_as(
            "SELECT tbl, key_hash FROM rest_target_intents WHERE pipeline = ? AND entity = ?",
        )
        .bind(page.pipeline)
        .bind(page.entity)
        .fetch_all(state)
        .await
        .map_err(|e| self.state_err(&e))?;
        let this_page: HashSet<&str> = written.ids.iter().map(|(key, _)| key.as_str()).collect();
        let left: Vec<(String, String)> = intents
            .into_iter()
            .filter(|(_, key)| !this_page.contains(key.as_str()))
            .collect();
        if left.is_empty() {
            return Ok(());
        }
        let mut by_table: HashMap<&str, Vec<&str>> = HashMap::new();
        for (table, key) in &left {
            by_table.entry(table).or_default().push(key);
        }
        let mut landed: Vec<(String, String)> = Vec::new();
        for (table, keys) in by_table {
            let found = self.lookup(table, &keys).await?;
            landed.extend(found.into_iter().map(|(key, stored)| (key, stored.id)));
        }
        tracing::info!(
            entity = page.entity,
            sent = left.len(),
            landed = landed.len(),
            "creates an earlier run left unconfirmed were looked up"
        );
        let mut tx = state.begin().await.map_err(|e| self.state_err(&e))?;
        self.keep_ids(&mut tx, page, &landed).await?;
        let keys: Vec<&str> = left.iter().map(|(_, k)| k.as_str()).collect();
        self.each_key(&mut tx, FORGET_INTENT, page, &keys).await?;
        tx.commit().await.map_err(|e| self.state_err(&e))
    }

    /// At the end of a complete pass: the records this pipeline wrote whose key the pass did not see are deleted
    /// (DELETE {resource}/{id}), unless the delete guard holds them.
    async fn delete_unseen(
        &self,
        page: &PageWrite<'_>,
        pass_keys: &[u128],
        counts: &mut MergeCounts,
    ) -> Result<(), SinkError> {
        let state = self.state()?;
        let known: Vec<(String, String)> = sqlx::query_as(
            "SELECT key_hash, target_id FROM rest_target_keys WHERE pipeline = ? AND entity = ?",
        )
        .bind(page.pipeline)
        .bind(page.entity)
        .fetch_all(state)
        .await
        .map_err(|e| self.state_err(&e))?;
        let seen: HashSet<u128> = pass_keys.iter().copied().collect();
        let unseen: Vec<(String, String)> = known
            .iter()
            .filter(|(key, _)| super::key_bits(key).is_none_or(|bits| !seen.contains(&bits)))
            .cloned()
            .collect();
        if unseen.is_empty() {
            return Ok(());
        }
        if let Some(held) = page.guard_holds(unseen.len() as u64, known.len() as u64) {
            counts.held_deletes = Some(held);
            return Ok(());
        }
        if page.deletes != crate::config::DeleteMode::Hard {
            return Ok(());
        }
        let gone: Vec<String> = stream::iter(unseen)
            .map(|(key, id)| async move {
                let url = self.resource(page.table, &[&id])?;
                self.write_calls.fetch_add(1, Ordering::Relaxed);
                let (status, body) = self
                    .client
                    .call(Method::DELETE, &url, None, true)
                    .await
                    .map_err(|e| self.failed(page.table, &e))?;
                // Gone already (an earlier, interrupted pass deleted it) is what was asked for.
                if status.is_success()
                    || status == StatusCode::NOT_FOUND
                    || status == StatusCode::GONE
                {
                    Ok(key)
                } else {
                    Err(self.answered(page.table, "a delete", status, &body))
                }
            })
            .buffer_unordered(self.target.concurrency.max(1) as usize)
            .try_collect()
            .await?;
        let mut tx = state.begin().await.map_err(|e| self.state_err(&e))?;
        let keys: Vec<&str> = gone.iter().map(String::as_str).collect();
        self.each_key(
            &mut tx,
            "DELETE FROM rest_target_keys WHERE pipeline = ? AND entity = ? AND key_hash = ?",
            page,
            &keys,
        )
        .await?;
        tx.commit().await.map_err(|e| self.state_err(&e))?;
        counts.deleted += gone.len() as u64;
        Ok(())
    }

    /// After the page's calls succeeded: the target ids of its keys, its seen keys and the checkpoint, in one
    /// transaction of the state database.
    async fn record(
        &self,
        page: &PageWrite<'_>,
        _run_id: &str,
        written: &Written,
    ) -> Result<(), SinkError> {
        let state = self.state()?;
        let mut tx = state.begin().await.map_err(|e| self.state_err(&e))?;
        // The creates among them, if any, are settled.
        let keys: Vec<&str> = written.ids.iter().map(|(k, _)| k.as_str()).collect();
        self.each_key(&mut tx, FORGET_INTENT, page, &keys).await?;
        self.keep_ids(&mut tx, page, &written.ids).await?;
        if page.starts_pass {
            sqlx::query("DELETE FROM rest_target_seen WHERE pipeline = ? AND entity = ?")
                .bind(page.pipeline)
                .bind(page.seen_entity())
                .execute(&mut *tx)
                .await
                .map_err(|e| self.state_err(&e))?;
        }
        if page.tracks_seen() && !page.page_keys.is_empty() {
            let keys: Vec<u8> = page
                .page_keys
                .iter()
                .flat_map(|k| k.to_be_bytes())
                .collect();
            sqlx::query("INSERT INTO rest_target_seen (pipeline, entity, keys) VALUES (?, ?, ?)")
                .bind(page.pipeline)
                .bind(page.seen_entity())
                .bind(keys)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.state_err(&e))?;
        }
        // Rowversions compare as the engine writes them (normalised ISO 8601 UTC, or text), as in SQL's max().
        if let Some(highest) = page
            .rows
            .iter()
            .filter_map(|r| r.rowversion.as_deref())
            .max()
        {
            sqlx::query(
                "INSERT INTO rest_target_rowversions (pipeline, entity, rowversion) VALUES (?, ?, ?) \
                 ON CONFLICT (pipeline, entity) DO UPDATE SET rowversion = max(rowversion, excluded.rowversion)",
            )
            .bind(page.pipeline)
            .bind(page.entity)
            .bind(highest)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.state_err(&e))?;
        }
        if let Some(checkpoint) = page.checkpoint {
            let text = super::checkpoint_json(checkpoint, written.counts)?;
            sqlx::query(
                "INSERT INTO rest_target_checkpoints (pipeline, entity, checkpoint) VALUES (?, ?, ?) \
                 ON CONFLICT (pipeline, entity) DO UPDATE SET checkpoint = excluded.checkpoint",
            )
            .bind(page.pipeline)
            .bind(page.entity)
            .bind(text)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.state_err(&e))?;
        }
        tx.commit().await.map_err(|e| self.state_err(&e))
    }

    /// Runs `sql`, which binds the pipeline, the entity and a key, once for each of `keys`.
    async fn each_key(
        &self,
        tx: &mut sqlx::SqliteConnection,
        sql: &str,
        page: &PageWrite<'_>,
        keys: &[&str],
    ) -> Result<(), SinkError> {
        for key in keys {
            sqlx::query(sql)
                .bind(page.pipeline)
                .bind(page.entity)
                .bind(key)
                .execute(&mut *tx)
                .await
                .map_err(|e| self.state_err(&e))?;
        }
        Ok(())
    }

    /// Records the target's id of each key as written by this pipeline (the latest id wins).
    async fn keep_ids(
        &self,
        tx: &mut sqlx::SqliteConnection,
        page: &PageWrite<'_>,
        ids: &[(String, String)],
    ) -> Result<(), SinkError> {
        for (key, id) in ids {
            sqlx::query(
                "INSERT INTO rest_target_keys (pipeline, entity, key_hash, target_id) VALUES (?, ?, ?, ?) \
                 ON CONFLICT (pipeline, entity, key_hash) DO UPDATE SET target_id = excluded.target_id",
            )
            .bind(page.pipeline)
            .bind(page.entity)
            .bind(key)
            .bind(id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.state_err(&e))?;
        }
        Ok(())
    }

    pub async fn read_checkpoint(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Option<Checkpoint>, SinkError> {
        let Some(state) = self.state.as_ref() else {
            return Ok(None);
        };
        let text: Option<String> = sqlx::query_scalar(
            "SELECT checkpoint FROM rest_target_checkpoints WHERE pipeline = ? AND entity = ?",
        )
        .bind(pipeline)
        .bind(entity)
        .fetch_optional(state)
        .await
        .map_err(|e| self.state_err(&e))?;
        text.as_deref().map(super::parse_checkpoint).transpose()
    }

    /// The highest rowversion this pipeline wrote to the entity's resource (kept in the state database: the
    /// target's contract has no query for it).
    pub async fn max_rowversion(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Option<String>, SinkError> {
        let Some(state) = self.state.as_ref() else {
            return Ok(None);
        };
        sqlx::query_scalar(
            "SELECT rowversion FROM rest_target_rowversions WHERE pipeline = ? AND entity = ?",
        )
        .bind(pipeline)
        .bind(entity)
        .fetch_optional(state)
        .await
        .map_err(|e| self.state_err(&e))
    }

    pub async fn recorded_seen(
        &self,
        pipeline: &str,
        entity: &str,
    ) -> Result<Vec<u128>, SinkError> {
        let pages: Vec<Vec<u8>> = sqlx::query_scalar(
            "SELECT keys FROM rest_target_seen WHERE pipeline = ? AND entity = ?",
        )
        .bind(pipeline)
        .bind(entity)
        .fetch_all(self.state()?)
        .await
        .map_err(|e| self.state_err(&e))?;
        Ok(pages
            .iter()
            .flat_map(|page| page.chunks_exact(16))
            .filter_map(|k| <[u8; 16]>::try_from(k).ok().map(u128::from_be_bytes))
            .collect())
    }

    /// The DATA_HASH the target holds under each of `keys`.
    pub async fn stored_data_hashes(
        &self,
        table: &str,
        keys: &[String],
    ) -> Result<HashMap<String, String>, SinkError> {
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        Ok(self
            .lookup(table, &keys)
            .await?
            .into_iter()
            .map(|(k, s)| (k, s.data_hash.unwrap_or_default()))
            .collect())
    }

    /// Whether the target answers with the credentials: a lookup of a key nobody has (no write).
    pub async fn check(&self, table: &str) -> Result<(), SinkError> {
        self.lookup(table, &["00000000000000000000000000000000"])
            .await
            .map(drop)
    }

    pub async fn undo(&self) -> Result<Result<Vec<UndoTable>, UndoRefusal>, SinkError> {
        Ok(Err(UndoRefusal::NoInformation))
    }

    fn failed(&self, table: &str, e: &SourceError) -> SinkError {
        match e {
            SourceError::Unreachable { .. } => SinkError::Connect(target_words(e)),
            _ => self.write_err(table, &target_words(e)),
        }
    }

    fn answered(&self, table: &str, what: &str, status: StatusCode, body: &Value) -> SinkError {
        let hint = match status {
            StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                "; check the target's credentials (auth)"
            }
            s if s.is_server_error() => "; the target kept failing: run again to resume",
            _ => "",
        };
        self.write_err(
            table,
            &format!(
                "the target answered {} to {what}: {}{hint}",
                status.as_u16(),
                reply_text(body)
            ),
        )
    }

    fn write_err(&self, table: &str, message: &str) -> SinkError {
        SinkError::Write {
            table: table.to_owned(),
            message: message.to_owned(),
        }
    }

    fn state_err(&self, e: &sqlx::Error) -> SinkError {
        SinkError::Write {
            table: "the state database".into(),
            message: e.to_string(),
        }
    }
}

/// A create call's rows (their indexes in the page) and how it ended.
type CallOutcome = (Vec<usize>, Result<Vec<Created>, Unknown>);

/// How one record's create ended.
enum Created {
    Id(String),
    /// 409: the target holds the key already.
    Exists,
    Refused(String),
    /// Success without an id, or a server error for this record: looked up before anything is sent again.
    Unknown,
}

/// Why a create call's records were not all answered.
enum Unknown {
    /// The call may or may not have created them (5xx, timeout, reset).
    Outcome(String),
    /// The target has no batch create (or refused the batch whole): one POST per record from now on.
    NoBatch,
    /// The page cannot go on (credentials, a bad URL).
    Page(SinkError),
}

/// A source error reworded for the target (the client is shared with REST sources).
fn target_words(e: &SourceError) -> String {
    match e {
        SourceError::Unreachable { url, reason } => format!(
            "cannot reach the REST target at {url}: {reason}; check the target's base URL (base_url) and that the server is running"
        ),
        SourceError::Unauthorized { url, status } => format!(
            "the REST target refused the credentials ({status} from {url}); check the target's credentials (auth)"
        ),
        other => other.to_string().replace("source", "target"),
    }
}

/// At most 300 characters of a reply, for an error message.
fn reply_text(body: &Value) -> String {
    let text = match body {
        Value::String(s) => s.clone(),
        Value::Null => "(no body)".into(),
        other => other.to_string(),
    };
    text.chars().take(300).collect()
}
