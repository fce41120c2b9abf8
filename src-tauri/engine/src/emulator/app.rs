//! The data of an emulated Bubble app, and a generated sample app: customers, invoices and line items with
//! references and lists between them, hostile field names, omitted empty fields, option sets, geographic addresses,
//! files, images, and messy text — deterministic, so tests can rebuild the expected target from it.

use serde_json::{json, Map, Value};

/// The fields Bubble adds to every thing; their keys are the same in both key styles.
pub const BUILT_IN_FIELDS: [&str; 4] = ["_id", "Created Date", "Modified Date", "Created By"];

/// A Bubble app: its data types and whether records are keyed by display names.
#[derive(Debug, Clone, PartialEq)]
pub struct BubbleApp {
    /// Bubble's "use display names for keys" setting (`app_data.use_captions_for_get` in `/meta`).
    pub use_captions_for_get: bool,
    pub types: Vec<BubbleType>,
}

/// One data type: its URL name, display name, fields, and things (keyed by display names).
#[derive(Debug, Clone, PartialEq)]
pub struct BubbleType {
    pub name: String,
    pub display: String,
    pub fields: Vec<BubbleField>,
    pub things: Vec<Map<String, Value>>,
}

/// A field as `/meta` lists it.
#[derive(Debug, Clone, PartialEq)]
pub struct BubbleField {
    pub id: String,
    pub display: String,
    pub ty: String,
}

impl BubbleApp {
    /// The `/meta` reply.
    pub fn meta(&self) -> Value {
        let mut types = Map::new();
        for ty in &self.types {
            let fields: Vec<Value> = ty
                .fields
                .iter()
                .map(|f| json!({"id": f.id, "display": f.display, "type": f.ty}))
                .collect();
            types.insert(
                ty.name.clone(),
                json!({"display": ty.display, "fields": fields}),
            );
        }
        json!({
            "get": self.types.iter().map(|t| t.name.clone()).collect::<Vec<_>>(),
            "post": [],
            "types": types,
            "app_data": {"use_captions_for_get": self.use_captions_for_get},
        })
    }

    pub fn get_type(&self, name: &str) -> Option<&BubbleType> {
        self.types.iter().find(|t| t.name == name)
    }

    pub fn get_type_mut(&mut self, name: &str) -> Option<&mut BubbleType> {
        self.types.iter_mut().find(|t| t.name == name)
    }
}

impl BubbleType {
    /// The display name a request's key means (ids are translated when the app keys records by id).
    pub fn display_of<'a>(&'a self, key: &'a str, use_captions: bool) -> &'a str {
        if use_captions {
            return key;
        }
        self.fields
            .iter()
            .find(|f| f.id == key)
            .map(|f| f.display.as_str())
            .unwrap_or(key)
    }

    /// A thing as the API returns it, keyed in the app's key style.
    pub fn keyed(&self, thing: &Map<String, Value>, use_captions: bool) -> Map<String, Value> {
        if use_captions {
            return thing.clone();
        }
        thing
            .iter()
            .map(|(display, value)| {
                let key = self
                    .fields
                    .iter()
                    .find(|f| &f.display == display)
                    .map(|f| f.id.clone())
                    .unwrap_or_else(|| display.clone());
                (key, value.clone())
            })
            .collect()
    }
}

/// How many things the sample app has of each type.
#[derive(Debug, Clone, Copy)]
pub struct Scale {
    pub customers: usize,
    pub invoices: usize,
    pub line_items: usize,
}

impl Scale {
    /// About `total` things: a tenth customers, four tenths invoices, the rest line items.
    pub fn total(total: usize) -> Scale {
        let customers = (total / 10).max(1);
        let invoices = (total * 4 / 10).max(1);
        Scale {
            customers,
            invoices,
            line_items: total.saturating_sub(customers + invoices).max(1),
        }
    }
}

/// The names a field gets as a long pair sharing their first 63 bytes (they must stay apart as columns).
pub const LONG_NAME_A: &str =
    "Quarterly revenue attributable to the customer's primary account manager (EUR)";
pub const LONG_NAME_B: &str =
    "Quarterly revenue attributable to the customer's primary account manager (USD)";

const NOTES: [&str; 9] = [
    "tab\there",
    "line1\nline2\r\nline3",
    "back\\slash \\N",
    "quote \" and ' and `",
    "emoji 🚀👩‍👩‍👧 ok",
    "RTL שלום עליכם",
    "   padded   ",
    "007",
    "Ünïcödé — «guillemets»",
];

const TIERS: [&str; 3] = ["Gold", "Silver", "Bronze & Co"];
const STATUSES: [&str; 4] = ["Open", "Paid", "Überfällig", "Written off"];

/// 2023-01-01T00:00:00Z in Unix milliseconds: things are created from then on.
const EPOCH_MS: i64 = 1_672_531_200_000;

/// The sample app.
pub fn sample_app(scale: Scale, use_captions_for_get: bool) -> BubbleApp {
    let mut customer = new_type("customer", "Customer", &CUSTOMER_FIELDS);
    customer.things = (0..scale.customers).map(customer_thing).collect();
    let mut invoice = new_type("invoice", "Invoice", &INVOICE_FIELDS);
    invoice.things = (0..scale.invoices)
        .map(|i| invoice_thing(i, scale))
        .collect();
    let mut line_item = new_type("lineitem", "Line Item", &LINE_ITEM_FIELDS);
    line_item.things = (0..scale.line_items)
        .map(|i| line_item_thing(i, scale))
        .collect();
    BubbleApp {
        use_captions_for_get,
        types: vec![customer, invoice, line_item],
    }
}

const CUSTOMER_FIELDS: [(&str, &str); 16] = [
    ("Name", "text"),
    ("Customer Name", "text"),
    ("customer-name", "text"),
    ("E-mail", "text"),
    ("Total", "number"),
    ("total", "number"),
    ("Commission Paid?", "boolean"),
    ("Tier", "option.tier"),
    ("Address", "geographic_address"),
    ("Logo", "image"),
    ("Tags", "list.text"),
    ("émojis_🚀", "text"),
    ("select", "text"),
    (LONG_NAME_A, "number"),
    (LONG_NAME_B, "number"),
    ("a\"; drop table x; --", "text"),
];

const INVOICE_FIELDS: [(&str, &str); 10] = [
    ("Invoice No", "text"),
    ("Customer", "custom.customer"),
    ("1st Payment %", "number"),
    ("2nd Payment %", "number"),
    ("Amount", "number"),
    ("Due Date", "date"),
    ("Status", "option.invoice_status"),
    ("Paid?", "boolean"),
    ("Items", "list.custom.lineitem"),
    ("Notes", "text"),
];

const LINE_ITEM_FIELDS: [(&str, &str); 7] = [
    ("Invoice", "custom.invoice"),
    ("Product", "text"),
    ("Qty", "number"),
    ("Unit Price", "number"),
    ("Discount %", "number"),
    ("Attachment", "file"),
    ("Shipped", "date"),
];

fn new_type(name: &str, display: &str, fields: &[(&str, &str)]) -> BubbleType {
    let mut taken: Vec<String> = Vec::new();
    let fields = fields
        .iter()
        .map(|(display, ty)| {
            let id = field_id(display, ty, &taken);
            taken.push(id.clone());
            BubbleField {
                id,
                display: (*display).to_owned(),
                ty: (*ty).to_owned(),
            }
        })
        .collect();
    BubbleType {
        name: name.to_owned(),
        display: display.to_owned(),
        fields,
        things: Vec::new(),
    }
}

/// A field id in Bubble's style: the display name in lower-case ASCII words and the type (`total_number`), with a
/// digit added when another field has it already.
fn field_id(display: &str, ty: &str, taken: &[String]) -> String {
    let words: Vec<String> = display
        .to_ascii_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect();
    let base = format!("{}_{}", words.join("_"), ty.replace('.', "_"));
    let mut id = base.clone();
    let mut n = 0;
    while taken.contains(&id) {
        id = format!("{base}{n}");
        n += 1;
    }
    id
}

/// A Bubble unique id: creation milliseconds, `x`, and 18 digits.
pub fn thing_id(type_name: &str, i: usize) -> String {
    let created = created_ms(type_name, i);
    let tail = xxhash_rust::xxh3::xxh3_64(format!("{type_name}/{i}").as_bytes())
        % 1_000_000_000_000_000_000;
    format!("{created}x{tail:018}")
}

/// Three things in a row share a creation time, as bulk imports do.
fn created_ms(type_name: &str, i: usize) -> i64 {
    let offset = match type_name {
        "customer" => 0,
        "invoice" => 7,
        _ => 13,
    };
    EPOCH_MS + (i as i64 / 3) * 1_000 + offset
}

pub fn iso_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn built_ins(type_name: &str, i: usize) -> Map<String, Value> {
    let created = created_ms(type_name, i);
    let mut thing = Map::new();
    thing.insert("_id".into(), json!(thing_id(type_name, i)));
    thing.insert("Created Date".into(), json!(iso_ms(created)));
    thing.insert(
        "Modified Date".into(),
        json!(iso_ms(created + (i as i64 % 5) * 3_600_000)),
    );
    thing.insert(
        "Created By".into(),
        json!("1672531200000x100000000000000001"),
    );
    thing
}

/// An exact decimal (no binary-float residue): `cents / 100` written with two decimals.
fn money(cents: u64) -> Value {
    serde_json::from_str(&format!("{}.{:02}", cents / 100, cents % 100)).unwrap_or(Value::Null)
}

fn customer_thing(i: usize) -> Map<String, Value> {
    let mut t = built_ins("customer", i);
    t.insert("Name".into(), json!(format!("Customer {i:05}")));
    t.insert("Customer Name".into(), json!(format!("ACME {}", i % 97)));
    t.insert("customer-name".into(), json!(format!("acme-{}", i % 97)));
    if !i.is_multiple_of(7) {
        t.insert("E-mail".into(), json!(format!("c{i}@example.com")));
    }
    t.insert("Total".into(), money((i as u64 * 1_237) % 1_000_000));
    t.insert("total".into(), json!(i as u64 % 1_000));
    t.insert("Commission Paid?".into(), json!(i.is_multiple_of(2)));
    t.insert("Tier".into(), json!(TIERS[i % 3]));
    t.insert(
        "Address".into(),
        json!({"address": format!("{} Main St, Springfield", i + 1), "lat": 40.5 + (i % 100) as f64 / 1000.0, "lng": -74.25}),
    );
    if !i.is_multiple_of(3) {
        t.insert(
            "Logo".into(),
            json!(format!("//s3.amazonaws.com/appforest_uf/f{i}/logo.png")),
        );
    }
    if !i.is_multiple_of(4) {
        t.insert(
            "Tags".into(),
            json!([format!("t{}", i % 5), format!("t{}", i % 11)]),
        );
    }
    t.insert("émojis_🚀".into(), json!("🚀".repeat(i % 3 + 1)));
    t.insert("select".into(), json!(format!("option {}", i % 4)));
    t.insert(LONG_NAME_A.into(), json!(i as u64 * 10));
    t.insert(LONG_NAME_B.into(), json!(i as u64 * 11));
    t.insert(
        "a\"; drop table x; --".into(),
        json!(NOTES[i % NOTES.len()]),
    );
    t
}

fn invoice_thing(i: usize, scale: Scale) -> Map<String, Value> {
    let mut t = built_ins("invoice", i);
    t.insert("Invoice No".into(), json!(format!("INV-{i:07}")));
    t.insert(
        "Customer".into(),
        json!(thing_id("customer", i % scale.customers.max(1))),
    );
    t.insert("1st Payment %".into(), json!(i as u64 % 100));
    if !i.is_multiple_of(5) {
        t.insert("2nd Payment %".into(), money(i as u64 % 10_000));
    }
    t.insert("Amount".into(), money((i as u64 * 7_919) % 10_000_000 + 1));
    t.insert(
        "Due Date".into(),
        json!(iso_ms(EPOCH_MS + 86_400_000 * (30 + i as i64 % 365))),
    );
    t.insert("Status".into(), json!(STATUSES[i % 4]));
    t.insert("Paid?".into(), json!(i % 4 == 1));
    let items: Vec<Value> = (0..(i % 3))
        .map(|k| json!(thing_id("lineitem", (i * 3 + k) % scale.line_items.max(1))))
        .collect();
    if !items.is_empty() {
        t.insert("Items".into(), Value::Array(items));
    }
    if i.is_multiple_of(2) {
        t.insert("Notes".into(), json!(NOTES[i % NOTES.len()]));
    }
    t
}

fn line_item_thing(i: usize, scale: Scale) -> Map<String, Value> {
    let mut t = built_ins("lineitem", i);
    t.insert(
        "Invoice".into(),
        json!(thing_id("invoice", i / 3 % scale.invoices.max(1))),
    );
    t.insert("Product".into(), json!(format!("SKU-{:06}", i % 5_000)));
    t.insert("Qty".into(), json!(1 + i as u64 % 12));
    t.insert("Unit Price".into(), money(99 + (i as u64 * 37) % 50_000));
    if !i.is_multiple_of(6) {
        t.insert("Discount %".into(), json!((i % 20) as f64 / 2.0));
    }
    if i.is_multiple_of(10) {
        t.insert(
            "Attachment".into(),
            json!(format!("//s3.amazonaws.com/appforest_uf/f{i}/spec.pdf")),
        );
    }
    if i.is_multiple_of(3) {
        t.insert(
            "Shipped".into(),
            json!(iso_ms(EPOCH_MS + 86_400_000 * (i as i64 % 400))),
        );
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_unique_and_in_bubble_style() {
        let app = sample_app(Scale::total(1_000), false);
        let customer = app.get_type("customer").unwrap();
        let ids: Vec<&str> = customer.fields.iter().map(|f| f.id.as_str()).collect();
        assert!(
            ids.contains(&"total_number") && ids.contains(&"total_number0"),
            "{ids:?}"
        );
        let unique: std::collections::HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        let things: std::collections::HashSet<String> = app
            .types
            .iter()
            .flat_map(|t| {
                t.things
                    .iter()
                    .map(|x| x["_id"].as_str().unwrap().to_owned())
            })
            .collect();
        assert_eq!(things.len(), 1_000);
    }

    #[test]
    fn keyed_by_id_translates_custom_fields_only() {
        let app = sample_app(Scale::total(10), false);
        let ty = app.get_type("invoice").unwrap();
        let keyed = ty.keyed(&ty.things[1], false);
        assert!(keyed.contains_key("invoice_no_text"));
        assert!(keyed.contains_key("customer_custom_customer"));
        assert!(keyed.contains_key("Created Date") && keyed.contains_key("_id"));
    }
}
