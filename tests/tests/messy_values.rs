//! A REST source with messy values — thousands separators, currency, eight date formats, control characters,
//! leading zeros, 5,000-character texts — lands every value normalised where a rule applies and byte for byte
//! where none does; defaults fill gaps and a record without a required field is refused with its field named.

use serde_json::{json, Value};
use syncflow_tests::erp::ErpServer;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::syncflow_async;

/// Eight ways to write 2026-03-04T05:06:07Z (the last two are dates alone: midnight).
const DATES: [(&str, &str); 8] = [
    ("2026-03-04T05:06:07Z", "2026-03-04T05:06:07.000Z"),
    ("2026-03-04T07:06:07.000+02:00", "2026-03-04T05:06:07.000Z"),
    ("2026-03-04 05:06:07", "2026-03-04T05:06:07.000Z"),
    ("2026-03-04T05:06:07.250", "2026-03-04T05:06:07.250Z"),
    (
        "Wed, 04 Mar 2026 05:06:07 +0000",
        "2026-03-04T05:06:07.000Z",
    ),
    ("04.03.2026 05:06:07", "2026-03-04T05:06:07.000Z"),
    ("2026/03/04", "2026-03-04T00:00:00.000Z"),
    ("Mar 4, 2026", "2026-03-04T00:00:00.000Z"),
];

/// Numbers written as text, and what they are.
const AMOUNTS: [(&str, &str); 6] = [
    ("10,000", "10000"),
    ("1,000.50", "1000.50"),
    ("$12.00", "12.00"),
    ("-1,234,567.89", "-1234567.89"),
    ("1.5e3", "1500"),
    ("€ 7.25", "7.25"),
];

fn record(i: usize) -> Value {
    let mut r = json!({
        "sku": format!("S-{i:04}"),
        "when": DATES[i % DATES.len()].0,
        "amount": AMOUNTS[i % AMOUNTS.len()].0,
        "preis": format!("{}.{:03},{:02}", 1 + i % 9, i % 1000, i % 100),
        "code": format!("{:06}", i % 1000),
        "raw note": format!("bell\u{7}\r\nline {i}\tend "),
        "clean note": format!("  Cafe\u{301}\u{7}\r\nline {i}  "),
        "long": "é".repeat(5_000),
    });
    if i.is_multiple_of(4) {
        r.as_object_mut().unwrap().remove("status");
    } else {
        r["status"] = json!("closed");
    }
    r
}

/// sku, when, amount, preis, code, raw note, clean note, status:length of long.
type Row = (
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messy_values_land_normalised_where_asked_and_byte_exact_elsewhere() {
    let mut records: Vec<Value> = (0..480).map(record).collect();
    records.push(json!({"when": "2026-01-01", "amount": "1", "code": "x"}));
    let server = ErpServer::start(records.clone(), "pw", 100, 3600).await;
    let pg = PgCluster::start();
    let url = pg.create_database("messy").await;
    let dir = tempfile::tempdir().unwrap();
    let fields = r#"
[entities.fields.preis]
type = "numeric"
decimal_comma = true
[entities.fields."clean note"]
text = ["trim", "nfc", "strip_control", "newlines"]
[entities.fields.status]
default = "open"
[entities.fields.sku]
required = true
"#;
    let file = server.pipeline_file(
        dir.path(),
        "messy",
        "{ env = \"PW\" }",
        &format!("kind = \"postgres\"\nurl = \"{url}\""),
        "messy",
        &format!("records = \"/data\"\npagination = {{ kind = \"offset\", size = 100 }}\nbusiness_key = [\"code\"]\n{fields}"),
    );
    let state = dir.path().join("state.db");
    let out = syncflow_async(
        &["run", file.to_str().unwrap(), "--apply-schema", "--json"],
        &state,
        &[("PW", "pw")],
    )
    .await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let text = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let counts = &summary["entities"]["messy"];
    assert_eq!(counts["fetched"], 481, "{summary}");
    assert_eq!(
        counts["failed"], 1,
        "the record without its required sku: {summary}"
    );

    let pool = sqlx::PgPool::connect(&url).await.unwrap();
    let types: Vec<(String, String)> = sqlx::query_as(
        "SELECT column_name::text, data_type::text FROM information_schema.columns \
         WHERE table_name = 'messy' AND column_name IN ('when', 'amount', 'preis', 'code') ORDER BY 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(
        types,
        [
            ("amount".to_owned(), "numeric".to_owned()),
            ("code".to_owned(), "text".to_owned()),
            ("preis".to_owned(), "numeric".to_owned()),
            ("when".to_owned(), "timestamp with time zone".to_owned()),
        ],
        "formatted numbers and date texts were inferred; codes with leading zeros stayed text"
    );
    let rows: Vec<Row> = sqlx::query_as(
        r#"SELECT sku, to_char("when" AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"'), amount::text,
                  preis::text, code, "raw note", "clean note", status || ':' || length(long)::text
           FROM messy ORDER BY sku"#,
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(rows.len(), 480);
    for (i, (sku, when, amount, preis, code, raw, clean, status_len)) in
        rows.into_iter().enumerate()
    {
        let sent = &records[i];
        assert_eq!(sku, format!("S-{i:04}"));
        assert_eq!(when, DATES[i % DATES.len()].1, "{sku}: {}", sent["when"]);
        assert_eq!(amount, AMOUNTS[i % AMOUNTS.len()].1, "{sku}");
        assert_eq!(
            preis,
            format!("{}{:03}.{:02}", 1 + i % 9, i % 1000, i % 100),
            "{sku}"
        );
        assert_eq!(code, sent["code"].as_str().unwrap(), "leading zeros kept");
        assert_eq!(
            raw,
            sent["raw note"].as_str().unwrap(),
            "no rule: byte for byte"
        );
        assert_eq!(clean, format!("Café\nline {i}"), "{sku}");
        let status = if i.is_multiple_of(4) {
            "open"
        } else {
            "closed"
        };
        assert_eq!(status_len, format!("{status}:5000"), "{sku}");
    }
}
