//! The Bubble.io Data API source: types and fields from `/meta` in either key style, things listed with
//! `cursor`/`limit` sorted by `Created Date`, pages fetched `concurrency` at a time once the first page has told how
//! many remain, and types larger than the cursor ceiling (50,000) split into windows of `Created Date`.
//!
//! Windows: when a window reaches the ceiling, the next one asks for things created after the last creation time
//! seen minus one millisecond, so things sharing that time are not lost; the ones already read are named in the
//! cursor and dropped from the new window, so none is read twice either.

use super::rest::RestClient;
use super::{FetchedPage, PageCursor, SourceError, StreamEnd};
use crate::config::{Auth, BubbleSource, Entity, RestSource};
use crate::schema::{ColumnType, Declared};
use crate::stop::StopSignal;
use futures_util::stream::{self, StreamExt};
use reqwest::Url;
use serde_json::Value;
use std::time::Instant;
use tokio::sync::mpsc;

/// Things per page: Bubble's maximum.
pub const PAGE_LIMIT: u64 = 100;
/// The field windows and pages of a full pass are ordered by.
const SORT_FIELD: &str = "Created Date";
/// The fields Bubble adds to every thing, with their types (their keys are the same in both key styles).
const BUILT_INS: [(&str, &str); 4] = [
    ("_id", "text"),
    ("Created Date", "date"),
    ("Modified Date", "date"),
    ("Created By", "user"),
];

/// A Bubble app's data types as `/meta` describes them.
#[derive(Debug, Clone, PartialEq)]
pub struct BubbleMeta {
    /// Records are keyed by display names (true) or by field ids (false).
    pub use_captions: bool,
    pub types: Vec<MetaType>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetaType {
    /// The type's name in URLs (lower-case, no spaces).
    pub name: String,
    pub display: String,
    pub fields: Vec<MetaField>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct MetaField {
    pub id: String,
    pub display: String,
    /// Bubble's type: `text`, `number`, `date`, `boolean`, `list.…`, `custom.<type>`, `option.<set>`, …
    pub ty: String,
}

/// Where a Bubble listing resumes: a window (things created after `after`) and the offset inside it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, Default)]
pub struct BubbleCursor {
    /// The date field pages are ordered and windowed by: `Created Date` (None) for a full pass, the rowversion
    /// field (`Modified Date`) for an incremental one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
    pub offset: u64,
    /// Things already read whose `Created Date` is `seen_at` (the previous window's last time).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_at: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub seen: Vec<String>,
}

/// A connected Bubble app.
pub struct BubbleClient {
    http: RestClient,
    base_url: String,
    concurrency: usize,
    ceiling: u64,
    pub meta: BubbleMeta,
}

enum WindowEnd {
    Next(BubbleCursor),
    Stopped(StreamEnd),
}

struct Listed {
    /// The offset the page was asked at.
    at: u64,
    records: Vec<Value>,
    remaining: u64,
    fetch_ms: u64,
}

impl BubbleClient {
    /// Connects and reads `/meta`.
    pub async fn connect(config: &BubbleSource) -> Result<BubbleClient, SourceError> {
        let auth = match &config.token {
            Some(token) => Auth::Bearer {
                token: token.clone(),
            },
            None => Auth::None,
        };
        let http = RestClient::new(&RestSource {
            base_url: config.base_url.clone(),
            auth,
            concurrency: config.concurrency,
            requests_per_minute: config.requests_per_minute,
            max_page_bytes: config.max_page_bytes,
        })?;
        let base_url = config.base_url.trim_end_matches('/').to_owned();
        let meta_url = parse_url(&format!("{base_url}/meta"))?;
        let meta = parse_meta(&http.get_json(&meta_url).await?).ok_or_else(|| {
            SourceError::InvalidJson {
                url: meta_url.to_string(),
                reason: "no \"types\" object; is source.base_url the app's …/api/1.1 address?"
                    .into(),
            }
        })?;
        Ok(BubbleClient {
            http,
            base_url,
            concurrency: config.concurrency.max(1) as usize,
            ceiling: config.cursor_ceiling.max(PAGE_LIMIT as u32) as u64,
            meta,
        })
    }

    /// The entities to sync: those listed (checked against `/meta`), or every type; Bubble's defaults applied.
    pub fn entities(&self, listed: &[Entity]) -> Result<Vec<Entity>, String> {
        let chosen: Vec<Entity> = if listed.is_empty() {
            self.meta
                .types
                .iter()
                .map(|t| Entity::named(&t.name))
                .collect()
        } else {
            listed.to_vec()
        };
        chosen
            .into_iter()
            .map(|mut entity| {
                if self.type_of(&entity.name).is_none() {
                    let known: Vec<&str> = self.meta.types.iter().map(|t| t.name.as_str()).collect();
                    return Err(format!(
                        "entities \"{}\": the Bubble app has no data type of that name; its types are: {}",
                        entity.name,
                        known.join(", ")
                    ));
                }
                if entity.business_key.is_empty() {
                    entity.business_key = vec!["_id".into()];
                }
                if entity.rowversion.is_none() {
                    entity.rowversion = Some("Modified Date".into());
                }
                Ok(entity)
            })
            .collect()
    }

    fn type_of(&self, name: &str) -> Option<&MetaType> {
        self.meta.types.iter().find(|t| t.name == name)
    }

    /// The fields `/meta` declares for an entity, keyed as records are, with their column types.
    pub fn declared(&self, entity: &Entity) -> Vec<Declared> {
        let Some(ty) = self.type_of(&entity.name) else {
            return Vec::new();
        };
        let built_ins = BUILT_INS.iter().map(|(name, ty)| (name.to_string(), *ty));
        let fields = ty.fields.iter().map(|f| {
            let key = if self.meta.use_captions {
                &f.display
            } else {
                &f.id
            };
            (key.clone(), f.ty.as_str())
        });
        built_ins
            .chain(fields)
            .enumerate()
            .map(|(i, (source, bubble_type))| {
                let (ty, references) = column_type_of(bubble_type);
                // `Created By` names a user, and users are rarely synced: no index for it.
                let references = references.filter(|_| i >= BUILT_INS.len());
                Declared {
                    source,
                    ty,
                    references,
                    source_type: bubble_type.to_owned(),
                }
            })
            .collect()
    }

    pub fn first_cursor() -> PageCursor {
        PageCursor::Bubble(BubbleCursor::default())
    }

    /// The first cursor of an incremental pass: things whose `field` (the rowversion, `Modified Date`) is `since`
    /// or later, in that order — things stamped `since` itself are read again (unchanged, they are skipped), so
    /// none sharing the stamp is missed.
    pub fn changed_since(field: &str, since: &str) -> Option<PageCursor> {
        Some(PageCursor::Bubble(BubbleCursor {
            field: Some(field.to_owned()),
            after: Some(just_before(since)?),
            ..BubbleCursor::default()
        }))
    }

    /// One page (for discovery samples).
    pub async fn fetch_page(
        &self,
        entity: &Entity,
        cursor: &PageCursor,
    ) -> Result<FetchedPage, SourceError> {
        let cursor = bubble_cursor(cursor)?;
        let listed = self.list(entity, &cursor).await?;
        let next = (listed.remaining > 0).then(|| {
            PageCursor::Bubble(BubbleCursor {
                offset: cursor.offset + listed.records.len() as u64,
                ..cursor.clone()
            })
        });
        let expected = cursor
            .after
            .is_none()
            .then_some(cursor.offset + listed.records.len() as u64 + listed.remaining);
        Ok(FetchedPage {
            records: listed.records.into(),
            next,
            fetch_ms: listed.fetch_ms,
            expected,
            failure: None,
            memo: None,
        })
    }

    /// Every page from `cursor` on, in order, into `out`, window after window.
    pub async fn stream(
        &self,
        entity: &Entity,
        cursor: &PageCursor,
        out: &mpsc::Sender<FetchedPage>,
        stop: &StopSignal,
    ) -> Result<StreamEnd, SourceError> {
        let mut cursor = bubble_cursor(cursor)?;
        loop {
            if stop.requested() {
                return Ok(StreamEnd::Paused);
            }
            match self.stream_window(entity, &cursor, out, stop).await? {
                WindowEnd::Next(following) => cursor = following,
                WindowEnd::Stopped(end) => return Ok(end),
            }
        }
    }

    /// One window: its first page alone (it tells how many remain), then the rest `concurrency` at a time.
    async fn stream_window(
        &self,
        entity: &Entity,
        cursor: &BubbleCursor,
        out: &mpsc::Sender<FetchedPage>,
        stop: &StopSignal,
    ) -> Result<WindowEnd, SourceError> {
        let first = self.list(entity, cursor).await?;
        let total_end = first.at + first.records.len() as u64 + first.remaining;
        let window_end = total_end.min(self.ceiling);
        let cut = total_end > self.ceiling;
        // Without a window constraint the first reply counts every thing of the type.
        let expected = cursor.after.is_none().then_some(total_end);
        let offsets: Vec<u64> = (first.at + first.records.len() as u64..window_end)
            .step_by(PAGE_LIMIT as usize)
            .collect();
        let mut rest = stream::iter(offsets)
            .map(|offset| {
                let at = BubbleCursor {
                    offset,
                    ..cursor.clone()
                };
                async move { (at.clone(), self.list(entity, &at).await) }
            })
            .buffered(self.concurrency);
        let mut window = Window::new(cursor);
        let mut page = Some(first);
        let mut failed_in_a_row = 0;
        let key_fields = entity.key_fields();
        let mut last_print = None;
        while let Some(listed) = page.take() {
            let print = super::objects_fingerprint(&listed.records, &key_fields);
            if print.is_some() && print == last_print {
                return Err(SourceError::BrokenListing {
                    page: format!("cursor {}", listed.at),
                    problem: "it holds the same things as the page before it; the app seems to ignore `cursor`"
                        .into(),
                });
            }
            last_print = print;
            let got = listed.records.len() as u64;
            let end = listed.at + got;
            let records = window.take(listed.records);
            let last_of_window = got == 0 || end >= window_end;
            let following = if last_of_window && cut {
                Some(window.following(cursor, &entity.name)?)
            } else {
                None
            };
            let next = match (&following, last_of_window) {
                (Some(f), _) => Some(PageCursor::Bubble(f.clone())),
                (None, true) => None,
                (None, false) => Some(PageCursor::Bubble(BubbleCursor {
                    offset: end,
                    ..cursor.clone()
                })),
            };
            let fetched = FetchedPage {
                records: records.into(),
                next,
                fetch_ms: listed.fetch_ms,
                expected,
                failure: None,
                memo: None,
            };
            if out.send(fetched).await.is_err() {
                return Ok(WindowEnd::Stopped(StreamEnd::Done));
            }
            if last_of_window {
                return Ok(match following {
                    Some(f) => WindowEnd::Next(f),
                    None => WindowEnd::Stopped(StreamEnd::Done),
                });
            }
            // A page that fails its retries is passed over (and filed) unless it ends the window: the next window
            // starts from the last page's things.
            loop {
                if stop.requested() {
                    return Ok(WindowEnd::Stopped(StreamEnd::Paused));
                }
                match rest.next().await {
                    None => break,
                    Some((_, Ok(listed))) => {
                        failed_in_a_row = 0;
                        page = Some(listed);
                        break;
                    }
                    Some((at, Err(e))) => {
                        failed_in_a_row += 1;
                        let next_offset = at.offset + PAGE_LIMIT;
                        if next_offset >= window_end
                            || !e.is_transient()
                            || failed_in_a_row >= super::FAILED_PAGES_IN_A_ROW
                        {
                            return Err(e);
                        }
                        let next = BubbleCursor {
                            offset: next_offset,
                            ..cursor.clone()
                        };
                        let mut stand_in = FetchedPage::failed(
                            PageCursor::Bubble(at),
                            Some(PageCursor::Bubble(next)),
                            &e,
                        );
                        stand_in.expected = expected;
                        if out.send(stand_in).await.is_err() {
                            return Ok(WindowEnd::Stopped(StreamEnd::Done));
                        }
                    }
                }
            }
        }
        Ok(WindowEnd::Stopped(StreamEnd::Done))
    }

    async fn list(&self, entity: &Entity, cursor: &BubbleCursor) -> Result<Listed, SourceError> {
        let started = Instant::now();
        let url = self.list_url(entity, cursor)?;
        let mut body = self.http.get_json(&url).await?;
        // Without `remaining` the end of the list cannot be told from a reply cut short.
        let remaining = body
            .pointer("/response/remaining")
            .and_then(Value::as_u64)
            .ok_or_else(|| SourceError::BrokenListing {
                page: format!("cursor {} ({})", cursor.offset, super::rest::shown(&url)),
                problem: "the reply has no /response/remaining count".into(),
            })?;
        let records = match body.pointer_mut("/response/results").map(Value::take) {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(SourceError::NoRecords {
                    url: url.to_string(),
                    pointer: "\"/response/results\"".into(),
                })
            }
        };
        Ok(Listed {
            at: cursor.offset,
            records,
            remaining,
            fetch_ms: started.elapsed().as_millis() as u64,
        })
    }

    fn list_url(&self, entity: &Entity, cursor: &BubbleCursor) -> Result<Url, SourceError> {
        let mut url = parse_url(&format!("{}/obj/{}", self.base_url, entity.name))?;
        {
            let mut query = url.query_pairs_mut();
            query.append_pair("cursor", &cursor.offset.to_string());
            query.append_pair("limit", &PAGE_LIMIT.to_string());
            query.append_pair("sort_field", cursor.field());
            if let Some(after) = &cursor.after {
                let constraints = serde_json::json!([
                    {"key": cursor.field(), "constraint_type": "greater than", "value": after}
                ]);
                query.append_pair("constraints", &constraints.to_string());
            }
        }
        Ok(url)
    }
}

/// The things of one window in order: drops those the previous window read, and remembers the last creation
/// time and who has it, for the next window.
struct Window<'a> {
    field: &'a str,
    seen_at: Option<&'a str>,
    seen: &'a [String],
    last_at: Option<String>,
    last_ids: Vec<String>,
}

impl BubbleCursor {
    pub(crate) fn field(&self) -> &str {
        self.field.as_deref().unwrap_or(SORT_FIELD)
    }
}

/// `stamp` less one millisecond, so that a `greater than` constraint still takes things stamped `stamp`.
fn just_before(stamp: &str) -> Option<String> {
    let instant = chrono::DateTime::parse_from_rfc3339(stamp).ok()?;
    Some(
        (instant - chrono::Duration::milliseconds(1))
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
    )
}

impl<'a> Window<'a> {
    fn new(cursor: &'a BubbleCursor) -> Window<'a> {
        Window {
            field: cursor.field(),
            seen_at: cursor.seen_at.as_deref(),
            seen: &cursor.seen,
            last_at: None,
            last_ids: Vec::new(),
        }
    }

    fn take(&mut self, records: Vec<Value>) -> Vec<Value> {
        let mut kept = Vec::with_capacity(records.len());
        for record in records {
            let at = record.get(self.field).and_then(Value::as_str);
            let id = record.get("_id").and_then(Value::as_str);
            if at.is_some()
                && at == self.seen_at
                && id.is_some_and(|id| self.seen.iter().any(|s| s == id))
            {
                continue;
            }
            if let (Some(at), Some(id)) = (at, id) {
                if self.last_at.as_deref() != Some(at) {
                    self.last_at = Some(at.to_owned());
                    self.last_ids.clear();
                }
                self.last_ids.push(id.to_owned());
            }
            kept.push(record);
        }
        kept
    }

    /// The window after this one: things created after this window's last time, less one millisecond.
    fn following(
        &self,
        cursor: &BubbleCursor,
        type_name: &str,
    ) -> Result<BubbleCursor, SourceError> {
        let field = self.field;
        let stuck = || {
            SourceError::Status {
            url: type_name.to_owned(),
            status: 400,
            body: format!(
                "more things of type \"{type_name}\" share one {field} than the cursor ceiling allows; \
                 raise source.cursor_ceiling if the plan allows it"
            ),
        }
        };
        let last = self.last_at.as_deref().ok_or_else(stuck)?;
        if Some(last) == cursor.seen_at.as_deref() {
            return Err(stuck());
        }
        let after = just_before(last).ok_or_else(|| SourceError::Status {
            url: type_name.to_owned(),
            status: 200,
            body: format!("{field} \"{last}\" is not an ISO 8601 date-time"),
        })?;
        let mut seen = self.last_ids.clone();
        if cursor.seen_at.as_deref() == Some(last) {
            seen.extend(cursor.seen.iter().cloned());
        }
        Ok(BubbleCursor {
            field: cursor.field.clone(),
            after: Some(after),
            offset: 0,
            seen_at: Some(last.to_owned()),
            seen,
        })
    }
}

fn bubble_cursor(cursor: &PageCursor) -> Result<BubbleCursor, SourceError> {
    match cursor {
        PageCursor::Bubble(c) => Ok(c.clone()),
        other => Err(SourceError::Unreachable {
            url: String::new(),
            reason: format!(
                "saved cursor {other:?} is not a Bubble cursor; the pipeline's source changed since the last run"
            ),
        }),
    }
}

fn parse_url(raw: &str) -> Result<Url, SourceError> {
    Url::parse(raw).map_err(|e| SourceError::Unreachable {
        url: raw.to_owned(),
        reason: format!("not a URL: {e}"),
    })
}

/// The column type of a Bubble field type, and the type it references, if it is a reference.
pub fn column_type_of(bubble_type: &str) -> (ColumnType, Option<String>) {
    match bubble_type {
        "text" | "file" | "image" => (ColumnType::Text, None),
        "number" => (ColumnType::Numeric, None),
        "date" => (ColumnType::DateTime, None),
        "boolean" | "yes / no" | "yes/no" => (ColumnType::Boolean, None),
        "user" => (ColumnType::Text, Some("user".into())),
        t if t.starts_with("custom.") => (ColumnType::Text, Some(t["custom.".len()..].to_owned())),
        // Option-set values arrive as their display text.
        t if t.starts_with("option.") => (ColumnType::Text, None),
        // Lists, geographic addresses and ranges are JSON.
        _ if bubble_type.starts_with("list.") => (ColumnType::Json, None),
        "geographic_address" | "date_range" | "number_range" | "date_interval" => {
            (ColumnType::Json, None)
        }
        _ => (ColumnType::Text, None),
    }
}

/// Reads `/meta`: `{"types": {name: {"display", "fields": [{"id", "display", "type"}]}}, "app_data": {…}}`.
pub fn parse_meta(body: &Value) -> Option<BubbleMeta> {
    let types = body.get("types")?.as_object()?;
    let use_captions = body
        .pointer("/app_data/use_captions_for_get")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let types = types
        .iter()
        .map(|(name, t)| MetaType {
            name: name.clone(),
            display: t
                .get("display")
                .and_then(Value::as_str)
                .unwrap_or(name)
                .to_owned(),
            fields: t
                .get("fields")
                .and_then(Value::as_array)
                .map(|fields| fields.iter().filter_map(parse_field).collect())
                .unwrap_or_default(),
        })
        .collect();
    Some(BubbleMeta {
        use_captions,
        types,
    })
}

fn parse_field(field: &Value) -> Option<MetaField> {
    let text = |key: &str| field.get(key).and_then(Value::as_str).map(str::to_owned);
    let id = text("id")?;
    Some(MetaField {
        display: text("display").unwrap_or_else(|| id.clone()),
        ty: text("type").unwrap_or_else(|| "text".into()),
        id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bubble_types_map_to_columns_and_references() {
        assert_eq!(column_type_of("number"), (ColumnType::Numeric, None));
        assert_eq!(column_type_of("date"), (ColumnType::DateTime, None));
        assert_eq!(column_type_of("boolean"), (ColumnType::Boolean, None));
        assert_eq!(column_type_of("list.custom.item"), (ColumnType::Json, None));
        assert_eq!(
            column_type_of("custom.customer"),
            (ColumnType::Text, Some("customer".into()))
        );
        assert_eq!(column_type_of("option.status"), (ColumnType::Text, None));
        assert_eq!(
            column_type_of("geographic_address"),
            (ColumnType::Json, None)
        );
        assert_eq!(column_type_of("image"), (ColumnType::Text, None));
    }

    #[test]
    fn a_window_drops_what_the_previous_one_read_and_names_its_tail() {
        let cursor = BubbleCursor {
            field: None,
            after: Some("2023-01-01T00:00:00.999Z".into()),
            offset: 0,
            seen_at: Some("2023-01-01T00:00:01.000Z".into()),
            seen: vec!["a".into()],
        };
        let mut w = Window::new(&cursor);
        let kept = w.take(vec![
            json!({"_id": "a", "Created Date": "2023-01-01T00:00:01.000Z"}),
            json!({"_id": "b", "Created Date": "2023-01-01T00:00:01.000Z"}),
            json!({"_id": "c", "Created Date": "2023-01-01T00:00:02.000Z"}),
            json!({"_id": "d", "Created Date": "2023-01-01T00:00:02.000Z"}),
        ]);
        assert_eq!(kept.len(), 3);
        let next = w.following(&cursor, "t").unwrap();
        assert_eq!(next.after.as_deref(), Some("2023-01-01T00:00:01.999Z"));
        assert_eq!(next.seen, vec!["c".to_owned(), "d".to_owned()]);
    }

    #[test]
    fn meta_is_read_in_both_key_styles() {
        let meta = parse_meta(
            &json!({"types": {"invoice": {"display": "Invoice", "fields": [
            {"id": "amount_number", "display": "Amount", "type": "number"}]}},
            "app_data": {"use_captions_for_get": true}}),
        )
        .unwrap();
        assert!(meta.use_captions);
        assert_eq!(meta.types[0].fields[0].display, "Amount");
    }
}
