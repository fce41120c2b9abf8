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
        Some(path) => write_schema_files(&path, &text, version),
        None => {
            print!("{text}");
            0
        }
    }
}

/// Writes the schema (and for Prisma 7 its prisma.config.ts) to `path`, saying on stderr what was written.
fn write_schema_files(path: &Path, text: &str, version: prisma::PrismaVersion) -> u8 {
    match app::mapping::write_schema(path, text, version) {
        Ok(written) => {
            eprintln!("wrote {}", written.schema);
            match (written.config, written.config_kept) {
                (Some(config), true) => {
                    eprintln!("kept {config} (Prisma 7 reads the connection URL from it)")
                }
                (Some(config), false) => {
                    eprintln!("wrote {config} (Prisma 7 reads DATABASE_URL through it)")
                }
                (None, _) => {}
            }
            0
        }
        Err(e) => {
            eprintln!("error: {e}");
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
