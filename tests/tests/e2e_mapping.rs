//! The mapping editor and the schema review in the real window: names with their reasons, a rename into a
//! collision is flagged and cleared when fixed, the choice is saved, the Prisma schema shows it, and Apply creates
//! the table in the target.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::webdriver::AppWindow;

const PAYMENT: &str = "[data-source='2nd Payment %']";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_into_a_collision_is_flagged_fixed_saved_and_applied() {
    let window = AppWindow::open().await;
    let session = &window.session;
    let wait = Duration::from_secs(30);

    let tab = session.wait_for("[data-testid='tab-mapping']", wait).await;
    session.click(&tab).await;
    let input = session
        .wait_for(&format!("{PAYMENT} input.name"), wait)
        .await;
    assert_eq!(session.value(&input).await, "f2ndPaymentPercent");
    let badges = session.text_of(&format!("{PAYMENT} .badges")).await;
    assert!(
        badges.contains("numeric prefix") && badges.contains("symbols"),
        "badges: {badges}"
    );
    let collision = session
        .text_of("[data-source='customer-name'] .badges")
        .await;
    assert!(
        collision.contains("collision"),
        "customer-name badges: {collision}"
    );

    // Rename into a collision: the warning shows and Save is blocked.
    session.type_into(&input, "sku").await;
    let warning = session
        .wait_text(
            &format!("{PAYMENT} [data-testid='field-error']"),
            wait,
            |t| t.contains("already the name"),
        )
        .await;
    assert!(warning.contains("\"sku\""), "{warning}");
    let save = session.wait_for("[data-testid='save-mapping']", wait).await;
    assert!(
        session
            .find("[data-testid='save-mapping']:disabled")
            .await
            .is_some(),
        "Save must be blocked"
    );
    session
        .screenshot(&artifacts_dir().join("mapping-collision.png"))
        .await;

    // Fix it: the warning clears, the rename is kept and saved.
    let input = session
        .wait_for(&format!("{PAYMENT} input.name"), wait)
        .await;
    session.type_into(&input, "secondPayment").await;
    session
        .wait_gone(&format!("{PAYMENT} [data-testid='field-error']"), wait)
        .await;
    session
        .wait_text(&format!("{PAYMENT} .badges"), wait, |t| {
            t.contains("renamed")
        })
        .await;
    session
        .wait_for("[data-testid='save-mapping']:not(:disabled)", wait)
        .await;
    session.click(&save).await;
    session
        .wait_text("[data-testid='mapping-notice']", wait, |t| {
            t.starts_with("Saved")
        })
        .await;

    // The schema review shows the chosen name mapped to the original column, and the table to be created.
    let tab = session.wait_for("[data-testid='tab-schema']", wait).await;
    session.click(&tab).await;
    let prisma = session
        .wait_text("[data-testid='prisma']", wait, |t| {
            t.contains("model Products")
        })
        .await;
    assert!(
        prisma.contains("secondPayment") && prisma.contains("@map(\"2nd Payment %\")"),
        "{prisma}"
    );
    assert!(session
        .text_of("[data-testid='drift-products']")
        .await
        .contains("to be created"));
    assert!(session
        .text_of("[data-testid='sql']")
        .await
        .contains("CREATE TABLE \"products\""));

    // Apply, with confirmation: the table exists in the target afterwards.
    let apply = session
        .wait_for("[data-testid='apply-schema']:not(:disabled)", wait)
        .await;
    session.click(&apply).await;
    let yes = session
        .wait_for("[data-testid='confirm-apply-yes']", wait)
        .await;
    session.click(&yes).await;
    session.wait_for("[data-testid='applied']", wait).await;
    assert!(session
        .text_of("[data-testid='drift-products']")
        .await
        .contains("up to date"));
    session
        .screenshot(&artifacts_dir().join("schema-applied.png"))
        .await;

    let db = window.app_dir().join("demo.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let columns: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info('products')")
        .fetch_all(&pool)
        .await
        .unwrap();
    let columns: Vec<String> = columns.into_iter().map(|(c,)| c).collect();
    for expected in [
        "2nd Payment %",
        "Customer Name",
        "customer-name",
        "émojis_🚀",
        "_bridge_key_hash",
    ] {
        assert!(
            columns.iter().any(|c| c == expected),
            "column {expected:?} missing from {columns:?}"
        );
    }
    // The saved choice is in the stored pipeline (and so in an exported pipeline file).
    let state = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        window.app_dir().join("state.db").display()
    ))
    .await
    .unwrap();
    let (definition,): (String,) =
        sqlx::query_as("SELECT definition FROM pipelines WHERE name = 'Demo'")
            .fetch_one(&state)
            .await
            .unwrap();
    assert!(
        definition.contains("name = \"secondPayment\""),
        "{definition}"
    );
}
