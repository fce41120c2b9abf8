//! Connector setup in the real window: a Bubble connector is made from the schema-rendered form against the
//! emulator, the connection test reads the app's types with their counts using the typed token without storing it,
//! the save puts the token into a real Secret Service keychain, and the pipeline is exported (a reference, never the
//! token) and run with the token from the keychain.

use std::time::Duration;
use syncflow_engine::emulator::app::{sample_app, Scale};
use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
use syncflow_tests::artifacts_dir;
use syncflow_tests::keyring_session::KeyringHome;
use syncflow_tests::webdriver::AppWindow;

const TOKEN: &str = "bubble-token-typed-into-the-form";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bubble_connector_is_set_up_tested_saved_and_run() {
    let emulator = BubbleEmulator::start(
        sample_app(Scale::total(600), false),
        Faults {
            token: Some(TOKEN.into()),
            ..Faults::default()
        },
    )
    .await
    .expect("start the emulator");
    let keyring = KeyringHome::new();
    let bus = keyring.start_bus();
    let address = std::ffi::OsString::from(&bus.address);
    let exports = tempfile::tempdir().unwrap();
    let pipeline_file = exports.path().join("my-bubble.toml");
    let window = AppWindow::open_with(&[
        ("DBUS_SESSION_BUS_ADDRESS", address.as_os_str()),
        // The save dialog answers with this path (a WebDriver session cannot drive the system's dialog).
        ("SYNCFLOW_SAVE_FILE", pipeline_file.as_os_str()),
    ])
    .await;
    let session = &window.session;
    let wait = Duration::from_secs(30);

    let tab = session.wait_for("[data-testid='tab-connect']", wait).await;
    session.click(&tab).await;
    let name = session.wait_for("[data-testid='new-name']", wait).await;
    session.type_into(&name, "my-bubble").await;
    let option = session
        .wait_for(
            "[data-testid='field-source.kind'] option[value='bubble']",
            wait,
        )
        .await;
    session.click(&option).await;
    let url = session
        .wait_for("[data-testid='field-source.base_url']", wait)
        .await;
    session.type_into(&url, &emulator.test_base_url).await;
    let keychain = session
        .wait_for(
            "[data-testid='field-source.token.mode'] option[value='keychain']",
            wait,
        )
        .await;
    session.click(&keychain).await;
    let entry = session
        .wait_for("[data-testid='field-source.token.keychain']", wait)
        .await;
    session.type_into(&entry, "my-bubble-token").await;
    let value = session
        .wait_for(
            "[data-testid='field-source.token.value']:not([disabled])",
            wait,
        )
        .await;
    session.type_into(&value, TOKEN).await;
    assert_form_fits_at_1024(session, &value).await;
    let sqlite = session
        .wait_for(
            "[data-testid='field-target.kind'] option[value='sqlite']",
            wait,
        )
        .await;
    session.click(&sqlite).await;
    let path = session
        .wait_for("[data-testid='field-target.path']", wait)
        .await;
    session.type_into(&path, "my-bubble.db").await;

    // The test reads the app with the typed token without storing it: nothing is in the keychain until Save.
    let test = session
        .wait_for("[data-testid='test-connection']", wait)
        .await;
    session.click(&test).await;
    let report = session
        .wait_text("[data-testid='connection-report']", wait, |t| {
            t.contains("invoice")
        })
        .await;
    assert!(
        report.contains("customer") && report.contains("240") && report.contains("300"),
        "{report}"
    );
    let in_keychain = || {
        let out = std::process::Command::new(syncflow_tests::built_binary("syncflow"))
            .args(["secret", "delete", "my-bubble-token"])
            .env("DBUS_SESSION_BUS_ADDRESS", &bus.address)
            .output()
            .expect("run syncflow");
        let said = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success() || said.contains("holds no secret"),
            "{said}"
        );
        out.status.success()
    };
    assert!(!in_keychain(), "Test connection stored the typed token");
    session
        .screenshot(&artifacts_dir().join("connector-tested.png"))
        .await;
    let save = session
        .wait_for("[data-testid='save-pipeline']:not([disabled])", wait)
        .await;
    session.click(&save).await;
    session
        .wait_text("[data-testid='connect-notice']", wait, |t| {
            t.contains("Saved pipeline my-bubble")
        })
        .await;
    assert_eq!(
        session.value(&value).await,
        "",
        "the typed token is not kept in the form once saved"
    );

    let tab = session
        .wait_for("[data-testid='tab-pipelines']", wait)
        .await;
    session.click(&tab).await;
    let export = session
        .wait_for("[data-testid='export-my-bubble']", wait)
        .await;
    session.click(&export).await;
    let exported = session
        .wait_text("[data-testid='export-text']", wait, |t| {
            t.contains("my-bubble")
        })
        .await;
    assert!(
        exported.contains("keychain = \"my-bubble-token\"") && !exported.contains(TOKEN),
        "{exported}"
    );
    let save = session
        .wait_for("[data-testid='save-pipeline-file']", wait)
        .await;
    session.click(&save).await;
    session
        .wait_text("[data-testid='pipeline-file-saved']", wait, |t| {
            t.contains("my-bubble.toml")
        })
        .await;
    let written = std::fs::read_to_string(&pipeline_file).expect("the pipeline file was written");
    assert_eq!(
        written.trim(),
        exported.trim(),
        "the file holds the pipeline shown"
    );
    assert!(!written.contains(TOKEN), "no secret in the file");
    let run = session
        .wait_for("[data-testid='run-my-bubble']", wait)
        .await;
    session.click(&run).await;
    session.review_and_run("my-bubble", wait).await;
    session.assert_run_completes(Duration::from_secs(60)).await;
    assert_eq!(
        session
            .text_of("[data-testid='count-invoice-inserted']")
            .await,
        "240"
    );
    for file in ["state.db", "my-bubble.db"] {
        let bytes = std::fs::read(window.app_dir().join(file)).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(TOKEN),
            "the token leaked into {file}"
        );
    }
    drop(bus);
}

/// At 1024×768 the token row (where it is kept, the entry's name, the value) stays in its column, clear of its help
/// text, and the page does not scroll sideways; then the window goes back to its default size.
async fn assert_form_fits_at_1024(session: &syncflow_tests::webdriver::Session, value: &str) {
    session.set_window_size(1024, 768).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (vx, vy, vw, vh) = session.rect(value).await;
    let help = session
        .wait_for("[data-testid='help-source.token']", Duration::from_secs(5))
        .await;
    let (hx, hy, _, hh) = session.rect(&help).await;
    let beside = vx + vw <= hx + 0.5;
    let below = vy + vh <= hy + 0.5 || hy + hh <= vy + 0.5;
    assert!(
        beside || below,
        "the token value ({vx},{vy} {vw}×{vh}) overlaps its help ({hx},{hy})"
    );
    let sideways = session
        .script("return document.documentElement.scrollWidth - window.innerWidth;")
        .await;
    assert!(
        sideways.as_f64().unwrap_or(1.0) <= 0.0,
        "the page scrolls sideways by {sideways} px at 1024"
    );
    session
        .screenshot(&artifacts_dir().join("connector-1024.png"))
        .await;
    session.set_window_size(1180, 780).await;
}
