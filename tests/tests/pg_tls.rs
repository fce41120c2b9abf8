//! TLS to PostgreSQL, source and target: a throwaway cluster with `ssl = on`, a certificate from our own CA, and a
//! role that `pg_hba.conf` lets in only over `hostssl`. verify-full with `sslrootcert` syncs (every connection of
//! the engine encrypted, as the server logs it); verify-full without the CA fails on the certificate and says
//! which key fixes it, writing nothing; `require` encrypts without the CA; plaintext is refused for that role with
//! the key to change; Test connection says whether the connection is encrypted and verified.

use syncflow_engine::config::{PgConnection, PostgresSource, SourceConfig, SslMode};
use syncflow_tests::pg::{tls_cluster_with_parts, PgCluster};
use syncflow_tests::{run_synced, syncflow_async};

const ROLE: &str = "tlsuser";

async fn setup() -> (PgCluster, std::path::PathBuf) {
    tls_cluster_with_parts(ROLE, 1500).await
}

fn url(pg: &PgCluster, db: &str, query: &str) -> String {
    format!("postgresql://{ROLE}@localhost:{}/{db}{query}", pg.port)
}

fn pipeline(
    dir: &std::path::Path,
    name: &str,
    source_url: &str,
    target: &str,
) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"{name}\"\n[source]\nkind = \"postgres\"\nurl = \"{source_url}\"\npage_size = 500\n\
             [target]\nkind = \"postgres\"\n{target}\n[[entities]]\nname = \"parts\"\n"
        ),
    )
    .unwrap();
    file
}

async fn target_rows(pg: &PgCluster) -> Option<i64> {
    let pool = sqlx::PgPool::connect(&pg.url("dst")).await.unwrap();
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('public.parts') IS NOT NULL")
        .fetch_one(&pool)
        .await
        .unwrap();
    if !exists {
        return None;
    }
    Some(
        sqlx::query_scalar("SELECT count(*) FROM parts")
            .fetch_one(&pool)
            .await
            .unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_with_the_ca_syncs_over_tls_and_without_it_fails_on_the_certificate() {
    let (pg, ca) = setup().await;
    let ca = ca.display().to_string();
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");

    // verify-full without the CA: the system's roots do not know our CA.
    let file = pipeline(
        dir.path(),
        "untrusted",
        &url(&pg, "src", "?sslmode=verify-full"),
        &format!(
            "url = \"{}\"\nconnection = {{ sslmode = \"verify-full\" }}",
            url(&pg, "dst", "")
        ),
    );
    let out = syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(1 | 2)),
        "exit {:?}: {stderr}",
        out.status.code()
    );
    assert!(
        stderr.contains("not signed by a CA this machine trusts") && stderr.contains("sslrootcert"),
        "the error says what failed and how to fix it: {stderr}"
    );
    assert_eq!(
        target_rows(&pg).await,
        None,
        "nothing written to the target"
    );

    // The same with the CA: the source names it in its URL, the target in its connection table.
    let file = pipeline(
        dir.path(),
        "verified",
        &url(
            &pg,
            "src",
            &format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
        &format!(
            "url = \"{}\"\nconnection = {{ sslmode = \"verify-full\", sslrootcert = \"{ca}\" }}",
            url(&pg, "dst", "")
        ),
    );
    let summary = run_synced(&file, &state, &[]).await;
    assert_eq!(summary["entities"]["parts"]["inserted"], 1500, "{summary}");
    assert_eq!(target_rows(&pg).await, Some(1500));
    // Every connection the engine made as the role was encrypted (pg_hba also rejects any that is not).
    let log = pg.log();
    let engine_connections: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("connection authorized") && l.contains(&format!("user={ROLE}")))
        .collect();
    assert!(
        engine_connections.len() >= 2,
        "source and target connected: {log}"
    );
    assert!(
        engine_connections.iter().all(|l| l.contains("SSL enabled")),
        "every connection encrypted: {engine_connections:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn require_encrypts_without_the_ca_and_plaintext_is_refused_with_the_key_to_change() {
    let (pg, ca) = setup().await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = pipeline(
        dir.path(),
        "plaintext",
        &url(&pg, "src", "?sslmode=disable"),
        &format!("url = \"{}\"", url(&pg, "dst", "?sslmode=disable")),
    );
    let out = syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema"],
        &state,
        &[],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("only over TLS") && stderr.contains("source.connection.sslmode"),
        "the source is named with the key to change: {stderr}"
    );

    let file = pipeline(
        dir.path(),
        "required",
        &url(&pg, "src", "?sslmode=require"),
        &format!(
            "url = \"{}\"\nconnection = {{ sslmode = \"require\" }}",
            url(&pg, "dst", "")
        ),
    );
    let summary = run_synced(&file, &state, &[]).await;
    assert_eq!(summary["entities"]["parts"]["inserted"], 1500, "{summary}");

    // Test connection says how the source connection is protected.
    let source = |sslmode, sslrootcert: Option<String>| {
        SourceConfig::Postgres(PostgresSource {
            url: url(&pg, "src", ""),
            password: None,
            schema: "public".into(),
            page_size: 100,
            connection: PgConnection {
                sslmode: Some(sslmode),
                sslrootcert: sslrootcert.map(syncflow_engine::config::FilePath),
                ..Default::default()
            },
        })
    };
    let entity: syncflow_engine::config::Entity =
        serde_json::from_value(serde_json::json!({"name": "parts"})).unwrap();
    let report = syncflow_engine::connect::test_connection(
        &source(SslMode::Require, None),
        std::slice::from_ref(&entity),
    )
    .await
    .unwrap();
    assert_eq!(
        report.tls.as_deref(),
        Some("encrypted (TLS), server certificate not verified (sslmode require)")
    );
    let ca = ca.display().to_string();
    let report = syncflow_engine::connect::test_connection(
        &source(SslMode::VerifyFull, Some(ca)),
        &[entity],
    )
    .await
    .unwrap();
    assert_eq!(
        report.tls.as_deref(),
        Some("encrypted (TLS), server certificate and host name verified")
    );
}
