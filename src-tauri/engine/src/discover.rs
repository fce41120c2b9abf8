//! Discovery: reads the first pages of every entity (writing nothing) and learns its fields and types.

use crate::config::{Entity, Pipeline};
use crate::run::RunError;
use crate::schema::Mapping;
use crate::source::Source;
use serde_json::Value;

/// Pages read per entity for discovery.
pub const SAMPLE_PAGES: usize = 3;

/// An entity's fields as discovered, with the records they were learnt from.
#[derive(Debug, Clone)]
pub struct Discovered {
    pub entity: Entity,
    pub mapping: Mapping,
    pub sample: Vec<Value>,
}

/// The mapping editor's choices for one field: the pipeline file's override of it, and whether it is part of the
/// business key (editor-only: saving moves the marks into the entity's `business_key`, so a pipeline file never
/// holds them).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize, ts_rs::TS)]
pub struct FieldChoice {
    #[serde(flatten)]
    pub rule: crate::config::FieldOverride,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub key: Option<bool>,
}

/// The editor's choices per entity name, then per source field.
pub type Overrides =
    std::collections::BTreeMap<String, std::collections::BTreeMap<String, FieldChoice>>;

/// The entity under the editor's choices: the fields marked `key` become the business key (in `order`, the
/// discovered field order; the stored order is kept when the set is unchanged; no mark keeps the key as it is),
/// and the overrides that change something become the entity's `fields`.
pub fn choose(
    entity: &crate::config::Entity,
    choices: &std::collections::BTreeMap<String, FieldChoice>,
    order: &[String],
) -> crate::config::Entity {
    let marked = |c: &FieldChoice| c.key == Some(true);
    let mut chosen = entity.clone();
    let mut keyed: Vec<String> = order
        .iter()
        .filter(|s| choices.get(*s).is_some_and(marked))
        .cloned()
        .collect();
    keyed.extend(
        choices
            .iter()
            .filter(|(s, c)| marked(c) && !order.contains(s))
            .map(|(s, _)| s.clone()),
    );
    let current = entity.key_fields();
    let same = keyed.len() == current.len() && keyed.iter().all(|k| current.contains(k));
    if !keyed.is_empty() && !same {
        chosen.business_key = keyed;
    }
    chosen.fields = choices
        .iter()
        .map(|(s, c)| (s.clone(), c.rule.clone()))
        .filter(|(_, r)| *r != crate::config::FieldOverride::default())
        .collect();
    chosen
}

/// Discovers every entity of a pipeline.
pub async fn discover(pipeline: &Pipeline) -> Result<Vec<Discovered>, RunError> {
    pipeline.validate().map_err(RunError::Invalid)?;
    let opened = crate::run::open_source(pipeline).await?;
    let mut found = Vec::with_capacity(opened.entities.len());
    for entity in opened.entities.iter().cloned() {
        let sample = sample_records(&opened.source, &entity).await?;
        let mut mapping = Mapping::for_entity(&entity)
            .with_declared(opened.source.declared(&entity))
            .for_target(&pipeline.target);
        mapping.learn(&sample);
        found.push(Discovered {
            entity,
            mapping,
            sample,
        });
    }
    Ok(found)
}

async fn sample_records(source: &Source, entity: &Entity) -> Result<Vec<Value>, RunError> {
    let mut cursor = source.first_cursor(entity);
    let mut sample = Vec::new();
    for _ in 0..SAMPLE_PAGES {
        let page = source
            .fetch_page(entity, &cursor)
            .await
            .map_err(|e| match e {
                crate::source::SourceError::Secret(s) => RunError::Invalid(s.to_string()),
                other => RunError::Failed(format!("entity \"{}\": {other}", entity.name)),
            })?;
        sample.extend(page.records.into_objects());
        match page.next {
            Some(next) => cursor = next,
            None => break,
        }
    }
    Ok(sample)
}

/// The models of discovered entities, each with its mapping (`mappings[i]` belongs to `found[i]`).
pub fn model_inputs<'a>(
    found: &'a [Discovered],
    mappings: &'a [Mapping],
) -> Vec<crate::schema::prisma::ModelInput<'a>> {
    found
        .iter()
        .zip(mappings)
        .map(|(d, m)| crate::schema::prisma::ModelInput {
            entity: &d.entity.name,
            table: d.entity.table_name(),
            mapping: m,
        })
        .collect()
}

/// Replaces the field overrides of the named entities (empty overrides are dropped, so the file stays minimal).
/// A pipeline that lists no entities (every Bubble type, the demo) gets the discovered ones listed first.
pub fn set_overrides(pipeline: &mut Pipeline, overrides: &Overrides, discovered: &[Discovered]) {
    if pipeline.entities.is_empty() {
        pipeline.entities = discovered.iter().map(|d| d.entity.clone()).collect();
    }
    for entity in &mut pipeline.entities {
        if let Some(rules) = overrides.get(&entity.name) {
            let order: Vec<String> = discovered
                .iter()
                .find(|d| d.entity.name == entity.name)
                .map(|d| d.mapping.fields.iter().map(|f| f.source.clone()).collect())
                .unwrap_or_default();
            *entity = choose(entity, rules, &order);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DemoSource, FieldOverride, SourceConfig, SqliteTarget, TargetConfig};

    #[test]
    fn overrides_materialise_the_discovered_entities_move_key_marks_and_drop_empty_rules() {
        let mut p = Pipeline {
            version: 1,
            name: "Demo".into(),
            source: SourceConfig::Demo(DemoSource { rows: 10 }),
            target: TargetConfig::Sqlite(SqliteTarget {
                path: "x.db".into(),
            }),
            entities: Vec::new(),
            schedule: None,
            undo_runs: None,
        };
        let mut entity = Entity::named("products");
        entity.business_key = vec!["_id".into()];
        let sample = vec![serde_json::json!({"_id": "1", "sku": "a", "name": "n", "bin": "b"})];
        let discovered = Discovered {
            mapping: Mapping::infer(&sample),
            entity,
            sample,
        };
        let mut rules = std::collections::BTreeMap::new();
        let rule = |name: Option<&str>, key: bool| FieldChoice {
            rule: FieldOverride {
                name: name.map(str::to_owned),
                ..Default::default()
            },
            key: key.then_some(true),
        };
        rules.insert("sku".to_owned(), rule(Some("stockKeepingUnit"), true));
        rules.insert("bin".to_owned(), rule(None, true));
        rules.insert("name".to_owned(), FieldChoice::default());
        let mut overrides = Overrides::new();
        overrides.insert("products".into(), rules);
        set_overrides(&mut p, &overrides, &[discovered]);
        let e = &p.entities[0];
        assert_eq!(
            e.business_key,
            vec!["sku".to_owned(), "bin".to_owned()],
            "field order"
        );
        assert_eq!(e.fields.len(), 1, "{:?}", e.fields);
        assert_eq!(e.fields["sku"].name.as_deref(), Some("stockKeepingUnit"));
        assert!(
            !p.to_toml().unwrap().contains("key = true"),
            "key marks never reach the file"
        );
        assert!(p.validate().is_ok());
    }
}
