//! RESOLVE: parent/child ordering. Entities run parents first, so a child's parent is in the target before it.

use crate::config::Entity;

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ParentRef;

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
}
