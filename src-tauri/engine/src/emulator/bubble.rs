//! A Bubble.io-compatible Data API server (as Bubble documents its Data API): `/meta`, `/obj/{type}` with
//! `cursor`/`limit` (≤ 100), `constraints`, `sort_field`/`descending`, both key styles, the cursor ceiling, bearer
//! tokens, and injectable faults — latency, a requests-per-minute limit answered with 429 and `Retry-After`,
//! 500s and bodies cut short. Served under `/version-test/api/1.1` and `/api/1.1`.

use super::app::{BubbleApp, BubbleType};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use serde::Deserialize;
use serde_json::{json, Map, Value};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

/// Faults and limits the server injects; all off by default.
#[derive(Debug, Clone)]
pub struct Faults {
    /// Added to every reply.
    pub latency_ms: u64,
    /// Requests allowed in any 60-second window; over it: 429 with `Retry-After`.
    pub requests_per_minute: Option<u32>,
    /// Share of list requests answered with a 500.
    pub error_rate: f64,
    /// Share of list requests whose body is cut in half.
    pub truncate_rate: f64,
    /// No page past this item (Bubble: 50,000).
    pub cursor_ceiling: usize,
    /// List requests at these cursors of this type (`type`, `cursor`) always answer 500 (a page that cannot be read).
    pub broken_pages: Vec<(String, usize)>,
    /// List requests at these cursors of this type (`type`, `cursor`) answer without `remaining` (a reply that
    /// cannot say where the list ends).
    pub no_remaining: Vec<(String, usize)>,
    /// The bearer token required, if any.
    pub token: Option<String>,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            latency_ms: 0,
            requests_per_minute: None,
            error_rate: 0.0,
            truncate_rate: 0.0,
            cursor_ceiling: 50_000,
            broken_pages: Vec::new(),
            no_remaining: Vec::new(),
            token: None,
        }
    }
}

/// What the server saw and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub requests: u64,
    pub served: u64,
    pub errors_injected: u64,
    pub truncated: u64,
    pub rate_limited: u64,
    pub unauthorized: u64,
}

struct State_ {
    app: BubbleApp,
    faults: Faults,
    stats: Stats,
    recent: VecDeque<Instant>,
    /// The things matching a search, in order, by (type, constraints, sort field, descending): a client pages
    /// through one search many times, and the app changes only through `edit`, which clears this.
    searches: std::collections::HashMap<SearchKey, Arc<Vec<usize>>>,
}

type SearchKey = (String, Option<String>, Option<String>, bool);

type Shared = Arc<Mutex<State_>>;

/// A running emulator; stops when dropped.
pub struct BubbleEmulator {
    /// The live base URL (`…/api/1.1`).
    pub base_url: String,
    /// The development base URL (`…/version-test/api/1.1`).
    pub test_base_url: String,
    shared: Shared,
    _stop: oneshot::Sender<()>,
}

#[derive(Deserialize)]
struct ListQuery {
    cursor: Option<usize>,
    limit: Option<usize>,
    constraints: Option<String>,
    sort_field: Option<String>,
    descending: Option<bool>,
}

impl BubbleEmulator {
    /// Serves `app` on a free loopback port.
    pub async fn start(app: BubbleApp, faults: Faults) -> std::io::Result<BubbleEmulator> {
        let shared: Shared = Arc::new(Mutex::new(State_ {
            app,
            faults,
            stats: Stats::default(),
            recent: VecDeque::new(),
            searches: Default::default(),
        }));
        let api = Router::new()
            .route("/meta", get(meta))
            .route("/obj/{type_name}", get(list));
        let router = Router::new()
            .nest("/api/1.1", api.clone())
            .nest("/version-test/api/1.1", api)
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, router).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!("bubble emulator stopped: {e}");
            }
        });
        Ok(BubbleEmulator {
            base_url: format!("http://{addr}/api/1.1"),
            test_base_url: format!("http://{addr}/version-test/api/1.1"),
            shared,
            _stop: stop,
        })
    }

    /// Changes the faults while the server runs.
    pub fn set_faults(&self, faults: Faults) {
        lock(&self.shared).faults = faults;
    }

    pub fn stats(&self) -> Stats {
        lock(&self.shared).stats.clone()
    }

    /// Edits the app's data (things of a type, by its URL name) while the server runs.
    pub fn edit<R>(&self, edit: impl FnOnce(&mut BubbleApp) -> R) -> R {
        let mut state = lock(&self.shared);
        state.searches.clear();
        edit(&mut state.app)
    }

    /// A copy of the app as it is now.
    pub fn app(&self) -> BubbleApp {
        lock(&self.shared).app.clone()
    }
}

fn lock(shared: &Shared) -> MutexGuard<'_, State_> {
    // A panic in another request cannot leave the data half-written (every edit is one assignment).
    shared
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn bubble_error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"statusCode": status.as_u16(), "body": {"status": kind, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// Checks the token and the rate limit; counts the request.
fn admit(state: &mut State_, headers: &HeaderMap) -> Result<(), Box<Response>> {
    state.stats.requests += 1;
    if let Some(token) = &state.faults.token {
        let sent = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if sent != Some(token.as_str()) {
            state.stats.unauthorized += 1;
            return Err(Box::new(bubble_error(
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "invalid or missing API token",
            )));
        }
    }
    if let Some(limit) = state.faults.requests_per_minute {
        let now = Instant::now();
        let window = Duration::from_secs(60);
        while state
            .recent
            .front()
            .is_some_and(|t| now.duration_since(*t) >= window)
        {
            state.recent.pop_front();
        }
        if state.recent.len() >= limit as usize {
            state.stats.rate_limited += 1;
            let wait = state
                .recent
                .front()
                .map(|t| window.saturating_sub(now.duration_since(*t)))
                .unwrap_or(window);
            let mut response = bubble_error(
                StatusCode::TOO_MANY_REQUESTS,
                "RATE_LIMIT",
                "too many requests",
            );
            let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
            if let Ok(value) = seconds.to_string().parse() {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
            return Err(Box::new(response));
        }
        state.recent.push_back(now);
    }
    Ok(())
}

async fn meta(State(shared): State<Shared>, headers: HeaderMap) -> Response {
    let (reply, latency) = {
        let mut state = lock(&shared);
        let latency = state.faults.latency_ms;
        match admit(&mut state, &headers) {
            Err(response) => (*response, latency),
            Ok(()) => {
                state.stats.served += 1;
                (axum::Json(state.app.meta()).into_response(), latency)
            }
        }
    };
    tokio::time::sleep(Duration::from_millis(latency)).await;
    reply
}

async fn list(
    State(shared): State<Shared>,
    Path(type_name): Path<String>,
    Query(query): Query<ListQuery>,
    headers: HeaderMap,
) -> Response {
    let (reply, latency) = {
        let mut state = lock(&shared);
        let latency = state.faults.latency_ms;
        (
            list_reply(&mut state, &type_name, &query, &headers),
            latency,
        )
    };
    tokio::time::sleep(Duration::from_millis(latency)).await;
    reply
}

fn list_reply(
    state: &mut State_,
    type_name: &str,
    query: &ListQuery,
    headers: &HeaderMap,
) -> Response {
    if let Err(response) = admit(state, headers) {
        return *response;
    }
    let draw = fault_draw(state.stats.requests);
    if draw < state.faults.error_rate {
        state.stats.errors_injected += 1;
        return bubble_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERROR",
            "injected server error",
        );
    }
    let cursor = query.cursor.unwrap_or(0);
    if state
        .faults
        .broken_pages
        .iter()
        .any(|(t, c)| t == type_name && *c == cursor)
    {
        return bubble_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ERROR",
            "this page is broken",
        );
    }
    let use_captions = state.app.use_captions_for_get;
    let Some(ty) = state.app.types.iter().find(|t| t.name == type_name) else {
        return bubble_error(
            StatusCode::NOT_FOUND,
            "MISSING_DATA",
            &format!("type {type_name} not found"),
        );
    };
    let limit = query.limit.unwrap_or(100).clamp(1, 100);
    if cursor >= state.faults.cursor_ceiling {
        return bubble_error(
            StatusCode::BAD_REQUEST,
            "INVALID_DATA",
            &format!(
                "cursor {cursor} is past the search limit of {} items",
                state.faults.cursor_ceiling
            ),
        );
    }
    let key: SearchKey = (
        type_name.to_owned(),
        query.constraints.clone(),
        query.sort_field.clone(),
        query.descending.unwrap_or(false),
    );
    let matching = match state.searches.get(&key) {
        Some(found) => found.clone(),
        None => match search(ty, query, use_captions) {
            Ok(found) => {
                let found = Arc::new(found);
                state.searches.insert(key, found.clone());
                found
            }
            Err(message) => return bubble_error(StatusCode::BAD_REQUEST, "INVALID_DATA", &message),
        },
    };
    let Some(ty) = state.app.types.iter().find(|t| t.name == type_name) else {
        return bubble_error(StatusCode::NOT_FOUND, "MISSING_DATA", "type vanished");
    };
    let end = (cursor + limit)
        .min(matching.len())
        .min(state.faults.cursor_ceiling);
    let start = cursor.min(end);
    let results: Vec<Value> = matching[start..end]
        .iter()
        .map(|&i| Value::Object(ty.keyed(&ty.things[i], use_captions)))
        .collect();
    let reply = json!({"response": {
        "cursor": cursor,
        "results": results,
        "count": end - start,
        "remaining": matching.len() - end,
    }});
    let mut reply = reply;
    if state
        .faults
        .no_remaining
        .iter()
        .any(|(t, c)| t == type_name && *c == cursor)
    {
        if let Some(response) = reply.get_mut("response").and_then(Value::as_object_mut) {
            response.remove("remaining");
        }
    }
    let mut body = reply.to_string().into_bytes();
    if fault_draw(state.stats.requests ^ 0x5eed) < state.faults.truncate_rate {
        state.stats.truncated += 1;
        body.truncate(body.len() / 2);
    } else {
        state.stats.served += 1;
    }
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response()
}

/// The indexes of the things a search matches, in the order asked for.
fn search(ty: &BubbleType, query: &ListQuery, use_captions: bool) -> Result<Vec<usize>, String> {
    let constraints = parse_constraints(query.constraints.as_deref(), ty, use_captions)?;
    let mut matching: Vec<usize> = (0..ty.things.len())
        .filter(|&i| constraints.iter().all(|c| c.holds(&ty.things[i])))
        .collect();
    if let Some(field) = &query.sort_field {
        let field = ty.display_of(field, use_captions).to_owned();
        let things = &ty.things;
        matching.sort_by(|&a, &b| {
            compare(things[a].get(&field), things[b].get(&field))
                .then_with(|| compare(things[a].get("_id"), things[b].get("_id")))
        });
        if query.descending.unwrap_or(false) {
            matching.reverse();
        }
    }
    Ok(matching)
}

/// A stable pseudo-random number in [0, 1) for request `n`, so fault patterns repeat run to run.
fn fault_draw(n: u64) -> f64 {
    (xxhash_rust::xxh3::xxh3_64(&n.to_le_bytes()) >> 11) as f64 / (1u64 << 53) as f64
}

fn compare(a: Option<&Value>, b: Option<&Value>) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    match (a, b) {
        (Some(Value::Number(x)), Some(Value::Number(y))) => x
            .as_f64()
            .partial_cmp(&y.as_f64())
            .unwrap_or(Ordering::Equal),
        (Some(Value::String(x)), Some(Value::String(y))) => x.cmp(y),
        (None, None) => Ordering::Equal,
        // Bubble sorts empty values last.
        (None, Some(_)) => Ordering::Greater,
        (Some(_), None) => Ordering::Less,
        (Some(x), Some(y)) => x.to_string().cmp(&y.to_string()),
    }
}

struct Constraint {
    field: String,
    kind: String,
    value: Value,
}

impl Constraint {
    fn holds(&self, thing: &Map<String, Value>) -> bool {
        use std::cmp::Ordering;
        let actual = thing.get(&self.field);
        match self.kind.as_str() {
            "is_empty" => actual.is_none(),
            "is_not_empty" => actual.is_some(),
            "equals" => actual == Some(&self.value),
            "not equal" => actual != Some(&self.value),
            "greater than" => {
                actual.is_some() && compare(actual, Some(&self.value)) == Ordering::Greater
            }
            "less than" => actual.is_some() && compare(actual, Some(&self.value)) == Ordering::Less,
            _ => false,
        }
    }
}

fn parse_constraints(
    text: Option<&str>,
    ty: &BubbleType,
    use_captions: bool,
) -> Result<Vec<Constraint>, String> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let items: Vec<Value> =
        serde_json::from_str(text).map_err(|e| format!("constraints is not a JSON list: {e}"))?;
    items
        .into_iter()
        .map(|item| {
            let key = item
                .get("key")
                .and_then(Value::as_str)
                .ok_or("a constraint has no key")?;
            let kind = item
                .get("constraint_type")
                .and_then(Value::as_str)
                .ok_or("a constraint has no constraint_type")?;
            if !matches!(
                kind,
                "equals" | "not equal" | "greater than" | "less than" | "is_empty" | "is_not_empty"
            ) {
                return Err(format!(
                    "constraint_type {kind} is not supported by this emulator"
                ));
            }
            Ok(Constraint {
                field: ty.display_of(key, use_captions).to_owned(),
                kind: kind.to_owned(),
                value: item.get("value").cloned().unwrap_or(Value::Null),
            })
        })
        .collect()
}
