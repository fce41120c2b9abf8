//! The seeds' sanitiser cases by category (basic, edge cases, Unicode, reserved, collisions) and property tests.

use super::*;
use proptest::prelude::*;

fn name(original: &str) -> String {
    sanitise_field(original).name
}

fn names(originals: &[&str]) -> Vec<String> {
    let owned: Vec<String> = originals.iter().map(|s| (*s).to_owned()).collect();
    name_fields(&owned).into_iter().map(|f| f.field).collect()
}

#[test]
fn basic_camel_case() {
    let cases = [
        ("Customer Name", "customerName"),
        ("customer name", "customerName"),
        ("customer_name", "customerName"),
        ("customer-name", "customerName"),
        ("CustomerName", "customerName"),
        ("customerName", "customerName"),
        ("Created Date", "createdDate"),
        ("Modified Date", "modifiedDate"),
        ("Created By", "createdBy"),
        ("first.last", "firstLast"),
        ("ID", "idField"),
        ("SKU Code", "skuCode"),
        ("HTTPServer", "httpServer"),
        ("unit price USD", "unitPriceUSD"),
    ];
    for (original, expected) in cases {
        assert_eq!(name(original), expected, "{original:?}");
    }
}

#[test]
fn edge_cases_from_real_data() {
    let cases = [
        ("2nd Payment %", "f2ndPaymentPercent"),
        ("1st Payment %", "f1stPaymentPercent"),
        ("Commission Paid?", "commissionPaid"),
        ("# of Units", "numberOfUnits"),
        ("Price ($)", "priceDollar"),
        ("Q&A", "qAndA"),
        ("email@work", "emailAtWork"),
        ("  spaced   out  ", "spacedOut"),
        ("tab\there", "tabHere"),
        ("new\nline", "newLine"),
        ("a\"; drop table x; --", "aDropTableX"),
        ("100", "f100"),
        ("3D", "f3D"),
        ("__double__underscore__", "doubleUnderscore"),
        ("$", "dollar"),
        ("%", "percent"),
        ("x-y-z", "xYZ"),
        ("(parenthesised)", "parenthesised"),
        ("slash/separated", "slashSeparated"),
        ("back\\slash", "backSlash"),
        ("Total + Tax", "totalPlusTax"),
        ("Amount (€)", "amountEuro"),
        ("Cost £", "costPound"),
    ];
    for (original, expected) in cases {
        assert_eq!(name(original), expected, "{original:?}");
    }
}

#[test]
fn empty_and_symbol_only_names_get_stable_fallbacks() {
    for original in ["", "   ", "???", "🚀", "—", "\u{0}"] {
        let a = sanitise_field(original);
        assert!(
            a.name.starts_with("field_") && a.name.len() == 12,
            "{original:?} -> {}",
            a.name
        );
        assert!(a.changes.contains(&Change::Fallback));
        assert_eq!(a, sanitise_field(original), "deterministic");
        assert!(is_valid_identifier(&a.name));
    }
    assert_ne!(
        name("???"),
        name("!!!"),
        "different originals, different fallbacks"
    );
}

#[test]
fn unicode_is_transliterated() {
    let cases = [
        ("émojis_🚀", "emojis"),
        ("prénom", "prenom"),
        ("Straße", "strasse"),
        ("naïve café", "naiveCafe"),
        ("Größe in cm", "grosseInCm"),
        ("日本語", "riBenYu"),
        ("Ñandú", "nandu"),
        ("👍 Likes", "likes"),
        ("Ωmega", "omega"),
    ];
    for (original, expected) in cases {
        assert_eq!(name(original), expected, "{original:?}");
        assert!(
            sanitise_field(original)
                .changes
                .contains(&Change::Transliterated),
            "{original:?}"
        );
    }
}

#[test]
fn reserved_words_get_a_field_suffix() {
    let cases = [
        ("_id", "idField"),
        ("id", "idField"),
        ("select", "selectField"),
        ("Select", "selectField"),
        ("data", "dataField"),
        ("create", "createField"),
        ("update", "updateField"),
        ("delete", "deleteField"),
        ("where", "whereField"),
        ("order by", "orderByField"),
        ("group_by", "groupByField"),
        ("having", "havingField"),
        ("join", "joinField"),
        ("union", "unionField"),
        ("distinct", "distinctField"),
        ("bubble id", "bubbleIdField"),
        ("_bridge_run_id_", "bridgeRunIdField"),
    ];
    for (original, expected) in cases {
        assert_eq!(name(original), expected, "{original:?}");
    }
    // Not reserved: kept.
    assert_eq!(name("identity"), "identity");
    assert_eq!(name("selected"), "selected");
}

#[test]
fn model_names_are_pascal_case_and_never_reserved() {
    let cases = [
        ("invoice", "Invoice"),
        ("order line", "OrderLine"),
        ("user-profile", "UserProfile"),
        ("string", "StringModel"),
        ("PrismaClient", "PrismaClientModel"),
        ("json", "JsonModel"),
        ("date time", "DateTimeModel"),
        ("2fa codes", "M2faCodes"),
    ];
    for (original, expected) in cases {
        assert_eq!(sanitise_model(original).name, expected, "{original:?}");
    }
    let empty = sanitise_model("").name;
    assert!(empty.starts_with("Model") && empty.len() == 11, "{empty}");
}

#[test]
fn collisions_get_numbered_suffixes_in_a_stable_order() {
    assert_eq!(
        names(&["Customer Name", "customer-name"]),
        vec!["customerName", "customerName2"]
    );
    // The same set in another order gives the same names.
    assert_eq!(
        names(&["customer-name", "Customer Name"]),
        vec!["customerName2", "customerName"]
    );
    // An original that needs no change keeps its name.
    assert_eq!(names(&["Total", "total"]), vec!["total2", "total"]);
    // Byte order: "ID" < "_id" < "id".
    assert_eq!(
        names(&["_id", "id", "ID"]),
        vec!["idField2", "idField3", "idField"]
    );
    // An original that already looks like a suffixed name keeps it; the collision moves on.
    assert_eq!(names(&["a", "A", "a2"]), vec!["a", "a3", "a2"]);
    let reports = name_fields(&[
        "Customer Name".into(),
        "customer-name".into(),
        "customer_name".into(),
    ]);
    assert_eq!(
        reports[2].collides_with,
        vec!["Customer Name".to_owned(), "customer-name".to_owned()]
    );
    assert!(reports[1].changes.contains(&Change::Collision));
    assert!(
        !reports[0].changes.contains(&Change::Collision),
        "the first in byte order keeps the name"
    );
}

#[test]
fn long_names_are_cut_and_stay_unique() {
    let a = format!("{} alpha", "very long field name ".repeat(5));
    let b = format!("{} beta", "very long field name ".repeat(5));
    let got = names(&[a.as_str(), b.as_str()]);
    assert!(got.iter().all(|n| n.len() <= MAX_NAME_LEN), "{got:?}");
    assert_ne!(got[0], got[1]);
    assert!(sanitise_field(&a).changes.contains(&Change::Truncated));
}

#[test]
fn notes_explain_the_changes() {
    let f = &name_fields(&["2nd Payment %".into()])[0];
    assert_eq!(f.field, "f2ndPaymentPercent");
    assert_eq!(f.note(), "symbols spelled out, numeric prefix");
}

#[test]
fn analyst_names_are_kept_and_checked() {
    let originals: Vec<String> = ["Customer Name", "2nd Payment %", "Total"]
        .iter()
        .map(|s| (*s).to_owned())
        .collect();
    let mut pinned = BTreeMap::new();
    pinned.insert("2nd Payment %".to_owned(), "customerName".to_owned());
    let named = name_fields_pinned(&originals, &pinned);
    assert_eq!(named[1].field, "customerName");
    assert!(
        named[1]
            .error
            .as_deref()
            .is_some_and(|e| e.contains("Customer Name")),
        "{:?}",
        named[1].error
    );
    pinned.insert("2nd Payment %".to_owned(), "secondPayment".to_owned());
    let named = name_fields_pinned(&originals, &pinned);
    assert_eq!(
        (named[1].field.as_str(), named[1].error.as_deref()),
        ("secondPayment", None)
    );
    assert_eq!(named[1].changes, vec![Change::Renamed]);
    pinned.insert("Total".to_owned(), "select".to_owned());
    assert!(name_fields_pinned(&originals, &pinned)[2]
        .error
        .as_deref()
        .is_some_and(|e| e.contains("reserved")));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn any_unicode_gives_valid_unique_stable_names(originals in proptest::collection::vec("\\PC{0,40}|[ _%#A-Za-z0-9-]{0,12}|.{60,90}", 1..30)) {
        let first = name_fields(&originals);
        let mut reversed = originals.clone();
        reversed.reverse();
        let second = name_fields(&reversed);
        for f in &first {
            prop_assert!(is_valid_identifier(&f.field), "invalid: {:?} -> {:?}", f.source, f.field);
            prop_assert!(!RESERVED_FIELDS.contains(&f.field.as_str()), "reserved: {}", f.field);
            let clash = first.iter().any(|g| g.field == f.field && g.source != f.source);
            prop_assert!(!clash, "duplicate {}", f.field);
            let again = second.iter().find(|g| g.source == f.source).map(|g| g.field.clone());
            prop_assert_eq!(again, Some(f.field.clone()), "order changed the name of {:?}", &f.source);
        }
    }

    #[test]
    fn any_unicode_gives_a_valid_model_name(original in "\\PC{0,50}") {
        let m = sanitise_model(&original).name;
        prop_assert!(is_valid_identifier(&m) && m.starts_with(|c: char| c.is_ascii_uppercase()), "{:?} -> {:?}", original, m);
        prop_assert!(!RESERVED_MODELS.contains(&m.as_str()));
    }
}
