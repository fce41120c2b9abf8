//! What the mapping editor and the schema review screen show: how every field is named and typed (with samples
//! and the sanitiser's reasons), the Prisma schema, the SQL that would be applied and the drift between the
//! discovered fields and the tables as they are.

use crate::config::Pipeline;
use crate::discover::Discovered;
use crate::discover::FieldChoice;
use crate::schema::evidence::Evidence;
use crate::schema::prisma::{self, EntityReport, Provider};
use crate::schema::{Mapping, SchemaChange};
use crate::sink::{Sink, SinkError};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::Path;
use ts_rs::TS;

/// Sample values shown per field.
const SAMPLES: usize = 3;

pub use crate::discover::Overrides;

/// One entity in the mapping editor.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct EntityView {
    pub report: EntityReport,
    /// A few values of each field as text, by source name.
    pub samples: BTreeMap<String, Vec<String>>,
    /// What the sampled values look like, by source name ("120 sampled: 118 whole numbers; 2 empty").
    pub evidence: BTreeMap<String, String>,
    /// Fields the analyst left out.
    pub excluded: Vec<String>,
    pub business_key: Vec<String>,
    /// Business key fields none of the sampled records holds (a run would stop at its first page).
    pub key_missing: Vec<String>,
    /// Every setting naming a field none of the sampled records holds (business key, parents, rowversion), in words.
    pub missing: Vec<crate::connect::MissingField>,
    /// Fields every sampled record holds with a value of its own: keys to propose, likeliest first.
    pub key_candidates: Vec<String>,
    /// The analyst's overrides as they stand.
    pub overrides: BTreeMap<String, FieldChoice>,
}

/// How a table differs from what the mapping wants.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct TableDrift {
    pub table: String,
    pub exists: bool,
    /// Fields with no column yet (added on Apply).
    pub added: Vec<String>,
    /// Columns no field maps to any more (kept: data is never dropped).
    pub removed: Vec<String>,
    /// Fields whose type changed (widened on Apply when lossless).
    pub retyped: Vec<String>,
    /// Whether Apply converts the table's tracking columns to the lean shape (bytea hashes, uuid run id, the key
    /// hash as primary key): a table made before that shape existed, which the engine reads as it is until then.
    /// The conversion rewrites the table.
    pub converts_tracking: bool,
    /// The SQL Apply runs for this table.
    pub statements: Vec<String>,
}

/// The schema review screen's content.
#[derive(Debug, Clone, Serialize, Deserialize, TS)]
pub struct SchemaReview {
    /// The generated schema.prisma for Prisma 7 (None while a field's name stops it).
    pub prisma: Option<String>,
    /// The prisma.config.ts Prisma 7 needs beside it (the connection URL, from `DATABASE_URL`).
    pub prisma_config: Option<String>,
    /// The same schema for Prisma 6 (the URL in its datasource), for projects still on Prisma 6.
    pub prisma_6: Option<String>,
    /// What stops the schema, by entity and field.
    pub errors: Vec<String>,
    pub tables: Vec<TableDrift>,
}

/// The editor's view of discovered entities under the given overrides (stored ones when `overrides` is None).
pub fn mapping_view(found: &[Discovered], overrides: Option<&Overrides>) -> Vec<EntityView> {
    let (entities, mappings): (Vec<_>, Vec<_>) = found.iter().map(|d| remap(d, overrides)).unzip();
    let models = crate::discover::model_inputs(found, &mappings);
    prisma::reports(&models)
        .into_iter()
        .zip(found.iter().zip(mappings.iter().zip(&entities)))
        .map(|(report, (d, (m, entity)))| {
            let (missing, key_candidates) = field_checks(entity, d);
            EntityView {
                samples: samples(&d.sample, &report),
                evidence: report
                    .fields
                    .iter()
                    .map(|f| {
                        (
                            f.source.clone(),
                            Evidence::of(d.sample.iter().map(|r| r.get(&f.source))).describe(),
                        )
                    })
                    .collect(),
                excluded: m
                    .rules
                    .iter()
                    .filter(|(_, r)| r.exclude)
                    .map(|(s, _)| s.clone())
                    .collect(),
                key_missing: missing
                    .iter()
                    .filter(|m| m.setting == "business_key")
                    .map(|m| m.field.clone())
                    .collect(),
                missing,
                key_candidates,
                business_key: entity.key_fields(),
                overrides: match overrides.and_then(|o| o.get(&d.entity.name)) {
                    Some(sent) => sent.clone(),
                    None => with_key_marks(&m.rules, entity, d),
                },
                report,
            }
        })
        .collect()
}

/// The entity's settings naming a field none of the sampled records holds, and the fields that could be its key —
/// once per view (it runs on every edit the mapping editor previews).
fn field_checks(
    entity: &crate::config::Entity,
    d: &Discovered,
) -> (Vec<crate::connect::MissingField>, Vec<String>) {
    let fields: Vec<String> = d.mapping.fields.iter().map(|f| f.source.clone()).collect();
    let candidates = crate::connect::key_candidates(&d.sample, &fields);
    let missing = crate::connect::missing_fields(entity, &fields, d.sample.len(), &candidates);
    (missing, candidates)
}

/// The stored rules as the editor's choices, with the business key marked on the fields that hold it. The editor
/// toggles these marks and the engine reads them back as the key (`discover::choose`): one rule on both sides. A
/// key field the source does not have (the default `id` of a source without one) gets no mark, so marking a field
/// that exists makes it the key instead of adding to a key that cannot work.
fn with_key_marks(
    rules: &BTreeMap<String, crate::config::FieldOverride>,
    entity: &crate::config::Entity,
    d: &Discovered,
) -> BTreeMap<String, FieldChoice> {
    let mut marked: BTreeMap<String, FieldChoice> = rules
        .iter()
        .map(|(s, rule)| {
            let choice = FieldChoice {
                rule: rule.clone(),
                key: None,
            };
            (s.clone(), choice)
        })
        .collect();
    for key in entity.key_fields() {
        if d.mapping.fields.iter().any(|f| f.source == key) {
            marked.entry(key).or_default().key = Some(true);
        }
    }
    marked
}

/// Mappings re-learnt from the discovered samples under the overrides.
fn remapped(found: &[Discovered], overrides: Option<&Overrides>) -> Vec<Mapping> {
    found.iter().map(|d| remap(d, overrides).1).collect()
}

/// One entity and its mapping under the overrides (the editor's key choice included).
fn remap(d: &Discovered, overrides: Option<&Overrides>) -> (crate::config::Entity, Mapping) {
    let entity = match overrides.and_then(|o| o.get(&d.entity.name)) {
        Some(rules) => {
            let order: Vec<String> = d.mapping.fields.iter().map(|f| f.source.clone()).collect();
            let mut entity = crate::discover::choose(&d.entity, rules, &order);
            // The editor's own view keeps every rule it sent (empty ones included), so they round-trip.
            entity.fields = rules
                .iter()
                .map(|(s, c)| (s.clone(), c.rule.clone()))
                .collect();
            entity
        }
        None => d.entity.clone(),
    };
    let mut mapping = Mapping::for_entity(&entity)
        .with_declared(d.mapping.declared.clone())
        .with_fold_case(d.mapping.fold_case);
    mapping.learn(&d.sample);
    (entity, mapping)
}

fn samples(records: &[Value], report: &EntityReport) -> BTreeMap<String, Vec<String>> {
    report
        .fields
        .iter()
        .map(|f| {
            let values = records
                .iter()
                .filter_map(|r| r.get(&f.source))
                .filter(|v| !v.is_null())
                .take(SAMPLES)
                .map(|v| match v {
                    Value::String(s) => s.chars().take(80).collect(),
                    other => other.to_string().chars().take(80).collect(),
                })
                .collect();
            (f.source.clone(), values)
        })
        .collect()
}

/// Refuses a business-key change for a table that already holds rows: their key hashes were computed from the old
/// key, so the next sync would add every record again beside them.
pub async fn check_key_changes(
    before: &Pipeline,
    after: &Pipeline,
    found: &[Discovered],
    base_dir: &Path,
) -> Result<(), String> {
    let mut sink: Option<Sink> = None;
    for entity in &after.entities {
        let old = before
            .entities
            .iter()
            .chain(found.iter().map(|d| &d.entity))
            .find(|e| e.name == entity.name)
            .map(|e| e.key_fields());
        let Some(old) = old.filter(|old| *old != entity.key_fields()) else {
            continue;
        };
        if sink.is_none() {
            sink = Some(
                Sink::connect(&after.target, base_dir)
                    .await
                    .map_err(|e| e.to_string())?,
            );
        }
        let Some(target) = sink.as_ref() else {
            continue;
        };
        let table = entity.table_name();
        let exists = target
            .columns(table)
            .await
            .map_err(|e| e.to_string())?
            .is_some();
        if exists && !target.is_empty(table).await.map_err(|e| e.to_string())? {
            return Err(format!(
                "entity \"{}\": table \"{table}\" already holds rows identified by {}; a new business key would \
                 add every record again beside them. Keep the key, or sync into a new (or emptied) table",
                entity.name,
                old.iter().map(|k| format!("\"{k}\"")).collect::<Vec<_>>().join(" + ")
            ));
        }
    }
    Ok(())
}

/// Generates the schema and compares each table with the mapping (connects to the target, writes nothing).
pub async fn review(
    pipeline: &Pipeline,
    found: &[Discovered],
    base_dir: &Path,
) -> Result<SchemaReview, SinkError> {
    let mappings = remapped(found, None);
    let models = crate::discover::model_inputs(found, &mappings);
    let provider = Provider::of(&pipeline.target);
    let (prisma, errors) = match prisma::generate(&models, provider) {
        Ok(text) => (Some(text), Vec::new()),
        Err(errors) => (None, errors),
    };
    let prisma_6 = prisma::generate_for(&models, provider, prisma::PrismaVersion::V6).ok();
    let prisma_config = prisma.as_ref().map(|_| prisma::config_ts("schema.prisma"));
    let sink = Sink::connect(&pipeline.target, base_dir).await?;
    let mut tables = Vec::with_capacity(found.len());
    for (d, mapping) in found.iter().zip(&mappings) {
        tables.push(drift(&sink, d.entity.table_name(), mapping).await?);
    }
    Ok(SchemaReview {
        prisma,
        prisma_config,
        prisma_6,
        errors,
        tables,
    })
}

async fn drift(sink: &Sink, table: &str, mapping: &Mapping) -> Result<TableDrift, SinkError> {
    if sink.schemaless() {
        // A REST resource takes the fields as they come: nothing to add, widen or apply.
        return Ok(TableDrift {
            table: table.to_owned(),
            exists: true,
            ..Default::default()
        });
    }
    let Some(columns) = sink.columns(table).await? else {
        let statements = sink.ddl(table, mapping, &SchemaChange::default(), false);
        let added = mapping.fields.iter().map(|f| f.source.clone()).collect();
        return Ok(TableDrift {
            table: table.to_owned(),
            exists: false,
            added,
            statements,
            ..Default::default()
        });
    };
    let mut change = SchemaChange::default();
    for f in &mapping.fields {
        match columns.iter().find(|(c, _)| *c == f.column) {
            None => change.added.push(f.source.clone()),
            Some((_, ty)) if *ty != f.ty && widens(*ty, f.ty) => {
                change.retyped.push(f.source.clone());
                change.was.insert(f.source.clone(), *ty);
            }
            Some(_) => {}
        }
    }
    let removed = columns
        .iter()
        .filter(|(c, _)| !mapping.fields.iter().any(|f| &f.column == c))
        .map(|(c, _)| c.clone())
        .collect();
    let mut statements = sink.ddl(table, mapping, &change, true);
    let conversion = sink.lean_conversion(table).await?;
    let converts_tracking = !conversion.is_empty();
    statements.extend(conversion);
    Ok(TableDrift {
        table: table.to_owned(),
        exists: true,
        added: change.added,
        removed,
        retyped: change.retyped,
        converts_tracking,
        statements,
    })
}

use crate::schema::widens;

/// Applies every table's statements in one transaction; returns the review afterwards.
pub async fn apply(
    pipeline: &Pipeline,
    found: &[Discovered],
    base_dir: &Path,
) -> Result<SchemaReview, SinkError> {
    let before = review(pipeline, found, base_dir).await?;
    if let Some(problem) = before.errors.first() {
        return Err(SinkError::Write {
            table: "schema".into(),
            message: format!("not applied: {problem}"),
        });
    }
    let statements: Vec<String> = before
        .tables
        .iter()
        .flat_map(|t| t.statements.clone())
        .collect();
    if !statements.is_empty() {
        let sink = Sink::connect(&pipeline.target, base_dir).await?;
        let tables: Vec<&str> = before.tables.iter().map(|t| t.table.as_str()).collect();
        sink.apply(&tables.join(", "), &statements).await?;
        // Runs that alter no table (the console's, the scheduler's) can then keep a page memo.
        sink.count_changes(pipeline).await;
    }
    review(pipeline, found, base_dir).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::ColumnType;

    #[test]
    fn the_editor_sees_the_key_marked_on_fields_that_exist_only() {
        use crate::config::Entity;
        let sample = vec![serde_json::json!({"sku": "a", "name": "n"})];
        let view_of = |key: &[&str]| {
            let mut entity = Entity::named("products");
            entity.business_key = key.iter().map(|k| (*k).to_owned()).collect();
            let found = Discovered {
                mapping: Mapping::infer(&sample),
                entity,
                sample: sample.clone(),
            };
            mapping_view(&[found], None).remove(0)
        };
        let marked = |v: &EntityView| -> Vec<String> {
            v.overrides
                .iter()
                .filter(|(_, r)| r.key == Some(true))
                .map(|(s, _)| s.clone())
                .collect()
        };
        assert_eq!(marked(&view_of(&["sku"])), vec!["sku".to_owned()]);
        // The default key `id` is not in the data: nothing is marked, so marking `sku` makes it the key; the view
        // says so and proposes the fields with a value of their own.
        let default = view_of(&[]);
        assert_eq!(default.business_key, vec!["id".to_owned()]);
        assert!(marked(&default).is_empty());
        assert_eq!(default.key_missing, vec!["id".to_owned()]);
        assert_eq!(
            default.key_candidates,
            vec!["sku".to_owned(), "name".to_owned()]
        );
        assert!(view_of(&["sku"]).key_missing.is_empty());
        assert_eq!(default.missing.len(), 1);
        assert!(default.missing[0]
            .message
            .contains("choose the key from the fields found: sku"));
        let mut choices = BTreeMap::new();
        choices.insert(
            "sku".to_owned(),
            FieldChoice {
                key: Some(true),
                ..Default::default()
            },
        );
        let order = vec!["sku".to_owned(), "name".to_owned()];
        assert_eq!(
            crate::discover::choose(&Entity::named("products"), &choices, &order).business_key,
            vec!["sku".to_owned()]
        );
    }

    #[tokio::test]
    async fn a_new_business_key_is_refused_for_a_table_holding_rows() {
        use crate::config::{DemoSource, Entity, SourceConfig, SqliteTarget, TargetConfig};
        let dir = tempfile::tempdir().unwrap();
        let mut entity = Entity::named("invoice");
        entity.business_key = vec!["_id".into()];
        let before = Pipeline {
            version: 1,
            name: "p".into(),
            source: SourceConfig::Demo(DemoSource { rows: 1 }),
            target: TargetConfig::Sqlite(SqliteTarget {
                path: "t.db".into(),
            }),
            entities: vec![entity.clone()],
            schedule: None,
            undo_runs: None,
        };
        let mut after = before.clone();
        after.entities[0].business_key = vec!["Invoice No".into()];
        check_key_changes(&before, &after, &[], dir.path())
            .await
            .expect("no table yet: the key may change");
        let pool = sqlx::SqlitePool::connect(&format!(
            "sqlite://{}?mode=rwc",
            dir.path().join("t.db").display()
        ))
        .await
        .unwrap();
        let columns: Vec<String> = [crate::schema::ROW_ID_COLUMN, "_id"]
            .iter()
            .chain(crate::schema::TRACKING_COLUMNS.iter())
            .map(|c| format!("\"{c}\" TEXT"))
            .collect();
        sqlx::query(&format!("CREATE TABLE invoice ({})", columns.join(", ")))
            .execute(&pool)
            .await
            .unwrap();
        check_key_changes(&before, &after, &[], dir.path())
            .await
            .expect("an empty table may be re-keyed");
        sqlx::query("INSERT INTO invoice (\"_id\") VALUES ('1x1')")
            .execute(&pool)
            .await
            .unwrap();
        let err = check_key_changes(&before, &after, &[], dir.path())
            .await
            .unwrap_err();
        assert!(
            err.contains("already holds rows") && err.contains("\"_id\""),
            "{err}"
        );
        check_key_changes(&before, &before, &[], dir.path())
            .await
            .expect("an unchanged key is fine");
    }

    #[test]
    fn only_lossless_type_changes_are_applied() {
        assert!(widens(ColumnType::Integer, ColumnType::Numeric));
        assert!(widens(ColumnType::Numeric, ColumnType::Text));
        assert!(!widens(ColumnType::Text, ColumnType::Integer));
        assert!(!widens(ColumnType::Json, ColumnType::Text));
    }
}
