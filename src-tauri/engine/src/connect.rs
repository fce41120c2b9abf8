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
    /// The business key the entity uses (its default applied).
    pub business_key: Vec<String>,
    /// Settings naming a field none of the sampled records holds (business key, parents, rowversion).
    pub missing: Vec<MissingField>,
    /// Fields every sampled record holds with a value of its own: the business keys to propose, likeliest first.
    pub key_candidates: Vec<String>,
}

/// A setting of an entity that names a field the sample does not have.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct MissingField {
    /// The entity form's field: `business_key`, `parents` or `rowversion`.
    pub setting: String,
    pub field: String,
    /// In words, with the fields to choose from.
    pub message: String,
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
        let records = page.records.into_objects();
        for record in records.iter().filter_map(|r| r.as_object()) {
            for key in record.keys() {
                if !fields.contains(key) {
                    fields.push(key.clone());
                }
            }
        }
        let key_candidates = key_candidates(&records, &fields);
        report.entities.push(EntityFound {
            name: entity.name.clone(),
            sampled: records.len() as u64,
            total: page.expected,
            business_key: entity.key_fields(),
            missing: missing_fields(entity, &fields, records.len(), &key_candidates),
            key_candidates,
            fields,
        });
    }
    Ok(report)
}

/// The entity's settings that name a field none of the `sampled` records holds (none when nothing was sampled:
/// an empty source proves nothing).
pub fn missing_fields(
    entity: &Entity,
    fields: &[String],
    sampled: usize,
    candidates: &[String],
) -> Vec<MissingField> {
    if sampled == 0 {
        return Vec::new();
    }
    let absent = |field: &str| !fields.iter().any(|f| f == field);
    let found = fields_to_choose(fields, candidates);
    let mut missing = Vec::new();
    for field in entity.key_fields().iter().filter(|f| absent(f)) {
        missing.push(MissingField {
            setting: "business_key".into(),
            field: field.clone(),
            message: format!(
                "business key \"{field}\" is in none of the {sampled} sampled records of \"{}\"; choose the key from \
                 the fields found: {found}",
                entity.name
            ),
        });
    }
    for parent in entity.parents.iter().filter(|p| absent(&p.field)) {
        missing.push(MissingField {
            setting: "parents".into(),
            field: parent.field.clone(),
            message: format!(
                "parent field \"{}\" (pointing to \"{}\") is in none of the {sampled} sampled records of \"{}\"; \
                 fields found: {found}",
                parent.field, parent.entity, entity.name
            ),
        });
    }
    if let Some(field) = entity.rowversion.as_deref().filter(|f| absent(f)) {
        missing.push(MissingField {
            setting: "rowversion".into(),
            field: field.to_owned(),
            message: format!(
                "rowversion field \"{field}\" is in none of the {sampled} sampled records of \"{}\"; fields found: \
                 {found}",
                entity.name
            ),
        });
    }
    missing
}

/// The fields found, in words: the proposed keys first, marked, then the others (the first dozen).
fn fields_to_choose(fields: &[String], candidates: &[String]) -> String {
    let mut listed: Vec<String> = candidates
        .iter()
        .map(|c| format!("{c} (a value of its own in every record)"))
        .collect();
    listed.extend(fields.iter().filter(|f| !candidates.contains(f)).cloned());
    let more = listed.len().saturating_sub(12);
    listed.truncate(12);
    let mut text = listed.join(", ");
    if more > 0 {
        text.push_str(&format!(" and {more} more"));
    }
    if text.is_empty() {
        text.push_str("none");
    }
    text
}

/// Fields every record holds with a text or number of its own (no two records share it): keys the data can
/// bear, names that look like keys (`id`, `…_id`, `…_no`, `code`, `sku`…) first.
pub fn key_candidates(records: &[serde_json::Value], fields: &[String]) -> Vec<String> {
    if records.is_empty() {
        return Vec::new();
    }
    let unique = |field: &str| {
        let mut seen = std::collections::HashSet::with_capacity(records.len());
        records.iter().all(|r| match r.get(field) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => seen.insert(s.clone()),
            Some(serde_json::Value::Number(n)) => seen.insert(n.to_string()),
            _ => false,
        })
    };
    let mut found: Vec<&String> = fields.iter().filter(|f| unique(f)).collect();
    found.sort_by_key(|f| key_likeness(f));
    found.into_iter().take(5).cloned().collect()
}

fn key_likeness(field: &str) -> u8 {
    let lower = field.to_ascii_lowercase();
    if lower == "id" || lower == "_id" {
        0
    } else if ["id", "_no", "key", "code", "sku", "number", "uuid"]
        .iter()
        .any(|end| lower.ends_with(end))
    {
        1
    } else {
        2
    }
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
    tables: &[String],
) -> Result<TargetReport, String> {
    match target {
        TargetConfig::Rest(rest) => {
            let sink = crate::sink::rest::RestSink::connect(rest, None)
                .map_err(|e| format!("target: {e}"))?;
            let Some(table) = tables.first() else {
                return Err(
                    "target: add an entity first: the test looks a record up in its resource"
                        .into(),
                );
            };
            sink.check(table)
                .await
                .map_err(|e| format!("target: {e}"))?;
            Ok(TargetReport {
                detail: format!(
                    "REST API at {}: signed in, and a lookup by {} in {}/{table} answered",
                    rest.base_url.trim_end_matches('/'),
                    rest.key_field,
                    rest.base_url.trim_end_matches('/')
                ),
                tls: Some(if rest.base_url.starts_with("https://") {
                    "HTTPS (TLS, the server's certificate verified)".into()
                } else {
                    "not encrypted (http://): use https:// unless the server is on this machine"
                        .into()
                }),
            })
        }
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
                    "target: the folder of {} does not exist; check the target's path",
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

    fn fields(names: &[&str]) -> Vec<String> {
        names.iter().map(|n| (*n).to_owned()).collect()
    }

    #[test]
    fn a_key_the_sample_lacks_is_named_with_the_fields_to_choose_from() {
        let records: Vec<serde_json::Value> = (0..20)
            .map(|i| serde_json::json!({"part_no": format!("P-{i}"), "qty": i % 3, "name": "same"}))
            .collect();
        let found = fields(&["part_no", "qty", "name"]);
        let candidates = key_candidates(&records, &found);
        assert_eq!(candidates, ["part_no"]);
        let mut entity = Entity::named("parts");
        entity.rowversion = Some("updated_at".into());
        entity.parents = vec![crate::config::ParentRef {
            field: "qty".into(),
            entity: "stock".into(),
        }];
        let missing = missing_fields(&entity, &found, records.len(), &candidates);
        assert_eq!(missing.len(), 2, "{missing:?}");
        assert_eq!(
            (missing[0].setting.as_str(), missing[0].field.as_str()),
            ("business_key", "id")
        );
        assert_eq!(
            missing[0].message,
            "business key \"id\" is in none of the 20 sampled records of \"parts\"; choose the key from the fields \
             found: part_no (a value of its own in every record), qty, name"
        );
        assert_eq!(missing[1].setting, "rowversion");
        assert!(
            missing_fields(&entity, &found, 0, &candidates).is_empty(),
            "an empty sample proves nothing"
        );
    }

    #[test]
    fn key_like_names_come_first_and_repeats_or_gaps_are_no_key() {
        let records = vec![
            serde_json::json!({"label": "a", "sku": "S1", "id": 1, "note": null}),
            serde_json::json!({"label": "b", "sku": "S2", "id": 2, "note": "x"}),
        ];
        let found = fields(&["label", "sku", "id", "note"]);
        assert_eq!(key_candidates(&records, &found), ["id", "sku", "label"]);
        let repeated = vec![serde_json::json!({"id": 1}), serde_json::json!({"id": 1})];
        assert!(key_candidates(&repeated, &fields(&["id"])).is_empty());
    }

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
        assert_eq!(kinds("target"), ["postgres", "sqlite", "rest"]);
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
