//! The generated rows of the benchmarks (10 columns, like the bare-table COPY reference in docs/benchmarks.md) and their pipeline.

use crate::erp::ErpServer;
use serde_json::{json, Value};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Instant;

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
    pipeline_deleting(server, dir, name, url, table, "none")
}

/// [`pipeline`] with `deletes` = "none", "soft" or "hard".
pub fn pipeline_deleting(
    server: &ErpServer,
    dir: &Path,
    name: &str,
    url: &str,
    table: &str,
    deletes: &str,
) -> PathBuf {
    let target = format!("kind = \"postgres\"\nurl = \"{url}\"");
    let extra = format!(
        "records = \"/data\"\npagination = {{ kind = \"offset\", size = 5000 }}\nbusiness_key = [\"id\"]\n\
         table = \"{table}\"\ndeletes = \"{deletes}\""
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

/// What one run of the CLI took.
pub struct Timed {
    pub secs: f64,
    /// Its own peak RSS, MB.
    pub rss_mb: f64,
    /// Its CPU time (user + system, all threads), seconds: steadier than wall time on a shared machine.
    pub cpu_s: f64,
    /// The CPU time of this process (the benchmarks' test servers run in it) while the CLI ran, seconds: what
    /// the source took of the machine's cores.
    pub server_cpu_s: f64,
    /// The `--json` summary it printed last.
    pub summary: Value,
}

/// Runs the CLI; returns what it took and its summary.
pub fn timed_run(bin: &Path, file: &Path, state: &Path) -> Timed {
    let started = Instant::now();
    let own_cpu = || cpu_seconds(std::process::id()).unwrap_or(0.0);
    let own_before = own_cpu();
    let mut child = spawn_run(bin, file, state, std::process::Stdio::piped());
    let pid = child.id();
    let watcher = std::thread::spawn(move || watch(pid));
    let mut stdout = String::new();
    if let Some(mut pipe) = child.stdout.take() {
        use std::io::Read;
        let _ = pipe.read_to_string(&mut stdout);
    }
    let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
    let secs = started.elapsed().as_secs_f64();
    let server_cpu_s = own_cpu() - own_before;
    let (rss_mb, cpu_s) = watcher.join().unwrap_or((0.0, 0.0));
    assert_eq!(code, 0, "sync failed");
    let summary = stdout
        .lines()
        .last()
        .and_then(|l| serde_json::from_str(l).ok())
        .unwrap_or(Value::Null);
    Timed {
        secs,
        rss_mb,
        cpu_s,
        server_cpu_s,
        summary,
    }
}

/// The process's peak RSS (VmHWM, MB) and CPU seconds, read from /proc until it exits (the CPU time as last read,
/// up to 20 ms short). (getrusage's ru_maxrss is not used: a child starts with its parent's figure, and this parent
/// holds the whole data set in its test server.)
fn watch(pid: u32) -> (f64, f64) {
    let mut peak = 0.0_f64;
    let mut cpu = 0.0_f64;
    loop {
        let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
            return (peak, cpu);
        };
        let Some(kb) = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        else {
            return (peak, cpu);
        };
        peak = peak.max(kb / 1024.0);
        cpu = cpu_seconds(pid).unwrap_or(cpu);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// utime + stime of /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux).
fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: the fields after it are counted from its closing parenthesis.
    let rest = stat.get(stat.rfind(')')? + 2..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = |i: usize| fields.get(i)?.parse::<f64>().ok();
    Some((ticks(11)? + ticks(12)?) / 100.0)
}

/// Starts `syncflow run FILE --apply-schema --json --state STATE` with the benchmarks' password (stderr dropped).
pub fn spawn_run(bin: &Path, file: &Path, state: &Path, stdout: Stdio) -> Child {
    profiled(bin)
        .args([
            "run",
            file.to_str().unwrap_or_default(),
            "--apply-schema",
            "--json",
            "--state",
        ])
        .arg(state)
        .env("ERP_PASSWORD", PASSWORD)
        .stdout(stdout)
        // SYNCFLOW_BENCH_STDERR=1 shows the CLI's progress and logs (where a run's time went).
        .stderr(if std::env::var_os("SYNCFLOW_BENCH_STDERR").is_some() {
            Stdio::inherit()
        } else {
            Stdio::null()
        })
        .spawn()
        .expect("run syncflow")
}

/// `bin`, or with SYNCFLOW_BENCH_PERF=PREFIX `perf record --call-graph dwarf -o PREFIX-<n>.data -- bin` (where a run's CPU went;
/// the RSS printed is then perf's).
fn profiled(bin: &Path) -> Command {
    let Some(prefix) = std::env::var_os("SYNCFLOW_BENCH_PERF") else {
        return Command::new(bin);
    };
    static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut perf = Command::new("perf");
    perf.args(["record", "-F", "999", "--call-graph", "dwarf", "-o"])
        .arg(format!("{}-{n}.data", prefix.to_string_lossy()))
        .arg("--")
        .arg(bin);
    perf
}

/// The reference: products 1..=`rows` written as CSV in `dir` and loaded with `psql \copy` into a new table
/// `copy_ref` of the database at `url`; returns the seconds the `\copy` took.
pub fn copy_reference(url: &str, rows: u64, dir: &Path) -> f64 {
    let csv = dir.join("rows.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&csv).expect("csv"));
    for i in 1..=rows {
        let r = row(i);
        let cols: Vec<String> = [
            "id",
            "sku",
            "name",
            "qty",
            "price",
            "active",
            "category",
            "updated_at",
            "note",
            "weight",
        ]
        .iter()
        .map(|k| match &r[*k] {
            Value::Null => String::new(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect();
        writeln!(file, "{}", cols.join(",")).expect("write csv");
    }
    drop(file);
    let psql = |sql: &str| {
        let ok = Command::new("psql")
            .args(["-q", "-X", url, "-c", sql])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "psql failed: {sql}");
    };
    psql(
        "CREATE TABLE copy_ref (id bigint, sku text, name text, qty bigint, price numeric, active boolean, \
         category text, updated_at text, note text, weight numeric)",
    );
    let started = Instant::now();
    psql(&format!(
        "\\copy copy_ref FROM '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    started.elapsed().as_secs_f64()
}

/// The floor of ingest for the target's own table shape: the synced rows of `table` written out with `psql \copy
/// … TO`, then loaded with `psql \copy … FROM` into an empty copy of the table with the same columns, keys and
/// indexes; returns the seconds that load took.
/// The floor of a load into the target's shape built the way a first sync builds it: `\copy` of the synced rows
/// into an index-less table of the target's columns, then the target's indexes built on it. Returns (copy s,
/// index builds s). Uses the CSV [`copy_like_target`] wrote.
pub fn copy_then_index_like_target(url: &str, table: &str, dir: &Path) -> (f64, f64) {
    let csv = dir.join("target-rows.csv");
    let psql = |sql: &str| -> String {
        let out = Command::new("psql")
            .args(["-q", "-X", "-A", "-t", url, "-c", sql])
            .output();
        match out {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            _ => panic!("psql failed: {sql}"),
        }
    };
    let lean = format!("{table}_indexed_at_end");
    psql(&format!(
        "CREATE TABLE \"{lean}\" (LIKE \"{table}\" INCLUDING DEFAULTS)"
    ));
    let started = Instant::now();
    psql(&format!(
        "\\copy \"{lean}\" FROM '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    let copy = started.elapsed().as_secs_f64();
    let definitions = psql(&format!(
        "SELECT replace(replace(pg_get_indexdef(indexrelid), ' ON public.{table} ', ' ON public.\"{lean}\" '), \
         'INDEX ', 'INDEX floor_') FROM pg_index WHERE indrelid = '\"{table}\"'::regclass"
    ));
    let started = Instant::now();
    for definition in definitions.lines().filter(|l| !l.trim().is_empty()) {
        psql(definition);
    }
    (copy, started.elapsed().as_secs_f64())
}

pub fn copy_like_target(url: &str, table: &str, dir: &Path) -> f64 {
    let csv = dir.join("target-rows.csv");
    let psql = |sql: &str| {
        let ok = Command::new("psql")
            .args(["-q", "-X", url, "-c", sql])
            .status();
        assert!(ok.is_ok_and(|s| s.success()), "psql failed: {sql}");
    };
    psql(&format!(
        "\\copy \"{table}\" TO '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    psql(&format!(
        "CREATE TABLE \"{table}_floor\" (LIKE \"{table}\" INCLUDING ALL)"
    ));
    let started = Instant::now();
    psql(&format!(
        "\\copy \"{table}_floor\" FROM '{}' WITH (FORMAT csv)",
        csv.display()
    ));
    started.elapsed().as_secs_f64()
}
