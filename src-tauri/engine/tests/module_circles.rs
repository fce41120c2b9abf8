//! The engine's top-level modules form no circle: a module that uses another (`crate::other::…`, outside its
//! tests) never ends up used by it again, directly or through others. A circle that comes back fails this test,
//! naming the modules and the files that close it — move the shared type to the module that owns it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

/// The top-level modules (`src/x.rs` and `src/x/…`) with their files.
fn modules(src: &Path) -> BTreeMap<String, Vec<PathBuf>> {
    let mut modules: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("src/").flatten() {
        let path = entry.path();
        let Some(stem) = path.file_stem().and_then(|s| s.to_str()).map(str::to_owned) else {
            continue;
        };
        if path.is_dir() {
            modules.entry(stem).or_default().extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") && stem != "lib" {
            modules.entry(stem).or_default().push(path);
        }
    }
    modules
}

/// The modules a file's non-test code names as `crate::module` (comments left out).
fn used_modules(text: &str) -> BTreeSet<String> {
    let before_tests = text.split("#[cfg(test)]").next().unwrap_or_default();
    let code: String = before_tests
        .lines()
        .map(|line| line.split("//").next().unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n");
    code.match_indices("crate::")
        .map(|(at, prefix)| {
            code[at + prefix.len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect::<String>()
        })
        .filter(|name| !name.is_empty())
        .collect()
}

/// Edges module → (used module → files that use it).
type Graph = BTreeMap<String, BTreeMap<String, BTreeSet<String>>>;

fn graph(src: &Path) -> Graph {
    let modules = modules(src);
    let mut graph = Graph::new();
    for (module, files) in &modules {
        let uses = graph.entry(module.clone()).or_default();
        for file in files {
            let text = std::fs::read_to_string(file).expect("a source file");
            for used in used_modules(&text) {
                if &used != module && modules.contains_key(&used) {
                    let shown = file.strip_prefix(src).unwrap_or(file).display().to_string();
                    uses.entry(used).or_default().insert(shown);
                }
            }
        }
    }
    graph
}

/// A path from `from` back to `to` through the graph, if there is one.
fn path_back(
    graph: &Graph,
    from: &str,
    to: &str,
    seen: &mut BTreeSet<String>,
) -> Option<Vec<String>> {
    if from == to {
        return Some(vec![to.to_owned()]);
    }
    if !seen.insert(from.to_owned()) {
        return None;
    }
    for next in graph
        .get(from)
        .map(|uses| uses.keys())
        .into_iter()
        .flatten()
    {
        if let Some(mut rest) = path_back(graph, next, to, seen) {
            rest.insert(0, from.to_owned());
            return Some(rest);
        }
    }
    None
}

#[test]
fn the_engine_modules_form_no_circle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let graph = graph(&src);
    assert!(
        graph.len() > 10,
        "the engine's modules were not found in {}",
        src.display()
    );
    let mut circles = Vec::new();
    for (module, uses) in &graph {
        for (used, files) in uses {
            if let Some(back) = path_back(&graph, used, module, &mut BTreeSet::new()) {
                circles.push(format!(
                    "{module} → {} (the first step in {})",
                    back.join(" → "),
                    files.iter().cloned().collect::<Vec<_>>().join(", ")
                ));
            }
        }
    }
    assert!(
        circles.is_empty(),
        "module circles:\n{}",
        circles.join("\n")
    );
}

#[test]
fn a_circle_is_found() {
    let text_a = "use crate::b::Thing;";
    let text_b =
        "fn f() -> crate::a::Other { todo!() }\n#[cfg(test)]\nmod tests { use crate::c::X; }";
    assert_eq!(used_modules(text_a), BTreeSet::from(["b".to_owned()]));
    assert_eq!(used_modules(text_b), BTreeSet::from(["a".to_owned()]));
    let mut graph = Graph::new();
    graph
        .entry("a".into())
        .or_default()
        .entry("b".into())
        .or_default();
    graph
        .entry("b".into())
        .or_default()
        .entry("a".into())
        .or_default();
    assert_eq!(
        path_back(&graph, "b", "a", &mut BTreeSet::new()),
        Some(vec!["b".to_owned(), "a".to_owned()])
    );
}
