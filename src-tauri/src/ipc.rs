//! The console's IPC, declared once: [`commands!`] turns each declaration into a Tauri command, the handler that
//! registers them all, and a typed TypeScript function of the same name in `ui/src/commands.ts` (generated; a test
//! fails when it is stale, `UPDATE_BINDINGS=1 cargo test -p syncflow-console` rewrites it). Argument and result
//! types are the engine's, named as `ui/src/bindings.ts` (generated from the same Rust types) names them.

use std::collections::{BTreeMap, BTreeSet};

/// How a command's argument or result type is written in TypeScript, and the generated types it needs.
pub trait TsType {
    fn ts() -> String;
    fn imports(_out: &mut BTreeSet<String>) {}
}

macro_rules! ts_named {
    ($($t:ty),* $(,)?) => {$(
        impl TsType for $t {
            fn ts() -> String {
                <$t as ts_rs::TS>::name()
            }
            fn imports(out: &mut BTreeSet<String>) {
                out.insert(<$t as ts_rs::TS>::name());
            }
        }
    )*};
}

ts_named!(
    syncflow_engine::config::Pipeline,
    syncflow_engine::app::alerts::WebhookSource,
    syncflow_engine::run::log::LogLine,
    syncflow_engine::app::records::FailedRetry,
    syncflow_engine::app::undo::UndoReport,
    syncflow_engine::app::mapping::SchemaWritten,
    syncflow_engine::app::runs::Preview,
    syncflow_engine::schema::prisma::PrismaVersion,
    syncflow_engine::discover::FieldChoice,
    syncflow_engine::config::Schedule,
    syncflow_engine::conflicts::ConflictView,
    syncflow_engine::conflicts::Side,
    syncflow_engine::connect::ConnectionReport,
    syncflow_engine::connect::TargetReport,
    syncflow_engine::jobs::Attention,
    syncflow_engine::jobs::RunsView,
    syncflow_engine::jobs::ScheduleView,
    syncflow_engine::jobs::schedule::SchedulePreview,
    syncflow_engine::lease::BusyPipeline,
    syncflow_engine::review::EntityView,
    syncflow_engine::review::SchemaReview,
    syncflow_engine::run::RunEvent,
    syncflow_engine::run::pending::LandOutcome,
    syncflow_engine::app::records::FailedQueue,
    syncflow_engine::store::PendingChild,
    syncflow_engine::store::PipelineSummary,
    syncflow_engine::track::RunSummary,
);

impl TsType for String {
    fn ts() -> String {
        "string".into()
    }
}

impl TsType for bool {
    fn ts() -> String {
        "boolean".into()
    }
}

/// Ids cross as JSON numbers (they stay far below 2^53).
impl TsType for i64 {
    fn ts() -> String {
        "number".into()
    }
}

impl TsType for () {
    fn ts() -> String {
        "null".into()
    }
}

/// A form's JSON (rendered from the connectors' JSON Schema, checked by the engine as it deserialises).
impl TsType for serde_json::Value {
    fn ts() -> String {
        "unknown".into()
    }
}

impl<T: TsType> TsType for Vec<T> {
    fn ts() -> String {
        format!("Array<{}>", T::ts())
    }
    fn imports(out: &mut BTreeSet<String>) {
        T::imports(out);
    }
}

impl<T: TsType> TsType for Option<T> {
    fn ts() -> String {
        format!("{} | null", T::ts())
    }
    fn imports(out: &mut BTreeSet<String>) {
        T::imports(out);
    }
}

impl<K: TsType, V: TsType> TsType for BTreeMap<K, V> {
    fn ts() -> String {
        format!("Record<{}, {}>", K::ts(), V::ts())
    }
    fn imports(out: &mut BTreeSet<String>) {
        K::imports(out);
        V::imports(out);
    }
}

/// A value a form built (rendered from the connectors' JSON Schema), typed as the engine's `T` on the TypeScript
/// side, read into `T` by the command itself so that a mismatch is the form's invalid input (`{kind, message}`,
/// naming what is wrong) rather than Tauri's own argument error.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct Form<T> {
    value: serde_json::Value,
    #[serde(skip)]
    _type: std::marker::PhantomData<T>,
}

impl<T: serde::de::DeserializeOwned> Form<T> {
    /// The value as the engine's type; `what` names it in the error ("source", "pipeline").
    /// The error names the form field (`source.base_url`), so the console shows it beside that field.
    pub fn read(self, what: &str) -> Result<T, syncflow_engine::app::AppError> {
        serde_path_to_error::deserialize(self.value).map_err(|e| {
            let message = e.inner().to_string();
            // The form's paths: `entities.0.name` (serde says `entities[0].name`), from the pipeline's root.
            let inner = e.path().to_string().replace('[', ".").replace(']', "");
            let mut path = match (what, inner.as_str()) {
                (what, ".") => what.to_owned(),
                ("pipeline", inner) => inner.to_owned(),
                (what, inner) => format!("{what}.{inner}"),
            };
            // A missing field is reported at the object that lacks it: point at the field itself.
            let missing = missing_field(&message).map(str::to_owned);
            if let Some(field) = &missing {
                path = format!("{path}.{field}");
            }
            // In the form's words: its label (`base url`), not the file's key.
            let label = path
                .rsplit('.')
                .find(|part| part.parse::<usize>().is_err())
                .unwrap_or(&path)
                .replace('_', " ");
            let said = match missing {
                Some(_) => format!("{label} is required"),
                None => format!("{label}: {message}"),
            };
            syncflow_engine::app::AppError::invalid(said).at_field(path)
        })
    }
}

/// The field serde's "missing field `name`" names.
fn missing_field(message: &str) -> Option<&str> {
    let rest = message.strip_prefix("missing field `")?;
    rest.split('`').next()
}

impl<T: ts_rs::TS + 'static> TsType for Form<T> {
    fn ts() -> String {
        T::name()
    }
    fn imports(out: &mut BTreeSet<String>) {
        out.insert(T::name());
    }
}

/// One command as the TypeScript side calls it.
pub struct CommandSig {
    pub name: &'static str,
    pub doc: Vec<&'static str>,
    /// (argument name, its TypeScript type)
    pub args: Vec<(&'static str, String)>,
    pub returns: String,
    pub imports: BTreeSet<String>,
}

/// `snake_case` → `camelCase` (Tauri maps the arguments' camelCase keys back to the Rust names).
pub fn camel(snake: &str) -> String {
    let mut out = String::new();
    let mut upper = false;
    for c in snake.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// The generated `ui/src/commands.ts`.
pub fn typescript(commands: &[CommandSig]) -> String {
    let imports: BTreeSet<&String> = commands.iter().flat_map(|c| &c.imports).collect();
    let mut out = String::from(
        "// Generated from src-tauri/src/commands.rs (the `commands!` declarations) by src-tauri/src/ipc.rs. Do not edit.\n\
         // Every command of the console, typed: its error is a `CommandError` ({kind, message}).\n\n",
    );
    out.push_str("import type { Channel } from \"@tauri-apps/api/core\";\n");
    out.push_str("import { invoke } from \"./invoke\";\n");
    out.push_str(&format!(
        "import type {{ {} }} from \"./bindings\";\n",
        imports
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    ));
    for c in commands {
        out.push('\n');
        if !c.doc.is_empty() {
            out.push_str("/**\n");
            for line in &c.doc {
                out.push_str(&format!(" *{}\n", line.trim_end()));
            }
            out.push_str(" */\n");
        }
        let params: Vec<String> = c
            .args
            .iter()
            .map(|(name, ty)| format!("{}: {ty}", camel(name)))
            .collect();
        let keys: Vec<String> = c.args.iter().map(|(name, _)| camel(name)).collect();
        out.push_str(&format!(
            "export function {}({}): Promise<{}> {{\n  return invoke<{}>(\"{}\", {{ {} }});\n}}\n",
            camel(c.name),
            params.join(", "),
            c.returns,
            c.returns,
            c.name,
            keys.join(", ")
        ));
    }
    out.replace("{  }", "{}")
}

/// Declares the console's commands. Each is written
/// `fn name(state, handle; arg: Type, …; channel on_event: EventType) -> Result { body }`: `state` (the
/// [`crate::commands::AppState`]) and `handle` (the `AppHandle`) are named by the declaration for its body, the
/// arguments come from the window, the optional channel streams events to it, and the body returns
/// `Answer<Result>`.
#[macro_export]
macro_rules! commands {
    ($(
        $(#[doc = $doc:literal])*
        fn $name:ident ($state:ident, $app:ident; $($arg:ident : $ty:ty),* $(; channel $ch:ident : $chty:ty)?) -> $ret:ty $body:block
    )*) => {
        $(
            $(#[doc = $doc])*
            #[tauri::command]
            #[allow(unused_variables)]
            pub async fn $name(
                $state: tauri::State<'_, AppState>,
                $app: tauri::AppHandle,
                $($arg: $ty,)*
                $($ch: tauri::ipc::Channel<$chty>,)?
            ) -> Answer<$ret> $body
        )*

        /// Registers every command with the app.
        pub fn handler() -> impl Fn(tauri::ipc::Invoke<tauri::Wry>) -> bool + Send + Sync + 'static {
            tauri::generate_handler![$($name),*]
        }

        /// Every command's signature, as the TypeScript side calls it.
        pub fn signatures() -> Vec<$crate::ipc::CommandSig> {
            use $crate::ipc::TsType;
            vec![$({
                let mut imports = std::collections::BTreeSet::new();
                $(<$ty>::imports(&mut imports);)*
                $(<$chty>::imports(&mut imports);)?
                <$ret>::imports(&mut imports);
                #[allow(unused_mut)]
                let mut args: Vec<(&'static str, String)> = vec![$((stringify!($arg), <$ty>::ts())),*];
                $(args.push((stringify!($ch), format!("Channel<{}>", <$chty>::ts())));)?
                $crate::ipc::CommandSig {
                    name: stringify!($name),
                    doc: vec![$($doc),*],
                    args,
                    returns: <$ret>::ts(),
                    imports,
                }
            }),*]
        }
    };
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    #[test]
    fn a_form_error_names_the_field_it_is_about() {
        use syncflow_engine::config::Pipeline;
        let form: super::Form<Pipeline> = serde_json::from_value(serde_json::json!({
            "version": 1, "name": "p",
            "source": {"kind": "demo"},
            "target": {"kind": "sqlite", "path": "x.db"},
            "entities": [{"name": "items", "business_key": "id"}]
        }))
        .unwrap();
        let error = form.read("pipeline").unwrap_err();
        assert_eq!(
            error.field.as_deref(),
            Some("entities.0.business_key"),
            "{error:?}"
        );
        let form: super::Form<syncflow_engine::config::Entity> =
            serde_json::from_value(serde_json::json!({"path": "/x"})).unwrap();
        let error = form.read("entities.0").unwrap_err();
        assert_eq!(error.field.as_deref(), Some("entities.0.name"), "{error:?}");
        assert_eq!(error.message, "name is required");
    }

    #[test]
    fn commands_ts_is_up_to_date() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../ui/src/commands.ts");
        let fresh = super::typescript(&crate::commands::signatures());
        if std::env::var_os("UPDATE_BINDINGS").is_some() {
            std::fs::write(&path, &fresh).unwrap();
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == fresh,
            "ui/src/commands.ts is stale; regenerate it with UPDATE_BINDINGS=1 cargo test -p syncflow-console"
        );
    }

    #[test]
    fn names_cross_in_camel_case() {
        assert_eq!(super::camel("confirm_deletes"), "confirmDeletes");
        assert_eq!(super::camel("list_pipelines"), "listPipelines");
        assert_eq!(super::camel("name"), "name");
    }
}
