//! The mapping editor and the schema review in the real window: names with their reasons, a rename into a
//! collision is flagged and cleared when fixed, the choice is saved, the Prisma schema shows it, and Apply creates
//! the table in the target.

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::webdriver::AppWindow;

const PAYMENT: &str = "[data-source='2nd Payment %']";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rename_into_a_collision_is_flagged_fixed_saved_and_applied() {
    // The save dialog answers with this path (a WebDriver session cannot drive the system's dialog).
    let exports = tempfile::tempdir().unwrap();
    let schema_file = exports.path().join("schema.prisma");
    let window = AppWindow::open_with(&[("SYNCFLOW_SAVE_FILE", schema_file.as_os_str())]).await;
    let session = &window.session;
    let wait = Duration::from_secs(30);

    let tab = session.wait_for("[data-testid='tab-mapping']", wait).await;
    session.click(&tab).await;
    // The demo is a Bubble app: customers first, with fields that collide once sanitised.
    let collision = session
        .wait_text("[data-source='customer-name'] .badges", wait, |t| {
            t.contains("collision")
        })
        .await;
    assert!(collision.contains("collision"), "{collision}");
    let entity = session
        .wait_for("[data-testid='entity-invoice']", wait)
        .await;
    session.click(&entity).await;
    let id_badges = session.text_of("[data-source='_id'] .badges").await;
    assert!(id_badges.contains("Bubble id"), "_id badges: {id_badges}");
    let input = session
        .wait_for(&format!("{PAYMENT} input.name"), wait)
        .await;
    assert_eq!(session.value(&input).await, "f2ndPaymentPercent");
    let badges = session.text_of(&format!("{PAYMENT} .badges")).await;
    assert!(
        badges.contains("numeric prefix") && badges.contains("symbols"),
        "badges: {badges}"
    );
    // Rename into a collision: the warning shows and Save is blocked.
    session.type_into(&input, "invoiceNo").await;
    let warning = session
        .wait_text(
            &format!("{PAYMENT} [data-testid='field-error']"),
            wait,
            |t| t.contains("already the name"),
        )
        .await;
    assert!(warning.contains("\"Invoice No\""), "{warning}");
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
    // Choose the business key: the invoice number instead of Bubble's _id.
    assert!(session
        .find("[data-source='_id'] input.key:checked")
        .await
        .is_some());
    let key = session
        .wait_for("[data-source='Invoice No'] input.key", wait)
        .await;
    session.click(&key).await;
    session
        .wait_for("[data-source='Invoice No'] input.key:checked", wait)
        .await;
    let old_key = session
        .wait_for("[data-source='_id'] input.key", wait)
        .await;
    session.click(&old_key).await;
    session
        .wait_gone("[data-source='_id'] input.key:checked", wait)
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
            t.contains("model Invoice")
        })
        .await;
    assert!(
        prisma.contains("secondPayment")
            && prisma.contains("@map(\"2nd Payment %\")")
            && prisma.contains("bubbleId"),
        "{prisma}"
    );
    let invoice_no = prisma
        .lines()
        .find(|l| l.trim_start().starts_with("invoiceNo "))
        .unwrap_or_default();
    assert!(
        invoice_no.contains("String ")
            && invoice_no.contains("@unique(map: \"invoice_Invoice No_key\")"),
        "the chosen key is unique and required: {invoice_no}"
    );
    assert!(session
        .text_of("[data-testid='drift-invoice']")
        .await
        .contains("to be created"));
    assert!(session
        .text_of("[data-testid='sql']")
        .await
        .contains("CREATE TABLE \"invoice\""));

    // Apply, with confirmation: the table exists in the target afterwards.
    session.apply_schema(wait).await;
    assert!(session
        .text_of("[data-testid='drift-invoice']")
        .await
        .contains("up to date"));
    session
        .screenshot(&artifacts_dir().join("schema-applied.png"))
        .await;

    // Export writes the schema shown (Prisma 7: no url) and the prisma.config.ts it needs beside it.
    let shown = session.text_of("[data-testid='prisma']").await;
    let export = session
        .wait_for("[data-testid='export-schema']", wait)
        .await;
    session.click(&export).await;
    let saved = session
        .wait_text("[data-testid='schema-saved']", wait, |t| {
            t.contains("Saved")
        })
        .await;
    assert!(saved.contains("prisma.config.ts"), "{saved}");
    let written = std::fs::read_to_string(&schema_file).expect("the schema file was written");
    assert_eq!(
        written.trim(),
        shown.trim(),
        "the file holds the schema shown"
    );
    assert!(written.contains("model Invoice") && !written.contains("url      = env"));
    let config = std::fs::read_to_string(exports.path().join("prisma.config.ts")).unwrap();
    assert!(config.contains("env(\"DATABASE_URL\")") && config.contains("schema.prisma"));
    // For Prisma 6, by the selector: the URL in the datasource.
    let version = session
        .wait_for("[data-testid='prisma-version']", wait)
        .await;
    session.click(&version).await;
    let six = session
        .wait_for("[data-testid='prisma-version'] option[value='6']", wait)
        .await;
    session.click(&six).await;
    session
        .wait_text("[data-testid='prisma']", wait, |t| t.contains("url"))
        .await;
    session.click(&export).await;
    session
        .wait_text("[data-testid='schema-saved']", wait, |t| {
            t.contains("Saved") && !t.contains("config")
        })
        .await;
    let written = std::fs::read_to_string(&schema_file).unwrap();
    assert!(
        written.contains("url      = env(\"DATABASE_URL\")"),
        "{written}"
    );

    let db = window.app_dir().join("demo.db");
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", db.display()))
        .await
        .unwrap();
    let columns: Vec<(String,)> = sqlx::query_as("SELECT name FROM pragma_table_info('invoice')")
        .fetch_all(&pool)
        .await
        .unwrap();
    let columns: Vec<String> = columns.into_iter().map(|(c,)| c).collect();
    for expected in [
        "2nd Payment %",
        "1st Payment %",
        "Invoice No",
        "_id",
        "Created Date",
        "_bridge_key_hash",
    ] {
        assert!(
            columns.iter().any(|c| c == expected),
            "column {expected:?} missing from {columns:?}"
        );
    }
    let (unique,): (String,) = sqlx::query_as(
        "SELECT name FROM pragma_index_list('invoice') WHERE \"unique\" = 1 AND origin = 'c'",
    )
    .fetch_one(&pool)
    .await
    .unwrap();
    assert_eq!(unique, "invoice_Invoice No_key");
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
        definition.contains("name = \"secondPayment\"")
            && definition.contains("business_key = [\"Invoice No\"]")
            && !definition.contains("key = true"),
        "{definition}"
    );
}
