//! PostgreSQL connections, the source's and the target's alike: TLS with libpq's `sslmode`, `sslrootcert`,
//! `sslcert` and `sslkey` (from the URL or the `connection` table, which wins), the engine's statement and lock
//! timeouts, and errors that say what failed and which key fixes it.

use crate::config::{PgConnection, Secret, SslMode};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::str::FromStr;
use std::time::Duration;

/// Which end of the pipeline a connection serves; errors name the keys under it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Source,
    Target,
}

impl Side {
    pub fn key(self) -> &'static str {
        match self {
            Side::Source => "source",
            Side::Target => "target",
        }
    }
}

/// What a connection is set up with.
pub struct Plan {
    pub options: PgConnectOptions,
    pub sslmode: SslMode,
    /// How long a lost connection is retried before the run fails.
    pub reconnect: Duration,
}

const DEFAULT_RECONNECT_S: u64 = 120;
const DEFAULT_STATEMENT_TIMEOUT_S: u64 = 900;
const DEFAULT_LOCK_TIMEOUT_S: u64 = 60;

/// The connect options for `url` with `connection`'s settings and the password from its secret.
pub fn plan(
    url: &str,
    password: Option<&Secret>,
    connection: &PgConnection,
    side: Side,
    application: &str,
) -> Result<Plan, PgConnectError> {
    let key = side.key();
    let url_mode = url_param(url, "sslmode")
        .map(|m| {
            SslMode::parse(&m).ok_or_else(|| PgConnectError::Config {
                message: format!(
                    "{key}.url has sslmode={m}; use disable, allow, prefer, require, verify-ca or verify-full"
                ),
            })
        })
        .transpose()?;
    let mut options = PgConnectOptions::from_str(url).map_err(|e| PgConnectError::Config {
        message: format!(
            "{key}.url is not a PostgreSQL URL ({}); write postgresql://user@host:port/database",
            redact(&e.to_string(), url)
        ),
    })?;
    let sslmode = connection
        .sslmode
        .or(url_mode)
        .unwrap_or_else(|| default_sslmode(options.get_host()));
    options = options.ssl_mode(pg_ssl_mode(sslmode));
    if let Some(path) = &connection.sslrootcert {
        options = options.ssl_root_cert(&path.0);
    }
    if let Some(path) = &connection.sslcert {
        options = options.ssl_client_cert(&path.0);
    }
    if let Some(path) = &connection.sslkey {
        options = options.ssl_client_key(&path.0);
    }
    if let Some(secret) = password {
        options = options.password(crate::secrets::resolve(secret)?.expose());
    }
    let statement = connection
        .statement_timeout_s
        .unwrap_or(DEFAULT_STATEMENT_TIMEOUT_S);
    let lock = connection.lock_timeout_s.unwrap_or(DEFAULT_LOCK_TIMEOUT_S);
    options = options.application_name(application).options([
        ("statement_timeout", format!("{statement}s")),
        ("lock_timeout", format!("{lock}s")),
        // The server notices a client that vanished (and frees its locks) within about two minutes.
        ("tcp_keepalives_idle", "60".to_owned()),
        ("tcp_keepalives_interval", "10".to_owned()),
        ("tcp_keepalives_count", "6".to_owned()),
    ]);
    Ok(Plan {
        options,
        sslmode,
        reconnect: Duration::from_secs(connection.reconnect_s.unwrap_or(DEFAULT_RECONNECT_S)),
    })
}

/// A pool of connections to one server, with what it was set up with.
pub struct Connected {
    pub pool: sqlx::PgPool,
    pub sslmode: SslMode,
    /// How long a lost connection is retried before the run fails.
    pub reconnect: Duration,
}

/// Connects a pool of up to `max_connections` (opened as needed). Waiting for a free connection is queueing, not
/// an error, so it may last as long as a reconnect.
pub async fn connect(
    url: &str,
    password: Option<&Secret>,
    connection: &PgConnection,
    side: Side,
    application: &str,
    max_connections: u32,
) -> Result<Connected, PgConnectError> {
    let Plan {
        options,
        sslmode,
        reconnect,
    } = plan(url, password, connection, side, application)?;
    let host = options.get_host().to_owned();
    let pool = sqlx::postgres::PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(reconnect.max(Duration::from_secs(15)))
        .connect_with(options)
        .await
        .map_err(|e| PgConnectError::Connect {
            message: explain(&e, side, sslmode, &host),
        })?;
    Ok(Connected {
        pool,
        sslmode,
        reconnect,
    })
}

/// libpq's default is `prefer` everywhere, which silently goes plaintext; a server on another machine is
/// verified instead, one on this machine (loopback or a Unix socket) keeps `prefer`.
fn default_sslmode(host: &str) -> SslMode {
    let local = host.is_empty()
        || host.starts_with('/')
        || host == "localhost"
        || host
            .trim_matches(|c| c == '[' || c == ']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if local {
        SslMode::Prefer
    } else {
        SslMode::VerifyFull
    }
}

fn pg_ssl_mode(mode: SslMode) -> PgSslMode {
    match mode {
        SslMode::Disable => PgSslMode::Disable,
        SslMode::Allow => PgSslMode::Allow,
        SslMode::Prefer => PgSslMode::Prefer,
        SslMode::Require => PgSslMode::Require,
        SslMode::VerifyCa => PgSslMode::VerifyCa,
        SslMode::VerifyFull => PgSslMode::VerifyFull,
    }
}

/// A query parameter of a connection URL.
fn url_param(url: &str, name: &str) -> Option<String> {
    let parsed = reqwest::Url::parse(url).ok()?;
    let value = parsed
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned());
    value
}

/// The text with the URL (which may name a user and a database, never a password) left out.
fn redact(text: &str, url: &str) -> String {
    if url.is_empty() {
        text.to_owned()
    } else {
        text.replace(url, "<url>")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PgConnectError {
    #[error("{message}")]
    Config { message: String },
    #[error("{message}")]
    Connect { message: String },
    #[error(transparent)]
    Secret(#[from] crate::secrets::SecretError),
}

/// Explains a failed connection: what failed and the key that fixes it.
pub fn explain(e: &sqlx::Error, side: Side, sslmode: SslMode, host: &str) -> String {
    let key = side.key();
    let text = e.to_string();
    let fix = if text.contains("UnknownIssuer") || text.contains("unknown issuer") {
        format!(
            "the {key} server's TLS certificate is not signed by a CA this machine trusts; set \
             {key}.connection.sslrootcert to your provider's CA bundle (a PEM file), or sslmode = \"require\" to \
             encrypt without verifying the server"
        )
    } else if text.contains("NotValidForName") || text.contains("not valid for name") {
        format!(
            "the {key} server's TLS certificate is not issued for host \"{host}\"; connect by a name the \
             certificate names, or set {key}.connection.sslmode = \"verify-ca\" to check only the CA"
        )
    } else if text.contains("Expired") || text.contains("expired") {
        format!(
            "the {key} server's TLS certificate has expired; the server's operator must renew it"
        )
    } else if text.contains("does not support TLS") || text.contains("not support SSL") {
        format!(
            "the {key} server does not accept TLS but {key}.connection.sslmode = \"{}\" requires it; enable TLS \
             on the server, or set sslmode = \"prefer\" if plaintext is acceptable on this network",
            sslmode.as_str()
        )
    } else if text.contains("pg_hba.conf") && text.contains("no encryption") {
        format!(
            "the {key} server accepts this login only over TLS; set {key}.connection.sslmode = \"require\" or \
             \"verify-full\""
        )
    } else if text.contains("password authentication failed") {
        format!("the {key} server refused the password; check {key}.password")
    } else if text.contains("does not exist") && text.contains("database") {
        format!("{text}; check the database name in {key}.url")
    } else if text.contains("Connection refused") || text.contains("timed out") {
        format!("cannot reach the {key} server at \"{host}\" ({text}); check {key}.url and that the server runs")
    } else {
        format!("{text}; check {key}.url, that the server runs, and {key}.password")
    };
    fix
}

/// Whether an error means the connection (or the server behind it) went away, rather than that the statement
/// was refused: a restart, a failover, a network cut. The transaction in flight did not commit.
pub fn is_connection_lost(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Protocol(_) => true,
        sqlx::Error::Database(db) => db.code().is_some_and(|code| {
            // 08: connection exception; 57P01-03: the server is shutting down, crashed or still starting.
            code.starts_with("08") || matches!(code.as_ref(), "57P01" | "57P02" | "57P03")
        }),
        _ => false,
    }
}

/// Whether the server encrypts this connection (`pg_stat_ssl`).
pub async fn encrypted(pool: &sqlx::PgPool) -> Result<bool, sqlx::Error> {
    let ssl: Option<bool> =
        sqlx::query_scalar("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .fetch_optional(pool)
            .await?;
    Ok(ssl.unwrap_or(false))
}

/// What Test connection says about a connection's TLS.
pub fn describe_tls(sslmode: SslMode, encrypted: bool) -> String {
    match (encrypted, sslmode) {
        (false, _) => format!("not encrypted (sslmode {})", sslmode.as_str()),
        (true, SslMode::VerifyFull) => {
            "encrypted (TLS), server certificate and host name verified".into()
        }
        (true, SslMode::VerifyCa) => {
            "encrypted (TLS), server certificate verified (host name not checked)".into()
        }
        (true, _) => format!(
            "encrypted (TLS), server certificate not verified (sslmode {})",
            sslmode.as_str()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode_of(url: &str, connection: &PgConnection) -> SslMode {
        match plan(url, None, connection, Side::Target, "t") {
            Ok(p) => p.sslmode,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn a_remote_server_is_verified_and_a_local_one_preferred_by_default() {
        let none = PgConnection::default();
        assert_eq!(
            mode_of("postgresql://u@db.example.com/erp", &none),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode_of("postgresql://u@10.1.2.3:5432/erp", &none),
            SslMode::VerifyFull
        );
        assert_eq!(
            mode_of("postgresql://u@127.0.0.1:5432/erp", &none),
            SslMode::Prefer
        );
        assert_eq!(
            mode_of("postgresql://u@localhost/erp", &none),
            SslMode::Prefer
        );
        assert_eq!(mode_of("postgresql://u@[::1]/erp", &none), SslMode::Prefer);
    }

    #[test]
    fn the_connection_table_overrides_the_url_which_overrides_the_default() {
        let require = PgConnection {
            sslmode: Some(SslMode::Require),
            ..Default::default()
        };
        let url = "postgresql://u@db.example.com/erp?sslmode=verify-ca";
        assert_eq!(mode_of(url, &PgConnection::default()), SslMode::VerifyCa);
        assert_eq!(mode_of(url, &require), SslMode::Require);
    }

    #[test]
    fn an_unknown_sslmode_is_named_with_the_choices() {
        let err = plan(
            "postgresql://u@h/db?sslmode=strict",
            None,
            &PgConnection::default(),
            Side::Source,
            "t",
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
        assert!(err.contains("source.url has sslmode=strict"), "{err}");
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn tls_is_described_as_test_connection_shows_it() {
        assert!(describe_tls(SslMode::VerifyFull, true).contains("host name verified"));
        assert!(describe_tls(SslMode::Require, true).contains("not verified"));
        assert!(describe_tls(SslMode::Prefer, false).starts_with("not encrypted"));
    }
}
