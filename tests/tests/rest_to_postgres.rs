//! The CLI syncs a paginated REST source behind `login` auth into a real (throwaway) PostgreSQL, exactly.

use serde_json::{json, Value};
use std::collections::HashMap;
use std::path::Path;
use std::process::{Command, Output};
use std::time::Instant;
use syncflow_tests::built_binary;
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;

const PASSWORD: &str = "erp-pa55-word-never-stored";

/// Messy but legal records: tabs, newlines, backslashes, quotes, `\N`, emoji, RTL, 5,000-character texts, leading
/// zeros, big and fractional numbers, nulls, omitted fields, nested objects and arrays.
fn record(i: u64) -> Value {
    let colour = ["red", "green", "blue"][(i % 3) as usize];
    let mut r = json!({
        "part_no": format!("P-{i:07}"),
        "description": match i % 9 {
            0 => format!("tab\there, newline\nthere, CR\r, backslash \\ and \\N, quote \" ' #{i}"),
            1 => "Ünïcödé — 日本語 — emoji 🚀🎉 — עברית".to_owned(),
            2 => "x".repeat(5000) + &i.to_string(),
            3 => format!("  leading and trailing spaces {i}  "),
            4 => "000123".to_owned(),
            5 => String::new(),
            _ => format!("Item number {i}"),
        },
        "qty": (i * 7919) % 100_000,
        "price": (i % 1000) as f64 / 8.0 + 0.01,
        "big": 9_007_199_254_740_993u64 - i,
        "active": i.is_multiple_of(2),
        "note": if i.is_multiple_of(5) { Value::Null } else { json!(format!("note {i}")) },
        "attrs": {"colour": colour, "dims": [i % 10, 2, 3.5]},
    });
    let obj = r.as_object_mut().unwrap();
    if i.is_multiple_of(7) {
        obj.remove("note");
    }
    // Decimal text as sent (12.50 must stay 12.50, not become 12.5).
    obj.insert(
        "amount".into(),
        serde_json::from_str(&format!("{}.{:02}", i % 1000, i % 100)).unwrap(),
    );
    // Numbers first, then text in later pages: the column is widened, nothing fails.
    obj.insert(
        "code".into(),
        if i > 11_000 && i.is_multiple_of(3) {
            json!(format!("N/A-{i}"))
        } else {
            json!(i % 977)
        },
    );
    // A field that only appears in later pages gets its column mid-run.
    if i > 11_500 {
        obj.insert("late field ✓".into(), json!(format!("late {i}")));
    }
    r
}

fn pipeline_toml(dir: &Path, base_url: &str, pg_url: &str, extra: &str) -> std::path::PathBuf {
    let text = format!(
        r#"version = 1
name = "erp-items"

[source]
kind = "rest"
base_url = "{base_url}"
auth = {{ kind = "login", path = "/auth/token", username = "svc", password = {{ env = "ERP_PASSWORD" }} }}

[target]
kind = "postgres"
url = "{pg_url}"
schema = "public"

[[entities]]
name = "items"
table = "items"
path = "/api/items"
records = "/data"
pagination = {{ kind = "page", page_param = "page", size_param = "page_size", size = 1000, first = 1 }}
business_key = ["part_no"]
{extra}
"#
    );
    let path = dir.join("pipeline.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn syncflow(args: &[&str], state: &Path) -> Output {
    Command::new(built_binary("syncflow"))
        .args(args)
        .arg("--state")
        .arg(state)
        .env("ERP_PASSWORD", PASSWORD)
        .output()
        .expect("run syncflow")
}

/// Asserts the exit code, showing stderr when it is wrong.
fn expect_exit(out: &Output, code: i32) {
    assert_eq!(
        out.status.code(),
        Some(code),
        "stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn summary(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last = stdout.lines().last().unwrap_or_else(|| {
        panic!(
            "no stdout; stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    serde_json::from_str(last)
        .unwrap_or_else(|e| panic!("last stdout line is not JSON ({e}): {last}"))
}

fn counts(s: &Value) -> HashMap<String, u64> {
    s["entities"]["items"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect()
}

/// Every source record is in the target once, with every value equal (text byte for byte).
async fn assert_target_equals(pool: &sqlx::PgPool, source: &[Value]) {
    let rows: Vec<(Value,)> =
        sqlx::query_as("SELECT to_jsonb(t) FROM items t WHERE _bridge_deleted_at IS NULL")
            .fetch_all(pool)
            .await
            .unwrap();
    assert_eq!(rows.len(), source.len(), "row count");
    let by_key: HashMap<String, Value> = rows
        .into_iter()
        .map(|(r,)| (r["part_no"].as_str().unwrap().to_owned(), r))
        .collect();
    assert_eq!(
        by_key.len(),
        source.len(),
        "duplicate business keys in the target"
    );
    for rec in source {
        let key = rec["part_no"].as_str().unwrap();
        let row = by_key
            .get(key)
            .unwrap_or_else(|| panic!("{key} missing from the target"));
        for field in [
            "part_no",
            "description",
            "qty",
            "price",
            "big",
            "active",
            "note",
            "attrs",
        ] {
            let want = rec.get(field).unwrap_or(&Value::Null);
            let got = &row[field];
            match (want, got) {
                (Value::Number(w), Value::Number(g)) => {
                    assert_eq!(
                        w.to_string().parse::<f64>().unwrap(),
                        g.to_string().parse::<f64>().unwrap(),
                        "{key}.{field}"
                    );
                    if let Some(w) = w.as_u64() {
                        assert_eq!(Some(w), g.as_u64(), "{key}.{field} (integer exactness)");
                    }
                }
                _ => assert_eq!(want, got, "{key}.{field}"),
            }
        }
        // The lean shape: bytea hashes (in JSON as `\x` and hex digits), uuid run id.
        assert_eq!(row["_bridge_key_hash"].as_str().unwrap().len(), 2 + 32);
        assert_eq!(row["_bridge_data_hash"].as_str().unwrap().len(), 2 + 64);
        assert_eq!(row["_bridge_run_id"].as_str().unwrap().len(), 36);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rest_source_syncs_into_postgres_exactly_and_resyncs_changes() {
    let cluster = PgCluster::start();
    let pg_url = cluster.create_database("erp").await;
    let pool = sqlx::PgPool::connect(&pg_url).await.unwrap();
    let mut source: Vec<Value> = (1..=12_345).map(record).collect();
    // The server caps pages at 500 although 1,000 are asked for: a short page must not end the sync.
    let server = ErpServer::start(source.clone(), PASSWORD, 500, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = pipeline_toml(dir.path(), &server.base_url, &pg_url, "");
    let file = file.to_str().unwrap();

    // Without --apply-schema a missing table is an error that says so, and nothing is written.
    let out = syncflow(&["run", file, "--json"], &state);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert!(
        stderr.contains("does not exist") && stderr.contains("--apply-schema"),
        "stderr: {stderr}"
    );

    let started = Instant::now();
    let out = syncflow(&["run", file, "--apply-schema", "--json"], &state);
    let secs = started.elapsed().as_secs_f64();
    expect_exit(&out, 0);
    let s = summary(&out);
    assert_eq!(s["status"], "completed");
    assert_eq!(s["pipeline"], "erp-items");
    let c = counts(&s);
    assert_eq!(
        (
            c["fetched"],
            c["inserted"],
            c["updated"],
            c["skipped"],
            c["failed"]
        ),
        (12_345, 12_345, 0, 0, 0)
    );
    assert!(
        s["run_id"].as_str().is_some_and(|id| !id.is_empty())
            && s["duration_ms"].as_u64().is_some()
    );
    assert_target_equals(&pool, &source).await;
    println!(
        "first sync: {} rows in {secs:.2} s = {:.0} rows/s (CLI wall time)",
        source.len(),
        source.len() as f64 / secs
    );

    // An unchanged re-sync writes nothing.
    let out = syncflow(&["run", file, "--apply-schema", "--json"], &state);
    let c = counts(&summary(&out));
    assert_eq!((c["inserted"], c["updated"], c["skipped"]), (0, 0, 12_345));

    // Changed, new and repeated records at the source: the target follows, nothing duplicated.
    for r in source.iter_mut().step_by(100) {
        r["description"] = json!(format!("changed {}", r["part_no"]));
    }
    source.extend((20_001..=20_050).map(record));
    server.set_records(source.clone());
    let out = syncflow(&["run", file, "--json"], &state);
    expect_exit(&out, 0);
    let c = counts(&summary(&out));
    assert_eq!(
        (c["fetched"], c["inserted"], c["updated"], c["skipped"]),
        (12_395, 50, 124, 12_221)
    );
    assert_target_equals(&pool, &source).await;

    // The password is in no file the engine wrote.
    let state_bytes = std::fs::read(&state).unwrap();
    assert!(
        !String::from_utf8_lossy(&state_bytes).contains(PASSWORD),
        "the password reached the state DB"
    );
    let wal = dir.path().join("state.db-wal");
    if wal.exists() {
        assert!(!String::from_utf8_lossy(&std::fs::read(wal).unwrap()).contains(PASSWORD));
    }
}

#[tokio::test]
async fn bad_input_gets_a_clear_error_and_the_right_exit_code() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let pg = "postgresql://postgres@127.0.0.1:1/none";

    // A literal secret: refused, told how to store it, never echoed.
    let file = pipeline_toml(dir.path(), "http://127.0.0.1:9", pg, "");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("{ env = \"ERP_PASSWORD\" }", "\"hunter2-literal\"");
    std::fs::write(&file, text).unwrap();
    let out = syncflow(&["run", file.to_str().unwrap()], &state);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("syncflow secret set") && !stderr.contains("hunter2"),
        "{stderr}"
    );

    // An unknown key: named.
    let file = pipeline_toml(dir.path(), "http://127.0.0.1:9", pg, "page_sise = 10");
    let out = syncflow(&["run", file.to_str().unwrap()], &state);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("page_sise"), "{stderr}");

    // An unreachable source: the run fails (exit 1) naming the URL and what to check.
    let cluster = PgCluster::start();
    let pg_url = cluster.create_database("t").await;
    let port = syncflow_tests::free_port();
    let file = pipeline_toml(dir.path(), &format!("http://127.0.0.1:{port}"), &pg_url, "");
    let out = syncflow(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(&format!("127.0.0.1:{port}")) && stderr.contains("base_url"),
        "{stderr}"
    );
    assert_eq!(summary(&out)["status"], "failed");
}

/// SIGINT pauses (exit 3, checkpoint saved); kill -9 interrupts; the next run resumes the same run and ends with
/// the target equal to the source, no duplicates, and counters that add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paused_or_killed_run_resumes_exactly() {
    let cluster = PgCluster::start();
    let pg_url = cluster.create_database("resume").await;
    let pool = sqlx::PgPool::connect(&pg_url).await.unwrap();
    let source: Vec<Value> = (1..=6_000).map(record).collect();
    let server = ErpServer::start(source.clone(), PASSWORD, 100, 3600).await;
    server.set_delay_ms(40);
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = pipeline_toml(dir.path(), &server.base_url, &pg_url, "");
    let text = std::fs::read_to_string(&file)
        .unwrap()
        .replace("size = 1000", "size = 100");
    std::fs::write(&file, text).unwrap();
    let spawn = || {
        Command::new(built_binary("syncflow"))
            .args([
                "run",
                file.to_str().unwrap(),
                "--apply-schema",
                "--json",
                "--state",
                state.to_str().unwrap(),
            ])
            .env("ERP_PASSWORD", PASSWORD)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let rows = |pool: sqlx::PgPool| async move {
        let (n,): (i64,) = sqlx::query_as("SELECT count(*) FROM items")
            .fetch_one(&pool)
            .await
            .unwrap_or((0,));
        n
    };

    let child = spawn();
    tokio::time::sleep(std::time::Duration::from_millis(1_000)).await;
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    let out = child.wait_with_output().unwrap();
    expect_exit(&out, 3);
    let paused = summary(&out);
    assert_eq!(paused["status"], "paused");
    let after_pause = rows(pool.clone()).await;
    assert!(
        after_pause > 0 && after_pause < 6_000,
        "{after_pause} rows after the pause"
    );
    assert_eq!(
        paused["entities"]["items"]["inserted"].as_i64(),
        Some(after_pause),
        "the summary matches the target"
    );

    let mut child = spawn();
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    child.kill().unwrap(); // SIGKILL: no chance to save anything
    let _ = child.wait();
    let after_kill = rows(pool.clone()).await;
    assert!(
        after_kill >= after_pause && after_kill < 6_000,
        "{after_kill} rows after the kill"
    );

    server.set_delay_ms(0);
    let out = syncflow(&["run", file.to_str().unwrap(), "--json"], &state);
    expect_exit(&out, 0);
    let done = summary(&out);
    assert_eq!(
        done["run_id"], paused["run_id"],
        "the unfinished run is resumed, not restarted"
    );
    let c = counts(&done);
    assert_eq!(
        (
            c["fetched"],
            c["inserted"],
            c["updated"],
            c["skipped"],
            c["failed"]
        ),
        (6_000, 6_000, 0, 0, 0)
    );
    assert_target_equals(&pool, &source).await;
}
