//! The generated rows of the benchmarks (10 columns, like the COPY reference in NOTES.md) and their pipeline.

use crate::erp::ErpServer;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};

/// The test server's password in the benchmarks (given to the CLI as `ERP_PASSWORD`).
pub const PASSWORD: &str = "bench";

/// Product `i`.
pub fn row(i: u64) -> Value {
    let category = ["Hardware", "Garden", "Kitchen", "Office", "Outdoor"][(i % 5) as usize];
    let price = serde_json::from_str::<Value>(&format!("{}.{:02}", i % 10_000, i % 100))
        .unwrap_or(Value::Null);
    json!({
        "id": i,
        "sku": format!("SKU-{i:08}"),
        "name": format!("Product number {i} with a moderately long descriptive name"),
        "qty": (i * 7919) % 100_000,
        "price": price,
        "active": !i.is_multiple_of(3),
        "category": category,
        "updated_at": format!("2026-{:02}-{:02}T{:02}:00:00.000Z", 1 + i % 12, 1 + i % 28, i % 24),
        "note": if i.is_multiple_of(4) { Value::Null } else { json!(format!("note {i}")) },
        "weight": (i % 997) as f64 / 10.0,
    })
}

/// The pipeline file syncing the server's products into `table` of the PostgreSQL database at `url`.
pub fn pipeline(server: &ErpServer, dir: &Path, name: &str, url: &str, table: &str) -> PathBuf {
    let target = format!("kind = \"postgres\"\nurl = \"{url}\"");
    let extra = format!(
        "records = \"/data\"\npagination = {{ kind = \"offset\", size = 5000 }}\nbusiness_key = [\"id\"]\n\
         table = \"{table}\""
    );
    server.pipeline_file(
        dir,
        name,
        "{ env = \"ERP_PASSWORD\" }",
        &target,
        "items",
        &extra,
    )
}
