//! Only an explicit apply alters a table. A run of the console (and of the schedule, and of the CLI without
//! `--apply-schema`) that needs a schema change — a table that does not exist, a column for a field first seen on
//! page 4, a column widened by a value on page 5 — stops before writing that page, says what it needs, and keeps
//! the records that need it, so the schema review shows the change (the review itself reads only the first pages).
//! After Apply the next run resumes where the last one stopped. Real PostgreSQL, the REST test server.

use serde_json::Value;
use syncflow_engine::app::{self, Context, ErrorKind};
use syncflow_engine::run::RunOptions;
use syncflow_engine::track::RunStatus;
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::last_json_line;
use syncflow_tests::pg::PgCluster;

const ROWS: u64 = 5_000;
const PASSWORD: &str = "review";

/// Items 1..=5000; from 3001 on they carry `color`; item 4500's price is "n/a" (the numeric column must widen).
fn records() -> Vec<Value> {
    (1..=ROWS)
        .map(|i| {
            let mut r = item(i);
            if i > 3_000 {
                r["color"] = Value::from("red");
            }
            if i == 4_500 {
                r["price"] = Value::from("n/a");
            }
            r
        })
        .collect()
}

async fn console_run(ctx: &Context) -> Result<syncflow_engine::track::RunSummary, app::AppError> {
    let options = RunOptions {
        apply_schema: false,
        started_by: "manual",
        ..RunOptions::default()
    };
    let outcome = app::runs::run_stored(ctx, "review", options, &|_| {}).await?;
    app::runs::summary_or_review(outcome)
}

async fn count(pool: &sqlx::PgPool, sql: &str) -> i64 {
    sqlx::query_scalar(sql).fetch_one(pool).await.unwrap()
}

async fn table_exists(pool: &sqlx::PgPool) -> bool {
    sqlx::query_scalar::<_, bool>("SELECT to_regclass('items') IS NOT NULL")
        .fetch_one(pool)
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn runs_stop_for_the_review_and_resume_after_apply() {
    std::env::set_var("PW", PASSWORD);
    let cluster = PgCluster::start();
    let url = cluster.create_database("review").await;
    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let server = ErpServer::start(records(), PASSWORD, 1_000, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let file = server.items_to_postgres(dir.path(), "review", &url, "none");
    let state = dir.path().join("state.db");

    // The CLI without --apply-schema: exit 2, nothing created, the summary says what to do.
    let out = syncflow_tests::syncflow_async(
        &["run", file.to_str().unwrap(), "--json"],
        &state,
        &[("PW", PASSWORD)],
    )
    .await;
    assert_eq!(
        out.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = last_json_line(&out.stdout);
    assert_eq!(summary["status"], "failed", "{summary}");
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("schema review needed")
            && error.contains("does not exist")
            && error.contains("--apply-schema"),
        "{error}"
    );
    assert!(!table_exists(&pool).await, "no table was created");

    // The console's face: the same stop, as the error kind the console offers the review for.
    let ctx = Context::open(&state, 1).await.unwrap();
    let stopped = console_run(&ctx).await.unwrap_err();
    assert_eq!(stopped.kind, ErrorKind::NeedsReview, "{}", stopped.message);
    assert!(!table_exists(&pool).await, "no table was created");
    let review = app::mapping::schema_review(&ctx, "review").await.unwrap();
    assert!(!review.tables[0].exists, "{:?}", review.tables);
    app::mapping::apply_schema(&ctx, "review").await.unwrap();
    assert!(table_exists(&pool).await);

    // Page 4 brings `color`, which the review (first 3 pages) had not seen: the run stops before writing it.
    let stopped = console_run(&ctx).await.unwrap_err();
    assert_eq!(stopped.kind, ErrorKind::NeedsReview);
    assert!(stopped.message.contains("\"color\""), "{}", stopped.message);
    assert_eq!(
        count(&pool, "SELECT count(*) FROM items").await,
        3_000,
        "pages 1-3 landed"
    );
    let columns: i64 = count(
        &pool,
        "SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'color'",
    )
    .await;
    assert_eq!(columns, 0, "no column added without the review");
    let review = app::mapping::schema_review(&ctx, "review").await.unwrap();
    assert_eq!(
        review.tables[0].added,
        vec!["color".to_owned()],
        "{:?}",
        review.tables
    );
    assert!(
        review
            .prisma
            .as_deref()
            .unwrap_or_default()
            .contains("color"),
        "the Prisma schema shows the field"
    );
    let runs = app::runs::list(&ctx, Some("review")).await.unwrap();
    assert!(
        runs.history
            .iter()
            .take(2)
            .all(|r| r.run.status == RunStatus::Failed
                && r.run
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("schema review needed"))),
        "the history shows why: {:?}",
        runs.history
    );
    app::mapping::apply_schema(&ctx, "review").await.unwrap();

    // Page 5 holds a price that is not a number: the column would widen to text; the run stops again.
    let stopped = console_run(&ctx).await.unwrap_err();
    assert!(
        stopped.message.contains("\"price\"") && stopped.message.contains("text"),
        "{}",
        stopped.message
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM items").await,
        4_000,
        "page 4 landed, page 5 waits"
    );
    let review = app::mapping::schema_review(&ctx, "review").await.unwrap();
    assert_eq!(
        review.tables[0].retyped,
        vec!["price".to_owned()],
        "{:?}",
        review.tables
    );
    app::mapping::apply_schema(&ctx, "review").await.unwrap();

    // Reviewed: the run resumes at page 5 and completes; every record landed once, with its values.
    let served = server.records_served();
    let summary = console_run(&ctx).await.unwrap();
    assert_eq!(summary.status, RunStatus::Completed, "{summary:?}");
    assert_eq!(
        server.records_served() - served,
        1_000,
        "only page 5 was read again"
    );
    assert_eq!(
        summary.entities["items"].inserted, ROWS,
        "the pass's counts: {summary:?}"
    );
    assert_eq!(
        count(&pool, "SELECT count(DISTINCT id) FROM items").await,
        ROWS as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM items").await,
        ROWS as i64
    );
    assert_eq!(
        count(&pool, "SELECT count(*) FROM items WHERE color = 'red'").await,
        2_000
    );
    assert_eq!(
        count(
            &pool,
            "SELECT count(*) FROM items WHERE price = 'n/a' AND id = 4500"
        )
        .await,
        1
    );
    let review = app::mapping::schema_review(&ctx, "review").await.unwrap();
    assert!(
        review
            .tables
            .iter()
            .all(|t| t.added.is_empty() && t.retyped.is_empty()),
        "nothing left to review: {:?}",
        review.tables
    );
}
