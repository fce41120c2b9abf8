//! Helpers for tests against the in-repo Bubble emulator: the pipeline file, and the check that a PostgreSQL
//! target holds exactly the app's things, value for value.

use serde_json::{Map, Value};
use sqlx::Row;
use std::path::{Path, PathBuf};
use syncflow_engine::emulator::app::{BubbleApp, BubbleType};
use syncflow_engine::schema::column_for;

/// Writes a Bubble → PostgreSQL pipeline file; `source_extra` is added to `[source]`.
pub fn pipeline_file(
    dir: &Path,
    name: &str,
    base_url: &str,
    pg_url: &str,
    source_extra: &str,
) -> PathBuf {
    let text = format!(
        r#"version = 1
name = "{name}"

[source]
kind = "bubble"
base_url = "{base_url}"
token = {{ env = "BUBBLE_TOKEN" }}
{source_extra}

[target]
kind = "postgres"
url = "{pg_url}"
"#
    );
    let path = dir.join(format!("{name}.toml"));
    std::fs::write(&path, text).expect("write pipeline file");
    path
}

/// The record key of a field in the app's key style.
fn key_of(ty: &BubbleType, display: &str, use_captions: bool) -> String {
    if use_captions {
        return display.to_owned();
    }
    ty.fields
        .iter()
        .find(|f| f.display == display)
        .map(|f| f.id.clone())
        .unwrap_or_else(|| display.to_owned())
}

/// Asserts that every type's table holds exactly its things: one row per `_id`, no other rows, and every field's
/// value equal (text byte for byte, numbers digit for digit, dates as the same instant, JSON as the same value,
/// omitted fields as NULL).
pub async fn assert_target_equals_app(pool: &sqlx::PgPool, app: &BubbleApp) {
    for ty in &app.types {
        let rows = sqlx::query(&format!(
            "SELECT row_to_json(t)::text FROM \"{}\" t WHERE \"_bridge_deleted_at\" IS NULL",
            ty.name
        ))
        .fetch_all(pool)
        .await
        .expect("read target table");
        let mut by_id: std::collections::HashMap<String, Map<String, Value>> =
            std::collections::HashMap::new();
        for row in rows {
            let text: String = row.get(0);
            let Value::Object(object) = serde_json::from_str(&text).expect("row JSON") else {
                panic!("row is not an object")
            };
            let id = object["_id"].as_str().expect("_id").to_owned();
            assert!(
                by_id.insert(id.clone(), object).is_none(),
                "{}: thing {id} is in the target twice",
                ty.name
            );
        }
        assert_eq!(
            by_id.len(),
            ty.things.len(),
            "{}: the target has {} things, the app {}",
            ty.name,
            by_id.len(),
            ty.things.len()
        );
        let mut names: Vec<String> = ty.fields.iter().map(|f| f.display.clone()).collect();
        names.extend(["Created Date", "Modified Date", "Created By"].map(String::from));
        for thing in &ty.things {
            let id = thing["_id"].as_str().expect("_id");
            let row = by_id
                .get(id)
                .unwrap_or_else(|| panic!("{}: thing {id} is missing", ty.name));
            for display in &names {
                let column = column_for(&key_of(ty, display, app.use_captions_for_get));
                let stored = row.get(&column).unwrap_or(&Value::Null);
                let expected = thing.get(display).unwrap_or(&Value::Null);
                assert!(
                    same_value(expected, stored),
                    "{}: thing {id}, field \"{display}\" (column \"{column}\"): expected {expected}, stored {stored}",
                    ty.name
                );
            }
        }
    }
}

fn same_value(expected: &Value, stored: &Value) -> bool {
    match (expected, stored) {
        (Value::String(a), Value::String(b)) if a != b => match (instant(a), instant(b)) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        (Value::Number(a), Value::Number(b)) => a.to_string() == b.to_string(),
        (a, b) => a == b,
    }
}

fn instant(text: &str) -> Option<chrono::DateTime<chrono::Utc>> {
    chrono::DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&chrono::Utc))
}

pub use crate::last_json_line as summary;
