//! `syncflow schema` and `syncflow mapping`.

use super::*;

/// Discovers a pipeline's entities and names their models and fields (shared by `schema` and `mapping`).
pub(crate) async fn discover_models(
    file: &Path,
    state: Option<PathBuf>,
) -> Result<(Provider, Vec<Discovered>), u8> {
    let ctx = context(state, 1).await.map_err(|e| fail(&e, false))?;
    eprintln!("discovering the fields of {}…", file.display());
    let (pipeline, found) = app::mapping::discover_file(&ctx, file)
        .await
        .map_err(|e| fail(&e, false))?;
    Ok((Provider::of(&pipeline.target), found))
}

/// The discovered mappings, in entity order (for `discover::model_inputs`).
pub(crate) fn mappings_of(found: &[Discovered]) -> Vec<Mapping> {
    found.iter().map(|d| d.mapping.clone()).collect()
}

pub(crate) async fn schema(
    file: &Path,
    state: Option<PathBuf>,
    out: Option<PathBuf>,
    version: prisma::PrismaVersion,
) -> u8 {
    let (provider, found) = match discover_models(file, state).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let mappings = mappings_of(&found);
    let models = model_inputs(&found, &mappings);
    let text = match prisma::generate_for(&models, provider, version) {
        Ok(text) => text,
        Err(problems) => {
            for p in problems {
                eprintln!(
                    "error: {p}; change it under [entities.fields] in {}",
                    file.display()
                );
            }
            return 2;
        }
    };
    match out {
        Some(path) => match std::fs::write(&path, text) {
            Ok(()) if version == prisma::PrismaVersion::V7 => write_prisma_config(&path),
            Ok(()) => {
                eprintln!("wrote {}", path.display());
                0
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                2
            }
        },
        None => {
            print!("{text}");
            0
        }
    }
}

/// Prisma 7 takes the connection URL from prisma.config.ts: one is written beside the schema, unless the folder
/// has one (it is the user's then).
fn write_prisma_config(schema: &Path) -> u8 {
    eprintln!("wrote {}", schema.display());
    let config = schema.with_file_name("prisma.config.ts");
    if config.exists() {
        eprintln!(
            "kept {} (Prisma 7 reads the connection URL from it)",
            config.display()
        );
        return 0;
    }
    let name = schema
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "schema.prisma".to_owned());
    match std::fs::write(&config, prisma::config_ts(&name)) {
        Ok(()) => {
            eprintln!(
                "wrote {} (Prisma 7 reads DATABASE_URL through it)",
                config.display()
            );
            0
        }
        Err(e) => {
            eprintln!("error: cannot write {}: {e}", config.display());
            2
        }
    }
}

pub(crate) async fn mapping(file: &Path, state: Option<PathBuf>, json: bool) -> u8 {
    let (_, found) = match discover_models(file, state).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let reports = prisma::reports(&model_inputs(&found, &mappings_of(&found)));
    if json {
        print_json_line(&reports);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for r in &reports {
        let _ = writeln!(
            out,
            "{} → table \"{}\", model {}",
            r.entity, r.table, r.model
        );
        for f in &r.fields {
            let collides = if f.collides_with.is_empty() {
                String::new()
            } else {
                format!(" (collides with {:?})", f.collides_with)
            };
            let _ = writeln!(
                out,
                "  {:<32} {:<28} {:<8} {}{collides}",
                f.source, f.field, f.ty, f.note
            );
        }
    }
    0
}
