//! The REST source: a paginated JSON API with `none`, `bearer` or `login` auth.

use super::memo::{reply_digest, MemoNote, PageMemo};
use super::throttle::Throttle;
use super::{FetchedPage, PageCursor, SourceError};
use crate::config::{Auth, Entity, Pagination, RestSource};
use crate::secrets::{self, SecretValue};
use base64::Engine as _;
use reqwest::{Client, StatusCode, Url};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Tries per request on server errors, timeouts, resets and bodies cut short.
const TRIES: u32 = 5;
/// Tries per request refused for load (429/503), which say the request itself was fine.
const LOAD_TRIES: u32 = 20;

/// A connected REST source; cheap to share between tasks.
pub struct RestClient {
    http: Client,
    base_url: String,
    /// base_url's origin: the only one credentials are sent to (next-page links and redirects elsewhere are refused).
    home: String,
    auth: Auth,
    token: Mutex<Option<Token>>,
    /// The client-side limit (`requests_per_minute`) and the back-off on 429/503, shared by every request.
    throttle: Throttle,
    /// The largest reply read (`max_page_bytes`).
    max_bytes: u64,
    /// How the last page's JSON was shaped: the next one is parsed into containers of those sizes, not grown.
    page_shape: super::json::LastShape,
    /// Each entity's last page's record fields, in order: its next page is read as rows of those fields when its
    /// records all list them (see [`super::records`]).
    row_shapes: std::sync::Mutex<HashMap<String, RowShape>>,
}

/// The fields an entity's records listed on its last page, and how many pages in a row did not read as rows.
#[derive(Debug, Clone, Default)]
struct RowShape {
    fields: Option<Arc<[String]>>,
    misses: u8,
}

/// Pages in a row of an entity that did not read as rows, after which its pages are read as objects only (records
/// of varying fields would otherwise be parsed twice each time).
const ROW_MISSES: u8 = 2;

/// Reading a page as rows: where its records are (None: the reply itself or its `data`) and their fields.
#[derive(Debug, Clone)]
struct RowPlan {
    at: Option<Vec<String>>,
    fields: Arc<[String]>,
}

struct Token {
    value: SecretValue,
    /// Unix seconds at which the token (a JWT) expires, when it says so.
    expires_at: Option<i64>,
}

impl RestClient {
    pub fn new(config: &RestSource) -> Result<RestClient, SourceError> {
        let home = Url::parse(&config.base_url)
            .map(|u| u.origin().ascii_serialization())
            .map_err(|e| SourceError::Unreachable {
                url: config.base_url.clone(),
                reason: format!("not a URL: {e}"),
            })?;
        let http = Client::builder()
            .redirect(same_origin_redirects(home.clone()))
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("syncflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| SourceError::Unreachable {
                url: config.base_url.clone(),
                reason: e.to_string(),
            })?;
        Ok(RestClient {
            http,
            base_url: config.base_url.trim_end_matches('/').to_owned(),
            auth: config.auth.clone(),
            token: Mutex::new(None),
            home,
            throttle: Throttle::new(config.requests_per_minute, config.concurrency),
            max_bytes: config
                .max_page_bytes
                .unwrap_or(crate::config::DEFAULT_MAX_PAGE_BYTES),
            page_shape: Default::default(),
            row_shapes: Default::default(),
        })
    }

    /// A client for a REST target: the same auth kinds, throttle and transport as a source.
    pub fn for_target(target: &crate::config::RestTarget) -> Result<RestClient, SourceError> {
        RestClient::new(&RestSource {
            base_url: target.base_url.clone(),
            auth: target.auth.clone(),
            concurrency: target.concurrency,
            requests_per_minute: target.requests_per_minute,
            max_page_bytes: None,
        })
    }

    /// base_url without its trailing slash.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Sends `method url` with a JSON body (or none) and gives back the status and the reply's JSON (Null when
    /// empty or not JSON), whatever the status — except that 429 and 503 wait as the server asks and a 401 renews a
    /// login, and, when `retried` (a request that changes nothing twice: GET, PATCH, DELETE), server errors,
    /// timeouts and resets are tried again with backoff. Without `retried` they come back as `Err`/5xx: the caller
    /// must find out whether the request took effect before sending it again.
    pub async fn call(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        retried: bool,
    ) -> Result<(StatusCode, Value), SourceError> {
        let policy = Policy {
            retried,
            who: "the target",
            show: brief,
        };
        let mut attempt = 0;
        let reply = self.send(&method, url, body, &policy, &mut attempt).await?;
        let body = if reply.bytes.is_empty() {
            Value::Null
        } else {
            parse_json(reply.bytes).await.unwrap_or(Value::Null)
        };
        Ok((reply.status, body))
    }

    /// One request as far as a reply with its body: the throttle, the token, one re-login on 401, waits on 429
    /// (and 503 when `policy.retried`) as the server asks, and — when `policy.retried` — backoff and another try
    /// after a transport error, a 5xx or a body cut short, counted in `attempt` (shared with the caller's own
    /// retries). Without `retried` those come back as `Err` or the 5xx reply: the caller must find out whether the
    /// request took effect before sending it again.
    async fn send(
        &self,
        method: &reqwest::Method,
        url: &Url,
        body: Option<&Value>,
        policy: &Policy,
        attempt: &mut u32,
    ) -> Result<Reply, SourceError> {
        let show = policy.show;
        let mut relogged = false;
        let mut refused = 0;
        loop {
            self.throttle.ready().await;
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header("Accept", "application/json");
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(token) = self.bearer().await? {
                request = request.bearer_auth(token.expose());
            }
            let response = match request.send().await {
                Ok(r) => r,
                Err(e) if e.is_redirect() => {
                    return Err(SourceError::OtherOrigin {
                        what: format!("a redirect from {}", show(url)),
                        origin: refused_redirect(&e).unwrap_or_else(|| plain_reason(&e)),
                        home: self.home.clone(),
                    });
                }
                Err(e) if policy.retried && *attempt + 1 < TRIES => {
                    *attempt += 1;
                    tracing::warn!(%method, url = show(url), attempt = *attempt, "request failed, retrying: {e}");
                    backoff(*attempt).await;
                    continue;
                }
                Err(e) => {
                    return Err(SourceError::Unreachable {
                        url: show(url),
                        reason: plain_reason(&e),
                    })
                }
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED
                && matches!(self.auth, Auth::Login { .. })
                && !relogged
            {
                relogged = true;
                *self.token.lock().await = None;
                continue;
            }
            // 429 says the request was not handled; a 503 may have been, so only retried requests wait it out.
            let load = status == StatusCode::TOO_MANY_REQUESTS
                || (policy.retried && status == StatusCode::SERVICE_UNAVAILABLE);
            if load && refused + 1 < LOAD_TRIES {
                refused += 1;
                let wait = self.throttle.pushed_back(retry_after(&response));
                tracing::warn!(%method, url = show(url), refused, status = status.as_u16(), wait_ms = wait.as_millis() as u64, "{} asks to slow down", policy.who);
                continue;
            }
            if policy.retried && status.is_server_error() && *attempt + 1 < TRIES {
                *attempt += 1;
                tracing::warn!(%method, url = show(url), attempt = *attempt, status = status.as_u16(), "server error, retrying");
                backoff(*attempt).await;
                continue;
            }
            let link_next = response
                .headers()
                .get(reqwest::header::LINK)
                .and_then(|v| v.to_str().ok())
                .and_then(next_link);
            let bytes = match read_bounded(response, self.max_bytes).await {
                Ok(Some(b)) => b,
                Ok(None) => {
                    return Err(SourceError::TooLarge {
                        url: show(url),
                        limit: self.max_bytes,
                    })
                }
                Err(e) if policy.retried && *attempt + 1 < TRIES => {
                    *attempt += 1;
                    tracing::warn!(%method, url = show(url), attempt = *attempt, "reply cut short, retrying: {e}");
                    backoff(*attempt).await;
                    continue;
                }
                Err(e) => {
                    return Err(SourceError::Unreachable {
                        url: show(url),
                        reason: plain_reason(&e),
                    })
                }
            };
            if status.is_success() {
                self.throttle.succeeded();
            }
            return Ok(Reply {
                status,
                link_next,
                bytes,
            });
        }
    }

    /// The cursor of an entity's first page.
    pub fn first_cursor(entity: &Entity) -> PageCursor {
        match pagination(entity) {
            Pagination::Page { first, .. } => PageCursor::Page(u64::from(first)),
            Pagination::Offset { .. } => PageCursor::Offset(0),
            Pagination::Cursor { .. } => PageCursor::Token(None),
            Pagination::Link { .. } => PageCursor::Url(None),
        }
    }

    /// Fetches one page. The end is an empty page: a short page is not trusted as the last, because servers
    /// may cap the page size below the one asked for.
    pub async fn fetch_page(
        &self,
        entity: &Entity,
        cursor: &PageCursor,
    ) -> Result<FetchedPage, SourceError> {
        self.fetch_page_memo(entity, cursor, None).await
    }

    /// [`fetch_page`](Self::fetch_page) for a pass that keeps a page memo: the page is noted with its reply's
    /// digest, and a reply the memo holds for this cursor is not parsed (the page goes on as unchanged).
    pub async fn fetch_page_memo(
        &self,
        entity: &Entity,
        cursor: &PageCursor,
        memo: Option<&PageMemo>,
    ) -> Result<FetchedPage, SourceError> {
        let started = std::time::Instant::now();
        let memo_cursor = memo.and_then(|_| PageMemo::cursor_key(cursor));
        let remembered = match (memo, &memo_cursor) {
            (Some(memo), Some(key)) => memo.entry(key),
            _ => None,
        };
        let whole = cursor;
        let (cursor, since) = whole.split_since();
        let mut url = self.page_url(entity, cursor)?;
        if let (Some(since), Some(param), false) = (
            since,
            entity.since_param.as_deref(),
            matches!(cursor, PageCursor::Url(Some(_))),
        ) {
            url.query_pairs_mut().append_pair(param, since);
        }
        // A 404 or 410 past the first page is an error too, never the end of the list: a gateway that forgot the
        // resource mid-listing would otherwise have every later record taken for deleted.
        let plan = self.row_plan(entity);
        let reply = self
            .get_reply(
                &url,
                memo_cursor.is_some(),
                remembered.map(|r| r.digest),
                plan.clone(),
            )
            .await?;
        let (body, rows, link_next, note) = match (reply, remembered, memo_cursor) {
            (PageReply::Same, Some(entry), Some(cursor)) => {
                return Ok(FetchedPage {
                    records: Default::default(),
                    next: entry.next.clone(),
                    fetch_ms: started.elapsed().as_millis() as u64,
                    expected: None,
                    failure: None,
                    memo: Some(MemoNote::Unchanged {
                        cursor,
                        records: entry.records,
                        fingerprint: entry.fingerprint,
                    }),
                });
            }
            (
                PageReply::Parsed {
                    body,
                    rows,
                    link_next,
                    digest,
                },
                _,
                cursor,
            ) => (
                body,
                rows,
                link_next,
                cursor.map(|cursor| MemoNote::Read {
                    cursor,
                    digest,
                    // The listing check fills it in as it checks the page.
                    fingerprint: None,
                }),
            ),
            // get_reply says Same only when given a digest, which comes with the entry and its cursor.
            (PageReply::Same, _, _) => {
                return Err(SourceError::InvalidJson {
                    url: shown(&url),
                    reason: "a reply matched a page memo that is not there".into(),
                })
            }
        };
        let follow = match pagination(entity) {
            Pagination::Cursor { next, .. } => {
                token_at(&body, &next).map(|t| PageCursor::Token(Some(t)))
            }
            Pagination::Link {
                next: Some(pointer),
            } => token_at(&body, &pointer)
                .and_then(|t| url.join(&t).ok())
                .map(|u| PageCursor::Url(Some(u.to_string()))),
            Pagination::Link { next: None } => link_next
                .and_then(|t| url.join(&t).ok())
                .map(|u| PageCursor::Url(Some(u.to_string()))),
            _ => None,
        };
        if let Some(PageCursor::Url(Some(next))) = &follow {
            self.check_origin(next, "the next-page link")?;
        }
        let pointer = entity.records.clone().unwrap_or_default();
        let records = match (rows, plan) {
            (Some(rows), Some(plan)) => crate::records::Records::Rows {
                fields: plan.fields,
                rows,
            },
            _ => self.found_records(entity, extract_records(body, &pointer), &url, whole)?,
        };
        self.keep_row_shape(entity, &records);
        let next = match cursor {
            _ if records.is_empty() => None,
            PageCursor::Page(n) => Some(PageCursor::Page(n + 1)),
            PageCursor::Offset(n) => Some(PageCursor::Offset(n + records.len() as u64)),
            // The reply names the next page; without a name this was the last.
            PageCursor::Token(_) | PageCursor::Url(_) => follow,
            // page_url refused any other cursor already
            PageCursor::Bubble(_) | PageCursor::Key(_) | PageCursor::Since { .. } => None,
        };
        Ok(FetchedPage {
            records,
            next: next.map(|n| whole.carry_since(n)),
            fetch_ms: started.elapsed().as_millis() as u64,
            expected: None,
            failure: None,
            memo: note,
        })
    }

    /// The records a reply parsed as objects holds where the entity says, or why there are none.
    fn found_records(
        &self,
        entity: &Entity,
        found: Records,
        url: &Url,
        whole: &PageCursor,
    ) -> Result<crate::records::Records, SourceError> {
        let pointer = entity.records.clone().unwrap_or_default();
        Ok(match found {
            Records::Found(records) => records.into(),
            Records::Missing => {
                return Err(SourceError::NoRecords {
                    url: shown(url),
                    pointer: display_pointer(&pointer),
                })
            }
            Records::Null => {
                return Err(SourceError::BrokenListing {
                    page: format!("{} ({})", whole.describe(), shown(url)),
                    problem: format!(
                        "the records at {} are null, not a list (an empty page is [])",
                        display_pointer(&pointer)
                    ),
                })
            }
        })
    }

    /// How to read the entity's next page as rows, if its last page's records all listed the same fields and the
    /// next-page token is not read from among the records (their place is left empty when read as rows).
    fn row_plan(&self, entity: &Entity) -> Option<RowPlan> {
        let shape = self.row_shapes.lock().ok()?.get(&entity.name).cloned()?;
        let fields = shape.fields.filter(|_| shape.misses < ROW_MISSES)?;
        let pointer = entity.records.clone().unwrap_or_default();
        let at = match pointer.is_empty() {
            true => None,
            false => Some(pointer_steps(&pointer)?),
        };
        let token = match pagination(entity) {
            Pagination::Cursor { next, .. } => Some(next),
            Pagination::Link { next } => next,
            _ => None,
        };
        if let Some(token) = token {
            let token = pointer_steps(&token)?;
            let into_records = match &at {
                Some(at) => token.starts_with(at),
                // The reply itself (an array: a step that is a number) or its `data`.
                None => token
                    .first()
                    .is_some_and(|s| s == "data" || s.parse::<usize>().is_ok()),
            };
            if into_records {
                return None;
            }
        }
        Some(RowPlan { at, fields })
    }

    /// Remembers the fields of the page's first record, for reading the next page as rows.
    fn keep_row_shape(&self, entity: &Entity, records: &crate::records::Records) {
        let Ok(mut shapes) = self.row_shapes.lock() else {
            return;
        };
        let shape = shapes.entry(entity.name.clone()).or_default();
        match records {
            crate::records::Records::Rows { .. } => shape.misses = 0,
            crate::records::Records::Objects(objects) => {
                if shape.fields.is_some() {
                    shape.misses = shape.misses.saturating_add(1);
                }
                shape.fields = objects
                    .first()
                    .and_then(Value::as_object)
                    .filter(|first| !first.is_empty())
                    .map(|first| first.keys().cloned().collect());
            }
        }
    }

    /// Refuses a URL of another origin than base_url's (another host or port, or http instead of https): the
    /// source's credentials would go with the request.
    fn check_origin(&self, url: &str, what: &str) -> Result<(), SourceError> {
        let origin = Url::parse(url).map(|u| u.origin());
        match origin {
            Ok(origin) if origin.ascii_serialization() == self.home => Ok(()),
            Ok(origin) => Err(SourceError::OtherOrigin {
                what: what.to_owned(),
                origin: origin.ascii_serialization(),
                home: self.home.clone(),
            }),
            Err(e) => Err(SourceError::BrokenListing {
                page: what.to_owned(),
                problem: format!("it is not a URL ({e})"),
            }),
        }
    }

    fn page_url(&self, entity: &Entity, cursor: &PageCursor) -> Result<Url, SourceError> {
        let path = entity
            .path
            .clone()
            .unwrap_or_else(|| format!("/{}", entity.name));
        if let PageCursor::Url(Some(next)) = cursor {
            return Url::parse(next).map_err(|e| SourceError::Unreachable {
                url: next.clone(),
                reason: format!("the next-page link is not a URL: {e}"),
            });
        }
        let raw = format!("{}{}", self.base_url, path);
        let mut url = Url::parse(&raw).map_err(|e| SourceError::Unreachable {
            url: raw.clone(),
            reason: format!("not a URL: {e}"),
        })?;
        {
            let mut query = url.query_pairs_mut();
            match (pagination(entity), cursor) {
                (Pagination::Page { page_param, size_param, size, .. }, PageCursor::Page(n)) => {
                    query.append_pair(&page_param, &n.to_string());
                    query.append_pair(&size_param, &size.to_string());
                }
                (Pagination::Offset { offset_param, limit_param, size }, PageCursor::Offset(n)) => {
                    query.append_pair(&offset_param, &n.to_string());
                    query.append_pair(&limit_param, &size.to_string());
                }
                (Pagination::Cursor { cursor_param, size_param, size, .. }, PageCursor::Token(token)) => {
                    if let Some(token) = token {
                        query.append_pair(&cursor_param, token);
                    }
                    query.append_pair(&size_param, &size.to_string());
                }
                (Pagination::Link { .. }, PageCursor::Url(None)) => {}
                (_, other) => {
                    return Err(SourceError::Unreachable {
                        url: raw.clone(),
                        reason: format!("saved cursor {other:?} does not fit the entity's pagination; the pipeline's pagination changed since the last run"),
                    })
                }
            }
        }
        Ok(url)
    }

    /// GET with auth, bounded retries on 5xx/timeouts/resets/invalid bodies, waits on 429/503 (`Retry-After`,
    /// shared by every request of the source), and one re-login on 401.
    pub(crate) async fn get_json(&self, url: &Url) -> Result<Value, SourceError> {
        self.get_json_and_link(url).await.map(|(value, _)| value)
    }

    /// [`get_json`](Self::get_json), with the `rel="next"` target of the reply's `Link` header.
    async fn get_json_and_link(&self, url: &Url) -> Result<(Value, Option<String>), SourceError> {
        match self.get_reply(url, false, None, None).await? {
            PageReply::Parsed {
                body, link_next, ..
            } => Ok((body, link_next)),
            PageReply::Same => Err(SourceError::InvalidJson {
                url: shown(url),
                reason: "a reply was taken for a remembered one".into(),
            }),
        }
    }

    /// A page's reply: parsed, with its digest when `digest` (see [`reply_digest`]); not parsed when that digest is
    /// `same_as`.
    async fn get_reply(
        &self,
        url: &Url,
        digest: bool,
        same_as: Option<u128>,
        rows: Option<RowPlan>,
    ) -> Result<PageReply, SourceError> {
        let policy = Policy {
            retried: true,
            who: "the source",
            show: shown,
        };
        let mut attempt = 0;
        loop {
            let reply = self
                .send(&reqwest::Method::GET, url, None, &policy, &mut attempt)
                .await?;
            let status = reply.status;
            if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
                return Err(SourceError::Unauthorized {
                    url: shown(url),
                    status: status.as_u16(),
                });
            }
            if !status.is_success() {
                let bytes = &reply.bytes;
                let body = String::from_utf8_lossy(&bytes[..bytes.len().min(300)]).into_owned();
                return Err(SourceError::Status {
                    url: shown(url),
                    status: status.as_u16(),
                    body,
                });
            }
            let shape = self.page_shape.clone();
            let read = read_reply(
                reply.bytes,
                reply.link_next.clone(),
                digest,
                same_as,
                shape,
                rows.clone(),
            );
            match read.await {
                Ok((None, _)) => return Ok(PageReply::Same),
                Ok((Some((body, rows)), digest)) => {
                    return Ok(PageReply::Parsed {
                        body,
                        rows,
                        link_next: reply.link_next,
                        digest,
                    })
                }
                Err(e) => {
                    attempt += 1;
                    if attempt >= TRIES {
                        return Err(SourceError::InvalidJson {
                            url: shown(url),
                            reason: e,
                        });
                    }
                    tracing::warn!(%url, attempt, "invalid or truncated JSON body, retrying");
                    backoff(attempt).await;
                }
            }
        }
    }

    async fn bearer(&self) -> Result<Option<SecretValue>, SourceError> {
        match &self.auth {
            Auth::None => Ok(None),
            Auth::Bearer { token } => Ok(Some(secrets::resolve(token)?)),
            Auth::JwtHs256 { .. } | Auth::Login { .. } => {
                let mut guard = self.token.lock().await;
                let now = chrono::Utc::now().timestamp();
                // Renewed 30 s before it expires; a login token without `exp` lives until a 401.
                if let Some(token) = guard.as_ref() {
                    if token.expires_at.is_none_or(|exp| exp - 30 > now) {
                        return Ok(Some(token.value.clone()));
                    }
                }
                let token = self.new_token(now).await?;
                let value = token.value.clone();
                *guard = Some(token);
                Ok(Some(value))
            }
        }
    }

    /// A fresh token: a service JWT signed here, or a login.
    async fn new_token(&self, now: i64) -> Result<Token, SourceError> {
        match &self.auth {
            Auth::JwtHs256 {
                secret,
                claims,
                ttl_s,
            } => {
                let key = secrets::resolve(secret)?;
                let expires_at = now + i64::from(*ttl_s).max(31);
                let signed = sign_hs256(key.expose().as_bytes(), claims, now, expires_at);
                Ok(Token {
                    value: SecretValue::new(signed),
                    expires_at: Some(expires_at),
                })
            }
            Auth::Login {
                path,
                username,
                password,
                token_field,
            } => {
                let password = secrets::resolve(password)?;
                let field = token_field.as_deref().unwrap_or("access_token");
                self.login(path, username, &password, field).await
            }
            Auth::None | Auth::Bearer { .. } => Err(SourceError::Login {
                url: self.base_url.clone(),
                reason: "this auth kind has no token to renew".into(),
            }),
        }
    }

    async fn login(
        &self,
        path: &str,
        username: &str,
        password: &SecretValue,
        field: &str,
    ) -> Result<Token, SourceError> {
        let url = format!("{}{}", self.base_url, path);
        let body = serde_json::json!({ "username": username, "password": password.expose() });
        let response = self.http.post(&url).json(&body).send().await.map_err(|e| {
            SourceError::Unreachable {
                url: url.clone(),
                reason: plain_reason(&e),
            }
        })?;
        let status = response.status();
        if !status.is_success() {
            return Err(SourceError::Login {
                url,
                reason: format!(
                    "the server answered {status}; check username and the password secret"
                ),
            });
        }
        let reply: Value = response.json().await.map_err(|e| SourceError::Login {
            url: url.clone(),
            reason: format!("the reply is not JSON: {e}"),
        })?;
        let pointer = if field.starts_with('/') {
            field.to_owned()
        } else {
            format!("/{field}")
        };
        let value = reply.pointer(&pointer).and_then(Value::as_str).ok_or_else(|| SourceError::Login {
            url: url.clone(),
            reason: format!("the reply has no text field \"{field}\"; set token_field to the field holding the token"),
        })?;
        Ok(Token {
            expires_at: jwt_expiry(value),
            value: SecretValue::new(value.to_owned()),
        })
    }
}

/// What a page request brought.
enum PageReply {
    /// The body parsed, the `rel="next"` target of its `Link` header and the reply's digest (0 when not asked for).
    Parsed {
        body: Value,
        /// The records, when read as rows (then not in `body`).
        rows: Option<Vec<Vec<Value>>>,
        link_next: Option<String>,
        digest: u128,
    },
    /// The reply the caller remembered (not parsed).
    Same,
}

fn pagination(entity: &Entity) -> Pagination {
    entity.pagination.clone().unwrap_or(Pagination::Page {
        page_param: "page".into(),
        size_param: "page_size".into(),
        size: 1000,
        first: 1,
    })
}

/// What a reply holds where its records should be.
#[derive(Debug)]
enum Records {
    Found(Vec<Value>),
    /// Nothing there, or something that is not a list.
    Missing,
    Null,
}

/// The records array at `pointer`, or, with no pointer, the reply itself or its `/data`.
/// Takes the array out of the reply instead of copying it (a page can hold thousands of records).
fn extract_records(mut body: Value, pointer: &str) -> Records {
    let found = if pointer.is_empty() {
        match body {
            Value::Array(_) => Some(&mut body),
            _ => body.get_mut(DEFAULT_RECORDS_KEY),
        }
    } else {
        body.pointer_mut(pointer)
    };
    match found.map(Value::take) {
        Some(Value::Array(items)) => Records::Found(items),
        Some(Value::Null) => Records::Null,
        _ => Records::Missing,
    }
}

/// The steps of a JSON pointer (`/a/b~1c` → `a`, `b/c`); None for text that is not one.
fn pointer_steps(pointer: &str) -> Option<Vec<String>> {
    let rest = pointer.strip_prefix('/')?;
    Some(
        rest.split('/')
            .map(|step| step.replace("~1", "/").replace("~0", "~"))
            .collect(),
    )
}

/// Where a reply that is not itself the list holds its records when the entity does not say.
const DEFAULT_RECORDS_KEY: &str = "data";

fn display_pointer(pointer: &str) -> String {
    if pointer.is_empty() {
        "(the reply itself or /data)".to_owned()
    } else {
        format!("\"{pointer}\"")
    }
}

/// The JSON value at `pointer` as a token: text as it is, numbers spelled; None when missing, null or empty.
fn token_at(body: &Value, pointer: &str) -> Option<String> {
    match body.pointer(pointer)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The target of `rel="next"` in an RFC 8288 `Link` header.
fn next_link(header: &str) -> Option<String> {
    header.split('<').skip(1).find_map(|part| {
        let (target, params) = part.split_once('>')?;
        let is_next = params.split(';').any(|p| {
            let p = p.trim().trim_end_matches(',').trim();
            p.strip_prefix("rel=").is_some_and(|rel| {
                rel.trim_matches('"')
                    .split_whitespace()
                    .any(|r| r.eq_ignore_ascii_case("next"))
            })
        });
        is_next.then(|| target.trim().to_owned())
    })
}

/// A service JWT: `{"alg":"HS256","typ":"JWT"}`, the claims with `iat` and `exp`, signed with HMAC-SHA256.
fn sign_hs256(
    key: &[u8],
    claims: &std::collections::BTreeMap<String, Value>,
    issued_at: i64,
    expires_at: i64,
) -> String {
    use hmac::Mac;
    let b64 = &base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut payload: serde_json::Map<String, Value> = claims.clone().into_iter().collect();
    payload.insert("iat".into(), Value::from(issued_at));
    payload.insert("exp".into(), Value::from(expires_at));
    let signing_input = format!(
        "{}.{}",
        b64.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64.encode(Value::Object(payload).to_string())
    );
    // HMAC accepts keys of any length, so this never fails.
    let signature = match hmac::Hmac::<sha2::Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(signing_input.as_bytes());
            b64.encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    };
    format!("{signing_input}.{signature}")
}

/// How [`RestClient::send`] treats a request: whether it may be sent again after an unclear failure, who it speaks
/// to (for the log) and how its URL is shown in messages.
struct Policy {
    retried: bool,
    who: &'static str,
    show: fn(&Url) -> String,
}

/// A reply as far as [`RestClient::send`] reads it.
struct Reply {
    status: StatusCode,
    /// The `rel="next"` target of its `Link` header.
    link_next: Option<String>,
    bytes: Vec<u8>,
}

/// The origin a refused redirect led to, from the error's causes.
fn refused_redirect(e: &reqwest::Error) -> Option<String> {
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        if let Some(r) = c.downcast_ref::<RedirectRefused>() {
            return Some(r.0.clone());
        }
        cause = c.source();
    }
    None
}

/// The reply's body, read chunk by chunk and given up as soon as it is larger than `limit` bytes (None), so that a
/// reply without end never holds more than that in memory.
async fn read_bounded(
    mut response: reqwest::Response,
    limit: u64,
) -> Result<Option<Vec<u8>>, reqwest::Error> {
    if response.content_length().is_some_and(|n| n > limit) {
        return Ok(None);
    }
    // The chunks are kept as they came and joined once complete: a growing buffer would copy itself as it doubles,
    // holding up to twice the limit at a time.
    let mut chunks = Vec::new();
    let mut size = 0u64;
    while let Some(chunk) = response.chunk().await? {
        size += chunk.len() as u64;
        if size > limit {
            return Ok(None);
        }
        chunks.push(chunk);
    }
    Ok(Some(chunks.concat()))
}

/// Follows redirects only within base_url's origin (at most 10): reqwest would drop the Authorization header on a
/// hop to another host, but a login body or a token in a query would still go, and https→http would expose it.
fn same_origin_redirects(home: String) -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(move |attempt| {
        let origin = attempt.url().origin().ascii_serialization();
        if attempt.previous().len() >= 10 {
            attempt.error(RedirectRefused("more than 10 redirects".into()))
        } else if origin == home {
            attempt.follow()
        } else {
            attempt.error(RedirectRefused(origin))
        }
    })
}

/// A redirect not followed: the origin it led to (or why).
#[derive(Debug)]
struct RedirectRefused(String);

impl std::fmt::Display for RedirectRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "a redirect to {} was not followed", self.0)
    }
}

impl std::error::Error for RedirectRefused {}

/// The seconds a reply's `Retry-After` asks to wait, when it gives them.
fn retry_after(response: &reqwest::Response) -> Option<Duration> {
    response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

/// A target call's URL as errors and logs show it: a lookup's query holds a hundred key hashes, so only its length
/// is shown.
fn brief(url: &Url) -> String {
    let mut short = url.clone();
    short.set_query(None);
    match url.query() {
        Some(q) => format!("{short}?… ({} characters)", q.len()),
        None => shown(&short),
    }
}

/// A URL as errors and logs show it: without userinfo, and with the values of query parameters that may hold a
/// credential hidden.
pub(crate) fn shown(url: &Url) -> String {
    let mut safe = url.clone();
    let _ = safe.set_username("");
    let _ = safe.set_password(None);
    if safe.query().is_some() {
        let pairs: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| {
                let hidden = crate::config::is_credential_param(&k);
                (
                    k.into_owned(),
                    if hidden {
                        "***".to_owned()
                    } else {
                        v.into_owned()
                    },
                )
            })
            .collect();
        if pairs.is_empty() {
            safe.set_query(None);
        } else {
            safe.query_pairs_mut().clear().extend_pairs(pairs);
        }
    }
    safe.to_string()
}

/// Parses a reply on a blocking thread: a page of thousands of records is milliseconds of CPU, which the other
/// stages of a run (polled on the same task) would otherwise wait for.
async fn parse_json(bytes: impl AsRef<[u8]> + Send + 'static) -> Result<Value, String> {
    tokio::task::spawn_blocking(move || {
        parse_bytes(&mut super::json::Parser::default(), bytes.as_ref())
    })
    .await
    .unwrap_or_else(|e| Err(format!("the JSON parser stopped: {e}")))
}

/// A page's reply on a blocking thread: its digest when asked for, and the body parsed unless that digest is
/// `same_as` (then None: the page is the remembered one).
async fn read_reply(
    bytes: impl AsRef<[u8]> + Send + 'static,
    link: Option<String>,
    digest: bool,
    same_as: Option<u128>,
    shape: super::json::LastShape,
    rows: Option<RowPlan>,
) -> Result<(Option<ParsedReply>, u128), String> {
    tokio::task::spawn_blocking(move || {
        let digest = match digest || same_as.is_some() {
            true => reply_digest(bytes.as_ref(), link.as_deref()),
            false => 0,
        };
        if same_as == Some(digest) {
            return Ok((None, digest));
        }
        if let Some(read) = rows.and_then(|plan| read_rows(bytes.as_ref(), &plan)) {
            return Ok((Some((read.0, Some(read.1))), digest));
        }
        let mut parser = shape.parser();
        let body = parse_bytes(&mut parser, bytes.as_ref())?;
        shape.keep(&parser);
        Ok((Some((body, None)), digest))
    })
    .await
    .unwrap_or_else(|e| Err(format!("the JSON parser stopped: {e}")))
}

/// A reply parsed: its body, and its records when read as rows.
type ParsedReply = (Value, Option<Vec<Vec<Value>>>);

/// The reply read as rows of the plan's fields, if all its records list them; None to parse it as objects.
fn read_rows(bytes: &[u8], plan: &RowPlan) -> Option<(Value, Vec<Vec<Value>>)> {
    let data;
    let at: &[String] = match &plan.at {
        Some(at) => at,
        None if bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') => &[],
        None => {
            data = [DEFAULT_RECORDS_KEY.to_owned()];
            &data
        }
    };
    super::json::parse_rows_at(bytes, at, &plan.fields)
}

fn parse_bytes(parser: &mut super::json::Parser, bytes: &[u8]) -> Result<Value, String> {
    parser.parse(bytes).or_else(|e| {
        // A lone surrogate fails the strict parse of the whole page; parsed leniently, it fails one record.
        let marked = super::mark_lone_surrogates(bytes).ok_or_else(|| e.to_string())?;
        tracing::warn!(
            "the reply holds lone UTF-16 surrogates: the records holding them will fail"
        );
        parser.parse(&marked).map_err(|_| e.to_string())
    })
}

/// The `exp` claim of a JWT, if the token is one.
fn jwt_expiry(token: &str) -> Option<i64> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice::<Value>(&bytes)
        .ok()?
        .get("exp")?
        .as_i64()
}

/// A transport error's reason with its causes (URLs here never carry credentials: config refuses them).
fn plain_reason(e: &reqwest::Error) -> String {
    let mut reason = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason = format!("{reason}: {s}");
        source = s.source();
    }
    reason
}

/// Exponential back-off with jitter: about 0.2, 0.4, 0.8, 1.6 s (up to 6.4 s).
pub(crate) async fn backoff(attempt: u32) {
    let base = Duration::from_millis(100 * 2u64.pow(attempt.min(6)));
    tokio::time::sleep(base + super::throttle::jitter(base)).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn records_found_by_pointer_or_default() {
        let len = |r: Records| match r {
            Records::Found(items) => items.len(),
            other => panic!("no records: {other:?}"),
        };
        assert_eq!(len(extract_records(json!([1, 2]), "")), 2);
        assert_eq!(len(extract_records(json!({"data": [1]}), "")), 1);
        assert_eq!(
            len(extract_records(
                json!({"r": {"items": [1, 2, 3]}}),
                "/r/items"
            )),
            3
        );
        assert!(matches!(
            extract_records(json!({"r": 1}), "/r"),
            Records::Missing
        ));
        assert!(matches!(
            extract_records(json!({"x": []}), "/r"),
            Records::Missing
        ));
        assert!(matches!(
            extract_records(json!({"data": null}), ""),
            Records::Null
        ));
    }

    #[test]
    fn next_link_is_found_among_others() {
        let header = r#"<https://api.example.com/items?page=1>; rel="first", <https://api.example.com/items?page=3>; rel="next", <https://api.example.com/items?page=9>; rel="last""#;
        assert_eq!(
            next_link(header).as_deref(),
            Some("https://api.example.com/items?page=3")
        );
        assert_eq!(next_link(r#"</items?after=x>; rel="prev""#), None);
        assert_eq!(
            next_link("</items?after=y>; rel=next").as_deref(),
            Some("/items?after=y")
        );
    }

    #[test]
    fn hs256_tokens_verify_with_the_key() {
        use hmac::Mac;
        let mut claims = std::collections::BTreeMap::new();
        claims.insert("sub".to_owned(), json!("syncflow"));
        let token = sign_hs256(b"k3y", &claims, 1_700_000_000, 1_700_000_300);
        let (input, signature) = token.rsplit_once('.').unwrap();
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"k3y").unwrap();
        mac.update(input.as_bytes());
        let expected =
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
        assert_eq!(signature, expected);
        assert_eq!(jwt_expiry(&token), Some(1_700_000_300));
        assert!(token.split('.').nth(1).is_some_and(|p| {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap();
            String::from_utf8(payload)
                .unwrap()
                .contains(r#""sub":"syncflow""#)
        }));
    }

    #[test]
    fn jwt_expiry_is_read_from_the_payload() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"x","exp":1700000000}"#);
        assert_eq!(jwt_expiry(&format!("h.{payload}.s")), Some(1_700_000_000));
        assert_eq!(jwt_expiry("opaque-token"), None);
    }
}
