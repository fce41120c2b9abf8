//! Alerts: what of the scheduler's news needs a person (a scheduled run that failed or left failed records, a run
//! paused because its window closed, records that used their last automatic try), said once in words — for a desktop notification in the
//! console and, when configured, a webhook that takes Slack's incoming-webhook JSON (`{"text": …}`), from the
//! console and from `syncflow daemon` alike.
//!
//! The webhook's URL is a secret (Slack's carries its token): it comes from the environment variable
//! [`WEBHOOK_ENV`], else from the keychain entry [`WEBHOOK_KEYCHAIN_ENTRY`]; it is never logged or shown.

use super::scheduler::SchedulerAction;
use std::time::Duration;

/// The environment variable holding the webhook's URL.
pub const WEBHOOK_ENV: &str = "SYNCFLOW_ALERT_WEBHOOK";
/// The keychain entry (service "syncflow") holding the webhook's URL when the environment does not.
pub const WEBHOOK_KEYCHAIN_ENTRY: &str = "alert-webhook";

/// News a person should hear about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alert {
    pub title: String,
    pub text: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AlertError {
    #[error("the alert webhook could not be reached: {0}")]
    Unreachable(String),
    #[error("the alert webhook answered HTTP {0}")]
    Refused(u16),
}

/// The alert a scheduler action raises, if any.
pub fn alert_for(action: &SchedulerAction) -> Option<Alert> {
    match action {
        SchedulerAction::Ended {
            pipeline,
            status,
            error,
            run_id,
            ..
        } if status == "failed" => Some(Alert {
            title: format!("SyncFlow: scheduled run of {pipeline} failed"),
            text: format!(
                "The scheduled run of {pipeline}{} failed: {}. See Runs & schedule in the console (its log has the details).",
                run_id.as_deref().map(|id| format!(" ({id})")).unwrap_or_default(),
                error.as_deref().unwrap_or("no reason given")
            ),
        }),
        SchedulerAction::Ended {
            pipeline,
            status,
            failed,
            ..
        } if status == "completed" && *failed > 0 => Some(Alert {
            title: format!("SyncFlow: {pipeline} completed with {failed} failed"),
            text: format!(
                "The scheduled run of {pipeline} completed with {failed} failed record(s); open Failed records to \
                 see why, fix and retry them."
            ),
        }),
        SchedulerAction::Paused { pipeline, reason } => Some(Alert {
            title: format!("SyncFlow: {pipeline} paused"),
            text: format!("The scheduled run of {pipeline} paused: {reason}."),
        }),
        SchedulerAction::Retried { pipeline, dead, .. } if *dead > 0 => Some(Alert {
            title: "SyncFlow: records need you".into(),
            text: format!(
                "{dead} failed record(s) of {pipeline} used their last automatic try; open Failed records to fix and \
                 retry them."
            ),
        }),
        SchedulerAction::ChildrenChecked {
            pipeline,
            dead,
            checks,
            ..
        } if *dead > 0 => Some(Alert {
            title: "SyncFlow: records need you".into(),
            text: format!(
                "{dead} record(s) of {pipeline} waited {checks} checks for a parent that never came; open Failed \
                 records to see them and retry."
            ),
        }),
        _ => None,
    }
}

/// The webhook's URL, when one is configured (environment first, then the keychain).
pub fn webhook_url() -> Option<String> {
    if let Ok(url) = std::env::var(WEBHOOK_ENV) {
        return Some(url).filter(|u| !u.trim().is_empty());
    }
    match crate::secrets::keychain_get(WEBHOOK_KEYCHAIN_ENTRY) {
        Ok(url) => Some(url),
        Err(crate::secrets::SecretError::KeychainMissing(_)) => None,
        Err(e) => {
            tracing::debug!("no alert webhook from the keychain: {e}");
            None
        }
    }
}

/// POSTs the alert as Slack-compatible JSON; tried twice. Errors never carry the URL.
pub async fn post_webhook(url: &str, alert: &Alert) -> Result<(), AlertError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| AlertError::Unreachable(e.without_url().to_string()))?;
    let body = serde_json::json!({ "text": format!("*{}*\n{}", alert.title, alert.text) });
    let mut last = AlertError::Unreachable("not tried".into());
    for attempt in 0..2 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match client.post(url).json(&body).send().await {
            Ok(reply) if reply.status().is_success() => return Ok(()),
            Ok(reply) => last = AlertError::Refused(reply.status().as_u16()),
            Err(e) => last = AlertError::Unreachable(e.without_url().to_string()),
        }
    }
    Err(last)
}

/// Sends the action's alert to the webhook, if the action raises one and a webhook is configured; a failure is
/// logged (and returned), never fatal.
pub async fn announce(action: &SchedulerAction) -> Option<Result<(), AlertError>> {
    let alert = alert_for(action)?;
    let url = webhook_url()?;
    let sent = post_webhook(&url, &alert).await;
    if let Err(e) = &sent {
        tracing::warn!("alert \"{}\" not delivered: {e}", alert.title);
    }
    Some(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_and_paused_scheduled_runs_raise_alerts_and_completed_ones_do_not() {
        let ended = |status: &str| SchedulerAction::Ended {
            pipeline: "erp".into(),
            run_id: Some("r1".into()),
            status: status.into(),
            error: Some("target unreachable".into()),
            failed: 0,
        };
        let failed = alert_for(&ended("failed")).expect("an alert");
        assert!(
            failed.text.contains("erp (r1) failed: target unreachable"),
            "{}",
            failed.text
        );
        assert_eq!(alert_for(&ended("completed")), None);
        let with_failed = SchedulerAction::Ended {
            pipeline: "erp".into(),
            run_id: None,
            status: "completed".into(),
            error: None,
            failed: 3,
        };
        assert!(
            alert_for(&with_failed).is_some_and(|a| a.title.contains("completed with 3 failed"))
        );
        let paused = SchedulerAction::Paused {
            pipeline: "erp".into(),
            reason: "the window closed".into(),
        };
        assert!(alert_for(&paused).is_some());
        let started = SchedulerAction::Started {
            pipeline: "erp".into(),
            resumed: false,
            missed: 0,
        };
        assert_eq!(alert_for(&started), None);
    }
}
