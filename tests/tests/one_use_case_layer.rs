//! The console and the CLI are two faces of one use-case layer (`syncflow_engine::app`); where they used to
//! disagree, they now behave the same. Each check runs the console's face (the app functions its commands call,
//! on a Context as the console opens it) and the CLI's (the built `syncflow`, started from another folder).
//!
//! - A retry of all failed records first lands the children waiting for a parent that has arrived — the CLI did,
//!   the console did not.
//! - A relative SQLite path means the file beside the pipeline file, whichever face runs next and from wherever —
//!   `failed retry` and the daemon used to take it from the current folder.
//! - `syncflow runs list` shows the runs of both faces, newest first, with who started them.

use serde_json::{Map, Value};
use std::path::Path;
use syncflow_engine::app::{self, Context};
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_engine::run::{RunEvent, RunOptions};
use syncflow_engine::track::RunStatus;
use syncflow_tests::{built_binary, last_json_line};

const CUSTOMERS: usize = 20;
const INVOICES: usize = 100;

/// `syncflow ARGS --state STATE` started in `cwd`.
async fn syncflow_in(cwd: &Path, args: &[&str], state: &Path) -> std::process::Output {
    let mut cmd = std::process::Command::new(built_binary("syncflow"));
    cmd.args(args).arg("--state").arg(state).current_dir(cwd);
    tokio::task::spawn_blocking(move || cmd.output().expect("run syncflow"))
        .await
        .expect("the CLI's thread")
}

/// A run through the console's face that is cancelled once the customers are in: the parents arrive in the target,
/// the waiting invoices are not looked at.
async fn bring_customers_in(ctx: &Context) {
    let pipeline = ctx.pipeline("shop").await.unwrap();
    let options = RunOptions {
        apply_schema: true,
        started_by: "manual",
        ..RunOptions::default()
    };
    let on_event = |event: RunEvent| {
        if let RunEvent::EntityDone { entity, .. } = event {
            if entity == "customer" {
                app::runs::cancel(ctx, "shop").unwrap();
            }
        }
    };
    let outcome = app::runs::run(ctx, &pipeline, options, &on_event)
        .await
        .unwrap();
    assert_eq!(
        outcome.summary.status,
        RunStatus::Cancelled,
        "{:?}",
        outcome.summary
    );
}

async fn invoices(target: &Path) -> i64 {
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", target.display()))
        .await
        .unwrap();
    let n = sqlx::query_scalar("SELECT count(*) FROM invoice")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_and_cli_retry_land_waiting_children_in_the_file_beside_the_pipeline() {
    let mut shop = sample_app(
        Scale {
            customers: CUSTOMERS,
            invoices: INVOICES,
            line_items: 0,
        },
        true,
    );
    // Customers 0 and 1 are missing at first: their 10 invoices wait.
    let late: Vec<Map<String, Value>> = shop.types[0].things.drain(0..2).collect();
    let emulator = BubbleEmulator::start(shop, Faults::default())
        .await
        .unwrap();
    let project = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let file = project.path().join("shop.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"shop\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n\
             [target]\nkind = \"sqlite\"\npath = \"shop.db\"\n\
             [[entities]]\nname = \"invoice\"\n\
             parents = [{{ field = \"Customer\", entity = \"customer\" }}]\n\
             [[entities]]\nname = \"customer\"\n",
            emulator.base_url
        ),
    )
    .unwrap();
    let state = project.path().join("state").join("state.db");
    std::fs::create_dir_all(state.parent().unwrap()).unwrap();
    let target = project.path().join("shop.db");

    // The CLI runs the file from another folder: the target is the file beside the pipeline file.
    let file_arg = file.to_str().unwrap();
    let out = syncflow_in(
        elsewhere.path(),
        &["run", file_arg, "--apply-schema", "--json"],
        &state,
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        last_json_line(&out.stdout)["entities"]["invoice"]["pending"],
        10
    );
    assert!(target.exists(), "the target beside the pipeline file");
    assert!(!elsewhere.path().join("shop.db").exists());
    assert_eq!(invoices(&target).await, 90);

    // The console's face (its context on the same state database): customer 0 arrives, then Retry all.
    let ctx = Context::open(&state, 2).await.unwrap();
    let exported = app::pipelines::export(&ctx, "shop").await.unwrap();
    assert!(
        exported.contains(&target.display().to_string()),
        "stored with the absolute path: {exported}"
    );
    emulator.edit(|a| a.types[0].things.push(late[0].clone()));
    bring_customers_in(&ctx).await;
    assert_eq!(
        invoices(&target).await,
        90,
        "the waiting invoices still wait"
    );
    let retried = app::records::retry_failed(&ctx, "shop", None, &Default::default())
        .await
        .unwrap();
    let children = retried.children.expect("the waiting children were checked");
    assert_eq!(
        (children.tried, children.landed, children.waiting),
        (10, 5, 5)
    );
    assert_eq!(invoices(&target).await, 95);

    // The CLI's face, from a third folder: customer 1 arrives, then `failed retry`.
    emulator.edit(|a| a.types[0].things.push(late[1].clone()));
    bring_customers_in(&ctx).await;
    drop(ctx);
    let third = tempfile::tempdir().unwrap();
    let out = syncflow_in(third.path(), &["failed", "retry", "shop", "--json"], &state).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let retried = last_json_line(&out.stdout);
    assert_eq!(retried["children"]["landed"], 5, "{retried}");
    assert_eq!(retried["children"]["waiting"], 0, "{retried}");
    assert!(!third.path().join("shop.db").exists());
    assert_eq!(
        invoices(&target).await,
        100,
        "every invoice landed in the one target"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_pipeline_is_not_found_in_both_faces() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let ctx = Context::open(&state, 1).await.unwrap();
    let err = app::records::failed(&ctx, "nope").await.unwrap_err();
    assert_eq!(err.kind, app::ErrorKind::NotFound);
    assert!(err.message.contains("no pipeline named \"nope\""), "{err}");
    let err = app::records::retry_failed(&ctx, "nope", None, &Default::default())
        .await
        .unwrap_err();
    assert_eq!(err.kind, app::ErrorKind::NotFound);
    drop(ctx);
    for args in [["failed", "list", "nope"], ["failed", "retry", "nope"]] {
        let out = syncflow_in(dir.path(), &args, &state).await;
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains("no pipeline named \"nope\""), "{stderr}");
    }
}
