//! Discovery: reads the first pages of every entity (writing nothing) and learns its fields and types.

use crate::config::{Entity, Pipeline};
use crate::run::RunError;
use crate::schema::Mapping;
use crate::source::rest::RestClient;
use serde_json::Value;

/// Pages read per entity for discovery.
pub const SAMPLE_PAGES: usize = 3;

/// An entity's fields as discovered, with the records they were learnt from.
pub struct Discovered {
    pub entity: Entity,
    pub mapping: Mapping,
    pub sample: Vec<Value>,
}

/// Discovers every entity of a pipeline.
pub async fn discover(pipeline: &Pipeline) -> Result<Vec<Discovered>, RunError> {
    pipeline.validate().map_err(RunError::Invalid)?;
    let (source, entities, _demo) = crate::run::open_source(pipeline).await?;
    let client = RestClient::new(&source).map_err(|e| RunError::Failed(e.to_string()))?;
    let mut found = Vec::with_capacity(entities.len());
    for entity in entities {
        let sample = sample_records(&client, &entity).await?;
        let mapping = Mapping::infer(&sample);
        found.push(Discovered {
            entity,
            mapping,
            sample,
        });
    }
    Ok(found)
}

async fn sample_records(client: &RestClient, entity: &Entity) -> Result<Vec<Value>, RunError> {
    let mut cursor = RestClient::first_cursor(entity);
    let mut sample = Vec::new();
    for _ in 0..SAMPLE_PAGES {
        let page = client
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
