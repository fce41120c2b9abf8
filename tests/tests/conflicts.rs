//! Conflicts: rows edited in a PostgreSQL target whose source rows changed too, under each strategy — source_wins
//! overwrites, target_wins keeps the edit (and stops reporting it), last_write_wins compares the source's
//! rowversion time with the edit's, manual leaves the row untouched and queues it for `syncflow conflicts`, whose
//! resolutions (whole record or field by field) are applied and kept as an audit trail.

use serde_json::Value;
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{run_synced, succeeded_json, syncflow_async};

const ROWS: i64 = 50;
const STRATEGIES: [&str; 4] = ["source_wins", "target_wins", "last_write_wins", "manual"];

async fn name_of(dst: &sqlx::PgPool, table: &str, id: i64) -> (String, String, bool) {
    let sql = format!(
        "SELECT name, price::text, \"_bridge_edited_at\" IS NOT NULL FROM \"{table}\" WHERE id = $1"
    );
    sqlx::query_as(&sql).bind(id).fetch_one(dst).await.unwrap()
}

fn adds_up(summary: &Value, entity: &str) {
    let c = &summary["entities"][entity];
    let n = |k: &str| c[k].as_u64().unwrap();
    assert_eq!(
        n("fetched"),
        n("inserted") + n("updated") + n("skipped") + n("failed") + n("pending") + n("conflicts"),
        "{entity}: {c}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edited_rows_follow_the_strategy_and_manual_ones_are_resolved_by_hand() {
    let pg = PgCluster::start();
    let src_url = pg.create_database("shop_src").await;
    let dst_url = pg.create_database("shop_dst").await;
    let src = sqlx::PgPool::connect(&src_url).await.unwrap();
    let dst = sqlx::PgPool::connect(&dst_url).await.unwrap();
    let mut entities = String::new();
    for strategy in STRATEGIES {
        sqlx::query(&format!(
            "CREATE TABLE items_{strategy} (id bigint PRIMARY KEY, name text, price numeric(10,2), updated_at timestamptz)"
        ))
        .execute(&src)
        .await
        .unwrap();
        sqlx::query(&format!(
            "INSERT INTO items_{strategy} SELECT i, 'item ' || i, i * 1.25, timestamptz '2026-01-01 00:00:00+00'
             FROM generate_series(1, {ROWS}) i"
        ))
        .execute(&src)
        .await
        .unwrap();
        entities.push_str(&format!(
            "[[entities]]\nname = \"items_{strategy}\"\nconflicts = \"{strategy}\"\nrowversion = \"updated_at\"\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("shop.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"shop\"\n[source]\nkind = \"postgres\"\nurl = \"{src_url}\"\n\
             [target]\nkind = \"postgres\"\nurl = \"{dst_url}\"\n{entities}"
        ),
    )
    .unwrap();
    let state = dir.path().join("state.db");
    let first = run_synced(&file, &state, &[]).await;
    for strategy in STRATEGIES {
        assert_eq!(
            first["entities"][format!("items_{strategy}")]["inserted"],
            ROWS
        );
    }

    // An analyst edits rows 1–4 in the target; rows 1–3 (and 5) then change at the source too.
    for strategy in STRATEGIES {
        sqlx::query(&format!(
            "UPDATE items_{strategy} SET name = 'edited in target' WHERE id <= 4"
        ))
        .execute(&dst)
        .await
        .unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    for strategy in STRATEGIES {
        // Row 2's source change carries a time before the edit (last_write_wins keeps the edit); rows 1, 3 and 5
        // were changed after it.
        sqlx::query(&format!(
            "UPDATE items_{strategy} SET name = 'changed at source', price = price + 1,
               updated_at = CASE WHEN id = 2 THEN timestamptz '2026-01-02 00:00:00+00' ELSE clock_timestamp() END
             WHERE id IN (1, 2, 3, 5)"
        ))
        .execute(&src)
        .await
        .unwrap();
    }
    let second = run_synced(&file, &state, &[]).await;
    for strategy in STRATEGIES {
        adds_up(&second, &format!("items_{strategy}"));
    }
    let counts = |summary: &Value, strategy: &str| {
        let c = &summary["entities"][format!("items_{strategy}")];
        (
            c["updated"].as_u64().unwrap(),
            c["conflicts"].as_u64().unwrap(),
        )
    };
    assert_eq!(counts(&second, "source_wins"), (4, 0), "{second}");
    assert_eq!(counts(&second, "target_wins"), (1, 3), "{second}");
    assert_eq!(counts(&second, "last_write_wins"), (3, 1), "{second}");
    assert_eq!(counts(&second, "manual"), (1, 3), "{second}");

    // source_wins: the source's values, the edit mark cleared; row 4 (edited, source unchanged) keeps its edit.
    assert_eq!(
        name_of(&dst, "items_source_wins", 1).await,
        ("changed at source".into(), "2.25".into(), false)
    );
    assert_eq!(
        name_of(&dst, "items_source_wins", 4).await,
        ("edited in target".into(), "5.00".into(), true)
    );
    assert_eq!(
        name_of(&dst, "items_source_wins", 5).await.0,
        "changed at source"
    );
    // target_wins: the edits stand.
    for id in 1..=3 {
        assert_eq!(
            name_of(&dst, "items_target_wins", id).await.0,
            "edited in target"
        );
    }
    // last_write_wins: rows 1 and 3 were written at the source after the edit, row 2 before it.
    assert_eq!(
        name_of(&dst, "items_last_write_wins", 1).await.0,
        "changed at source"
    );
    assert_eq!(
        name_of(&dst, "items_last_write_wins", 2).await.0,
        "edited in target"
    );
    assert_eq!(
        name_of(&dst, "items_last_write_wins", 3).await.0,
        "changed at source"
    );
    // manual: untouched, old price and all.
    for id in 1..=3 {
        assert_eq!(
            name_of(&dst, "items_manual", id).await,
            (
                "edited in target".into(),
                format!("{:.2}", id as f64 * 1.25),
                true
            )
        );
    }

    let list = |args: &'static [&'static str]| {
        let state = state.clone();
        async move { succeeded_json(&syncflow_async(args, &state, &[]).await) }
    };
    let open = list(&["conflicts", "list", "shop", "--json"]).await;
    let open = open.as_array().unwrap().clone();
    assert_eq!(open.len(), 3, "{open:?}");
    let first_conflict = &open[0];
    assert_eq!(first_conflict["entity"], "items_manual");
    assert_eq!(first_conflict["key"]["id"], 1);
    let field = |c: &Value, column: &str| -> Value {
        c["fields"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["column"] == column)
            .cloned()
            .unwrap()
    };
    let name = field(first_conflict, "name");
    assert_eq!(name["source"], "changed at source");
    assert_eq!(name["target"], "edited in target");
    assert_eq!(name["synced"], "item 1", "the last-synced value is kept");
    assert_eq!(name["differs"], true);
    assert_eq!(field(first_conflict, "price")["differs"], true);

    // A sync with nothing new reports the same three, once each.
    let third = run_synced(&file, &state, &[]).await;
    assert_eq!(counts(&third, "manual"), (0, 3));
    let again = list(&["conflicts", "list", "shop", "--json"]).await;
    let ids: Vec<&Value> = again.as_array().unwrap().iter().map(|c| &c["id"]).collect();
    assert_eq!(ids, open.iter().map(|c| &c["id"]).collect::<Vec<_>>());

    let resolve = |args: Vec<String>| {
        let state = state.clone();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            syncflow_async(&args, &state, &[]).await
        }
    };
    let id = |c: &Value| c["id"].as_i64().unwrap().to_string();
    let took_source = resolve(vec![
        "conflicts".into(),
        "resolve".into(),
        id(&open[0]),
        "--take".into(),
        "source".into(),
    ])
    .await;
    assert_eq!(
        took_source.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&took_source.stderr)
    );
    assert_eq!(
        name_of(&dst, "items_manual", 1).await,
        ("changed at source".into(), "2.25".into(), false)
    );
    let took_target = resolve(vec![
        "conflicts".into(),
        "resolve".into(),
        id(&open[1]),
        "--take".into(),
        "target".into(),
    ])
    .await;
    assert_eq!(
        took_target.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&took_target.stderr)
    );
    assert_eq!(
        name_of(&dst, "items_manual", 2).await,
        ("edited in target".into(), "2.50".into(), true)
    );
    let by_field = resolve(vec![
        "conflicts".into(),
        "resolve".into(),
        id(&open[2]),
        "--take".into(),
        "source".into(),
        "--field".into(),
        "name=target".into(),
    ])
    .await;
    assert_eq!(
        by_field.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&by_field.stderr)
    );
    assert_eq!(
        name_of(&dst, "items_manual", 3).await,
        ("edited in target".into(), "4.75".into(), true),
        "the name kept from the target, the price taken from the source"
    );
    let twice = resolve(vec![
        "conflicts".into(),
        "resolve".into(),
        id(&open[0]),
        "--take".into(),
        "target".into(),
    ])
    .await;
    assert_eq!(twice.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&twice.stderr).contains("resolved already"));
    let unknown = resolve(vec![
        "conflicts".into(),
        "resolve".into(),
        "99999".into(),
        "--take".into(),
        "source".into(),
    ])
    .await;
    assert_eq!(unknown.status.code(), Some(2));

    // Resolved conflicts are not reported again; the audit trail says who chose what, and the row before/after.
    let fourth = run_synced(&file, &state, &[]).await;
    assert_eq!(counts(&fourth, "manual"), (0, 0), "{fourth}");
    assert_eq!(
        counts(&fourth, "target_wins"),
        (0, 0),
        "target_wins does not report the same edit twice"
    );
    let open_now = list(&["conflicts", "list", "shop", "--json"]).await;
    assert_eq!(open_now.as_array().unwrap().len(), 0);
    let all = list(&["conflicts", "list", "shop", "--all", "--json"]).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    let audit = &all[2]["resolution"];
    assert_eq!(audit["kind"], "fields");
    assert_eq!(audit["chosen"]["name"], "target");
    assert_eq!(audit["chosen"]["price"], "source");
    assert_eq!(audit["old_values"]["price"].to_string(), "3.75");
    assert_eq!(audit["new_values"]["price"].to_string(), "4.75");
    assert!(!audit["by"].as_str().unwrap().is_empty());
    assert!(!audit["at"].as_str().unwrap().is_empty());

    // The edit-tracking trigger does not mistake the engine's own writes for edits: rows it updated carry no mark.
    let (marked,): (i64,) = sqlx::query_as(
        "SELECT count(*) FROM items_source_wins WHERE \"_bridge_edited_at\" IS NOT NULL",
    )
    .fetch_one(&dst)
    .await
    .unwrap();
    assert_eq!(
        marked, 1,
        "only row 4, edited and not changed at the source"
    );
}
