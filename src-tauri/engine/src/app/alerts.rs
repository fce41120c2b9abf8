//! The alert webhook as the console sets it up: where its URL comes from, storing one, and a test message.

use super::AppError;
use crate::jobs::alerts::{self, Alert};

/// Where the alert webhook's URL comes from (never the URL itself).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
#[serde(rename_all = "snake_case")]
pub enum WebhookSource {
    /// The environment variable SYNCFLOW_ALERT_WEBHOOK (it wins over the keychain).
    Environment,
    /// The keychain entry "alert-webhook".
    Keychain,
    /// None: alerts are desktop notifications only.
    None,
}

/// Where the webhook's URL comes from now.
pub fn webhook_source() -> WebhookSource {
    if std::env::var(alerts::WEBHOOK_ENV).is_ok_and(|u| !u.trim().is_empty()) {
        WebhookSource::Environment
    } else if alerts::webhook_url().is_some() {
        WebhookSource::Keychain
    } else {
        WebhookSource::None
    }
}

/// Keeps the webhook's URL in the keychain (it carries a token); it must be an http(s) URL.
pub fn store_webhook(url: &str) -> Result<(), AppError> {
    let url = url.trim();
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(AppError::invalid(
            "the webhook URL starts with https:// (Slack: https://hooks.slack.com/services/…); paste the whole URL",
        ));
    }
    super::connections::store_secret(alerts::WEBHOOK_KEYCHAIN_ENTRY, url)
}

/// Sends a test alert to the configured webhook.
pub async fn send_test() -> Result<(), AppError> {
    let url = alerts::webhook_url().ok_or_else(|| {
        AppError::invalid(format!(
            "no alert webhook is set; paste its URL and save it, or set {} before starting the console",
            alerts::WEBHOOK_ENV
        ))
    })?;
    let alert = Alert {
        title: "SyncFlow: test alert".into(),
        text: "Alerts from SyncFlow (failed or paused scheduled runs) will arrive here.".into(),
    };
    alerts::post_webhook(&url, &alert)
        .await
        .map_err(AppError::failed)
}
