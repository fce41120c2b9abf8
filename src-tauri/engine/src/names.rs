//! The NameSanitiser (seeds 000/001): turns any source name into a valid, collision-free Prisma name.
//! Pure, fast and deterministic: the same set of source names always gives the same names, in any order.
//!
//! Field names go through eight steps: (1) emoji dropped and Unicode transliterated to ASCII, (2) symbols that
//! carry meaning become words (`%` → Percent) and other characters separate words, (3) spaces normalised,
//! (4) camelCase, (5) a numeric start prefixed `f`, (6) reserved words suffixed `Field`, (7) cut to 63 characters,
//! (8) a name with nothing left becomes `field_` + a stable hash of the original. Collisions within a model are then
//! resolved by suffixes 2, 3, … assigned in byte order of the originals.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap, HashSet};
use ts_rs::TS;

/// Longest name produced (PostgreSQL's identifier limit, the seeds' bar).
pub const MAX_NAME_LEN: usize = 63;

/// Field names the generated model uses itself or that the seeds reserve.
const RESERVED_FIELDS: &[&str] = &[
    // the seeds' list
    "id",
    "select",
    "data",
    "create",
    "update",
    "delete",
    "where",
    "orderBy",
    "groupBy",
    "having",
    "join",
    "union",
    "distinct",
    // the generated model's own fields
    "bubbleId",
    "bridgeKeyHash",
    "bridgeDataHash",
    "bridgeRowversion",
    "bridgeSyncedAt",
    "bridgeRunId",
    "bridgeDeletedAt",
    "bridgeEditedAt",
    "bridgeSynced",
];

/// Model (and enum) names Prisma rejects or that shadow its types.
const RESERVED_MODELS: &[&str] = &[
    "PrismaClient",
    "Prisma",
    "String",
    "Boolean",
    "Int",
    "BigInt",
    "Float",
    "Decimal",
    "DateTime",
    "Json",
    "Bytes",
    "Unsupported",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "debugger",
    "default",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "false",
    "finally",
    "for",
    "function",
    "if",
    "implements",
    "import",
    "in",
    "instanceof",
    "interface",
    "let",
    "new",
    "null",
    "package",
    "private",
    "protected",
    "public",
    "return",
    "super",
    "switch",
    "this",
    "throw",
    "true",
    "try",
    "typeof",
    "var",
    "void",
    "while",
    "with",
    "yield",
];

/// Symbols that carry meaning in field names, spelled as words.
const SYMBOL_WORDS: &[(char, &str)] = &[
    ('%', "Percent"),
    ('#', "Number"),
    ('$', "Dollar"),
    ('€', "Euro"),
    ('£', "Pound"),
    ('¥', "Yen"),
    ('&', "And"),
    ('@', "At"),
    ('+', "Plus"),
];

/// What the sanitiser did to a name, for the mapping editor's badges and explanations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// Non-ASCII letters were transliterated or emoji removed.
    Transliterated,
    /// `%`, `#`, `$`… became words.
    SymbolsSpelled,
    /// Other characters were removed.
    CharactersRemoved,
    /// Starts with a digit: prefixed `f`.
    NumericPrefix,
    /// A reserved word: suffixed `Field`.
    ReservedWord,
    /// Longer than 63 characters: cut.
    Truncated,
    /// Nothing usable was left: named from a hash of the original.
    Fallback,
    /// Another original gave the same name: a number was appended.
    Collision,
    /// Named by the analyst.
    Renamed,
    /// Bubble's unique id `_id`: `bubbleId`, as seed 001's model template has it.
    BubbleId,
}

impl Change {
    pub fn describe(self) -> &'static str {
        match self {
            Change::Transliterated => "transliterated",
            Change::SymbolsSpelled => "symbols spelled out",
            Change::CharactersRemoved => "characters removed",
            Change::NumericPrefix => "numeric prefix",
            Change::ReservedWord => "reserved word",
            Change::Truncated => "truncated",
            Change::Fallback => "fallback name",
            Change::BubbleId => "Bubble's unique id",
            Change::Collision => "collision",
            Change::Renamed => "renamed by you",
        }
    }
}

/// A sanitised name before collisions are resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sanitised {
    pub name: String,
    pub changes: Vec<Change>,
}

/// A field's final name within its model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct FieldName {
    pub source: String,
    pub field: String,
    /// The other originals that sanitised to the same name.
    pub collides_with: Vec<String>,
    pub changes: Vec<Change>,
    /// Why the name cannot be used (an analyst's name that is taken or reserved).
    pub error: Option<String>,
}

impl FieldName {
    /// The changes as a short note ("numeric prefix, symbols spelled out").
    pub fn note(&self) -> String {
        self.changes
            .iter()
            .map(|c| c.describe())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Steps 1–8 for a field name (collisions aside).
pub fn sanitise_field(original: &str) -> Sanitised {
    let mut changes = Vec::new();
    let words = words_of(original, &mut changes);
    let mut name = camel_case(&words);
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 'f');
        changes.push(Change::NumericPrefix);
    }
    if RESERVED_FIELDS.contains(&name.as_str()) {
        name.push_str("Field");
        changes.push(Change::ReservedWord);
    }
    if name.len() > MAX_NAME_LEN {
        name.truncate(MAX_NAME_LEN);
        changes.push(Change::Truncated);
    }
    if name.is_empty() {
        name = fallback_name("field_", original);
        changes.push(Change::Fallback);
    }
    Sanitised { name, changes }
}

/// A model name: PascalCase, never a reserved type name.
pub fn sanitise_model(original: &str) -> Sanitised {
    let mut changes = Vec::new();
    let words = words_of(original, &mut changes);
    let mut name: String = words.iter().map(|w| upper_first(w)).collect();
    if name.starts_with(|c: char| c.is_ascii_digit()) {
        name.insert(0, 'M');
        changes.push(Change::NumericPrefix);
    }
    if RESERVED_MODELS.contains(&name.as_str()) {
        name.push_str("Model");
        changes.push(Change::ReservedWord);
    }
    if name.len() > MAX_NAME_LEN {
        name.truncate(MAX_NAME_LEN);
        changes.push(Change::Truncated);
    }
    if name.is_empty() {
        name = fallback_name("Model", original);
        changes.push(Change::Fallback);
    }
    Sanitised { name, changes }
}

/// Names every field of one model: sanitised, then collisions resolved — an original that needs no change keeps
/// its name, the others take suffixes 2, 3, … in byte order. The result follows the input order; the names depend
/// only on the set of originals.
pub fn name_fields(originals: &[String]) -> Vec<FieldName> {
    resolve(originals, sanitise_field)
}

/// Names fields of which some were named by the analyst (`pinned`, by source): those keep the chosen name, the
/// others are named as usual. A chosen name that is reserved or that another field also has is reported on the
/// field — the schema cannot be generated until it is changed.
pub fn name_fields_pinned(
    originals: &[String],
    pinned: &BTreeMap<String, String>,
) -> Vec<FieldName> {
    let mut named = name_fields(originals);
    for f in named.iter_mut() {
        if let Some(chosen) = pinned.get(&f.source) {
            f.field = chosen.clone();
            f.changes = vec![Change::Renamed];
            f.collides_with.clear();
        }
    }
    let mut holders: HashMap<String, Vec<String>> = HashMap::new();
    for f in &named {
        holders
            .entry(f.field.clone())
            .or_default()
            .push(f.source.clone());
    }
    for f in named.iter_mut().filter(|f| pinned.contains_key(&f.source)) {
        let others: Vec<String> = holders[&f.field]
            .iter()
            .filter(|s| **s != f.source)
            .cloned()
            .collect();
        if !is_valid_identifier(&f.field) {
            f.error = Some(format!(
                "\"{}\" is not a valid field name: letters, digits and _, starting with a letter",
                f.field
            ));
        } else if RESERVED_FIELDS.contains(&f.field.as_str()) {
            f.error = Some(format!("\"{}\" is reserved; choose another name", f.field));
        } else if !others.is_empty() {
            f.error = Some(format!(
                "\"{}\" is already the name of {}",
                f.field,
                quoted_list(&others)
            ));
            f.collides_with = others;
        }
    }
    named
}

fn quoted_list(items: &[String]) -> String {
    items
        .iter()
        .map(|s| format!("\"{s}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Names every model of a schema (collisions across entities resolved the same way).
pub fn name_models(originals: &[String]) -> Vec<FieldName> {
    resolve(originals, sanitise_model)
}

fn resolve(originals: &[String], sanitise: fn(&str) -> Sanitised) -> Vec<FieldName> {
    let mut sorted: Vec<&String> = originals.iter().collect();
    sorted.sort_by(|a, b| a.as_bytes().cmp(b.as_bytes()));
    sorted.dedup();
    let sanitised: Vec<(&String, Sanitised)> = sorted.iter().map(|o| (*o, sanitise(o))).collect();
    let mut groups: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, s)) in sanitised.iter().enumerate() {
        groups.entry(s.name.as_str()).or_default().push(i);
    }
    let mut taken: HashSet<String> = groups.keys().map(|k| (*k).to_owned()).collect();
    let mut named: HashMap<&str, FieldName> = HashMap::with_capacity(sanitised.len());
    for members in groups.values_mut() {
        // An original that is already its own sanitised name keeps it (so no field is named after another
        // field's column, which Prisma rejects); the rest keep byte order.
        members.sort_by_key(|&i| sanitised[i].0.as_str() != sanitised[i].1.name);
        for (rank, &i) in members.iter().enumerate() {
            let (original, s) = &sanitised[i];
            let mut changes = s.changes.clone();
            let field = if rank == 0 {
                s.name.clone()
            } else {
                changes.push(Change::Collision);
                next_free(&s.name, &mut taken)
            };
            let collides_with = members
                .iter()
                .filter(|&&j| j != i)
                .map(|&j| sanitised[j].0.clone())
                .collect();
            named.insert(
                original.as_str(),
                FieldName {
                    source: (*original).clone(),
                    field,
                    collides_with,
                    changes,
                    error: None,
                },
            );
        }
    }
    originals
        .iter()
        .filter_map(|o| named.get(o.as_str()).cloned())
        .collect()
}

/// `base2`, `base3`, … (cut to fit 63 characters), the first not taken.
fn next_free(base: &str, taken: &mut HashSet<String>) -> String {
    for n in 2u32.. {
        let suffix = n.to_string();
        let mut stem = base.to_owned();
        stem.truncate(MAX_NAME_LEN - suffix.len());
        let candidate = format!("{stem}{suffix}");
        if taken.insert(candidate.clone()) {
            return candidate;
        }
    }
    unreachable!("u32 suffixes are never all taken")
}

/// Splits a name into ASCII words: emoji dropped, symbols spelled, letters transliterated, everything else a
/// separator.
fn words_of(original: &str, changes: &mut Vec<Change>) -> Vec<String> {
    let mut spelled = String::with_capacity(original.len() + 8);
    for ch in original.chars() {
        if let Some((_, word)) = SYMBOL_WORDS.iter().find(|(c, _)| *c == ch) {
            spelled.push(' ');
            spelled.push_str(word);
            spelled.push(' ');
            note(changes, Change::SymbolsSpelled);
        } else if is_pictograph(ch) {
            spelled.push(' ');
            note(changes, Change::Transliterated);
        } else if ch.is_ascii() {
            spelled.push(ch);
        } else {
            spelled.push_str(deunicode::deunicode_char(ch).unwrap_or(" "));
            note(changes, Change::Transliterated);
        }
    }
    let mut words = Vec::new();
    let mut current = String::new();
    for ch in spelled.chars() {
        if ch.is_ascii_alphanumeric() {
            current.push(ch);
        } else {
            if !matches!(ch, ' ' | '_' | '-' | '.') {
                note(changes, Change::CharactersRemoved);
            }
            if !current.is_empty() {
                words.push(std::mem::take(&mut current));
            }
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

fn note(changes: &mut Vec<Change>, change: Change) {
    if !changes.contains(&change) {
        changes.push(change);
    }
}

/// Emoji and other pictographs: dropped rather than spelled (`🚀` is not part of a field's meaning).
fn is_pictograph(ch: char) -> bool {
    matches!(ch as u32,
        0x1F000..=0x1FAFF | 0x2600..=0x27BF | 0x2B00..=0x2BFF | 0x2300..=0x23FF | 0xFE00..=0xFE0F | 0x200D
        | 0xE0000..=0xE007F)
}

/// camelCase: the first word starts lower-case (an all-capitals word or a leading acronym is lowered whole),
/// the others start upper-case.
fn camel_case(words: &[String]) -> String {
    let mut out = String::new();
    for (i, word) in words.iter().enumerate() {
        if i == 0 {
            out.push_str(&lower_first_word(word));
        } else {
            out.push_str(&upper_first(word));
        }
    }
    out
}

fn lower_first_word(word: &str) -> String {
    let letters: Vec<char> = word.chars().collect();
    let upper_run = letters
        .iter()
        .take_while(|c| c.is_ascii_uppercase())
        .count();
    if upper_run == letters.len() || upper_run <= 1 {
        let keep_from = if upper_run == letters.len() {
            letters.len()
        } else {
            1
        };
        return letters
            .iter()
            .enumerate()
            .map(|(i, c)| {
                if i < keep_from {
                    c.to_ascii_lowercase()
                } else {
                    *c
                }
            })
            .collect();
    }
    // "HTTPServer" → "httpServer": the acronym is lowered, the capital starting the next word kept.
    let followed_by_lower = letters
        .get(upper_run)
        .is_some_and(|c| c.is_ascii_lowercase());
    let lower_to = if followed_by_lower {
        upper_run - 1
    } else {
        upper_run
    };
    letters
        .iter()
        .enumerate()
        .map(|(i, c)| {
            if i < lower_to {
                c.to_ascii_lowercase()
            } else {
                *c
            }
        })
        .collect()
}

fn upper_first(word: &str) -> String {
    let mut chars = word.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => String::new(),
    }
}

/// `prefix` + six base-36 digits of a hash of the original: the same original always gets the same name.
fn fallback_name(prefix: &str, original: &str) -> String {
    let mut n = xxhash_rust::xxh3::xxh3_64(original.as_bytes());
    let mut digits = String::new();
    for _ in 0..6 {
        let d = (n % 36) as u32;
        digits.push(char::from_digit(d, 36).unwrap_or('0'));
        n /= 36;
    }
    format!("{prefix}{digits}")
}

/// Whether a name is a valid Prisma field or model identifier.
pub fn is_valid_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && name.len() <= MAX_NAME_LEN
}

#[cfg(test)]
mod tests;
