//! A run whose process dies (kill -9) shows as interrupted once the daemon (or the console) starts, and resumes
//! on request — the same run, ending with the target equal to the source; the daemon stops on SIGTERM with exit 0.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_engine::store::Store;
use syncflow_engine::track::RunStatus;
use syncflow_tests::{built_binary, run_synced};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_run_shows_as_interrupted_and_resumes_on_request() {
    let app = sample_app(Scale::total(2_000), true);
    let total: usize = app.types.iter().map(|t| t.things.len()).sum();
    let emulator = BubbleEmulator::start(
        app,
        Faults {
            latency_ms: 80,
            ..Faults::default()
        },
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("killed.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"killed\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n\
             [target]\nkind = \"sqlite\"\npath = \"killed.db\"\n",
            emulator.base_url
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let mut child = Command::new(built_binary("syncflow"))
        .arg("run")
        .arg(&file)
        .args(["--apply-schema", "--json", "--state"])
        .arg(&state)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Kill it once some pages are in.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        assert!(Instant::now() < deadline, "no page committed");
        tokio::time::sleep(Duration::from_millis(50)).await;
        let Ok(store) = Store::open(&state).await else {
            continue;
        };
        let fetched = store
            .run_history(Some("killed"), 1)
            .await
            .ok()
            .and_then(|h| h.first().map(|r| r.counts.fetched))
            .unwrap_or(0);
        if fetched > 0 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();

    let store = Store::open(&state).await.unwrap();
    let before = store.run_history(Some("killed"), 1).await.unwrap();
    assert_eq!(
        before[0].run.status,
        RunStatus::Running,
        "nothing has looked yet"
    );

    let daemon = Command::new(built_binary("syncflow"))
        .args(["daemon", "--tick-seconds", "1", "--state"])
        .arg(&state)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let term = Command::new("kill")
        .args(["-TERM", &daemon.id().to_string()])
        .status()
        .unwrap();
    assert!(term.success());
    let out = tokio::task::spawn_blocking(move || daemon.wait_with_output())
        .await
        .unwrap()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("1 interrupted run(s)"), "{stderr}");
    assert!(stderr.contains("stopped"), "{stderr}");

    let after = store.run_history(Some("killed"), 1).await.unwrap();
    assert_eq!(after[0].run.status, RunStatus::Interrupted);
    assert!(after[0]
        .run
        .error
        .as_deref()
        .unwrap_or("")
        .contains("resume"));

    let resumed = run_synced(&file, &state, &[]).await;
    assert_eq!(resumed["status"], "completed");
    assert_eq!(
        resumed["run_id"],
        after[0].run.id.as_str(),
        "the interrupted run continued"
    );
    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        dir.path().join("killed.db").display()
    ))
    .await
    .unwrap();
    let mut rows = 0;
    for table in ["customer", "invoice", "lineitem"] {
        let (n, distinct): (i64, i64) = sqlx::query_as(&format!(
            "SELECT count(*), count(DISTINCT \"_id\") FROM \"{table}\""
        ))
        .fetch_one(&pool)
        .await
        .unwrap();
        assert_eq!(n, distinct, "{table}: no duplicates");
        rows += n as usize;
    }
    assert_eq!(rows, total);
}
