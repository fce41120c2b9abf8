//! The pipeline file (version 1, documented in README, "The pipeline file"): types, parsing and pure validation.
//!
//! Parsing never echoes the file's text back in an error, because a line of it may hold a secret the user
//! typed by mistake; errors name the line and the key instead.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use ts_rs::TS;

/// A whole pipeline: where records come from, where they go, and what is synced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// Format version of the pipeline file; only 1 exists.
    pub version: u32,
    /// Unique pipeline name.
    pub name: String,
    pub source: SourceConfig,
    pub target: TargetConfig,
    /// The entities (resources, types, tables) to sync.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub entities: Vec<Entity>,
    /// When the console (or `syncflow daemon`) runs the pipeline by itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// How many of the pipeline's latest runs that changed the target can be undone: their before-images stay in
    /// the target (tables `_syncflow_undo_runs`, `_syncflow_undo_rows`). 0 keeps none. Default 3.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undo_runs: Option<u32>,
}

/// How many runs can be undone unless `undo_runs` says otherwise.
pub const DEFAULT_UNDO_RUNS: u32 = 3;

pub use crate::schedule::{Schedule, TimeWindow};

/// Where records come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum SourceConfig {
    /// A paginated JSON REST API.
    Rest(RestSource),
    /// A Bubble.io app's Data API.
    Bubble(BubbleSource),
    /// Tables (or queries) of a PostgreSQL database.
    Postgres(PostgresSource),
    /// Generated data from an HTTP server embedded in the engine (no credentials, no setup).
    Demo(DemoSource),
}

impl SourceConfig {
    /// The source kinds whose entities the user names (REST resources, PostgreSQL tables or queries): a pipeline of
    /// such a source needs at least one `[[entities]]`. A Bubble app lists its types itself; the demo is fixed.
    pub const KINDS_NAMING_ENTITIES: [&'static str; 2] = ["rest", "postgres"];

    /// The `kind` key of this source.
    pub fn kind(&self) -> &'static str {
        match self {
            SourceConfig::Rest(_) => "rest",
            SourceConfig::Bubble(_) => "bubble",
            SourceConfig::Postgres(_) => "postgres",
            SourceConfig::Demo(_) => "demo",
        }
    }

    /// Whether the user names this source's entities (see [`SourceConfig::KINDS_NAMING_ENTITIES`]).
    pub fn names_entities(&self) -> bool {
        SourceConfig::KINDS_NAMING_ENTITIES.contains(&self.kind())
    }
}

/// A paginated JSON REST API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct RestSource {
    /// Base URL; entity paths are appended to it.
    pub base_url: String,
    /// How to authenticate.
    #[serde(default)]
    pub auth: Auth,
    /// Pages in flight at once.
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Client-side request limit per minute.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// The largest reply accepted, in bytes (default 256 MiB): a larger one fails its page, read no further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "number | null")]
    pub max_page_bytes: Option<u64>,
}

/// A Bubble.io app's Data API.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct BubbleSource {
    /// The app's Data API address, up to and including `/api/1.1`
    /// (`https://APP.bubbleapps.io/version-test/api/1.1` for development data).
    pub base_url: String,
    /// The API token (an admin token reads everything, privacy rules aside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Pages in flight at once.
    #[serde(default = "one")]
    pub concurrency: u32,
    /// Client-side request limit per minute (legacy plans: 1,000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// The largest reply accepted, in bytes (default 256 MiB): a larger one fails its page, read no further.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "number | null")]
    pub max_page_bytes: Option<u64>,
    /// The furthest item a search can page to (Bubble: 50,000; more on Enterprise plans); larger types are read
    /// in windows of `Created Date`.
    #[serde(default = "bubble_ceiling")]
    pub cursor_ceiling: u32,
}

fn bubble_ceiling() -> u32 {
    50_000
}

/// A PostgreSQL database read table by table (or query by query), in pages ordered by the business key.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct PostgresSource {
    /// `postgresql://user@host:port/db` — no password in the URL.
    pub url: String,
    /// The password, if the server asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Schema of the source tables.
    #[serde(default = "public")]
    pub schema: String,
    /// Rows per page.
    #[serde(default = "page_size")]
    pub page_size: u32,
    /// TLS and how connections ride out restarts.
    #[serde(default, skip_serializing_if = "PgConnection::is_default")]
    pub connection: PgConnection,
}

/// How the engine connects to a PostgreSQL server: TLS with libpq's parameters and meanings (these override the
/// same parameters in the URL), and how long a lost connection is retried.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct PgConnection {
    /// TLS: disable, allow, prefer, require, verify-ca or verify-full. Default: the URL's sslmode, else
    /// verify-full for a server on another machine and prefer for one on this machine.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslmode: Option<SslMode>,
    /// The CA certificate(s) to trust (PEM file), e.g. your provider's CA bundle. Default: the system's roots.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslrootcert: Option<FilePath>,
    /// A client certificate (PEM file), for servers that ask for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslcert: Option<FilePath>,
    /// The client certificate's private key (PEM file).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sslkey: Option<FilePath>,
    /// Seconds a lost connection (a restart, a failover) is retried before the run fails (default 120).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "number | null")]
    pub reconnect_s: Option<u64>,
    /// statement_timeout of the engine's statements, in seconds (default 900; 0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "number | null")]
    pub statement_timeout_s: Option<u64>,
    /// lock_timeout of the engine's statements, in seconds (default 60; 0 = none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(type = "number | null")]
    pub lock_timeout_s: Option<u64>,
}

impl PgConnection {
    pub fn is_default(&self) -> bool {
        self == &PgConnection::default()
    }
}

/// libpq's sslmode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    /// Plaintext only.
    Disable,
    /// Plaintext, or TLS if the server insists.
    Allow,
    /// TLS if the server offers it, else plaintext.
    Prefer,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS with a certificate signed by a trusted CA.
    VerifyCa,
    /// TLS with a trusted certificate issued for the host name connected to.
    VerifyFull,
}

impl SslMode {
    pub fn parse(text: &str) -> Option<SslMode> {
        serde_json::from_value(serde_json::Value::String(text.to_owned())).ok()
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SslMode::Disable => "disable",
            SslMode::Allow => "allow",
            SslMode::Prefer => "prefer",
            SslMode::Require => "require",
            SslMode::VerifyCa => "verify-ca",
            SslMode::VerifyFull => "verify-full",
        }
    }
}

/// A path to a file on this machine; the console offers a file picker for it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(transparent)]
pub struct FilePath(pub String);

/// A string in the file, named `FilePath` in the schema (the derive would inline a transparent type as a plain
/// string): the console's forms recognise a path field by that name, as they recognise `Secret`.
impl JsonSchema for FilePath {
    fn schema_name() -> String {
        "FilePath".to_owned()
    }

    fn json_schema(generator: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
        String::json_schema(generator)
    }
}

/// The embedded demo: an emulated Bubble app on 127.0.0.1 (customers, invoices, line items) with hostile field
/// names, so the mapping editor has something to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct DemoSource {
    /// How many things the demo app has in all.
    #[serde(default = "demo_rows")]
    pub rows: u32,
}

fn one() -> u32 {
    1
}

fn demo_rows() -> u32 {
    2_500
}

/// How the source authenticates requests.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum Auth {
    #[default]
    None,
    /// `Authorization: Bearer TOKEN`.
    Bearer { token: Secret },
    /// POST `{"username", "password"}` to `base_url + path`; the reply's `token_field` is the bearer token.
    Login {
        path: String,
        username: String,
        password: Secret,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token_field: Option<String>,
    },
    /// A service JWT signed with HS256 by the engine itself (claims + `iat` + `exp`), renewed before it expires.
    #[serde(rename = "jwt_hs256")]
    JwtHs256 {
        secret: Secret,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        #[ts(type = "Record<string, unknown>")]
        claims: BTreeMap<String, serde_json::Value>,
        #[serde(default = "jwt_ttl")]
        ttl_s: u32,
    },
}

fn jwt_ttl() -> u32 {
    300
}

/// A reference to a secret: never the secret itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema, TS)]
#[serde(untagged)]
pub enum Secret {
    /// Read from this environment variable.
    Env { env: String },
    /// Read from this entry of the OS keychain (service "syncflow").
    Keychain { keychain: String },
}

impl Secret {
    /// Where the secret lives, for messages (never the value).
    pub fn describe(&self) -> String {
        match self {
            Secret::Env { env } => format!("environment variable {env}"),
            Secret::Keychain { keychain } => format!("keychain entry \"{keychain}\""),
        }
    }
}

pub const LITERAL_SECRET_HELP: &str = "a secret cannot be written into a pipeline file; store it in the \
keychain with `syncflow secret set NAME` and write { keychain = \"NAME\" }, or put it in an environment variable \
and write { env = \"VAR\" }";

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("{ env = \"VAR\" } or { keychain = \"entry\" }")
    }

    fn visit_str<E: serde::de::Error>(self, _literal: &str) -> Result<Secret, E> {
        Err(E::custom(LITERAL_SECRET_HELP))
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Secret, A::Error> {
        use serde::de::Error;
        let mut found: Option<Secret> = None;
        while let Some(key) = map.next_key::<String>()? {
            let value: String = map.next_value()?;
            let secret = match key.as_str() {
                "env" => Secret::Env { env: value },
                "keychain" => Secret::Keychain { keychain: value },
                other => {
                    return Err(A::Error::custom(format!(
                    "unknown key `{other}` in a secret reference; expected {{ env = \"VAR\" }} or \
                         {{ keychain = \"entry\" }}"
                )))
                }
            };
            if found.replace(secret).is_some() {
                return Err(A::Error::custom(
                    "a secret reference has exactly one of `env` or `keychain`",
                ));
            }
        }
        found.ok_or_else(|| {
            A::Error::custom(
                "empty secret reference; expected { env = \"VAR\" } or { keychain = \"entry\" }",
            )
        })
    }
}

/// Where records go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum TargetConfig {
    Postgres(PostgresTarget),
    Sqlite(SqliteTarget),
    Rest(RestTarget),
}

/// A REST API that takes records (seed 003's INGEST): `POST {base_url}/{table}` creates (the target makes the id),
/// `PATCH`/`DELETE {base_url}/{table}/{id}` change and remove, `GET {base_url}/{table}?{key_field}=h1,h2` looks up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct RestTarget {
    /// Base URL; an entity's resource is `{base_url}/{table}`.
    pub base_url: String,
    /// How to authenticate (the kinds of a REST source).
    #[serde(default)]
    pub auth: Auth,
    /// Requests in flight at once.
    #[serde(default = "four")]
    pub concurrency: u32,
    /// Client-side request limit per minute (429 and 503 honour Retry-After).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    /// Records per `POST {resource}/batch`; 0 = one POST per record (also used when the target has no /batch).
    #[serde(default = "five_hundred")]
    pub batch_size: u32,
    /// The field where the target keeps BK_HASH (looked up by it).
    #[serde(default = "erp_key_hash")]
    pub key_field: String,
    /// The field where the target keeps DATA_HASH (an equal one means unchanged: no write).
    #[serde(default = "erp_data_hash")]
    pub data_hash_field: String,
    /// The field where the target keeps the rowversion.
    #[serde(default = "erp_rowversion")]
    pub rowversion_field: String,
    /// The target's record id, made by the target (PATCH and DELETE address it).
    #[serde(default = "uid")]
    pub id_field: String,
}

fn four() -> u32 {
    4
}
fn five_hundred() -> u32 {
    500
}
fn erp_key_hash() -> String {
    "erp_key_hash".into()
}
fn erp_data_hash() -> String {
    "erp_data_hash".into()
}
fn erp_rowversion() -> String {
    "erp_rowversion".into()
}
fn uid() -> String {
    "uid".into()
}

/// A PostgreSQL database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct PostgresTarget {
    /// `postgresql://user@host:port/db` — no password in the URL.
    pub url: String,
    /// The password, if the server asks for one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<Secret>,
    /// Schema of the target tables.
    #[serde(default = "public")]
    pub schema: String,
    /// TLS, timeouts and how connections ride out restarts.
    #[serde(default, skip_serializing_if = "PgConnection::is_default")]
    pub connection: PgConnection,
}

fn public() -> String {
    "public".to_owned()
}

/// An SQLite database file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct SqliteTarget {
    /// Path of the database file (relative paths are relative to the pipeline file).
    pub path: String,
}

/// The largest source reply accepted unless `max_page_bytes` says otherwise.
pub const DEFAULT_MAX_PAGE_BYTES: u64 = 256 << 20;

/// The share of a table's rows a pass may delete before the delete guard holds the deletes for a confirmation.
pub const DEFAULT_MAX_DELETE_FRACTION: f64 = 0.5;

/// One entity: a REST resource synced into one target table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct Entity {
    /// Name of the resource at the source.
    pub name: String,
    /// Target table (default: derived from name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// REST: the list endpoint, relative to base_url (default: "/" + name).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// REST: JSON pointer to the array of records in each reply (default: the reply itself, or "/data").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<String>,
    /// How the list endpoint pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pagination: Option<Pagination>,
    /// Fields that identify a record (default: ["id"]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub business_key: Vec<String>,
    /// Change detection strategy.
    #[serde(default)]
    pub delta: DeltaStrategy,
    /// Field holding the change stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rowversion: Option<String>,
    /// REST, with `delta = "rowversion"`: the query parameter asking for records changed since a stamp
    /// (`updated_since`); a pass after the first then reads only what changed since the target's highest stamp.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_param: Option<String>,
    /// What happens to target rows whose record disappeared from the source.
    #[serde(default)]
    pub deletes: DeleteMode,
    /// The delete guard: a pass that would delete more than this share of the table's live rows deletes none and
    /// the run ends failed, until confirmed (`syncflow run --confirm-deletes`, or Confirm deletes in the console).
    /// Default 0.5; 1.0 turns the guard off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delete_fraction: Option<f64>,
    /// Who wins when both sides changed.
    #[serde(default)]
    pub conflicts: ConflictStrategy,
    /// Parent references (resolved in a later stage).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parents: Vec<ParentRef>,
    /// The analyst's choices per source field (by its original name): its Prisma name, its type, or leaving it out.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub fields: BTreeMap<String, FieldOverride>,
    /// PostgreSQL source: a query to read instead of the table `name` (its business key must be given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub query: Option<String>,
}

/// An analyst's override of one field; what is not set stays as discovered.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct FieldOverride {
    /// The Prisma field name to use instead of the sanitised one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The type to use instead of the inferred one.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    #[ts(rename = "type")]
    pub ty: Option<ColumnType>,
    /// Leave the field out of the target and the schema.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub exclude: bool,
    /// Text rules, applied in order to the field's text values (nothing is changed unless asked for).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub text: Vec<TextRule>,
    /// Numbers written as text use a decimal comma (`1.000,50`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub decimal_comma: bool,
    /// The value (as text, read as the field's type) for records that omit the field or send null.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<String>,
    /// Records without a value (after the default) fail validation, naming the field.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub required: bool,
}

/// The target type of a field.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text, kept byte for byte.
    Text,
    /// A whole number that fits 64 bits.
    Integer,
    /// An exact decimal number (integers included).
    Numeric,
    Boolean,
    /// A point in time, kept as ISO 8601 UTC with milliseconds (`timestamptz` in PostgreSQL). Declared by the
    /// source (Bubble's `date`), chosen by the analyst, or inferred when every sampled text reads as a date.
    #[serde(rename = "datetime")]
    DateTime,
    /// Objects, arrays and mixed values.
    Json,
}

/// A rule of NORMALIZE's text layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
pub enum TextRule {
    /// Leading and trailing white space removed.
    Trim,
    /// Unicode NFC (composed characters: `e` + `◌́` → `é`).
    Nfc,
    /// Control characters removed (tabs and line breaks kept).
    StripControl,
    /// Line endings made `\n` (CRLF and CR).
    Newlines,
    Uppercase,
    Lowercase,
}

impl Entity {
    /// An entity with every default: the source's own name, no overrides.
    pub fn named(name: &str) -> Entity {
        Entity {
            name: name.to_owned(),
            table: None,
            path: None,
            records: None,
            pagination: None,
            business_key: Vec::new(),
            delta: DeltaStrategy::default(),
            rowversion: None,
            since_param: None,
            deletes: DeleteMode::default(),
            max_delete_fraction: None,
            conflicts: ConflictStrategy::default(),
            parents: Vec::new(),
            fields: BTreeMap::new(),
            query: None,
        }
    }

    /// The share of the table's live rows a pass may delete without a confirmation (1.0: any).
    pub fn delete_guard(&self) -> f64 {
        self.max_delete_fraction
            .unwrap_or(DEFAULT_MAX_DELETE_FRACTION)
    }

    /// The target table's name.
    pub fn table_name(&self) -> &str {
        self.table.as_deref().unwrap_or(&self.name)
    }

    /// The business key fields, with the default applied.
    pub fn key_fields(&self) -> Vec<String> {
        if self.business_key.is_empty() {
            vec!["id".to_owned()]
        } else {
            self.business_key.clone()
        }
    }
}

/// How a REST list endpoint pages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Pagination {
    /// `?page=N&page_size=S`, N counting from `first`.
    Page {
        #[serde(default = "page_param")]
        page_param: String,
        #[serde(default = "size_param")]
        size_param: String,
        #[serde(default = "page_size")]
        size: u32,
        #[serde(default = "one")]
        first: u32,
    },
    /// `?offset=N&limit=S`.
    Offset {
        #[serde(default = "offset_param")]
        offset_param: String,
        #[serde(default = "limit_param")]
        limit_param: String,
        #[serde(default = "page_size")]
        size: u32,
    },
    /// `?cursor=TOKEN&limit=S`, the token of the next page read from each reply at the JSON pointer `next`
    /// (missing, null or empty: the last page).
    Cursor {
        #[serde(default = "cursor_param")]
        cursor_param: String,
        /// JSON pointer to the next page's token in each reply.
        next: String,
        #[serde(default = "limit_param")]
        size_param: String,
        #[serde(default = "page_size")]
        size: u32,
    },
    /// The next page's URL: from the RFC 8288 `Link: <…>; rel="next"` header, or from the reply at the JSON pointer
    /// `next` when given.
    Link {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    },
}

fn page_param() -> String {
    "page".to_owned()
}
fn size_param() -> String {
    "page_size".to_owned()
}
fn cursor_param() -> String {
    "cursor".to_owned()
}
fn offset_param() -> String {
    "offset".to_owned()
}
fn limit_param() -> String {
    "limit".to_owned()
}
fn page_size() -> u32 {
    1000
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum DeltaStrategy {
    Full,
    #[default]
    Hash,
    Rowversion,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "lowercase")]
pub enum DeleteMode {
    #[default]
    None,
    Soft,
    Hard,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema, TS)]
#[serde(rename_all = "snake_case")]
pub enum ConflictStrategy {
    #[default]
    SourceWins,
    TargetWins,
    LastWriteWins,
    Manual,
}

impl ConflictStrategy {
    pub fn as_str(self) -> &'static str {
        match self {
            ConflictStrategy::SourceWins => "source_wins",
            ConflictStrategy::TargetWins => "target_wins",
            ConflictStrategy::LastWriteWins => "last_write_wins",
            ConflictStrategy::Manual => "manual",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema, TS)]
#[serde(deny_unknown_fields)]
pub struct ParentRef {
    pub field: String,
    pub entity: String,
}

/// A pipeline file that cannot be used, with where and why.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{origin}: line {line}: {message}")]
    Parse {
        origin: String,
        line: usize,
        message: String,
    },
    #[error("{origin}: {message}")]
    Invalid { origin: String, message: String },
}

impl Pipeline {
    /// Parses a pipeline file's text; `origin` names it in errors (a path, or "pipeline").
    pub fn from_toml(text: &str, origin: &str) -> Result<Pipeline, ConfigError> {
        let pipeline: Pipeline = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1))
                .unwrap_or(0);
            ConfigError::Parse {
                origin: origin.to_owned(),
                line,
                message: e.message().trim().to_owned(),
            }
        })?;
        pipeline
            .validate()
            .map_err(|message| ConfigError::Invalid {
                origin: origin.to_owned(),
                message,
            })?;
        Ok(pipeline)
    }

    /// The pipeline file's text (exported form; holds only secret references).
    pub fn to_toml(&self) -> Result<String, ConfigError> {
        toml::to_string_pretty(self).map_err(|e| ConfigError::Invalid {
            origin: self.name.clone(),
            message: e.to_string(),
        })
    }

    /// Checks what can be checked without the network or files.
    pub fn validate(&self) -> Result<(), String> {
        self.validate_definition()?;
        match &self.schedule {
            Some(schedule) => crate::schedule::Plan::parse(schedule).map(|_| ()),
            None => Ok(()),
        }
    }

    /// A pipeline stored before a schedule rule was tightened (e.g. six-field cron patterns, once accepted) still
    /// loads — to be listed, run by hand and fixed in the schedule editor; the scheduler skips a schedule it cannot
    /// read and says why. Everything else is checked as for a new pipeline.
    pub fn from_stored_toml(text: &str, origin: &str) -> Result<Pipeline, ConfigError> {
        let pipeline: Pipeline = toml::from_str(text).map_err(|e| ConfigError::Parse {
            origin: origin.to_owned(),
            line: 0,
            message: e.message().trim().to_owned(),
        })?;
        pipeline
            .validate_definition()
            .map_err(|message| ConfigError::Invalid {
                origin: origin.to_owned(),
                message,
            })?;
        Ok(pipeline)
    }

    /// [`Pipeline::validate`] without the schedule.
    pub fn validate_definition(&self) -> Result<(), String> {
        if self.version != 1 {
            return Err(format!(
                "version = {} is not supported; this engine reads version = 1",
                self.version
            ));
        }
        if self.name.trim().is_empty() {
            return Err("name is empty; give the pipeline a unique name".into());
        }
        if self.source.names_entities() && self.entities.is_empty() {
            return Err(format!(
                "a {} source needs at least one [[entities]] block ({})",
                self.source.kind(),
                match self.source {
                    SourceConfig::Postgres(_) => "name = the table",
                    _ => "name = the resource",
                }
            ));
        }
        match &self.source {
            SourceConfig::Rest(rest) => {
                check_url(&rest.base_url, "source.base_url")?;
                if rest.concurrency == 0 {
                    return Err("source.concurrency must be at least 1".into());
                }
            }
            SourceConfig::Bubble(bubble) => {
                check_url(&bubble.base_url, "source.base_url")?;
                if bubble.concurrency == 0 {
                    return Err("source.concurrency must be at least 1".into());
                }
                if !bubble.base_url.trim_end_matches('/').ends_with("/api/1.1") {
                    return Err(format!(
                        "source.base_url = \"{}\" must end with /api/1.1 (e.g. https://APP.bubbleapps.io/version-test/api/1.1)",
                        bubble.base_url
                    ));
                }
                for entity in &self.entities {
                    let set = [
                        ("path", entity.path.is_some()),
                        ("records", entity.records.is_some()),
                        ("pagination", entity.pagination.is_some()),
                    ];
                    if let Some((key, _)) = set.iter().find(|(_, on)| *on) {
                        return Err(format!(
                            "entities \"{}\": `{key}` does not apply to a bubble source (pages are Bubble's cursor/limit); remove it",
                            entity.name
                        ));
                    }
                }
            }
            SourceConfig::Postgres(pg) => {
                check_pg_url(&pg.url, "source")?;
                if pg.page_size == 0 {
                    return Err("source.page_size must be at least 1".into());
                }
                for entity in &self.entities {
                    if entity.query.is_some() && entity.business_key.is_empty() {
                        return Err(format!(
                            "entities \"{}\": a query needs business_key = [...] (the columns that identify a row)",
                            entity.name
                        ));
                    }
                }
            }
            SourceConfig::Demo(_) => {}
        }
        if let TargetConfig::Postgres(pg) = &self.target {
            check_pg_url(&pg.url, "target")?;
        }
        if let TargetConfig::Rest(rest) = &self.target {
            check_rest_target(rest)?;
            if let Some(entity) = self.entities.iter().find(|e| e.deletes == DeleteMode::Soft) {
                return Err(format!(
                    "entities \"{}\": deletes = \"soft\" needs a database target (a REST target has no column to \
                     mark deleted rows in); use deletes = \"hard\" (DELETE calls) or \"none\"",
                    entity.name
                ));
            }
        }
        if matches!(self.target, TargetConfig::Sqlite(_) | TargetConfig::Rest(_)) {
            if let Some(entity) = self
                .entities
                .iter()
                .find(|e| e.conflicts != ConflictStrategy::SourceWins)
            {
                return Err(format!(
                    "entities \"{}\": conflicts = \"{}\" needs a PostgreSQL target (edits made in a SQLite file \
                     or behind a REST API are not tracked); use conflicts = \"source_wins\" or a postgres target",
                    entity.name,
                    entity.conflicts.as_str()
                ));
            }
        }
        let mut seen = std::collections::HashSet::new();
        for entity in &self.entities {
            if entity.name.is_empty() {
                return Err("an entity has an empty name".into());
            }
            if let Some(f) = entity.max_delete_fraction {
                if !(0.0..=1.0).contains(&f) {
                    return Err(format!(
                        "entities \"{}\": max_delete_fraction = {f} is not a share; give a number from 0 to 1 \
                         (0.5: a pass may delete up to half the rows; 1: no guard)",
                        entity.name
                    ));
                }
            }
            if !seen.insert(entity.table_name().to_owned()) {
                return Err(format!(
                    "two entities write to table \"{}\"; give one a different `table`",
                    entity.table_name()
                ));
            }
            if let Some(pointer) = &entity.records {
                if !pointer.is_empty() && !pointer.starts_with('/') {
                    return Err(format!(
                        "entities \"{}\": records = \"{pointer}\" is not a JSON pointer; write it as \"/{pointer}\"",
                        entity.name
                    ));
                }
            }
            for (source, rule) in &entity.fields {
                if let Some(name) = &rule.name {
                    if !crate::names::is_valid_identifier(name) {
                        return Err(format!(
                            "entities \"{}\": fields.\"{source}\".name = \"{name}\" is not a valid field name; use letters, \
                             digits and _, starting with a letter, at most 63 characters",
                            entity.name
                        ));
                    }
                }
                if rule.exclude && entity.key_fields().contains(source) {
                    return Err(format!(
                        "entities \"{}\": field \"{source}\" is part of the business key and cannot be excluded",
                        entity.name
                    ));
                }
            }
            if entity.key_fields().iter().any(|k| k.is_empty()) {
                return Err(format!(
                    "entities \"{}\": business_key has an empty field name",
                    entity.name
                ));
            }
        }
        Ok(())
    }
}

fn check_url(url: &str, key: &str) -> Result<(), String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|e| format!("{key} = \"{url}\" is not a URL ({e})"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!("{key} must start with http:// or https://"));
    }
    let credential_param = parsed.query_pairs().any(|(k, _)| is_credential_param(&k));
    if !parsed.password().unwrap_or("").is_empty() || credential_param {
        return Err(format!("{key} contains a password; {LITERAL_SECRET_HELP}"));
    }
    Ok(())
}

/// Whether a URL query parameter by this name carries a credential (refused in base_url, hidden in messages).
pub fn is_credential_param(name: &str) -> bool {
    const NAMES: [&str; 10] = [
        "password",
        "passwd",
        "pwd",
        "token",
        "access_token",
        "api_key",
        "apikey",
        "key",
        "secret",
        "client_secret",
    ];
    NAMES.iter().any(|n| n.eq_ignore_ascii_case(name))
}

/// A REST target's settings that cannot work: a base URL that is not http(s), empty field names, no requests.
fn check_rest_target(rest: &RestTarget) -> Result<(), String> {
    // The same rules as a source's base URL: http(s), and no credential in it.
    check_url(&rest.base_url, "target.base_url")?;
    if rest.concurrency == 0 {
        return Err("target.concurrency must be at least 1".into());
    }
    let fields = [
        ("key_field", &rest.key_field),
        ("data_hash_field", &rest.data_hash_field),
        ("rowversion_field", &rest.rowversion_field),
        ("id_field", &rest.id_field),
    ];
    if let Some((name, _)) = fields.iter().find(|(_, v)| v.trim().is_empty()) {
        return Err(format!(
            "target.{name} is empty; name the target's field (or remove it for the default)"
        ));
    }
    Ok(())
}

fn check_pg_url(url: &str, part: &str) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| {
        format!("{part}.url is not a URL; write postgresql://user@host:port/database")
    })?;
    if !matches!(parsed.scheme(), "postgres" | "postgresql") {
        return Err(format!("{part}.url must start with postgresql://"));
    }
    let password_param = parsed.query_pairs().any(|(k, _)| k == "password");
    if parsed.password().is_some() || password_param {
        return Err(format!(
            "{part}.url contains a password; remove it from the URL and set {part}.password: {LITERAL_SECRET_HELP}"
        ));
    }
    if let Some((_, mode)) = parsed.query_pairs().find(|(k, _)| k == "sslmode") {
        if SslMode::parse(&mode).is_none() {
            return Err(format!(
                "{part}.url has sslmode={mode}; use disable, allow, prefer, require, verify-ca or verify-full"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
version = 1
name = "erp-items"
[source]
kind = "rest"
base_url = "http://127.0.0.1:8080"
auth = { kind = "login", path = "/auth/token", username = "svc", password = { env = "ERP_PASSWORD" } }
[target]
kind = "postgres"
url = "postgresql://svc@127.0.0.1:5432/erp"
[[entities]]
name = "items"
records = "/data"
pagination = { kind = "page", page_param = "page", size_param = "page_size", size = 1000, first = 1 }
business_key = ["part_no"]
"#;

    #[test]
    fn parses_the_contract_example() {
        let p = Pipeline::from_toml(MINIMAL, "p.toml").unwrap();
        assert_eq!(p.name, "erp-items");
        let SourceConfig::Rest(rest) = &p.source else {
            panic!("rest expected")
        };
        assert_eq!(rest.concurrency, 1);
        assert!(
            matches!(&rest.auth, Auth::Login { password: Secret::Env { env }, .. } if env == "ERP_PASSWORD")
        );
        assert_eq!(p.entities[0].key_fields(), vec!["part_no"]);
        let TargetConfig::Postgres(pg) = &p.target else {
            panic!("postgres expected")
        };
        assert_eq!(pg.schema, "public");
    }

    #[test]
    fn export_and_import_round_trip_unchanged() {
        let p = Pipeline::from_toml(MINIMAL, "p.toml").unwrap();
        let again = Pipeline::from_toml(&p.to_toml().unwrap(), "export").unwrap();
        assert_eq!(p, again);
    }

    #[test]
    fn unknown_key_is_named() {
        let text = MINIMAL.replace(
            "name = \"items\"",
            "name = \"items\"\nbusines_key = [\"x\"]",
        );
        let err = Pipeline::from_toml(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("busines_key"), "{err}");
        assert!(err.contains("p.toml: line"), "{err}");
    }

    #[test]
    fn literal_secret_is_refused_without_echoing_it() {
        let text = MINIMAL.replace("{ env = \"ERP_PASSWORD\" }", "\"hunter2-very-secret\"");
        let err = Pipeline::from_toml(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("syncflow secret set"), "{err}");
        assert!(
            !err.contains("hunter2"),
            "the secret leaked into the error: {err}"
        );
    }

    #[test]
    fn a_rest_target_is_read_with_its_defaults_and_what_it_cannot_do_is_refused() {
        let rest = |target_extra: &str, entity_extra: &str| {
            format!(
                "version = 1\nname = \"p\"\n[source]\nkind = \"rest\"\nbase_url = \"http://erp\"\n\
                 [target]\nkind = \"rest\"\nbase_url = \"https://hub.example.com/api/v1\"\n{target_extra}\n\
                 [[entities]]\nname = \"items\"\npath = \"/items\"\n{entity_extra}\n"
            )
        };
        let p = Pipeline::from_toml(&rest("", ""), "p.toml").unwrap();
        let TargetConfig::Rest(t) = &p.target else {
            panic!("not a REST target: {:?}", p.target);
        };
        assert_eq!(
            (
                t.concurrency,
                t.batch_size,
                t.key_field.as_str(),
                t.id_field.as_str()
            ),
            (4, 500, "erp_key_hash", "uid")
        );
        let refused = |text: String| {
            Pipeline::from_toml(&text, "p.toml")
                .unwrap_err()
                .to_string()
        };
        let err = refused(rest("", "deletes = \"soft\""));
        assert!(err.contains("deletes = \"hard\""), "{err}");
        let err = refused(rest("", "conflicts = \"target_wins\""));
        assert!(err.contains("source_wins"), "{err}");
        let err = refused(rest("", "").replace("api/v1\"", "api/v1?token=hub-s3cret\""));
        assert!(
            err.contains("target.base_url") && !err.contains("hub-s3cret"),
            "{err}"
        );
        let err = refused(rest("key_field = \" \"", ""));
        assert!(err.contains("target.key_field"), "{err}");
    }

    #[test]
    fn password_in_postgres_url_is_refused_without_echoing_it() {
        let text = MINIMAL.replace("svc@127.0.0.1:5432", "svc:s3cr3t-pw@127.0.0.1:5432");
        let err = Pipeline::from_toml(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("target.password"), "{err}");
        assert!(!err.contains("s3cr3t-pw"), "{err}");
    }

    #[test]
    fn field_overrides_round_trip_and_are_checked() {
        let text = format!(
            "{MINIMAL}\n[entities.fields.\"2nd Payment %\"]\nname = \"secondPayment\"\ntype = \"numeric\"\n\n[entities.fields.\"Internal\"]\nexclude = true\n"
        );
        let p = Pipeline::from_toml(&text, "p.toml").unwrap();
        let rule = &p.entities[0].fields["2nd Payment %"];
        assert_eq!(
            (rule.name.as_deref(), rule.ty),
            (Some("secondPayment"), Some(ColumnType::Numeric))
        );
        assert!(p.entities[0].fields["Internal"].exclude);
        assert_eq!(
            Pipeline::from_toml(&p.to_toml().unwrap(), "export").unwrap(),
            p
        );
        let bad = text.replace("secondPayment", "2nd-payment");
        let err = Pipeline::from_toml(&bad, "p.toml").unwrap_err().to_string();
        assert!(
            err.contains("2nd-payment") && err.contains("not a valid field name"),
            "{err}"
        );
    }

    #[test]
    fn unknown_auth_key_is_named() {
        let text = MINIMAL.replace("username = \"svc\"", "user = \"svc\"");
        let err = Pipeline::from_toml(&text, "p.toml")
            .unwrap_err()
            .to_string();
        assert!(err.contains("user"), "{err}");
    }
}
