//! A Slack-compatible incoming webhook for the alert tests.

use std::sync::Arc;

/// A Slack-compatible incoming webhook on 127.0.0.1 that keeps the JSON bodies it was sent.
pub struct Webhook {
    pub url: String,
    bodies: Arc<std::sync::Mutex<Vec<serde_json::Value>>>,
}

impl Webhook {
    pub async fn start() -> Webhook {
        let bodies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = bodies.clone();
        let app = axum::Router::new().route(
            "/hooks/T000/B000/XXXX",
            axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                let kept = kept.clone();
                async move {
                    kept.lock().unwrap().push(body);
                    "ok"
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!(
            "http://{}/hooks/T000/B000/XXXX",
            listener.local_addr().unwrap()
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Webhook { url, bodies }
    }

    pub fn bodies(&self) -> Vec<serde_json::Value> {
        self.bodies.lock().unwrap().clone()
    }
}
