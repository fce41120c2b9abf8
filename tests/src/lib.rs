//! Test harness: a private throwaway PostgreSQL cluster, an ERP-like REST test server, paths of the built
//! binaries, a real Secret Service session, and a small W3C WebDriver client for the app window.

pub mod bubble;
pub mod erp;
pub mod hub;
pub mod keyring_session;
pub mod pg;
pub mod products;
pub mod webdriver;
pub mod webhook;

use std::path::PathBuf;

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A binary built by `cargo build` in this workspace (the README test command builds them first).
pub fn built_binary(name: &str) -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    // SYNCFLOW_TEST_PROFILE=release runs a test against release binaries (a test run at scale).
    let profile = std::env::var("SYNCFLOW_TEST_PROFILE").unwrap_or_else(|_| "debug".into());
    let path = target.join(profile).join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo build --workspace` first (the README test command does)",
        path.display()
    );
    path
}

/// Where tests leave artefacts (screenshots) for people to look at.
pub fn artifacts_dir() -> PathBuf {
    let dir = workspace_root().join("tests").join("artifacts");
    std::fs::create_dir_all(&dir).expect("create tests/artifacts");
    dir
}

/// A free TCP port on the loopback interface.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// Whether this process runs as root (initdb refuses root; the harness then runs it as `postgres`).
pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// Runs the built `syncflow` CLI with `args`, the state database `state` and extra environment variables.
pub fn syncflow(
    args: &[&str],
    state: &std::path::Path,
    envs: &[(&str, &str)],
) -> std::process::Output {
    let mut cmd = std::process::Command::new(built_binary("syncflow"));
    cmd.args(args).arg("--state").arg(state);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.output().expect("run syncflow")
}

/// The release `syncflow` CLI for benchmarks, built (or brought up to date) first. `syncflow-tests` is named too so
/// that the shared crates get the same features as in the bench's own build and are not compiled again.
/// `SYNCFLOW_BENCH_CLI` names another build to measure instead (to compare two builds on the same machine and hour).
pub fn release_syncflow() -> PathBuf {
    if let Some(other) = std::env::var_os("SYNCFLOW_BENCH_CLI") {
        return PathBuf::from(other);
    }
    let ok = std::process::Command::new("cargo")
        .args([
            "build",
            "--release",
            "-p",
            "syncflow-cli",
            "-p",
            "syncflow-tests",
            "--bin",
            "syncflow",
        ])
        .current_dir(workspace_root())
        .status();
    assert!(
        ok.is_ok_and(|s| s.success()),
        "cargo build --release -p syncflow-cli failed"
    );
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join("target"));
    target.join("release").join("syncflow")
}

/// [`syncflow`] off the async runtime's threads (tests serve emulators on that runtime while the CLI runs).
pub async fn syncflow_async(
    args: &[&str],
    state: &std::path::Path,
    envs: &[(&str, &str)],
) -> std::process::Output {
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    let envs: Vec<(String, String)> = envs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    let state = state.to_owned();
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        syncflow(&args, &state, &envs)
    })
    .await
    .expect("the CLI's thread")
}

/// `syncflow run FILE --apply-schema --json`: asserts it completed (exit 0, stderr shown otherwise) and returns
/// the run summary (the last stdout line).
pub async fn run_synced(
    file: &std::path::Path,
    state: &std::path::Path,
    envs: &[(&str, &str)],
) -> serde_json::Value {
    let file = file.to_str().expect("a UTF-8 path");
    let out = syncflow_async(&["run", file, "--apply-schema", "--json"], state, envs).await;
    succeeded_json(&out)
}

/// Asserts a command exited 0 (its stderr shown otherwise) and returns the JSON on its last stdout line.
pub fn succeeded_json(out: &std::process::Output) -> serde_json::Value {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_json_line(&out.stdout)
}

/// The JSON object on the last line of a command's stdout (the `--json` summary).
pub fn last_json_line(stdout: &[u8]) -> serde_json::Value {
    let text = String::from_utf8_lossy(stdout);
    let line = text.lines().last().unwrap_or_default();
    serde_json::from_str(line).unwrap_or_else(|e| panic!("no JSON summary ({e}): {text}"))
}

/// Starts the built `syncflow` CLI with `args`, the state database `state` and extra environment variables, its
/// output captured (for tests that interrupt it or act while it runs).
pub fn spawn_syncflow(
    args: &[&str],
    state: &std::path::Path,
    envs: &[(&str, &str)],
) -> std::process::Child {
    let mut cmd = std::process::Command::new(built_binary("syncflow"));
    cmd.args(args).arg("--state").arg(state);
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start syncflow")
}

/// Waits for a spawned CLI off the async runtime's threads and returns its output.
pub async fn finished(child: std::process::Child) -> std::process::Output {
    tokio::task::spawn_blocking(move || child.wait_with_output().expect("wait for syncflow"))
        .await
        .expect("the CLI's thread")
}

/// `(id, name)` of every live row of `table` (not soft-deleted), in id order.
pub async fn live_id_names(pool: &sqlx::PgPool, table: &str) -> Vec<(i64, String)> {
    sqlx::query_as(&format!(
        "SELECT id, name FROM \"{table}\" WHERE \"_bridge_deleted_at\" IS NULL ORDER BY id"
    ))
    .fetch_all(pool)
    .await
    .expect("read the target's rows")
}

/// `(id, name)` of source records, in id order (what [`live_id_names`] must equal).
pub fn id_names(records: &[serde_json::Value]) -> Vec<(i64, String)> {
    let mut rows: Vec<(i64, String)> = records
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().expect("a whole-number id"),
                r["name"].as_str().expect("a text name").to_owned(),
            )
        })
        .collect();
    rows.sort();
    rows
}

/// Rows of `table` in the SQLite file `db` (a test's target).
pub async fn sqlite_rows(db: &std::path::Path, table: &str) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .expect("open the SQLite target");
    let n = sqlx::query_scalar(&format!("SELECT count(*) FROM \"{table}\""))
        .fetch_one(&pool)
        .await
        .expect("count its rows");
    pool.close().await;
    n
}
