//! A ScheduleHub-like REST target for tests and the demo (seed 003's INGEST side): `POST /api/v1/{entity}` (the
//! hub makes the `uid`), `POST /api/v1/{entity}/batch`, `PATCH` and `DELETE /api/v1/{entity}/{uid}`, lookups by
//! `GET /api/v1/{entity}?erp_key_hash=h1,h2`, a bearer token, and faults to inject: every Nth call answering 500
//! (half of them after doing what was asked — the worst case for exactly-once), no batch endpoint, a field whose
//! value it refuses (422), and a parent it must hold before a child (404 naming the parent).

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, patch, post};
use axum::{Json, Router};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

pub const KEY_FIELD: &str = "erp_key_hash";

#[derive(Default)]
struct Tables {
    /// entity → uid → record.
    records: BTreeMap<String, BTreeMap<String, Map<String, Value>>>,
    /// entity → key hash → the uid of its record (the hub's unique index on erp_key_hash).
    by_key: HashMap<String, HashMap<String, String>>,
    /// entity → key hash → how many times a record with it was created.
    created: HashMap<String, HashMap<String, u64>>,
    next_uid: u64,
    /// The fields of every PATCH body, in order.
    patched_fields: Vec<Vec<String>>,
}

impl Tables {
    /// Removes a record and its key; whether there was one.
    fn remove(&mut self, entity: &str, uid: &str) -> bool {
        let Some(record) = self.records.get_mut(entity).and_then(|rs| rs.remove(uid)) else {
            return false;
        };
        if let Some(key) = record.get(KEY_FIELD).and_then(Value::as_str) {
            if let Some(keys) = self.by_key.get_mut(entity) {
                keys.remove(key);
            }
        }
        true
    }
}

/// A child's parent the hub checks: records of `entity` name in `field` the `parent_field` value of a record of
/// `parent`, which must exist.
#[derive(Clone)]
pub struct ParentRule {
    pub entity: String,
    pub field: String,
    pub parent: String,
    pub parent_field: String,
}

#[derive(Clone)]
struct Shared {
    tables: Arc<Mutex<Tables>>,
    token: String,
    calls: Arc<AtomicU64>,
    write_calls: Arc<AtomicU64>,
    /// Every Nth call answers 500 (0: never).
    fail_every: Arc<AtomicU64>,
    no_batch: Arc<AtomicBool>,
    /// Records whose `name` contains this text are refused (422).
    refuse_name: Arc<Mutex<Option<String>>>,
    parents: Arc<Mutex<Vec<ParentRule>>>,
    delay_ms: Arc<AtomicU64>,
    /// Every Nth call is answered 429 with Retry-After (0: never); `paced` counts calls for it, `slowed` the 429s.
    slow_down_every: Arc<AtomicU64>,
    paced: Arc<AtomicU64>,
    slowed: Arc<AtomicU64>,
    /// The next create does its work, answers 500, and takes the hub down: every call then answers 500 until
    /// `down` is cleared (an outage just after writes landed).
    down_after_create: Arc<AtomicBool>,
    down: Arc<AtomicBool>,
}

pub struct HubServer {
    pub base_url: String,
    shared: Shared,
    _stop: tokio::sync::oneshot::Sender<()>,
}

/// Whether this call fails, and how: `Some(true)` after doing its work, `Some(false)` before.
fn fault(s: &Shared) -> Option<bool> {
    if s.down.load(Ordering::SeqCst) {
        return Some(false);
    }
    let n = s.calls.fetch_add(1, Ordering::SeqCst) + 1;
    let every = s.fail_every.load(Ordering::SeqCst);
    (every > 0 && n.is_multiple_of(every)).then(|| (n / every).is_multiple_of(2))
}

fn authorised(s: &Shared, headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v == format!("Bearer {}", s.token))
}

type Reply = axum::response::Response;

/// The start of every write call: the token checked, the delay waited, the call counted. Err: the reply that ends
/// it now (401, or an injected 500 before the work); Ok(true): do the work, then answer 500.
async fn begin_write(s: &Shared, headers: &HeaderMap) -> Result<bool, Reply> {
    if !authorised(s, headers) {
        return Err(unauthorised());
    }
    pause(s).await;
    if let Some(slow) = slowed_down(s) {
        return Err(slow);
    }
    s.write_calls.fetch_add(1, Ordering::SeqCst);
    match fault(s) {
        Some(false) => Err(injected("injected")),
        after => Ok(after == Some(true)),
    }
}

fn injected(what: &str) -> Reply {
    reply(StatusCode::INTERNAL_SERVER_ERROR, json!({ "error": what }))
}

fn reply(status: StatusCode, body: Value) -> Reply {
    use axum::response::IntoResponse;
    (status, Json(body)).into_response()
}

/// Whether this call is answered 429 with `Retry-After: 1` (every Nth call when asked), and that answer.
fn slowed_down(s: &Shared) -> Option<Reply> {
    use axum::response::IntoResponse;
    let n = s.paced.fetch_add(1, Ordering::SeqCst) + 1;
    let every = s.slow_down_every.load(Ordering::SeqCst);
    (every > 0 && n.is_multiple_of(every)).then(|| {
        s.slowed.fetch_add(1, Ordering::SeqCst);
        (
            StatusCode::TOO_MANY_REQUESTS,
            [("retry-after", "1")],
            Json(json!({"error": "slow down"})),
        )
            .into_response()
    })
}

fn unauthorised() -> Reply {
    reply(
        StatusCode::UNAUTHORIZED,
        json!({"error": "a valid bearer token is required"}),
    )
}

async fn pause(s: &Shared) {
    let ms = s.delay_ms.load(Ordering::SeqCst);
    if ms > 0 {
        tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    }
}

async fn lookup(
    State(s): State<Shared>,
    Path(entity): Path<String>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Reply {
    if !authorised(&s, &headers) {
        return unauthorised();
    }
    pause(&s).await;
    if let Some(slow) = slowed_down(&s) {
        return slow;
    }
    if fault(&s).is_some() {
        return injected("injected");
    }
    let Some(keys) = query.get(KEY_FIELD) else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "erp_key_hash is required"}),
        );
    };
    let tables = s.tables.lock().expect("hub lock");
    let found: Vec<Value> = keys
        .split(',')
        .filter_map(|k| tables.by_key.get(&entity)?.get(k))
        .filter_map(|uid| tables.records.get(&entity)?.get(uid))
        .map(|r| Value::Object(r.clone()))
        .collect();
    reply(StatusCode::OK, Value::Array(found))
}

/// Creates one record, or says why not (status and error).
fn create_one(
    s: &Shared,
    tables: &mut Tables,
    entity: &str,
    record: Value,
) -> Result<Map<String, Value>, (StatusCode, String)> {
    let Value::Object(mut record) = record else {
        return Err((StatusCode::BAD_REQUEST, "a record is a JSON object".into()));
    };
    let Some(key) = record
        .get(KEY_FIELD)
        .and_then(Value::as_str)
        .map(str::to_owned)
    else {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "erp_key_hash is required".into(),
        ));
    };
    if let Some(bad) = s.refuse_name.lock().expect("hub lock").as_deref() {
        if record
            .get("name")
            .and_then(Value::as_str)
            .is_some_and(|n| n.contains(bad))
        {
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("name may not contain \"{bad}\""),
            ));
        }
    }
    for rule in s
        .parents
        .lock()
        .expect("hub lock")
        .iter()
        .filter(|r| r.entity == entity)
    {
        let Some(wanted) = record.get(&rule.field).cloned() else {
            continue;
        };
        let exists = tables.records.get(&rule.parent).is_some_and(|rs| {
            rs.values()
                .any(|r| r.get(&rule.parent_field) == Some(&wanted))
        });
        if !exists {
            return Err((
                StatusCode::NOT_FOUND,
                format!(
                    "parent {} {} = {wanted} not found",
                    rule.parent, rule.parent_field
                ),
            ));
        }
    }
    let exists = tables
        .by_key
        .get(entity)
        .is_some_and(|keys| keys.contains_key(&key));
    if exists {
        return Err((
            StatusCode::CONFLICT,
            format!("a record with erp_key_hash {key} exists"),
        ));
    }
    tables.next_uid += 1;
    let uid = format!("u{:08}", tables.next_uid);
    record.insert("uid".into(), Value::String(uid.clone()));
    tables
        .records
        .entry(entity.to_owned())
        .or_default()
        .insert(uid.clone(), record.clone());
    tables
        .by_key
        .entry(entity.to_owned())
        .or_default()
        .insert(key.clone(), uid);
    *tables
        .created
        .entry(entity.to_owned())
        .or_default()
        .entry(key)
        .or_default() += 1;
    Ok(record)
}

async fn create(
    State(s): State<Shared>,
    Path(entity): Path<String>,
    headers: HeaderMap,
    Json(record): Json<Value>,
) -> Reply {
    let fail_after = match begin_write(&s, &headers).await {
        Ok(after) => after,
        Err(reply) => return reply,
    };
    let created = {
        let mut tables = s.tables.lock().expect("hub lock");
        create_one(&s, &mut tables, &entity, record)
    };
    if fail_after || goes_down(&s) {
        return injected("injected after the work");
    }
    match created {
        Ok(record) => reply(StatusCode::CREATED, Value::Object(record)),
        Err((status, error)) => reply(status, json!({ "error": error })),
    }
}

async fn create_batch(
    State(s): State<Shared>,
    Path(entity): Path<String>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Reply {
    if s.no_batch.load(Ordering::SeqCst) && authorised(&s, &headers) {
        return reply(StatusCode::NOT_FOUND, json!({"error": "no such route"}));
    }
    let fail_after = match begin_write(&s, &headers).await {
        Ok(after) => after,
        Err(reply) => return reply,
    };
    let Some(records) = body.get("records").and_then(Value::as_array).cloned() else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "{\"records\": [...]} expected"}),
        );
    };
    if records.len() > 1000 {
        return reply(
            StatusCode::PAYLOAD_TOO_LARGE,
            json!({"error": "at most 1000 records a batch"}),
        );
    }
    let results: Vec<Value> = {
        let mut tables = s.tables.lock().expect("hub lock");
        records
            .into_iter()
            .map(
                |record| match create_one(&s, &mut tables, &entity, record) {
                    Ok(r) => json!({"status": 201, "uid": r.get("uid")}),
                    Err((status, error)) => json!({"status": status.as_u16(), "error": error}),
                },
            )
            .collect()
    };
    if fail_after || goes_down(&s) {
        return injected("injected after the work");
    }
    reply(StatusCode::OK, json!({ "results": results }))
}

/// Whether this create takes the hub down (see `Shared::down_after_create`).
fn goes_down(s: &Shared) -> bool {
    let armed = s.down_after_create.swap(false, Ordering::SeqCst);
    if armed {
        s.down.store(true, Ordering::SeqCst);
    }
    armed
}

async fn update(
    State(s): State<Shared>,
    Path((entity, uid)): Path<(String, String)>,
    headers: HeaderMap,
    Json(changes): Json<Value>,
) -> Reply {
    let fail_after = match begin_write(&s, &headers).await {
        Ok(after) => after,
        Err(reply) => return reply,
    };
    let Value::Object(changes) = changes else {
        return reply(
            StatusCode::BAD_REQUEST,
            json!({"error": "a JSON object of fields expected"}),
        );
    };
    let updated = {
        let mut tables = s.tables.lock().expect("hub lock");
        tables
            .patched_fields
            .push(changes.keys().cloned().collect());
        tables
            .records
            .get_mut(&entity)
            .and_then(|rs| rs.get_mut(&uid))
            .map(|record| {
                record.extend(changes);
                record.clone()
            })
    };
    if fail_after {
        return injected("injected after the work");
    }
    match updated {
        Some(record) => reply(StatusCode::OK, Value::Object(record)),
        None => reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no {entity} {uid}")}),
        ),
    }
}

async fn remove(
    State(s): State<Shared>,
    Path((entity, uid)): Path<(String, String)>,
    headers: HeaderMap,
) -> Reply {
    let fail_after = match begin_write(&s, &headers).await {
        Ok(after) => after,
        Err(reply) => return reply,
    };
    let removed = s.tables.lock().expect("hub lock").remove(&entity, &uid);
    if fail_after {
        return injected("injected after the work");
    }
    if removed {
        reply(StatusCode::NO_CONTENT, Value::Null)
    } else {
        reply(
            StatusCode::NOT_FOUND,
            json!({"error": format!("no {entity} {uid}")}),
        )
    }
}

impl HubServer {
    /// Serves an empty hub that accepts `Authorization: Bearer {token}`.
    pub async fn start(token: &str) -> HubServer {
        HubServer::start_on("127.0.0.1:0", token).await
    }

    /// [`HubServer::start`] on a given address (the demo binds a fixed port).
    pub async fn start_on(addr: &str, token: &str) -> HubServer {
        let shared = Shared {
            tables: Arc::default(),
            token: token.to_owned(),
            calls: Arc::default(),
            write_calls: Arc::default(),
            fail_every: Arc::default(),
            no_batch: Arc::default(),
            refuse_name: Arc::default(),
            parents: Arc::default(),
            delay_ms: Arc::default(),
            slow_down_every: Arc::default(),
            paced: Arc::default(),
            slowed: Arc::default(),
            down_after_create: Arc::default(),
            down: Arc::default(),
        };
        let app = Router::new()
            .route("/api/v1/{entity}", get(lookup).post(create))
            .route("/api/v1/{entity}/batch", post(create_batch))
            .route("/api/v1/{entity}/{uid}", patch(update).delete(remove))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .expect("bind the hub");
        let addr = listener.local_addr().expect("addr");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        HubServer {
            base_url: format!("http://{addr}/api/v1"),
            shared,
            _stop: stop,
        }
    }

    /// Every `n`th call answers 500, alternately before and after doing its work (0: none).
    pub fn fail_every(&self, n: u64) {
        self.shared.fail_every.store(n, Ordering::SeqCst);
    }

    /// The next create (single or batch) does its work and answers 500, and from then on every call answers 500
    /// until [`come_back`](Self::come_back): an outage just after writes landed, before the client learnt of them.
    pub fn down_after_next_create(&self) {
        self.shared.down_after_create.store(true, Ordering::SeqCst);
    }

    /// Ends the outage [`down_after_next_create`](Self::down_after_next_create) began.
    pub fn come_back(&self) {
        self.shared.down.store(false, Ordering::SeqCst);
    }

    /// Whether `POST {resource}/batch` answers 404 (a hub without batch create).
    pub fn without_batch(&self, off: bool) {
        self.shared.no_batch.store(off, Ordering::SeqCst);
    }

    /// Records whose `name` contains `text` are refused with 422.
    pub fn refuse_names_with(&self, text: Option<&str>) {
        *self.shared.refuse_name.lock().expect("hub lock") = text.map(str::to_owned);
    }

    pub fn require_parent(&self, rule: ParentRule) {
        self.shared.parents.lock().expect("hub lock").push(rule);
    }

    /// Every `n`th call is answered 429 with `Retry-After: 1` (0: none).
    pub fn slow_down_every(&self, n: u64) {
        self.shared.slow_down_every.store(n, Ordering::SeqCst);
    }

    /// How many calls were answered 429.
    pub fn slowed_down(&self) -> u64 {
        self.shared.slowed.load(Ordering::SeqCst)
    }

    /// Every request waits this long first (to give a test time to kill a run).
    pub fn set_delay_ms(&self, ms: u64) {
        self.shared.delay_ms.store(ms, Ordering::SeqCst);
    }

    /// POST, PATCH and DELETE calls so far.
    pub fn write_calls(&self) -> u64 {
        self.shared.write_calls.load(Ordering::SeqCst)
    }

    /// Every record of `entity`, by uid.
    pub fn records(&self, entity: &str) -> Vec<Map<String, Value>> {
        let tables = self.shared.tables.lock().expect("hub lock");
        tables
            .records
            .get(entity)
            .map(|rs| rs.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Adds a record as the hub's own data (not through the API, no key hash needed): a parent it checks.
    pub fn put(&self, entity: &str, record: Map<String, Value>) {
        let mut tables = self.shared.tables.lock().expect("hub lock");
        tables.next_uid += 1;
        let uid = format!("m{:08}", tables.next_uid);
        tables
            .records
            .entry(entity.to_owned())
            .or_default()
            .insert(uid, record);
    }

    /// The field names of every PATCH body received, sorted each.
    pub fn patched_fields(&self) -> Vec<Vec<String>> {
        let tables = self.shared.tables.lock().expect("hub lock");
        tables
            .patched_fields
            .iter()
            .map(|f| {
                let mut f = f.clone();
                f.sort();
                f
            })
            .collect()
    }

    /// How many records the hub holds, per entity.
    pub fn entities(&self) -> std::collections::BTreeMap<String, usize> {
        let tables = self.shared.tables.lock().expect("hub lock");
        tables
            .records
            .iter()
            .map(|(e, rs)| (e.clone(), rs.len()))
            .collect()
    }

    /// The largest number of times one key hash of `entity` was created (1 when nothing was created twice).
    pub fn most_creates_of_one_key(&self, entity: &str) -> u64 {
        let tables = self.shared.tables.lock().expect("hub lock");
        tables
            .created
            .get(entity)
            .and_then(|c| c.values().max().copied())
            .unwrap_or(0)
    }
}
