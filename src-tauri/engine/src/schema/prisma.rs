//! The Prisma schema generator: a model per entity (seed 001's template), every field with `@map` to its
//! column, the `_bridge_*` tracking fields, `@@map` to the table. Output is deterministic byte for byte.

use super::{ColumnType, Mapping, ROW_ID_COLUMN};
use crate::names::{self, Change, FieldName};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use ts_rs::TS;

/// The Prisma major version the output targets (pinned in tests/prisma/package.json).
pub const PRISMA_MAJOR: u32 = 6;

/// Which datasource provider the schema is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Provider {
    Postgres,
    Sqlite,
}

impl Provider {
    /// The provider of a pipeline's target.
    pub fn of(target: &crate::config::TargetConfig) -> Provider {
        match target {
            crate::config::TargetConfig::Postgres(_) => Provider::Postgres,
            crate::config::TargetConfig::Sqlite(_) => Provider::Sqlite,
        }
    }
}

/// One entity to model.
pub struct ModelInput<'a> {
    pub entity: &'a str,
    pub table: &'a str,
    pub mapping: &'a Mapping,
}

/// How one source field is named and typed (`mapping --json`, as README documents it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FieldReport {
    pub source: String,
    pub field: String,
    pub column: String,
    #[serde(rename = "type")]
    #[ts(rename = "type")]
    pub ty: String,
    pub collides_with: Vec<String>,
    pub note: String,
    /// What the sanitiser did, for badges.
    pub changes: Vec<Change>,
    /// Why the field's name cannot be used, if it cannot.
    pub error: Option<String>,
}

/// One entity's model (`mapping --json`, as README documents it).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct EntityReport {
    pub entity: String,
    pub table: String,
    pub model: String,
    pub fields: Vec<FieldReport>,
    /// The table's indexes (business key, references), by Prisma field name.
    pub indexes: Vec<IndexReport>,
}

/// One index of a model (`@unique`/`@@unique`/`@@index` with the database name).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct IndexReport {
    pub name: String,
    pub fields: Vec<String>,
    pub unique: bool,
}

/// The Prisma name of a Bubble thing's unique id (seed 001's template).
pub const BUBBLE_ID_FIELD: &str = "bubbleId";

/// The tracking fields every model ends with: (Prisma name, column, Prisma type and attributes for SQLite, and
/// for PostgreSQL, whose tables have the lean shape: bytea hashes, the key hash the primary key, a uuid run id).
/// A Prisma type and its attributes.
type Typed = (&'static str, &'static str);

const TRACKING_FIELDS: [(&str, &str, [Typed; 2]); 6] = [
    (
        "bridgeKeyHash",
        "_bridge_key_hash",
        [("String", "@unique"), ("Bytes", "@id")],
    ),
    (
        "bridgeDataHash",
        "_bridge_data_hash",
        [("String", ""), ("Bytes", "")],
    ),
    (
        "bridgeRowversion",
        "_bridge_rowversion",
        [("String?", ""), ("String?", "")],
    ),
    (
        "bridgeSyncedAt",
        "_bridge_synced_at",
        [("DateTime", ""), ("DateTime", "@db.Timestamptz(6)")],
    ),
    (
        "bridgeRunId",
        "_bridge_run_id",
        [("String", ""), ("String", "@db.Uuid")],
    ),
    (
        "bridgeDeletedAt",
        "_bridge_deleted_at",
        [("DateTime?", ""), ("DateTime?", "@db.Timestamptz(6)")],
    ),
];

pub fn prisma_type(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::Text => "String",
        ColumnType::Integer => "BigInt",
        ColumnType::Numeric => "Decimal",
        ColumnType::Boolean => "Boolean",
        ColumnType::DateTime => "DateTime",
        ColumnType::Json => "Json",
    }
}

/// Names models and fields for every entity.
pub fn reports(models: &[ModelInput<'_>]) -> Vec<EntityReport> {
    let model_names = names::name_models(
        &models
            .iter()
            .map(|m| m.entity.to_owned())
            .collect::<Vec<_>>(),
    );
    models
        .iter()
        .zip(model_names)
        .map(|(m, model)| {
            let sources: Vec<String> = m.mapping.fields.iter().map(|f| f.source.clone()).collect();
            let pinned: BTreeMap<String, String> = m
                .mapping
                .rules
                .iter()
                .filter_map(|(source, rule)| Some((source.clone(), rule.name.clone()?)))
                .collect();
            let bubble_id = m.mapping.declared_of("_id").is_some() && !pinned.contains_key("_id");
            let fields: Vec<FieldReport> = names::name_fields_pinned(&sources, &pinned)
                .into_iter()
                .map(|mut name| {
                    // `bubbleId` is reserved, so no other field can have been given it.
                    if bubble_id && name.source == "_id" {
                        name.field = BUBBLE_ID_FIELD.to_owned();
                        name.changes = vec![Change::BubbleId];
                    }
                    name
                })
                .zip(&m.mapping.fields)
                .map(|(name, f)| field_report(name, &f.column, f.ty))
                .collect();
            let prisma_name = |source: &String| {
                fields
                    .iter()
                    .find(|f| &f.source == source)
                    .map(|f| f.field.clone())
            };
            let indexes = m
                .mapping
                .indexes(m.table)
                .into_iter()
                .filter_map(|index| {
                    Some(IndexReport {
                        fields: index
                            .fields
                            .iter()
                            .map(prisma_name)
                            .collect::<Option<Vec<_>>>()?,
                        name: index.name,
                        unique: index.unique,
                    })
                })
                .collect();
            EntityReport {
                entity: m.entity.to_owned(),
                table: m.table.to_owned(),
                model: model.field,
                fields,
                indexes,
            }
        })
        .collect()
}

fn field_report(name: FieldName, column: &str, ty: ColumnType) -> FieldReport {
    let note = name.note();
    FieldReport {
        source: name.source,
        field: name.field,
        column: column.to_owned(),
        ty: prisma_type(ty).to_owned(),
        collides_with: name.collides_with,
        note,
        changes: name.changes,
        error: name.error,
    }
}

/// The whole `schema.prisma`, or the fields whose names stop it ("entity.source: why").
pub fn generate(models: &[ModelInput<'_>], provider: Provider) -> Result<String, Vec<String>> {
    let reports = reports(models);
    let errors: Vec<String> = reports
        .iter()
        .flat_map(|r| {
            r.fields.iter().filter_map(move |f| {
                f.error
                    .as_ref()
                    .map(|e| format!("{}.\"{}\": {e}", r.entity, f.source))
            })
        })
        .collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(render(&reports, provider))
}

fn render(reports: &[EntityReport], provider: Provider) -> String {
    let mut out = String::new();
    out.push_str("// Generated by SyncFlow from the pipeline's field mapping. Column names are the source's own (@map).\n\n");
    out.push_str("generator client {\n  provider = \"prisma-client-js\"\n}\n\n");
    let (name, env) = match provider {
        Provider::Postgres => ("postgresql", "DATABASE_URL"),
        Provider::Sqlite => ("sqlite", "DATABASE_URL"),
    };
    let _ = write!(
        out,
        "datasource db {{\n  provider = \"{name}\"\n  url      = env(\"{env}\")\n}}\n"
    );
    for report in reports {
        out.push('\n');
        write_model(&mut out, report, provider);
    }
    out
}

fn write_model(out: &mut String, report: &EntityReport, provider: Provider) {
    let pg = provider == Provider::Postgres;
    let mut lines: Vec<(String, String, String)> = Vec::with_capacity(report.fields.len() + 8);
    // PostgreSQL tables are keyed by the key hash; the row id is a plain column there.
    let id_attrs = if pg {
        "@default(uuid()) @db.Uuid"
    } else {
        "@id @default(uuid())"
    };
    lines.push((
        "id".into(),
        "String".into(),
        format!("{id_attrs} @map({})", literal(ROW_ID_COLUMN)),
    ));
    // Tracking fields come before the data fields: Prisma rejects an @map naming a field declared later.
    for (field, column, [sqlite, postgres]) in TRACKING_FIELDS {
        let (ty, attrs) = if pg { postgres } else { sqlite };
        let mut attrs = attrs.to_owned();
        if !attrs.is_empty() {
            attrs.push(' ');
        }
        attrs.push_str(&format!("@map({})", literal(column)));
        lines.push((field.into(), ty.into(), attrs));
    }
    if pg {
        // Conflict detection's columns (PostgreSQL targets; docs/adr/0008-conflicts.md), so that applying this
        // schema with Prisma keeps them.
        lines.push((
            "bridgeEditedAt".into(),
            "DateTime?".into(),
            "@db.Timestamptz(6) @map(\"_bridge_edited_at\")".into(),
        ));
        lines.push((
            "bridgeSynced".into(),
            "Json?".into(),
            "@map(\"_bridge_synced\")".into(),
        ));
    }
    let single_key = report
        .indexes
        .iter()
        .find(|i| i.unique && i.fields.len() == 1);
    for f in &report.fields {
        let mut attrs = String::new();
        // The column is `timestamptz`; without the native type Prisma would expect `timestamp(3)`.
        if pg && f.ty == "DateTime" {
            attrs.push_str("@db.Timestamptz(6) ");
        }
        let in_key = report
            .indexes
            .iter()
            .any(|i| i.unique && i.fields.contains(&f.field));
        if let Some(key) = single_key.filter(|k| k.fields[0] == f.field) {
            let _ = write!(attrs, "@unique(map: {}) ", literal(&key.name));
        }
        attrs.push_str(&format!("@map({})", literal(&f.column)));
        // Business-key fields are required: records without them are refused by VALIDATE.
        let optional = if in_key { "" } else { "?" };
        lines.push((f.field.clone(), format!("{}{optional}", f.ty), attrs));
    }
    let name_width = lines.iter().map(|l| l.0.len()).max().unwrap_or(0);
    let type_width = lines.iter().map(|l| l.1.len()).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "/// Entity \"{}\" (table \"{}\")",
        one_line(&report.entity),
        one_line(&report.table)
    );
    let _ = writeln!(out, "model {} {{", report.model);
    for (name, ty, attrs) in lines {
        let _ = writeln!(out, "  {name:name_width$} {ty:type_width$} {attrs}");
    }
    out.push('\n');
    for index in &report.indexes {
        let fields = index.fields.join(", ");
        let name = literal(&index.name);
        match (index.unique, index.fields.len()) {
            (true, 1) => {}
            (true, _) => {
                let _ = writeln!(out, "  @@unique([{fields}], map: {name})");
            }
            (false, _) => {
                let _ = writeln!(out, "  @@index([{fields}], map: {name})");
            }
        }
    }
    let _ = writeln!(out, "  @@map({})\n}}", literal(&report.table));
}

/// A Prisma string literal: quotes, backslashes and control characters escaped.
pub fn literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A name inside a `///` comment: one line.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_seed_example_maps_every_original() {
        let mapping = Mapping::infer(&[
            json!({"2nd Payment %": 0.5, "_id": "1x2", "Customer Name": "a", "customer-name": "b"}),
        ]);
        let models = [ModelInput {
            entity: "invoice",
            table: "invoice",
            mapping: &mapping,
        }];
        let schema = generate(&models, Provider::Postgres).unwrap();
        assert!(schema.contains("model Invoice {"), "{schema}");
        assert!(schema.contains("f2ndPaymentPercent "), "{schema}");
        assert!(schema.contains("@map(\"2nd Payment %\")"), "{schema}");
        assert!(schema.contains("idField "), "{schema}");
        assert!(schema.contains("customerName2 "), "{schema}");
        assert!(schema.contains("@@map(\"invoice\")"));
        assert_eq!(
            schema,
            generate(&models, Provider::Postgres).unwrap(),
            "byte-identical on a second run"
        );
        let report = &reports(&models)[0];
        let payment = report
            .fields
            .iter()
            .find(|f| f.source == "2nd Payment %")
            .unwrap();
        assert_eq!(
            (
                payment.field.as_str(),
                payment.ty.as_str(),
                payment.note.as_str()
            ),
            (
                "f2ndPaymentPercent",
                "Decimal",
                "symbols spelled out, numeric prefix"
            )
        );
    }

    #[test]
    fn literals_escape_what_prisma_needs() {
        assert_eq!(literal("a\"b\\c\nd"), "\"a\\\"b\\\\c\\nd\"");
    }
}
