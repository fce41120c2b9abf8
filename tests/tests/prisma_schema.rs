//! Generated Prisma schemas pass the real Prisma CLIs' `prisma validate` (Prisma 7 with the generated
//! prisma.config.ts, and Prisma 6 as a setting; pinned in tests/prisma7 and tests/prisma, run offline),
//! for hostile field names; the CLI's `schema` and `mapping --json` work against a live source; the same names
//! round-trip through DDL into a real PostgreSQL.

use serde_json::{json, Map, Value};
use std::collections::HashSet;
use std::process::Command;
use syncflow_engine::schema::prisma::{self, ModelInput, PrismaVersion, Provider};
use syncflow_engine::schema::{Mapping, MAX_IDENT_BYTES};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::workspace_root;

/// Names from real apps and worse.
const HOSTILE: &[&str] = &[
    "2nd Payment %",
    "1st Payment %",
    "_id",
    "id",
    "ID",
    "Id",
    "select",
    "where",
    "data",
    "orderBy",
    "Customer Name",
    "customer-name",
    "customer_name",
    "CustomerName",
    "Total",
    "total",
    "TOTAL",
    "_Id",
    "émojis_🚀",
    "🚀",
    "🚀🚀",
    "",
    " ",
    "  ",
    "???",
    "!!!",
    "a\"; drop table x; --",
    "Robert'); DROP TABLE students;--",
    "back\\slash",
    "quote\"inside",
    "new\nline",
    "tab\tchar",
    "nul\u{1}char",
    "日本語",
    "prénom",
    "Größe",
    "עברית",
    "العربية",
    "Commission Paid?",
    "# of Units",
    "$ amount",
    "100",
    "3D",
    "String",
    "DateTime",
    "PrismaClient",
    "bubbleId",
    "_bridge_id",
    "_bridge_key_hash",
    "bridgeKeyHash",
    "Created Date",
    "Modified Date",
    "Created By",
    "class",
    "constructor",
    "__proto__",
    "toString",
    "delete",
    "x-y-z",
    "field_abc123",
    "customerName2",
    "total2",
];

/// Deterministic pseudo-random names over all of Unicode (no proptest here: the corpus must be reproducible).
fn random_names(count: usize, seed: u64) -> Vec<String> {
    let mut state = seed;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count)
        .map(|_| {
            let len = (next() % 70) as usize;
            (0..len)
                .filter_map(|_| {
                    let pick = next();
                    let code = match pick % 4 {
                        0 => 0x20 + (pick >> 8) % 0x5f,
                        1 => 0xa0 + (pick >> 8) % 0x2000,
                        2 => 0x1f300 + (pick >> 8) % 0x600,
                        _ => (pick >> 8) % 0x10ffff,
                    };
                    char::from_u32(code as u32)
                })
                .collect()
        })
        .collect()
}

fn mapping_of(names: &[String]) -> Mapping {
    let record: Map<String, Value> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.clone(), json!(i)))
        .collect();
    Mapping::infer(&[Value::Object(record)])
}

/// `prisma validate`, offline, by the pinned CLI of `version`'s major (tests/prisma7: 7.10.1, tests/prisma: 6.19.3).
/// A Prisma 7 schema is checked beside the `prisma.config.ts` SyncFlow generates for it, in a folder inside
/// tests/prisma7 so that the config's `prisma/config` import resolves.
fn prisma_validate(schema_text: &str, name: &str, version: PrismaVersion) -> std::process::Output {
    let home = workspace_root().join(match version {
        PrismaVersion::V7 => "tests/prisma7",
        PrismaVersion::V6 => "tests/prisma",
    });
    let bin = home.join("node_modules/.bin/prisma");
    assert!(
        bin.exists(),
        "{} is missing: run `npm ci` in {} (the README test command does)",
        bin.display(),
        home.display()
    );
    let dir = tempfile::tempdir_in(&home).unwrap();
    let schema = dir.path().join(format!("{name}.prisma"));
    std::fs::write(&schema, schema_text).unwrap();
    let url = if schema_text.contains("provider = \"sqlite\"") {
        "file:./validate.db"
    } else {
        "postgresql://validate@127.0.0.1:5432/validate"
    };
    let mut cmd = Command::new(bin);
    match version {
        PrismaVersion::V7 => {
            let config = dir.path().join("prisma.config.ts");
            std::fs::write(&config, prisma::config_ts(&format!("{name}.prisma"))).unwrap();
            cmd.args(["validate", "--config"]).arg(&config);
        }
        PrismaVersion::V6 => {
            cmd.args(["validate", "--schema"]).arg(&schema);
        }
    }
    cmd.current_dir(dir.path())
        // Offline: the validator is WASM; the native engines it would download are not needed.
        .env("PRISMA_SCHEMA_ENGINE_BINARY", "/bin/true")
        .env("PRISMA_QUERY_ENGINE_LIBRARY", "/bin/true")
        .env("PRISMA_HIDE_UPDATE_MESSAGE", "1")
        .env("CHECKPOINT_DISABLE", "1")
        .env("DATABASE_URL", url)
        .output()
        .expect("run prisma")
}

/// The schema passes `prisma validate` of the Prisma major it was generated for.
fn assert_valid_for(schema_text: &str, name: &str, version: PrismaVersion) {
    let out = prisma_validate(schema_text, name, version);
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && said.contains("is valid"),
        "prisma validate ({version:?}) rejected {name}:\n{said}\n--- schema ---\n{schema_text}"
    );
}

/// The schema (generated for Prisma 7, the default) passes Prisma 7's `prisma validate` with its config.
fn assert_valid(schema_text: &str, name: &str) {
    assert!(
        !schema_text.contains("url      = env("),
        "Prisma 7 refuses a url in the datasource"
    );
    assert_valid_for(schema_text, name, PrismaVersion::V7);
}

#[test]
fn hostile_and_random_names_give_valid_unique_deterministic_schemas() {
    let hostile: Vec<String> = HOSTILE.iter().map(|s| (*s).to_owned()).collect();
    let random = random_names(400, 0x5eed_cafe);
    let long: Vec<String> = (0..6)
        .map(|i| {
            format!(
                "{}{i}",
                "An extremely long field name that goes on and on and on and on and on "
            )
        })
        .collect();
    let mappings = [mapping_of(&hostile), mapping_of(&random), mapping_of(&long)];
    let entities = ["invoice", "select", "String"];
    let tables = ["invoice", "a\"; drop table x; --", "String"];
    let models: Vec<ModelInput<'_>> = (0..3)
        .map(|i| ModelInput {
            entity: entities[i],
            table: tables[i],
            mapping: &mappings[i],
        })
        .collect();

    let pg = prisma::generate(&models, Provider::Postgres).unwrap();
    assert_eq!(
        pg,
        prisma::generate(&models, Provider::Postgres).unwrap(),
        "two runs give byte-identical schemas"
    );
    assert_valid(&pg, "postgres");
    assert_valid(
        &prisma::generate(&models, Provider::Sqlite).unwrap(),
        "sqlite",
    );
    // Prisma 6 (a setting): the URL stays in the datasource, and Prisma 6 accepts the same models.
    for (provider, name) in [
        (Provider::Postgres, "postgres6"),
        (Provider::Sqlite, "sqlite6"),
    ] {
        let v6 = prisma::generate_for(&models, provider, PrismaVersion::V6).unwrap();
        assert!(v6.contains("url      = env(\"DATABASE_URL\")"), "{v6}");
        assert_valid_for(&v6, name, PrismaVersion::V6);
    }

    for (report, mapping) in prisma::reports(&models).iter().zip(&mappings) {
        let fields: HashSet<&str> = report.fields.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields.len(),
            report.fields.len(),
            "field names unique in {}",
            report.model
        );
        let columns: HashSet<&str> = report.fields.iter().map(|f| f.column.as_str()).collect();
        assert_eq!(
            columns.len(),
            report.fields.len(),
            "columns unique in {}",
            report.model
        );
        assert!(
            report
                .fields
                .iter()
                .all(|f| f.column.len() <= MAX_IDENT_BYTES),
            "columns fit 63 bytes"
        );
        assert_eq!(
            report.fields.len(),
            mapping.fields.len(),
            "every original has a field"
        );
        for f in &report.fields {
            assert!(
                pg.contains(&format!("@map({})", prisma::literal(&f.column))),
                "{:?} not mapped",
                f.source
            );
            let representable = !f.source.is_empty()
                && !f.source.contains('\0')
                && !f.source.starts_with("_bridge_");
            if f.source.len() <= MAX_IDENT_BYTES && representable {
                assert_eq!(f.source, f.column, "the original name is the column");
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_schema_and_mapping_for_a_live_source_and_ddl_into_postgres() {
    let records: Vec<Value> = (0..250)
        .map(|i| {
            let mut r = Map::new();
            r.insert("part_no".into(), json!(format!("P-{i}")));
            for (j, name) in HOSTILE.iter().enumerate() {
                if *name != "part_no" {
                    r.insert(
                        (*name).to_owned(),
                        if j % 3 == 0 {
                            json!(i)
                        } else {
                            json!(format!("v{i}-{j}"))
                        },
                    );
                }
            }
            Value::Object(r)
        })
        .collect();
    let server = ErpServer::start(records.clone(), "pw", 100, 3600).await;
    let cluster = PgCluster::start();
    let pg_url = cluster.create_database("names").await;
    let dir = tempfile::tempdir().unwrap();
    let target = format!("kind = \"postgres\"\nurl = \"{pg_url}\"");
    let file = server.pipeline_file(
        dir.path(),
        "hostile",
        "{ env = \"PW\" }",
        &target,
        "invoice",
        "business_key = [\"part_no\"]",
    );
    let state = dir.path().join("state.db");
    let syncflow = |args: &[&str]| syncflow_tests::syncflow(args, &state, &[("PW", "pw")]);

    let out_path = dir.path().join("schema.prisma");
    let out = syncflow(&[
        "schema",
        file.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let schema = std::fs::read_to_string(&out_path).unwrap();
    assert_valid(&schema, "cli");
    let again = syncflow(&["schema", file.to_str().unwrap()]);
    assert_eq!(
        String::from_utf8_lossy(&again.stdout),
        schema,
        "stdout and --out agree, byte for byte"
    );
    // Prisma 7 reads the URL through the prisma.config.ts written beside the schema (a user's own one is kept).
    let config = std::fs::read_to_string(dir.path().join("prisma.config.ts")).unwrap();
    assert_eq!(config, prisma::config_ts("schema.prisma"));
    std::fs::write(dir.path().join("prisma.config.ts"), "// mine\n").unwrap();
    let out = syncflow(&[
        "schema",
        file.to_str().unwrap(),
        "--out",
        out_path.to_str().unwrap(),
    ]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept"));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("prisma.config.ts")).unwrap(),
        "// mine\n"
    );
    // Prisma 6, by its setting: the URL in the datasource, valid for Prisma 6.
    let six = syncflow(&["schema", file.to_str().unwrap(), "--prisma", "6"]);
    assert_eq!(six.status.code(), Some(0));
    let six = String::from_utf8_lossy(&six.stdout).to_string();
    assert!(six.contains("url      = env(\"DATABASE_URL\")"), "{six}");
    assert_valid_for(&six, "cli6", PrismaVersion::V6);
    let wrong = syncflow(&["schema", file.to_str().unwrap(), "--prisma", "5"]);
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&wrong.stderr).contains("use 7 (the current) or 6"),
        "{}",
        String::from_utf8_lossy(&wrong.stderr)
    );

    let out = syncflow(&["mapping", file.to_str().unwrap(), "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mapping: Value = serde_json::from_slice(&out.stdout).unwrap();
    let invoice = &mapping[0];
    assert_eq!(
        (
            invoice["entity"].as_str(),
            invoice["table"].as_str(),
            invoice["model"].as_str()
        ),
        (Some("invoice"), Some("invoice"), Some("Invoice"))
    );
    let field = |source: &str| {
        invoice["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["source"] == source)
            .cloned()
            .unwrap()
    };
    let payment = field("2nd Payment %");
    assert_eq!(payment["field"], "f2ndPaymentPercent");
    assert_eq!(payment["column"], "2nd Payment %");
    assert_eq!(payment["note"], "symbols spelled out, numeric prefix");
    assert!(payment["collides_with"].as_array().unwrap().is_empty());
    for key in ["source", "field", "column", "type", "collides_with", "note"] {
        assert!(payment.get(key).is_some(), "mapping field lacks {key}");
    }
    let total = field("total");
    assert_eq!(total["collides_with"], json!(["TOTAL", "Total"]));

    // The same names as columns in a real PostgreSQL, quoted everywhere: the table is created and filled.
    let out = syncflow(&["run", file.to_str().unwrap(), "--apply-schema", "--json"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let pool = sqlx::PgPool::connect(&pg_url).await.unwrap();
    let columns: Vec<(String,)> = sqlx::query_as(
        "SELECT column_name::text FROM information_schema.columns WHERE table_name = 'invoice'",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    let columns: HashSet<String> = columns.into_iter().map(|(c,)| c).collect();
    for f in invoice["fields"].as_array().unwrap() {
        assert!(
            columns.contains(f["column"].as_str().unwrap()),
            "column {} missing",
            f["column"]
        );
    }
    let (n,): (i64,) =
        sqlx::query_as(r#"SELECT count(*) FROM invoice WHERE "a""; drop table x; --" IS NOT NULL"#)
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(n, 250);
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT table_name::text FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        tables,
        [
            "_syncflow_checkpoints",
            "_syncflow_deferred_indexes",
            "_syncflow_undo_rows",
            "_syncflow_undo_runs",
            "invoice"
        ],
        "invoice and the engine's own tables, nothing dropped or added (a first sync records no seen keys)"
    );
}

/// A Bubble app's schema from `/meta` (both key styles): seed 001's template (`bubbleId String @unique
/// @map("_id")`), date fields as DateTime, references indexed, and the real validator accepts it for both targets.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bubble_schema_follows_the_seed_template_and_validates() {
    use syncflow_engine::emulator::app::{sample_app, Scale};
    use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
    for use_captions in [true, false] {
        let emulator = BubbleEmulator::start(
            sample_app(Scale::total(300), use_captions),
            Faults::default(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        for (target, name) in [
            (
                "kind = \"postgres\"\nurl = \"postgresql://svc@127.0.0.1:5432/app\"",
                "pg",
            ),
            ("kind = \"sqlite\"\npath = \"app.db\"", "sqlite"),
        ] {
            let file = dir.path().join(format!("{name}.toml"));
            std::fs::write(
                &file,
                format!(
                    "version = 1\nname = \"bubble-{name}\"\n[source]\nkind = \"bubble\"\nbase_url = \"{}\"\n[target]\n{target}\n",
                    emulator.base_url
                ),
            )
            .unwrap();
            let state = dir.path().join("state.db");
            let out =
                syncflow_tests::syncflow_async(&["schema", file.to_str().unwrap()], &state, &[])
                    .await;
            let schema = String::from_utf8_lossy(&out.stdout).into_owned();
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                schema.contains("model Invoice {") && schema.contains("model Lineitem {"),
                "{schema}"
            );
            let bubble_id = schema
                .lines()
                .find(|l| l.trim_start().starts_with("bubbleId "))
                .unwrap_or_default();
            assert!(
                bubble_id.contains("String ")
                    && bubble_id.contains("@unique")
                    && bubble_id.ends_with("@map(\"_id\")"),
                "{bubble_id}"
            );
            let due = if use_captions {
                "Due Date"
            } else {
                "due_date_date"
            };
            assert!(
                schema
                    .lines()
                    .any(|l| l.contains("DateTime?") && l.contains(&format!("@map(\"{due}\")"))),
                "{schema}"
            );
            assert!(schema.contains("@@index([customer"), "{schema}");
            assert_valid(&schema, &format!("bubble-{name}-{use_captions}"));
        }
    }
}
