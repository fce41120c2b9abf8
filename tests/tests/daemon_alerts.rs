//! `syncflow daemon` alerts like the console: a scheduled run that fails raises a desktop notification on the
//! session's D-Bus (seen here by dbus-monitor on a private bus) and posts Slack-compatible JSON to the webhook.

use std::time::{Duration, Instant};
use syncflow_engine::app::{self, Context};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::keyring_session::KeyringHome;
use syncflow_tests::webhook::Webhook;

const PASSWORD: &str = "daemon-alerts";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_scheduled_run_of_the_daemon_notifies_the_desktop_and_the_webhook() {
    std::env::set_var("PW", PASSWORD);
    let server = ErpServer::start((1..=50).map(item).collect(), PASSWORD, 100, 3600).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    // No schema was reviewed for this pipeline: its scheduled run stops and fails, as scheduled runs alter no table.
    let file = server.pipeline_file(
        dir.path(),
        "nightly",
        "{ env = \"PW\" }",
        "kind = \"sqlite\"\npath = \"nightly.db\"",
        "items",
        "records = \"/data\"\nbusiness_key = [\"id\"]",
    );
    let ctx = Context::open(&state, 1).await.unwrap();
    app::pipelines::import_file(&ctx, &file).await.unwrap();
    let every_minute = syncflow_engine::config::Schedule {
        cron: "* * * * *".into(),
        timezone: "UTC".into(),
        window: None,
        days_to_complete: None,
    };
    app::pipelines::save_schedule(&ctx, "nightly", Some(every_minute))
        .await
        .unwrap();
    // The schedule last fired two minutes ago, so the daemon's first look finds a fire due.
    let mut schedule = ctx.store().schedule_state("nightly").await.unwrap();
    schedule.last_fire_at = Some((chrono::Utc::now() - chrono::Duration::minutes(2)).to_rfc3339());
    ctx.store()
        .save_schedule_state("nightly", &schedule)
        .await
        .unwrap();

    let hook = Webhook::start().await;
    let home = KeyringHome::new();
    let bus = home.start_bus();
    let watched = dir.path().join("dbus-monitor.txt");
    let mut monitor = std::process::Command::new("dbus-monitor")
        .args([
            "--address",
            &bus.address,
            "interface='org.freedesktop.Notifications'",
        ])
        .stdout(std::fs::File::create(&watched).unwrap())
        .spawn()
        .expect("dbus-monitor (apt-get install dbus)");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let daemon = syncflow_tests::spawn_syncflow(
        &["daemon", "--tick-seconds", "1"],
        &state,
        &[
            ("PW", PASSWORD),
            ("DBUS_SESSION_BUS_ADDRESS", &bus.address),
            ("SYNCFLOW_ALERT_WEBHOOK", &hook.url),
        ],
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    while hook.bodies().is_empty() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let _ = std::process::Command::new("kill")
        .arg(daemon.id().to_string())
        .status();
    let out = syncflow_tests::finished(daemon).await;
    let _ = monitor.kill();
    let _ = monitor.wait();

    let stderr = String::from_utf8_lossy(&out.stderr);
    let bodies = hook.bodies();
    assert!(
        !bodies.is_empty(),
        "no webhook call; the daemon said: {stderr}"
    );
    let text = bodies[0]["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.contains("scheduled run of nightly")
            && text.contains("failed")
            && text.contains("schema review needed"),
        "{text}"
    );
    let seen = std::fs::read_to_string(&watched).unwrap_or_default();
    assert!(
        seen.contains("member=Notify") && seen.contains("scheduled run of nightly failed"),
        "no desktop notification on the session bus; dbus-monitor saw: {seen}\nthe daemon said: {stderr}"
    );
    drop(bus);
}
