//! Secret references resolved at run time: `{ env = "VAR" }` from the environment, `{ keychain = "entry" }` from
//! the OS keychain (Secret Service on Linux). Values are held only in memory and never logged or stored.

use crate::config::Secret;

/// The keychain service under which every SyncFlow secret is stored.
pub const KEYCHAIN_SERVICE: &str = "syncflow";

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("environment variable {0} is not set for SyncFlow; set it where SyncFlow is started (the console sees only the environment it was started with), or keep the secret in the OS keychain instead")]
    EnvMissing(String),
    #[error("keychain entry \"{0}\" holds no secret; type the value into the secret's field in the console and save, or store it with `syncflow secret set {0}`")]
    KeychainMissing(String),
    #[error("the OS keychain is not reachable ({reason}); start a Secret Service (e.g. gnome-keyring) or use {{ env = \"VAR\" }} instead")]
    KeychainUnavailable { reason: String },
}

/// A secret value that does not print itself.
#[derive(Clone)]
pub struct SecretValue(String);

impl SecretValue {
    pub fn new(value: String) -> SecretValue {
        SecretValue(value)
    }
}

impl SecretValue {
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretValue(***)")
    }
}

tokio::task_local! {
    /// Keychain values typed into a form and not stored yet, by entry: a connection test made with them reads them
    /// in place of the keychain's, so a typed secret reaches the keychain only when its pipeline is saved.
    static PENDING: std::collections::BTreeMap<String, String>;
}

/// Runs `work` with `pending` keychain values in place of the stored ones (see [`PENDING`]); nothing is stored.
pub async fn with_pending<F: std::future::Future>(
    pending: std::collections::BTreeMap<String, String>,
    work: F,
) -> F::Output {
    PENDING.scope(pending, work).await
}

fn pending(entry: &str) -> Option<String> {
    PENDING
        .try_with(|values| values.get(entry).cloned())
        .ok()
        .flatten()
}

/// Reads the value a reference points to.
pub fn resolve(secret: &Secret) -> Result<SecretValue, SecretError> {
    match secret {
        Secret::Env { env } => std::env::var(env)
            .map(SecretValue)
            .map_err(|_| SecretError::EnvMissing(env.clone())),
        Secret::Keychain { keychain } => match pending(keychain) {
            Some(typed) => Ok(SecretValue(typed)),
            None => keychain_get(keychain).map(SecretValue),
        },
    }
}

fn entry(name: &str) -> Result<keyring::Entry, SecretError> {
    keyring::Entry::new(KEYCHAIN_SERVICE, name).map_err(unavailable)
}

fn unavailable(e: keyring::Error) -> SecretError {
    // The error's text never holds the secret itself, only the backend's complaint.
    SecretError::KeychainUnavailable {
        reason: e.to_string(),
    }
}

pub fn keychain_get(name: &str) -> Result<String, SecretError> {
    match entry(name)?.get_password() {
        Ok(value) => Ok(value),
        Err(keyring::Error::NoEntry) => Err(SecretError::KeychainMissing(name.to_owned())),
        Err(e) => Err(unavailable(e)),
    }
}

pub fn keychain_set(name: &str, value: &str) -> Result<(), SecretError> {
    entry(name)?.set_password(value).map_err(unavailable)
}

pub fn keychain_delete(name: &str) -> Result<(), SecretError> {
    match entry(name)?.delete_credential() {
        Ok(()) => Ok(()),
        Err(keyring::Error::NoEntry) => Err(SecretError::KeychainMissing(name.to_owned())),
        Err(e) => Err(unavailable(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secret_value_debug_hides_the_value() {
        let v = SecretValue("top-secret".into());
        assert!(!format!("{v:?}").contains("top-secret"));
    }

    #[test]
    fn missing_env_names_the_variable() {
        let err = resolve(&Secret::Env {
            env: "SYNCFLOW_TEST_SURELY_UNSET_VAR".into(),
        })
        .unwrap_err();
        assert!(err.to_string().contains("SYNCFLOW_TEST_SURELY_UNSET_VAR"));
    }

    #[tokio::test]
    async fn a_pending_value_stands_in_for_the_keychain_only_inside_its_scope() {
        let secret = Secret::Keychain {
            keychain: "never-stored-entry".into(),
        };
        let typed = [("never-stored-entry".to_owned(), "typed".to_owned())].into();
        let inside = with_pending(typed, async { resolve(&secret).map(|v| v.0) }).await;
        assert_eq!(inside.ok().as_deref(), Some("typed"));
        assert!(pending("never-stored-entry").is_none());
    }
}
