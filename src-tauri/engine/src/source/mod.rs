//! FETCH: sources yield pages of records. One module per connector.

pub mod demo;
pub mod rest;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where the next page starts; saved in checkpoints so a run resumes exactly there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PageCursor {
    Page(u64),
    Offset(u64),
}

/// One page of raw records and where the following page starts (None: this was the last).
#[derive(Debug)]
pub struct FetchedPage {
    pub records: Vec<Value>,
    pub next: Option<PageCursor>,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("cannot reach the source at {url}: {reason}; check source.base_url and that the server is running")]
    Unreachable { url: String, reason: String },
    #[error("the source refused the credentials ({status} from {url}); check the secret named by source.auth")]
    Unauthorized { url: String, status: u16 },
    #[error("the source answered {status} for {url}: {body}")]
    Status {
        url: String,
        status: u16,
        body: String,
    },
    #[error("the reply from {url} is not valid JSON: {reason}")]
    InvalidJson { url: String, reason: String },
    #[error("the reply from {url} has no array of records at {pointer}; set `records` to the JSON pointer of the list (e.g. \"/data\")")]
    NoRecords { url: String, pointer: String },
    #[error("login to {url} failed: {reason}")]
    Login { url: String, reason: String },
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}
