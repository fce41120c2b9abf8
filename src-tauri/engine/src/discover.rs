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
        sample.extend(page.records);
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
pub fn set_overrides(
    pipeline: &mut Pipeline,
    overrides: &crate::schema::review::Overrides,
    discovered: &[Entity],
) {
    if pipeline.entities.is_empty() {
        pipeline.entities = discovered.to_vec();
    }
    for entity in &mut pipeline.entities {
        if let Some(rules) = overrides.get(&entity.name) {
            entity.fields = rules
                .iter()
                .filter(|(_, r)| **r != crate::config::FieldOverride::default())
                .map(|(s, r)| (s.clone(), r.clone()))
                .collect();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DemoSource, FieldOverride, SourceConfig, SqliteTarget, TargetConfig};

    #[test]
    fn overrides_materialise_the_demo_entities_and_drop_empty_rules() {
        let mut p = Pipeline {
            version: 1,
            name: "Demo".into(),
            source: SourceConfig::Demo(DemoSource { rows: 10 }),
            target: TargetConfig::Sqlite(SqliteTarget {
                path: "x.db".into(),
            }),
            entities: Vec::new(),
        };
        let mut rules = std::collections::BTreeMap::new();
        rules.insert(
            "sku".to_owned(),
            FieldOverride {
                name: Some("stockKeepingUnit".into()),
                ..Default::default()
            },
        );
        rules.insert("name".to_owned(), FieldOverride::default());
        let mut overrides = crate::schema::review::Overrides::new();
        overrides.insert("products".into(), rules);
        let mut discovered = Entity::named("products");
        discovered.business_key = vec!["sku".into()];
        set_overrides(&mut p, &overrides, &[discovered]);
        assert_eq!(p.entities.len(), 1);
        assert_eq!(p.entities[0].fields.len(), 1);
        assert_eq!(
            p.entities[0].fields["sku"].name.as_deref(),
            Some("stockKeepingUnit")
        );
        assert!(p.validate().is_ok());
    }
}
