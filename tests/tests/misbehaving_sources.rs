//! Nothing lost in the field: a REST gateway that misbehaves the way real ones do, against a PostgreSQL table of
//! 5,000 rows synced before with `deletes = "hard"`. Every case ends with the 5,000 rows still there, within a
//! minute, the run failed with the page named — or completed with just the bad record in the failed records.

use serde_json::{json, Value};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use syncflow_tests::erp::{ErpServer, Fault};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{
    finished, id_names, live_id_names, run_synced, spawn_syncflow, syncflow_async,
};

const ROWS: u64 = 5_000;
const ENV: [(&str, &str); 1] = [("PW", "pw")];

fn item(i: u64, name: &str) -> Value {
    json!({"id": i, "name": name})
}

/// A pipeline synced once: the target holds the source's 5,000 rows.
struct Synced {
    _pg: PgCluster,
    pool: sqlx::PgPool,
    server: ErpServer,
    dir: tempfile::TempDir,
    file: PathBuf,
    state: PathBuf,
    source: Vec<Value>,
}

async fn synced(name: &str) -> Synced {
    let pg = PgCluster::start();
    let url = pg.create_database(name).await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let source: Vec<Value> = (1..=ROWS).map(|i| item(i, &format!("item {i}"))).collect();
    let server = ErpServer::start(source.clone(), "pw", 1000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        name,
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "pagination = { kind = \"page\", size = 1000 }\nrecords = \"/data\"\ndeletes = \"hard\"",
    );
    let state = dir.path().join("state.db");
    run_synced(&file, &state, &ENV).await;
    assert_eq!(live_id_names(&pool, "items").await, id_names(&source));
    Synced {
        _pg: pg,
        pool,
        server,
        dir,
        file,
        state,
        source,
    }
}

impl Synced {
    /// `syncflow run FILE --json` with `extra` flags: its output and how long it took.
    async fn run(&self, extra: &[&str]) -> (std::process::Output, Duration, String) {
        let mut args = vec!["run", self.file.to_str().unwrap(), "--json"];
        args.extend_from_slice(extra);
        let started = Instant::now();
        let out = syncflow_async(&args, &self.state, &ENV).await;
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        (out, started.elapsed(), stderr)
    }

    /// Asserts the run failed (exit 1) within a minute, its error containing every one of `named`.
    async fn fails_naming(&self, named: &[&str]) -> String {
        let (out, took, stderr) = self.run(&[]).await;
        assert_eq!(out.status.code(), Some(1), "the run must fail: {stderr}");
        assert!(took < Duration::from_secs(60), "took {took:?}");
        for part in named {
            assert!(stderr.contains(part), "the error names {part:?}: {stderr}");
        }
        stderr
    }

    async fn nothing_lost(&self) {
        assert_eq!(
            live_id_names(&self.pool, "items").await,
            id_names(&self.source),
            "every row synced before is still there"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_null_page_fails_the_run_and_deletes_nothing() {
    let s = synced("null_page").await;
    s.server.set_fault(1000, Some(Fault::NullData));
    s.fails_naming(&["page 2", "null"]).await;
    s.nothing_lost().await;
    // Once the gateway answers again, the run resumes at that page and completes.
    s.server.set_fault(1000, None);
    let summary = run_synced(&s.file, &s.state, &ENV).await;
    assert_eq!(summary["entities"]["items"]["deleted"], 0, "{summary}");
    s.nothing_lost().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_mid_listing_fails_the_run_and_deletes_nothing() {
    let s = synced("gone_mid_listing").await;
    s.server.set_fault(1000, Some(Fault::NotFound));
    s.fails_naming(&["404", "page=2"]).await;
    s.nothing_lost().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_ignores_the_page_parameter_fails_within_a_minute() {
    let s = synced("ignores_paging").await;
    s.server.set_fault(0, Some(Fault::IgnoresPaging));
    let served = s.server.records_served();
    s.fails_naming(&["page 2", "same records as the page before"])
        .await;
    assert!(
        s.server.records_served() - served <= 2_000,
        "it stopped at the first repeat"
    );
    s.nothing_lost().await;
}

/// The peak resident memory of a process, read from /proc while it runs (its high-water mark, in MB).
fn peak_rss_mb(mut child: std::process::Child) -> (std::process::Output, f64) {
    let status = format!("/proc/{}/status", child.id());
    let mut peak_kb = 0u64;
    while child.try_wait().unwrap().is_none() {
        if let Ok(text) = std::fs::read_to_string(&status) {
            let hwm = text
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok());
            peak_kb = peak_kb.max(hwm.unwrap_or(0));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().unwrap(), peak_kb as f64 / 1024.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_endless_body_fails_its_page_with_memory_bounded() {
    let s = synced("endless_body").await;
    s.server.set_fault(1000, Some(Fault::EndlessBody));
    let started = Instant::now();
    let child = spawn_syncflow(&["run", s.file.to_str().unwrap()], &s.state, &ENV);
    let (out, peak_mb) = tokio::task::spawn_blocking(move || peak_rss_mb(child))
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!(
        "endless body: failed after {:.1} s, peak RSS {peak_mb:.0} MB",
        started.elapsed().as_secs_f64()
    );
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("larger than source.max_page_bytes (268435456 bytes)")
            && stderr.contains("page=2"),
        "{stderr}"
    );
    assert!(started.elapsed() < Duration::from_secs(60));
    assert!(peak_mb < 512.0, "peak RSS {peak_mb:.0} MB");
    s.nothing_lost().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_listing_that_ends_early_holds_its_deletes_until_confirmed() {
    let mut s = synced("ends_early").await;
    s.server.set_fault(2000, Some(Fault::EndsEarly));
    let would = "would delete 3000 of the 5000 rows";
    s.fails_naming(&[would, "max_delete_fraction = 0.5", "--confirm-deletes"])
        .await;
    s.nothing_lost().await;
    // The dry run says the same, and writes nothing.
    let (out, _, stderr) = s.run(&["--dry-run"]).await;
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains(would), "{stderr}");

    // The gateway is fixed: the next run reads everything again and deletes nothing.
    s.server.set_fault(2000, None);
    let summary = run_synced(&s.file, &s.state, &ENV).await;
    assert_eq!(summary["entities"]["items"]["deleted"], 0, "{summary}");
    s.nothing_lost().await;

    // The source really lost 3,000 records: the guard holds them until the operator confirms.
    s.source.truncate(2000);
    s.server.set_records(s.source.clone());
    s.fails_naming(&[would]).await;
    assert_eq!(live_id_names(&s.pool, "items").await.len(), 5000);
    let (out, _, stderr) = s.run(&["--confirm-deletes"]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(summary["entities"]["items"]["deleted"], 3000, "{summary}");
    assert_eq!(summary["entities"]["items"]["fetched"], 2000, "{summary}");
    s.nothing_lost().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_surrogate_fails_its_record_and_the_rest_of_its_page_lands() {
    let mut s = synced("lone_surrogate").await;
    for i in 1001..=2000 {
        s.source[i as usize - 1] = item(i, &format!("renamed {i}"));
    }
    s.server.set_records(s.source.clone());
    let page = json!({"data": &s.source[1000..2000]})
        .to_string()
        .replace("\"renamed 1500\"", "\"renamed \\ud800 1500\"");
    s.server.set_fault(1000, Some(Fault::Raw(page)));
    let (out, _, stderr) = s.run(&[]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = syncflow_tests::last_json_line(&out.stdout);
    assert_eq!(summary["entities"]["items"]["failed"], 1, "{summary}");
    assert_eq!(summary["entities"]["items"]["deleted"], 0, "{summary}");
    // The failed record keeps its row as synced before; the page's 999 others landed.
    s.source[1499] = item(1500, "item 1500");
    s.nothing_lost().await;
    let listed = syncflow_async(
        &["failed", "list", "lone_surrogate", "--json"],
        &s.state,
        &ENV,
    )
    .await;
    let failed: Value = syncflow_tests::last_json_line(&listed.stdout);
    let text = failed.to_string();
    assert!(
        text.contains("field \\\"name\\\" holds a lone UTF-16 surrogate"),
        "the failed record names the field: {text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_start_of_a_running_pipeline_exits_4_and_the_first_completes_exact() {
    let mut s = synced("double_start").await;
    for i in 1..=ROWS {
        s.source[i as usize - 1] = item(i, &format!("second version of {i}"));
    }
    s.server.set_records(s.source.clone());
    // Five pages of a second each: time to start it again beside itself.
    s.server.set_delay_ms(1000);
    let file = s.file.to_str().unwrap().to_owned();
    let first = spawn_syncflow(&["run", &file, "--json"], &s.state, &ENV);
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let started = Instant::now();
    let (second, _, stderr) = s.run(&[]).await;
    assert_eq!(second.status.code(), Some(4), "{stderr}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        stderr.contains("is being run by syncflow run (process ") && stderr.contains(" since "),
        "says who holds it and since when: {stderr}"
    );

    // Another state database (another console): the target's lock refuses it.
    let other_state = s.dir.path().join("other-state.db");
    let started = Instant::now();
    let other = syncflow_async(&["run", &file], &other_state, &ENV).await;
    let other_err = String::from_utf8_lossy(&other.stderr);
    assert_eq!(other.status.code(), Some(4), "{other_err}");
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        other_err.contains("lock on the target database"),
        "{other_err}"
    );

    let out = finished(first).await;
    let summary = syncflow_tests::succeeded_json(&out);
    assert_eq!(summary["entities"]["items"]["updated"], ROWS, "{summary}");
    s.nothing_lost().await;
    // And the pipeline is free again.
    s.server.set_delay_ms(0);
    run_synced(&s.file, &s.state, &ENV).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_record_never_overwrites_a_newer_version_a_later_run_wrote() {
    use syncflow_engine::store::Store;
    let pg = PgCluster::start();
    let url = pg.create_database("back_in_time").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let version = |i: u64, name: &str, at: &str, note: Option<&str>| {
        let mut r = json!({"id": i, "name": name, "updated_at": at});
        if let Some(note) = note {
            r["note"] = json!(note);
        }
        r
    };
    // Record 5 comes without its required note: it fails and waits in the failed records.
    let mut source: Vec<Value> = (1..=20)
        .map(|i| version(i, &format!("item {i}"), "2026-01-01T00:00:00Z", Some("n")))
        .collect();
    source[4] = version(5, "first version", "2026-01-01T00:00:00Z", None);
    let server = ErpServer::start(source.clone(), "pw", 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.pipeline_file(
        dir.path(),
        "back_in_time",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "items",
        "records = \"/data\"\nrowversion = \"updated_at\"\n[entities.fields.note]\nrequired = true",
    );
    let state = dir.path().join("state.db");
    let first = run_synced(&file, &state, &ENV).await;
    assert_eq!(first["entities"]["items"]["failed"], 1, "{first}");
    // A later run writes record 5's next version.
    source[4] = version(5, "second version", "2026-02-01T00:00:00Z", Some("n"));
    server.set_records(source.clone());
    run_synced(&file, &state, &ENV).await;

    // The analyst fixes the old failed record and retries it.
    let store = Store::open(&state).await.unwrap();
    let failed = store.failed_records("back_in_time").await.unwrap();
    assert_eq!(failed.len(), 1);
    let fixed = version(5, "first version, fixed", "2026-01-01T00:00:00Z", Some("n"));
    let edits = std::collections::BTreeMap::from([(failed[0].id, fixed.to_string())]);
    let pipeline = store.pipeline("back_in_time").await.unwrap();
    let outcome =
        syncflow_engine::run::retry::retry_failed(&pipeline, &store, dir.path(), None, &edits)
            .await
            .unwrap();
    assert_eq!((outcome.retried, outcome.updated), (1, 0), "{outcome:?}");
    let name: String = sqlx::query_scalar("SELECT name FROM items WHERE id = 5")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(name, "second version", "the newer version stays");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_row_the_database_refuses_fails_alone_and_its_batch_lands() {
    let mut s = synced("refused_row").await;
    // The analyst's own rule on the target table.
    sqlx::query("ALTER TABLE items ADD CONSTRAINT short_names CHECK (length(name) < 40)")
        .execute(&s.pool)
        .await
        .unwrap();
    for i in 1001..=2000 {
        s.source[i as usize - 1] = item(i, &format!("renamed {i}"));
    }
    s.source[1499] = item(
        1500,
        &"a name far too long for the rule on the table".repeat(2),
    );
    s.server.set_records(s.source.clone());
    let (out, _, stderr) = s.run(&[]).await;
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let summary = syncflow_tests::last_json_line(&out.stdout);
    let items = &summary["entities"]["items"];
    assert_eq!(
        (items["failed"].as_u64(), items["updated"].as_u64()),
        (Some(1), Some(999)),
        "{summary}"
    );
    s.source[1499] = item(1500, "item 1500");
    s.nothing_lost().await;
    let listed = syncflow_async(&["failed", "list", "refused_row", "--json"], &s.state, &ENV).await;
    let text = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(
        text.contains("the target refused the record") && text.contains("short_names"),
        "{text}"
    );
}

/// A gateway whose next-page link (or redirect) leads to another origin, and that origin, which counts what
/// reaches it.
async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_never_leave_the_base_url_origin() {
    use axum::routing::get;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    let reached = Arc::new(AtomicU64::new(0));
    let counter = reached.clone();
    let elsewhere = serve(axum::Router::new().fallback(move || {
        counter.fetch_add(1, Ordering::SeqCst);
        async { axum::Json(json!({"items": [], "links": {"next": null}})) }
    }))
    .await;
    let next = format!("{elsewhere}/steal?page=2");
    let to = next.clone();
    let gateway = serve(
        axum::Router::new()
            .route(
                "/linked",
                get(move || {
                    let next = to.clone();
                    async move {
                        axum::Json(
                            json!({"items": [{"id": 1, "name": "one"}], "links": {"next": next}}),
                        )
                    }
                }),
            )
            .route(
                "/moved",
                get(move || {
                    let to = next.clone();
                    async move { axum::response::Redirect::temporary(&to) }
                }),
            ),
    )
    .await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    for (name, path, pagination) in [
        (
            "linked",
            "/linked",
            "{ kind = \"link\", next = \"/links/next\" }",
        ),
        (
            "moved",
            "/moved",
            "{ kind = \"link\", next = \"/links/next\" }",
        ),
    ] {
        let file = dir.path().join(format!("{name}.toml"));
        std::fs::write(
            &file,
            format!(
                "version = 1\nname = \"{name}\"\n[source]\nkind = \"rest\"\nbase_url = \"{gateway}\"\n\
                 auth = {{ kind = \"bearer\", token = {{ env = \"TOKEN\" }} }}\n[target]\nkind = \"sqlite\"\n\
                 path = \"{name}.db\"\n[[entities]]\nname = \"items\"\npath = \"{path}\"\nrecords = \"/items\"\n\
                 pagination = {pagination}\n"
            ),
        )
        .unwrap();
        let out = syncflow_async(
            &["run", file.to_str().unwrap(), "--apply-schema"],
            &state,
            &[("TOKEN", "s3cret-token")],
        )
        .await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{name}: {stderr}");
        assert!(
            stderr.contains(&format!("leads to {elsewhere}"))
                && stderr.contains("credentials are only sent to base_url's origin"),
            "{name}: {stderr}"
        );
        assert!(!stderr.contains("s3cret-token"), "{stderr}");
    }
    assert_eq!(
        reached.load(Ordering::SeqCst),
        0,
        "nothing reached the other origin"
    );

    // A credential in base_url's query is refused like one in its userinfo.
    let file = dir.path().join("in-url.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"in-url\"\n[source]\nkind = \"rest\"\nbase_url = \"{gateway}/?api_key=s3cret\"\n\
             [target]\nkind = \"sqlite\"\npath = \"in-url.db\"\n[[entities]]\nname = \"items\"\n"
        ),
    )
    .unwrap();
    let out = syncflow_async(&["run", file.to_str().unwrap()], &state, &[]).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("source.base_url contains a password"),
        "{stderr}"
    );
    assert!(!stderr.contains("s3cret"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dry_run_writes_nothing_in_the_target_not_even_the_engines_own_tables() {
    let pg = PgCluster::start();
    let url = pg.create_database("dry_run").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let source: Vec<Value> = (1..=500).map(|i| item(i, &format!("item {i}"))).collect();
    let server = ErpServer::start(source, "pw", 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let tables = || async {
        sqlx::query_scalar::<_, String>(
            "SELECT tablename::text FROM pg_tables WHERE schemaname = 'public' ORDER BY 1",
        )
        .fetch_all(&pool)
        .await
        .unwrap()
    };
    for (name, target) in [
        ("dry_pg", format!("kind = \"postgres\"\nurl = \"{url}\"")),
        (
            "dry_lite",
            "kind = \"sqlite\"\npath = \"dry.db\"".to_owned(),
        ),
    ] {
        let file = server.pipeline_file(
            dir.path(),
            name,
            "{ env = \"PW\" }",
            &target,
            "items",
            "records = \"/data\"\ndeletes = \"hard\"",
        );
        let out = syncflow_async(
            &[
                "run",
                file.to_str().unwrap(),
                "--apply-schema",
                "--dry-run",
                "--json",
            ],
            &state,
            &ENV,
        )
        .await;
        let summary = syncflow_tests::succeeded_json(&out);
        assert_eq!(summary["entities"]["items"]["inserted"], 500, "{summary}");
    }
    assert_eq!(
        tables().await,
        Vec::<String>::new(),
        "no table in the PostgreSQL target"
    );
    assert!(!dir.path().join("dry.db").exists(), "no SQLite file");

    // Against a synced table too: the dry run counts the deletes and changes nothing.
    let file = dir.path().join("dry_pg.toml");
    run_synced(&file, &state, &ENV).await;
    let before = tables().await;
    server.set_records((1..=400).map(|i| item(i, &format!("item {i}"))).collect());
    let out = syncflow_async(
        &["run", file.to_str().unwrap(), "--dry-run", "--json"],
        &state,
        &ENV,
    )
    .await;
    let summary = syncflow_tests::succeeded_json(&out);
    assert_eq!(summary["entities"]["items"]["deleted"], 100, "{summary}");
    assert_eq!(tables().await, before);
    let rows: i64 = sqlx::query_scalar("SELECT count(*) FROM items")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(rows, 500);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bubble_reply_without_remaining_fails_the_run_and_deletes_nothing() {
    use syncflow_engine::emulator::app::{sample_app, Scale};
    use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
    let pg = PgCluster::start();
    let url = pg.create_database("no_remaining").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let app = sample_app(Scale::total(1_500), false);
    let biggest = app
        .types
        .iter()
        .max_by_key(|t| t.things.len())
        .unwrap()
        .clone();
    let faults = Faults {
        token: Some("t0ken".into()),
        ..Faults::default()
    };
    let emulator = BubbleEmulator::start(app.clone(), faults.clone())
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = syncflow_tests::bubble::pipeline_file(
        dir.path(),
        "no_remaining",
        &emulator.test_base_url,
        &url,
        "",
    );
    let mut text = std::fs::read_to_string(&file).unwrap();
    text.push_str(&format!(
        "\n[[entities]]\nname = \"{}\"\ndeletes = \"hard\"\n",
        biggest.name
    ));
    std::fs::write(&file, text).unwrap();
    let state = dir.path().join("state.db");
    let env = [("BUBBLE_TOKEN", "t0ken")];
    run_synced(&file, &state, &env).await;
    let count = || async {
        sqlx::query_scalar::<_, i64>(&format!("SELECT count(*) FROM \"{}\"", biggest.name))
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(count().await as usize, biggest.things.len());

    emulator.set_faults(Faults {
        no_remaining: vec![(biggest.name.clone(), 0)],
        ..faults
    });
    let out = syncflow_async(&["run", file.to_str().unwrap()], &state, &env).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cursor 0") && stderr.contains("no /response/remaining"),
        "{stderr}"
    );
    assert_eq!(
        count().await as usize,
        biggest.things.len(),
        "nothing deleted"
    );
}
