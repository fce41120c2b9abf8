//! The demo source: an HTTP server on 127.0.0.1 inside the engine, serving generated records in the REST shape,
//! so the demo exercises the real HTTP client and pagination without credentials or setup.

use crate::config::{Auth, Entity, Pagination, RestSource};
use axum::extract::{Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use tokio::sync::oneshot;

/// A running demo server; stops when dropped.
pub struct DemoServer {
    pub base_url: String,
    _stop: oneshot::Sender<()>,
}

#[derive(Deserialize)]
struct PageQuery {
    page: Option<u64>,
    page_size: Option<u64>,
}

const CATEGORIES: [&str; 5] = ["Hardware", "Garden", "Kitchen", "Office", "Outdoor"];

/// The demo's one generated record `i` (deterministic).
pub fn demo_record(i: u64) -> Value {
    json!({
        "id": i,
        "sku": format!("SKU-{i:06}"),
        "name": format!("Product {i} — «{}»", CATEGORIES[(i % 5) as usize]),
        "price": price(i),
        "in_stock": !i.is_multiple_of(3),
        "category": CATEGORIES[(i % 5) as usize],
        "updated_at": format!("2026-{:02}-{:02}T{:02}:00:00.000Z", 1 + i % 12, 1 + i % 28, i % 24),
        "tags": [format!("t{}", i % 7), format!("t{}", i % 11)],
        // Names as real apps have them, so the mapping editor has something to explain.
        "Customer Name": format!("Customer {}", i % 97),
        "customer-name": format!("customer-{}", i % 97),
        "2nd Payment %": (i % 40) as f64 / 2.0,
        "Commission Paid?": i.is_multiple_of(4),
        "émojis_🚀": "🚀".repeat((i % 3 + 1) as usize),
    })
}

/// A price with two decimals, as a shop would send it (exact: no binary-float residue).
fn price(i: u64) -> Value {
    let cents = (i * 737) % 10_000 + 100;
    serde_json::from_str(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap_or(Value::Null)
}

async fn products(State(rows): State<Arc<u64>>, Query(q): Query<PageQuery>) -> Json<Value> {
    let size = q.page_size.unwrap_or(100).clamp(1, 1000);
    let page = q.page.unwrap_or(1).max(1);
    let start = (page - 1) * size;
    let end = (start + size).min(*rows);
    let data: Vec<Value> = (start..end.max(start))
        .map(|i| demo_record(i + 1))
        .collect();
    Json(json!({ "data": data, "page": page, "total": *rows }))
}

impl DemoServer {
    /// Starts the server on a free loopback port.
    pub async fn start(rows: u32) -> std::io::Result<DemoServer> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let app = Router::new()
            .route("/products", get(products))
            .with_state(Arc::new(u64::from(rows)));
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async move {
                let _ = stopped.await;
            });
            if let Err(e) = served.await {
                tracing::error!("demo server stopped: {e}");
            }
        });
        Ok(DemoServer {
            base_url: format!("http://{addr}"),
            _stop: stop,
        })
    }

    /// The REST source that reads this server.
    pub fn source(&self) -> RestSource {
        RestSource {
            base_url: self.base_url.clone(),
            auth: Auth::None,
            concurrency: 1,
            requests_per_minute: None,
        }
    }
}

/// The demo's entities, used when the pipeline lists none.
pub fn demo_entities() -> Vec<Entity> {
    vec![Entity {
        name: "products".into(),
        table: None,
        path: None,
        records: Some("/data".into()),
        pagination: Some(Pagination::Page {
            page_param: "page".into(),
            size_param: "page_size".into(),
            size: 250,
            first: 1,
        }),
        business_key: vec!["sku".into()],
        delta: Default::default(),
        rowversion: None,
        deletes: Default::default(),
        conflicts: Default::default(),
        parents: Vec::new(),
        fields: Default::default(),
    }]
}
