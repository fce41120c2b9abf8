//! An ERP-like REST gateway for tests: `login` auth issuing short-lived JWT-shaped tokens, `page` or `offset`
//! pagination, `{"data": [...]}` replies. Its records can be changed while it runs.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

/// Item `i` of the generated test data: id, name, and a price written as text.
pub fn item(i: u64) -> Value {
    json!({"id": i, "name": format!("item {i}"), "price": format!("{}.{:02}", i % 1000, i % 100)})
}

pub const USERNAME: &str = "svc";

#[derive(Clone)]
struct Shared {
    records: Arc<RwLock<Vec<Value>>>,
    password: String,
    tokens_issued: Arc<AtomicU64>,
    max_page_size: usize,
    token_ttl_s: i64,
    delay_ms: Arc<AtomicU64>,
    /// Records sent in list replies so far.
    served: Arc<AtomicU64>,
    /// When set, HS256 service tokens signed with this key are accepted too (`jwt_hs256` auth).
    jwt_secret: Arc<RwLock<Option<String>>>,
    /// List requests starting at this offset answer 500 (a page that cannot be read).
    broken_offset: Arc<RwLock<Option<usize>>>,
    /// A way the server misbehaves, at the page starting at an offset (see [`Fault`]).
    fault: Arc<RwLock<Option<(usize, Fault)>>>,
}

/// Ways a real gateway misbehaves, for `/api/items`.
#[derive(Debug, Clone)]
pub enum Fault {
    /// `{"data": null}` instead of a list.
    NullData,
    /// 404, as a gateway that forgot the resource mid-listing.
    NotFound,
    /// `{"data": [], "has_more": false}`: the listing ends early.
    EndsEarly,
    /// The paging parameter is ignored: every page is the first (the offset given is not used).
    IgnoresPaging,
    /// A body that never ends (`{"data": [` and records forever).
    EndlessBody,
    /// This text as the body (with `application/json`), e.g. JSON with a lone surrogate escape.
    Raw(String),
}

pub struct ErpServer {
    pub base_url: String,
    shared: Shared,
    _stop: tokio::sync::oneshot::Sender<()>,
}

#[derive(Deserialize)]
struct Login {
    username: String,
    password: String,
}

impl ErpServer {
    /// Serves `records` behind a login with `password`; pages are capped at `max_page_size`.
    pub async fn start(
        records: Vec<Value>,
        password: &str,
        max_page_size: usize,
        token_ttl_s: i64,
    ) -> ErpServer {
        let shared = Shared {
            records: Arc::new(RwLock::new(records)),
            password: password.to_owned(),
            tokens_issued: Arc::new(AtomicU64::new(0)),
            max_page_size,
            token_ttl_s,
            delay_ms: Arc::new(AtomicU64::new(0)),
            served: Arc::new(AtomicU64::new(0)),
            jwt_secret: Arc::new(RwLock::new(None)),
            broken_offset: Arc::new(RwLock::new(None)),
            fault: Arc::new(RwLock::new(None)),
        };
        let app = Router::new()
            .route("/auth/token", post(login))
            .route("/api/items", get(items))
            .route("/api/cursor-items", get(cursor_items))
            .route("/api/link-items", get(link_items))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        ErpServer {
            base_url: format!("http://{addr}"),
            shared,
            _stop: stop,
        }
    }

    pub fn set_records(&self, records: Vec<Value>) {
        *self.shared.records.write().expect("records lock") = records;
    }

    /// Makes every list request take this long (to give a test time to interrupt a run).
    pub fn set_delay_ms(&self, ms: u64) {
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// Writes `DIR/NAME.toml`: a pipeline reading this server's `/api/items` as entity `entity` behind `login` auth
    /// (`password` is a secret reference such as `{ env = "PW" }`), into `target` (the `[target]` body), with
    /// `entity_extra` lines added to the entity.
    pub fn pipeline_file(
        &self,
        dir: &Path,
        name: &str,
        password: &str,
        target: &str,
        entity: &str,
        entity_extra: &str,
    ) -> PathBuf {
        let text = self.pipeline_text(name, password, target, entity, entity_extra);
        let path = dir.join(format!("{name}.toml"));
        std::fs::write(&path, text).expect("write the pipeline file");
        path
    }

    /// The text of the pipeline [`ErpServer::pipeline_file`] writes.
    pub fn pipeline_text(
        &self,
        name: &str,
        password: &str,
        target: &str,
        entity: &str,
        entity_extra: &str,
    ) -> String {
        format!(
            "version = 1\nname = \"{name}\"\n[source]\nkind = \"rest\"\nbase_url = \"{}\"\n\
             auth = {{ kind = \"login\", path = \"/auth/token\", username = \"{USERNAME}\", password = {password} }}\n\
             [target]\n{target}\n[[entities]]\nname = \"{entity}\"\npath = \"/api/items\"\n{entity_extra}\n",
            self.base_url
        )
    }

    /// A pipeline of the items, 1,000 a page by offset, into PostgreSQL at `url` with the given deletes mode.
    pub fn items_to_postgres(&self, dir: &Path, name: &str, url: &str, deletes: &str) -> PathBuf {
        self.pipeline_file(
            dir,
            name,
            "{ env = \"PW\" }",
            &format!("kind = \"postgres\"\nurl = \"{url}\""),
            "items",
            &format!(
                "records = \"/data\"\npagination = {{ kind = \"offset\", size = 1000 }}\nbusiness_key = [\"id\"]\n\
                 deletes = \"{deletes}\""
            ),
        )
    }

    /// Makes the page at `offset` of `/api/items` answer 500 every time (None: every page answers again).
    pub fn break_offset(&self, offset: Option<usize>) {
        *self
            .shared
            .broken_offset
            .write()
            .expect("broken offset lock") = offset;
    }

    /// Makes the page of `/api/items` starting at `offset` misbehave as `fault` (None: behave again);
    /// [`Fault::IgnoresPaging`] applies to every page.
    pub fn set_fault(&self, offset: usize, fault: Option<Fault>) {
        *self.shared.fault.write().expect("fault lock") = fault.map(|f| (offset, f));
    }

    /// Accepts HS256 service tokens signed with `secret` (besides login tokens).
    pub fn accept_jwt_hs256(&self, secret: &str) {
        *self.shared.jwt_secret.write().expect("jwt lock") = Some(secret.to_owned());
    }

    /// Records sent in list replies so far (an incremental pass must ask for few).
    pub fn records_served(&self) -> u64 {
        self.shared.served.load(Ordering::SeqCst)
    }

    pub fn tokens_issued(&self) -> u64 {
        self.shared.tokens_issued.load(Ordering::SeqCst)
    }
}

fn jwt(exp: i64, n: u64) -> String {
    let enc = |v: Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    format!(
        "{}.{}.sig{n}",
        enc(json!({"alg": "HS256", "typ": "JWT"})),
        enc(json!({"sub": USERNAME, "exp": exp, "n": n}))
    )
}

async fn login(
    State(s): State<Shared>,
    Json(body): Json<Login>,
) -> Result<Json<Value>, StatusCode> {
    if body.username != USERNAME || body.password != s.password {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let n = s.tokens_issued.fetch_add(1, Ordering::SeqCst) + 1;
    let exp = now() + s.token_ttl_s;
    Ok(Json(
        json!({ "access_token": jwt(exp, n), "token_type": "bearer" }),
    ))
}

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

fn authorised(s: &Shared, headers: &HeaderMap) -> bool {
    let Some(token) = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    else {
        return false;
    };
    let jwt_secret = s.jwt_secret.read().ok().and_then(|g| g.clone());
    if let Some(secret) = jwt_secret {
        if hs256_valid(token, &secret) {
            return true;
        }
    }
    let Some(payload) = token.split('.').nth(1) else {
        return false;
    };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload) else {
        return false;
    };
    let Ok(claims) = serde_json::from_slice::<Value>(&bytes) else {
        return false;
    };
    let exp = claims.get("exp").and_then(Value::as_i64).unwrap_or(0);
    let n = claims.get("n").and_then(Value::as_u64).unwrap_or(0);
    exp > now() && n >= 1 && n <= s.tokens_issued.load(Ordering::SeqCst)
}

/// A page of `/api/items`, serialised straight from the records it borrows.
#[derive(serde::Serialize)]
struct ItemsReply<'a> {
    data: &'a [Value],
    total: usize,
}

async fn items(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<axum::response::Response, StatusCode> {
    use axum::response::IntoResponse;
    if !authorised(&s, &headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let delay = s.delay_ms.load(Ordering::SeqCst);
    if delay > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(delay)).await;
    }
    let num = |k: &str| q.get(k).and_then(|v| v.parse::<usize>().ok());
    let size = num("page_size")
        .or(num("limit"))
        .unwrap_or(100)
        .min(s.max_page_size)
        .max(1);
    let start = match (num("page"), num("offset")) {
        (Some(page), _) => (page.max(1) - 1) * size,
        (None, Some(offset)) => offset,
        (None, None) => 0,
    };
    if s.broken_offset.read().ok().and_then(|b| *b) == Some(start) {
        return Err(StatusCode::INTERNAL_SERVER_ERROR);
    }
    let fault = s.fault.read().ok().and_then(|f| f.clone());
    let start = match fault {
        Some((_, Fault::IgnoresPaging)) => 0,
        Some((at, fault)) if at == start => return Ok(misbehave(fault)),
        _ => start,
    };
    let records = s
        .records
        .read()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let total = records.len();
    // `updated_since`: only records whose `updated_at` is at or after the stamp (an incremental read).
    let body = match q.get("updated_since").map(|v| instant(v)) {
        // The bench's path: no copy of the records, so the server takes little of the machine from the sync.
        None => {
            let end = start.saturating_add(size).min(total);
            let data = &records[start.min(end)..end];
            s.served.fetch_add(data.len() as u64, Ordering::SeqCst);
            serde_json::to_vec(&ItemsReply { data, total })
        }
        Some(since) => {
            let data: Vec<Value> = records
                .iter()
                .filter(|r| {
                    r.get("updated_at")
                        .and_then(Value::as_str)
                        .is_some_and(|at| instant(at) >= since)
                })
                .skip(start)
                .take(size)
                .cloned()
                .collect();
            s.served.fetch_add(data.len() as u64, Ordering::SeqCst);
            serde_json::to_vec(&ItemsReply { data: &data, total })
        }
    }
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// The reply of a page that misbehaves.
fn misbehave(fault: Fault) -> axum::response::Response {
    use axum::response::IntoResponse;
    let json = [(axum::http::header::CONTENT_TYPE, "application/json")];
    match fault {
        Fault::NullData => (json, r#"{"data": null, "total": 0}"#).into_response(),
        Fault::NotFound => (StatusCode::NOT_FOUND, r#"{"error": "not found"}"#).into_response(),
        Fault::EndsEarly => (json, r#"{"data": [], "has_more": false}"#).into_response(),
        Fault::Raw(text) => (json, text).into_response(),
        Fault::EndlessBody => {
            let record = r#"{"id": 1, "name": "again and again and again and again and again"},"#;
            let chunk = axum::body::Bytes::from(record.repeat(1024));
            let head = futures_util::stream::once(async {
                Ok::<_, std::convert::Infallible>(axum::body::Bytes::from_static(b"{\"data\": ["))
            });
            let endless = futures_util::stream::repeat_with(move || Ok(chunk.clone()));
            let body = axum::body::Body::from_stream(futures_util::StreamExt::chain(head, endless));
            (json, body).into_response()
        }
        Fault::IgnoresPaging => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// An RFC 3339 stamp as an instant (text that is not one compares as the earliest).
fn instant(text: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&chrono::Utc))
        .unwrap_or_default()
}

/// A service token signed with `secret` (HS256) and not expired.
fn hs256_valid(token: &str, secret: &str) -> bool {
    use hmac::Mac;
    let Some((input, signature)) = token.rsplit_once('.') else {
        return false;
    };
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()) else {
        return false;
    };
    mac.update(input.as_bytes());
    let Ok(sent) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature) else {
        return false;
    };
    if mac.verify_slice(&sent).is_err() {
        return false;
    }
    let claims = input
        .split('.')
        .nth(1)
        .and_then(|p| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok());
    claims.is_some_and(|c| c.get("exp").and_then(Value::as_i64).unwrap_or(0) > now())
}

/// The records from `start`, at most `limit` (capped), and the offset after them (None at the end).
fn slice(
    s: &Shared,
    start: usize,
    limit: usize,
) -> Result<(Vec<Value>, Option<usize>), StatusCode> {
    let records = s
        .records
        .read()
        .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?;
    let limit = limit.min(s.max_page_size).max(1);
    let page: Vec<Value> = records.iter().skip(start).take(limit).cloned().collect();
    let end = start + page.len();
    Ok((page, (end < records.len()).then_some(end)))
}

/// `?cursor=TOKEN&limit=N` → `{"data": [...], "meta": {"next_cursor": "…" | null}}` (opaque tokens).
async fn cursor_items(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<Json<Value>, StatusCode> {
    if !authorised(&s, &headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let start = match q.get("cursor") {
        None => 0,
        Some(token) => token
            .strip_prefix("opaque-")
            .and_then(|t| t.parse().ok())
            .ok_or(StatusCode::BAD_REQUEST)?,
    };
    let limit = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let (page, next) = slice(&s, start, limit)?;
    Ok(Json(
        json!({"data": page, "meta": {"next_cursor": next.map(|n| format!("opaque-{n}"))}}),
    ))
}

/// `?after=N&limit=N` → `{"items": [...], "links": {"next": URL | null}}` and the same next URL (relative) in an
/// RFC 8288 `Link` header.
async fn link_items(
    State(s): State<Shared>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Result<(HeaderMap, Json<Value>), StatusCode> {
    if !authorised(&s, &headers) {
        return Err(StatusCode::UNAUTHORIZED);
    }
    let start = q.get("after").and_then(|v| v.parse().ok()).unwrap_or(0);
    let limit = q.get("limit").and_then(|v| v.parse().ok()).unwrap_or(100);
    let (page, next) = slice(&s, start, limit)?;
    let mut reply_headers = HeaderMap::new();
    let next_url = next.map(|n| format!("/api/link-items?after={n}&limit={limit}"));
    if let Some(url) = &next_url {
        let value = format!(
            "</api/link-items?after=0&limit={limit}>; rel=\"first\", <{url}>; rel=\"next\""
        );
        if let Ok(v) = value.parse() {
            reply_headers.insert("link", v);
        }
    }
    let host = headers
        .get("host")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("127.0.0.1");
    let absolute = next_url.map(|u| format!("http://{host}{u}"));
    Ok((
        reply_headers,
        Json(json!({"items": page, "links": {"next": absolute}})),
    ))
}
