//! RESOLVE's parents (the stage's other half, rows edited in the target, is `sink::postgres::conflicts`): parent/
//! child order, and children whose parent is not in the target yet.
//!
//! Entities run parents first, so a child's parent is normally in the target before the child. A child whose
//! parent is missing (created at the source after its entity was read, failed, or deleted) is held back from the
//! target and waits in the state DB's `pending_children` queue; it lands once the parent is there (see
//! `run::pending`). A parent is found by its BK_HASH: the reference value is hashed as the parent's single
//! business-key field, exactly as IDENTITY hashes the parent's own key, so `42` and `"42"` find the same parent.

use crate::config::Entity;
use crate::identity;
use crate::schema::Mapping;
use crate::sink::{PreparedRow, Sink, SinkError};
use serde_json::Value;
use std::collections::HashSet;

/// Orders entities so that each comes after the entities it names as parents; keeps file order otherwise.
pub fn parents_first(entities: &[Entity]) -> Result<Vec<&Entity>, String> {
    let mut ordered: Vec<&Entity> = Vec::with_capacity(entities.len());
    let mut remaining: Vec<&Entity> = entities.iter().collect();
    while !remaining.is_empty() {
        let ready = remaining.iter().position(|e| {
            e.parents.iter().all(|p| {
                p.entity == e.name
                    || ordered.iter().any(|o| o.name == p.entity)
                    || !entities.iter().any(|x| x.name == p.entity)
            })
        });
        match ready {
            Some(i) => ordered.push(remaining.remove(i)),
            None => {
                let names: Vec<&str> = remaining.iter().map(|e| e.name.as_str()).collect();
                return Err(format!("entities {names:?} name each other as parents in a cycle; remove one `parents` entry"));
            }
        }
    }
    Ok(ordered)
}

/// Groups entities into levels: each level's entities depend only on earlier levels, so a level's entities can
/// run side by side.
pub fn levels<'a>(ordered: &[&'a Entity]) -> Vec<Vec<&'a Entity>> {
    let mut levels: Vec<Vec<&'a Entity>> = Vec::new();
    let mut level_of: Vec<(&str, usize)> = Vec::new();
    for entity in ordered {
        let level = entity
            .parents
            .iter()
            .filter(|p| p.entity != entity.name)
            .filter_map(|p| level_of.iter().find(|(n, _)| *n == p.entity))
            .map(|(_, l)| l + 1)
            .max()
            .unwrap_or(0);
        level_of.push((&entity.name, level));
        if levels.len() <= level {
            levels.resize_with(level + 1, Vec::new);
        }
        levels[level].push(entity);
    }
    levels
}

/// One parent reference of an entity, as RESOLVE checks it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParentLink {
    /// The child's field holding the reference (source name).
    pub field: String,
    pub parent_entity: String,
    pub parent_table: String,
    /// The parent's business-key field (source name).
    pub parent_key: String,
    /// The entity refers to itself (a manager who is an employee): the same batch may hold the parent.
    pub self_ref: bool,
}

/// The parent references of `entity` that name an entity of the pipeline (others are not checked).
pub fn parent_links(entity: &Entity, all: &[Entity]) -> Result<Vec<ParentLink>, String> {
    let mut links = Vec::new();
    for reference in &entity.parents {
        let Some(parent) = all.iter().find(|e| e.name == reference.entity) else {
            continue;
        };
        let key = parent.key_fields();
        let [parent_key] = key.as_slice() else {
            return Err(format!(
                "entity \"{}\": its parent \"{}\" has a business key of {} fields ({}); a parent reference needs \
                 a parent identified by one field — give \"{}\" a single-field business_key",
                entity.name,
                parent.name,
                key.len(),
                key.join(", "),
                parent.name
            ));
        };
        links.push(ParentLink {
            field: reference.field.clone(),
            parent_entity: parent.name.clone(),
            parent_table: parent.table_name().to_owned(),
            parent_key: parent_key.clone(),
            self_ref: parent.name == entity.name,
        });
    }
    Ok(links)
}

/// A child held back because a parent is missing.
#[derive(Debug, Clone, PartialEq)]
pub struct Held {
    /// The record's position in its page.
    pub record_index: u32,
    pub key_hash: String,
    pub field: String,
    pub parent_entity: String,
    /// The missing parent's key as the child holds it.
    pub parent_key: Value,
}

/// The parents' BK_HASHes a reference value names (a list of references names several), with the values.
fn referenced(link: &ParentLink, value: &Value) -> Vec<(String, Value)> {
    let one = |v: &Value| -> Option<(String, Value)> {
        let key = match v {
            Value::Null => return None,
            Value::String(s) if s.is_empty() => return None,
            Value::Number(_) | Value::Bool(_) => Value::String(v.to_string()),
            other => other.clone(),
        };
        let canonical = identity::canonical([(link.parent_key.as_str(), &key)]);
        Some((identity::key_hash(&canonical), v.clone()))
    };
    match value {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        scalar => one(scalar).into_iter().collect(),
    }
}

/// Holds back the rows whose parent the target does not have; returns the rows to write and those held.
pub async fn hold_orphans(
    sink: &Sink,
    links: &[ParentLink],
    mapping: &Mapping,
    rows: Vec<PreparedRow>,
) -> Result<(Vec<PreparedRow>, Vec<Held>), SinkError> {
    if links.is_empty() || rows.is_empty() {
        return Ok((rows, Vec::new()));
    }
    let mut present: Vec<HashSet<String>> = Vec::with_capacity(links.len());
    for link in links {
        let Some(index) = mapping.fields.iter().position(|f| f.source == link.field) else {
            present.push(HashSet::new());
            continue;
        };
        let mut wanted: Vec<String> = rows
            .iter()
            .filter_map(|r| r.values.get(index))
            .flat_map(|v| referenced(link, v))
            .map(|(hash, _)| hash)
            .collect();
        wanted.sort_unstable();
        wanted.dedup();
        let mut found = sink.existing_keys(&link.parent_table, &wanted).await?;
        if link.self_ref {
            found.extend(rows.iter().map(|r| r.key_hash.clone()));
        }
        present.push(found);
    }
    Ok(split_orphans(rows, mapping, links, &present))
}

/// Splits rows into those whose every referenced parent is `present` (per link) and those held back.
pub fn split_orphans(
    rows: Vec<PreparedRow>,
    mapping: &Mapping,
    links: &[ParentLink],
    present: &[HashSet<String>],
) -> (Vec<PreparedRow>, Vec<Held>) {
    let indexes: Vec<Option<usize>> = links
        .iter()
        .map(|l| mapping.fields.iter().position(|f| f.source == l.field))
        .collect();
    let mut kept = Vec::with_capacity(rows.len());
    let mut held = Vec::new();
    for row in rows {
        let missing = links
            .iter()
            .zip(&indexes)
            .zip(present)
            .find_map(|((link, index), found)| {
                let value = row.values.get((*index)?)?;
                referenced(link, value)
                    .into_iter()
                    .find(|(hash, _)| !found.contains(hash))
                    .map(|(_, v)| (link, v))
            });
        match missing {
            None => kept.push(row),
            Some((link, parent_key)) => held.push(Held {
                record_index: row.record_index,
                key_hash: row.key_hash,
                field: link.field.clone(),
                parent_entity: link.parent_entity.clone(),
                parent_key,
            }),
        }
    }
    (kept, held)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ParentRef;
    use serde_json::json;

    fn entity(name: &str, parents: &[&str]) -> Entity {
        let text = format!("name = \"{name}\"");
        let mut e: Entity = toml::from_str(&text).unwrap();
        e.parents = parents
            .iter()
            .map(|p| ParentRef {
                field: format!("{p}_id"),
                entity: (*p).to_owned(),
            })
            .collect();
        e
    }

    #[test]
    fn children_come_after_parents() {
        let es = vec![
            entity("line", &["order"]),
            entity("order", &["customer"]),
            entity("customer", &[]),
        ];
        let names: Vec<&str> = parents_first(&es)
            .unwrap()
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, vec!["customer", "order", "line"]);
    }

    #[test]
    fn cycles_are_errors() {
        let es = vec![entity("a", &["b"]), entity("b", &["a"])];
        assert!(parents_first(&es).is_err());
    }

    #[test]
    fn independent_entities_share_a_level() {
        let es = vec![
            entity("line", &["order"]),
            entity("order", &["customer"]),
            entity("customer", &[]),
            entity("product", &[]),
            entity("employee", &["employee"]),
        ];
        let ordered = parents_first(&es).unwrap();
        let names: Vec<Vec<&str>> = levels(&ordered)
            .iter()
            .map(|l| l.iter().map(|e| e.name.as_str()).collect())
            .collect();
        assert_eq!(
            names,
            vec![
                vec!["customer", "product", "employee"],
                vec!["order"],
                vec!["line"]
            ]
        );
    }

    #[test]
    fn a_parent_needs_a_single_field_key() {
        let mut customer = entity("customer", &[]);
        customer.business_key = vec!["region".into(), "no".into()];
        let order = entity("order", &["customer"]);
        let err = parent_links(&order, &[customer, order.clone()]).unwrap_err();
        assert!(err.contains("single-field business_key"), "{err}");
    }

    fn row(mapping: &Mapping, values: Vec<Value>, index: u32) -> PreparedRow {
        let (key_hash, data_hash) = identity::record_hashes(mapping, &values, &["id".into()]);
        PreparedRow {
            id: uuid::Uuid::now_v7(),
            values,
            key_hash,
            data_hash,
            rowversion: None,
            record_index: index,
        }
    }

    #[test]
    fn children_of_missing_parents_are_held() {
        let customers = Mapping::infer(&[json!({"id": 1})]);
        let parent_hash = |id: Value| {
            let values = vec![id];
            identity::record_hashes(&customers, &values, &["id".into()]).0
        };
        let orders = Mapping::infer(&[json!({"id": 10, "customer_id": 1, "tags": ["x"]})]);
        let link = ParentLink {
            field: "customer_id".into(),
            parent_entity: "customer".into(),
            parent_table: "customer".into(),
            parent_key: "id".into(),
            self_ref: false,
        };
        let rows = vec![
            row(&orders, vec![json!(10), json!(1), Value::Null], 0),
            // The parent's key written as text finds the same parent.
            row(&orders, vec![json!(11), json!("1"), Value::Null], 1),
            row(&orders, vec![json!(12), json!(2), Value::Null], 2),
            // No reference: nothing to wait for.
            row(&orders, vec![json!(13), Value::Null, Value::Null], 3),
        ];
        let present = vec![HashSet::from([parent_hash(json!(1))])];
        let (kept, held) = split_orphans(rows, &orders, &[link], &present);
        assert_eq!(
            kept.iter().map(|r| r.record_index).collect::<Vec<_>>(),
            vec![0, 1, 3]
        );
        assert_eq!(held.len(), 1);
        assert_eq!((held[0].record_index, &held[0].parent_key), (2, &json!(2)));
    }
}
