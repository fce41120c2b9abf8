//! The one error type of the use cases: a kind the faces act on (the console's Run button shows "busy", the CLI
//! picks its exit code) and a message for the person reading it.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// What kind of failure it is — what the face does about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The pipeline is being run elsewhere (the message names the holder); try again when it ends.
    Busy,
    /// Bad input: the pipeline, a form field, a secret reference, an argument.
    InvalidInput,
    /// The pipeline, run, record or conflict named does not exist.
    NotFound,
    /// The source could not be reached or read.
    Source,
    /// The target could not be reached or written.
    Target,
    /// The run stopped at a pause request (it resumes where it stopped).
    Paused,
    /// The operation was cancelled.
    Cancelled,
    /// The operation could not be carried out (the state database, the keychain, a failed run).
    Failed,
    /// A run stopped before a change of the target's schema nobody applied: review the schema, apply it, run again
    /// (the run resumes where it stopped).
    NeedsReview,
    /// Something of that name exists already; the message says how to replace it.
    Exists,
}

/// A use case's error: `{kind, message}` across the IPC boundary, an exit code and a line on stderr in the CLI.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    pub kind: ErrorKind,
    pub message: String,
    /// The form field the error is about, as the console's form names it (`entities.0.business_key`), so the
    /// console shows the message beside that field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub field: Option<String>,
}

impl AppError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> AppError {
        AppError {
            kind,
            message: message.into(),
            field: None,
        }
    }

    /// The same error, about the form field at `path`.
    pub fn at_field(mut self, path: impl Into<String>) -> AppError {
        self.field = Some(path.into());
        self
    }

    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::InvalidInput, message)
    }

    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(ErrorKind::NotFound, message)
    }

    pub fn failed(message: impl std::fmt::Display) -> AppError {
        AppError::new(ErrorKind::Failed, message.to_string())
    }

    /// The CLI's exit code for this error, in one place. `syncflow run` exits 1 when the run failed; every other
    /// command (`failed retry` included, as the CLI's contract says) exits 2 for every error. Busy is 4 and a pause
    /// 3 wherever they occur.
    pub fn exit_code(&self, is_run: bool) -> u8 {
        match self.kind {
            ErrorKind::Busy => 4,
            ErrorKind::Paused => 3,
            ErrorKind::InvalidInput
            | ErrorKind::NotFound
            | ErrorKind::NeedsReview
            | ErrorKind::Exists => 2,
            ErrorKind::Source | ErrorKind::Target | ErrorKind::Failed | ErrorKind::Cancelled => {
                if is_run {
                    1
                } else {
                    2
                }
            }
        }
    }
}

impl From<crate::run::RunError> for AppError {
    fn from(e: crate::run::RunError) -> AppError {
        use crate::run::RunError;
        let kind = match &e {
            RunError::Invalid(_) => ErrorKind::InvalidInput,
            RunError::Failed(_) => ErrorKind::Failed,
            RunError::Busy(_) => ErrorKind::Busy,
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<crate::store::StoreError> for AppError {
    fn from(e: crate::store::StoreError) -> AppError {
        use crate::store::StoreError;
        let kind = match &e {
            StoreError::NoPipeline(_) => ErrorKind::NotFound,
            _ => ErrorKind::Failed,
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<crate::jobs::JobError> for AppError {
    fn from(e: crate::jobs::JobError) -> AppError {
        use crate::jobs::JobError;
        match e {
            JobError::Busy(_) => AppError::new(ErrorKind::Busy, e.to_string()),
            JobError::NotRunning(_) => AppError::not_found(e.to_string()),
            JobError::Run(run) => run.into(),
        }
    }
}

impl From<crate::conflicts::ConflictError> for AppError {
    fn from(e: crate::conflicts::ConflictError) -> AppError {
        use crate::conflicts::ConflictError;
        let kind = match &e {
            ConflictError::NotFound(_) => ErrorKind::NotFound,
            ConflictError::Resolved(..)
            | ConflictError::UnknownField { .. }
            | ConflictError::NotPostgres => ErrorKind::InvalidInput,
            _ => ErrorKind::Target,
        };
        AppError::new(kind, e.to_string())
    }
}

impl From<crate::secrets::SecretError> for AppError {
    fn from(e: crate::secrets::SecretError) -> AppError {
        AppError::failed(e)
    }
}

impl From<crate::config::ConfigError> for AppError {
    fn from(e: crate::config::ConfigError) -> AppError {
        AppError::invalid(e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_cli_contract() {
        let e = |kind| AppError::new(kind, "x");
        assert_eq!(e(ErrorKind::Busy).exit_code(true), 4);
        assert_eq!(e(ErrorKind::Busy).exit_code(false), 4);
        assert_eq!(e(ErrorKind::Paused).exit_code(true), 3);
        assert_eq!(e(ErrorKind::InvalidInput).exit_code(true), 2);
        assert_eq!(e(ErrorKind::NotFound).exit_code(false), 2);
        assert_eq!(e(ErrorKind::Target).exit_code(true), 1);
        assert_eq!(e(ErrorKind::Target).exit_code(false), 2);
    }

    #[test]
    fn crosses_the_boundary_as_kind_and_message() {
        let json = serde_json::to_value(AppError::new(ErrorKind::Busy, "held by the CLI")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"kind": "busy", "message": "held by the CLI"})
        );
    }
}
