//! Connector setup: the JSON Schema the console renders its forms from (derived from the config types, so a new
//! connector needs no new form code), and the connection test that reports what a source holds — or exactly why
//! it cannot be read.

use crate::config::{Entity, Pipeline, SourceConfig, SqliteTarget, TargetConfig};
use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The forms' schemas: `{"source": …, "target": …, "entity": …}` (JSON Schema draft 7), and `kinds_naming_entities`:
/// the source kinds whose form asks for entities (the engine requires them for these, and only these).
pub fn connector_schema() -> serde_json::Value {
    serde_json::json!({
        "source": schemars::schema_for!(SourceConfig),
        "target": schemars::schema_for!(TargetConfig),
        "entity": schemars::schema_for!(Entity),
        "kinds_naming_entities": SourceConfig::KINDS_NAMING_ENTITIES,
    })
}

/// What a connection test found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct ConnectionReport {
    pub entities: Vec<EntityFound>,
    /// How the connection is protected, for a database source (e.g. "encrypted (TLS), server certificate and
    /// host name verified").
    pub tls: Option<String>,
}

/// One entity (Bubble type, REST resource) as the test found it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EntityFound {
    pub name: String,
    /// Records on the first page.
    #[ts(type = "number")]
    pub sampled: u64,
    /// Records in all, when the source says.
    #[ts(type = "number | null")]
    pub total: Option<u64>,
    /// Field names seen (declared by the source, or in the first page's records).
    pub fields: Vec<String>,
}

/// Connects to a source and reads the first page of every entity (writing nothing anywhere).
pub async fn test_connection(
    source: &SourceConfig,
    entities: &[Entity],
) -> Result<ConnectionReport, String> {
    let probe = Pipeline {
        version: 1,
        name: "connection-test".into(),
        source: source.clone(),
        // Never opened: a test reads the source only.
        target: TargetConfig::Sqlite(SqliteTarget {
            path: "unused.db".into(),
        }),
        entities: entities.to_vec(),
        schedule: None,
        undo_runs: None,
    };
    probe.validate()?;
    let opened = crate::run::open_source(&probe)
        .await
        .map_err(|e| e.to_string())?;
    let mut report = ConnectionReport::default();
    if let crate::source::Source::Postgres(pg) = &opened.source {
        report.tls = Some(pg.tls().await.map_err(|e| e.to_string())?);
    }
    for entity in &opened.entities {
        let first = opened.source.first_cursor(entity);
        let page = opened
            .source
            .fetch_page(entity, &first)
            .await
            .map_err(|e| format!("entity \"{}\": {e}", entity.name))?;
        let mut fields: Vec<String> = opened
            .source
            .declared(entity)
            .into_iter()
            .map(|d| d.source)
            .collect();
        for record in page.records.iter().filter_map(|r| r.as_object()) {
            for key in record.keys() {
                if !fields.contains(key) {
                    fields.push(key.clone());
                }
            }
        }
        report.entities.push(EntityFound {
            name: entity.name.clone(),
            sampled: page.records.len() as u64,
            total: page.expected,
            fields,
        });
    }
    Ok(report)
}

/// What a target connection test found.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TargetReport {
    /// What was reached, e.g. "PostgreSQL 15.8, database erp, schema public (tables can be created)".
    pub detail: String,
    /// How the connection is protected, for a database target.
    pub tls: Option<String>,
}

/// Connects to a target and says what it reached and how the connection is protected (writing nothing).
pub async fn test_target(
    target: &TargetConfig,
    base_dir: &std::path::Path,
) -> Result<TargetReport, String> {
    match target {
        TargetConfig::Postgres(pg) => {
            let connected = crate::pgconn::connect(
                &pg.url,
                pg.password.as_ref(),
                &pg.connection,
                crate::pgconn::Side::Target,
                "syncflow",
                1,
            )
            .await
            .map_err(|e| format!("target: {e}"))?;
            let (pool, sslmode) = (connected.pool, connected.sslmode);
            let facts: (String, String, bool) = sqlx::query_as(
                "SELECT current_setting('server_version'), current_database()::text,
                        coalesce(has_schema_privilege($1, 'CREATE'), false)",
            )
            .bind(&pg.schema)
            .fetch_one(&pool)
            .await
            .map_err(|e| format!("target: {e}"))?;
            let encrypted = crate::pgconn::encrypted(&pool)
                .await
                .map_err(|e| format!("target: {e}"))?;
            pool.close().await;
            let (version, database, can_create) = facts;
            Ok(TargetReport {
                detail: format!(
                    "PostgreSQL {version}, database {database}, schema {} ({})",
                    pg.schema,
                    if can_create {
                        "tables can be created"
                    } else {
                        "no CREATE right: the tables must exist already"
                    }
                ),
                tls: Some(crate::pgconn::describe_tls(sslmode, encrypted)),
            })
        }
        TargetConfig::Sqlite(lite) => {
            let path = base_dir.join(&lite.path);
            let folder = path.parent().unwrap_or(base_dir);
            let detail = if path.exists() {
                format!("SQLite file {} (exists)", path.display())
            } else if folder.is_dir() {
                format!("SQLite file {} (created on the first run)", path.display())
            } else {
                return Err(format!(
                    "target: the folder of {} does not exist; check target.path",
                    path.display()
                ));
            };
            Ok(TargetReport { detail, tls: None })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_offers_every_source_and_target_kind() {
        let schema = connector_schema();
        let kinds = |part: &str| -> Vec<String> {
            schema[part]["oneOf"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| {
                    v["properties"]["kind"]["enum"][0]
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(kinds("source"), ["rest", "bubble", "postgres", "demo"]);
        assert_eq!(kinds("target"), ["postgres", "sqlite"]);
        assert!(schema["source"]["definitions"]["Secret"].is_object());
        // Path fields are named, so the form can offer a file picker for them.
        assert!(schema["target"]["definitions"]["FilePath"].is_object());
        assert_eq!(
            schema["target"]["definitions"]["PgConnection"]["properties"]["sslrootcert"]["anyOf"]
                [0]["$ref"],
            "#/definitions/FilePath"
        );
    }

    #[tokio::test]
    async fn a_bubble_app_reports_its_types_and_counts() {
        use crate::emulator::app::{sample_app, Scale};
        use crate::emulator::bubble::{BubbleEmulator, Faults};
        let emulator =
            BubbleEmulator::start(sample_app(Scale::total(500), true), Faults::default())
                .await
                .unwrap();
        let source = SourceConfig::Bubble(crate::config::BubbleSource {
            base_url: emulator.base_url.clone(),
            token: None,
            concurrency: 1,
            requests_per_minute: None,
            max_page_bytes: None,
            cursor_ceiling: 50_000,
        });
        let report = test_connection(&source, &[]).await.unwrap();
        let invoice = report
            .entities
            .iter()
            .find(|e| e.name == "invoice")
            .unwrap();
        assert_eq!((invoice.sampled, invoice.total), (100, Some(200)));
        assert!(invoice.fields.contains(&"2nd Payment %".to_owned()));
        let bad = SourceConfig::Bubble(crate::config::BubbleSource {
            base_url: format!(
                "{}/nope/api/1.1",
                emulator.base_url.trim_end_matches("/api/1.1")
            ),
            token: None,
            concurrency: 1,
            requests_per_minute: None,
            max_page_bytes: None,
            cursor_ceiling: 50_000,
        });
        let err = test_connection(&bad, &[]).await.unwrap_err();
        assert!(
            err.contains("404") && err.contains("/nope/api/1.1/meta"),
            "{err}"
        );
    }
}
