//! The REST target, exact without transactions: the in-repo ScheduleHub-like server (tests/src/hub.rs) answers 500
//! to 1 call in 40 — half of those after doing the work — and the target still ends with every record exactly
//! once; an unchanged re-sync makes no write call; updates, deletes and inserts at the source land; two kill -9
//! during a first sync, then a run: exact, nothing created twice; records the hub refuses are failed records.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::hub::{HubServer, ParentRule};
use syncflow_tests::{last_json_line, run_synced, spawn_syncflow, syncflow_async};

const PW: &str = "s3cret";
const TOKEN: &str = "hub-token";

fn items(n: u64) -> Vec<Value> {
    (1..=n).map(item).collect()
}

/// A value as text, for comparing what the hub holds with what the source sent (numbers may arrive normalised).
fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.as_f64().map(|f| format!("{f:.2}")).unwrap_or_default(),
        Some(other) => other.to_string(),
        None => "(absent)".into(),
    }
}

/// (id, name, price) of each record, by id.
fn by_id<'a>(
    records: impl Iterator<Item = &'a Map<String, Value>>,
) -> BTreeMap<i64, (String, String)> {
    records
        .map(|r| {
            let id = r
                .get("id")
                .and_then(Value::as_i64)
                .expect("a whole-number id");
            let price = text(r.get("price"));
            let price = price
                .parse::<f64>()
                .map(|p| format!("{p:.2}"))
                .unwrap_or(price);
            (id, (text(r.get("name")), price))
        })
        .collect()
}

fn source_rows(records: &[Value]) -> BTreeMap<i64, (String, String)> {
    let maps: Vec<Map<String, Value>> = records
        .iter()
        .filter_map(|r| r.as_object().cloned())
        .collect();
    by_id(maps.iter())
}

fn pipeline(
    erp: &ErpServer,
    hub: &HubServer,
    dir: &std::path::Path,
    name: &str,
    extra: &str,
) -> std::path::PathBuf {
    erp.pipeline_file(
        dir,
        name,
        "{ env = \"PW\" }",
        &format!(
            "kind = \"rest\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token = {{ env = \"HUB_TOKEN\" }} }}\n\
             concurrency = 4\nbatch_size = 250",
            hub.base_url
        ),
        "items",
        &format!(
            "records = \"/data\"\npagination = {{ kind = \"offset\", size = 1000 }}\nbusiness_key = [\"id\"]\n{extra}"
        ),
    )
}

const ENV: &[(&str, &str)] = &[("PW", PW), ("HUB_TOKEN", TOKEN)];

/// `syncflow run FILE --json`, which must fail (exit 1); its summary.
async fn failed_run(path: &str, state: &std::path::Path) -> Value {
    let out = syncflow_async(&["run", path, "--json"], state, ENV).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    last_json_line(&out.stdout)
}

/// The ERP test server holding `records` (pages of 1,000), an empty hub, and the pipeline `name` between them
/// (`extra`: lines of the entity), in a scratch folder with its state database.
struct ErpToHub {
    erp: ErpServer,
    hub: HubServer,
    file: std::path::PathBuf,
    state: std::path::PathBuf,
    /// Holds the scratch folder for as long as the test runs.
    _dir: tempfile::TempDir,
}

async fn erp_to_hub(records: &[Value], name: &str, extra: &str) -> ErpToHub {
    let erp = ErpServer::start(records.to_vec(), PW, 1000, 3600).await;
    let hub = HubServer::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = pipeline(&erp, &hub, dir.path(), name, extra);
    ErpToHub {
        erp,
        hub,
        file,
        state,
        _dir: dir,
    }
}

/// The sample Bubble app's 20 customers and 100 invoices (5 each).
fn shop_app() -> syncflow_engine::emulator::app::BubbleApp {
    use syncflow_engine::emulator::app::{sample_app, Scale};
    sample_app(
        Scale {
            customers: 20,
            invoices: 100,
            line_items: 0,
        },
        true,
    )
}

/// `DIR/shop.toml`: the Bubble app at `source` into the hub at `target`, invoices declaring their customer parent.
fn shop_pipeline(dir: &std::path::Path, source: &str, target: &str) -> std::path::PathBuf {
    shop_pipeline_with(dir, source, target, "")
}

/// [`shop_pipeline`] with `extra` lines in each entity (`deletes = "hard"`).
fn shop_pipeline_with(
    dir: &std::path::Path,
    source: &str,
    target: &str,
    extra: &str,
) -> std::path::PathBuf {
    let file = dir.join("shop.toml");
    std::fs::write(
        &file,
        format!(
            "version = 1\nname = \"shop\"\n[source]\nkind = \"bubble\"\nbase_url = \"{source}\"\n\
             [target]\nkind = \"rest\"\nbase_url = \"{target}\"\nauth = {{ kind = \"bearer\", token = {{ env = \"HUB_TOKEN\" }} }}\n\
             [[entities]]\nname = \"invoice\"\nparents = [{{ field = \"Customer\", entity = \"customer\" }}]\n{extra}\n\
             [[entities]]\nname = \"customer\"\n{extra}\n"
        ),
    )
    .expect("write the pipeline file");
    file
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_thousand_records_land_exactly_once_through_injected_500s_then_changes_follow_the_source(
) {
    let mut records = items(20_000);
    let t = erp_to_hub(&records, "to-hub", "deletes = \"hard\"").await;
    let (erp, hub, file, state) = (&t.erp, &t.hub, &t.file, &t.state);
    hub.fail_every(40);

    let first = run_synced(file, state, ENV).await;
    assert_eq!(first["status"], "completed", "{first}");
    let held = hub.records("items");
    assert_eq!(held.len(), 20_000, "every record once");
    assert_eq!(
        hub.most_creates_of_one_key("items"),
        1,
        "no record created twice"
    );
    assert_eq!(
        by_id(held.iter()),
        source_rows(&records),
        "every value as the source has it"
    );
    let counts = &first["entities"]["items"];
    assert_eq!(counts["inserted"], 20_000, "{first}");
    assert_eq!(counts["failed"], 0, "{first}");

    let before = hub.write_calls();
    let again = run_synced(file, state, ENV).await;
    assert_eq!(again["entities"]["items"]["skipped"], 20_000, "{again}");
    assert_eq!(
        hub.write_calls(),
        before,
        "an unchanged re-sync makes no write call"
    );

    // 300 updates, 200 deletes, 100 inserts at the source.
    for r in records.iter_mut().take(300) {
        r["name"] = Value::String(format!(
            "{} (renamed)",
            r["name"].as_str().unwrap_or_default()
        ));
    }
    records.retain(|r| !(1000..1200).contains(&r["id"].as_i64().unwrap_or(0)));
    records.extend((20_001..=20_100).map(item));
    erp.set_records(records.clone());
    let changed = run_synced(file, state, ENV).await;
    let counts = &changed["entities"]["items"];
    assert_eq!(
        (
            counts["updated"].as_u64(),
            counts["deleted"].as_u64(),
            counts["inserted"].as_u64()
        ),
        (Some(300), Some(200), Some(100)),
        "{changed}"
    );
    let held = hub.records("items");
    assert_eq!(
        by_id(held.iter()),
        source_rows(&records),
        "the target equals the source"
    );
    assert_eq!(hub.most_creates_of_one_key("items"), 1);
    let patches = hub.patched_fields();
    assert!(patches.len() >= 300, "{} patches", patches.len());
    assert!(
        patches.iter().all(|f| f == &["erp_data_hash", "name"]),
        "a PATCH carries the changed fields only: {:?}",
        patches.iter().find(|f| *f != &["erp_data_hash", "name"])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_kills_during_a_first_sync_then_a_run_create_nothing_twice() {
    let records = items(12_000);
    let t = erp_to_hub(&records, "killed-hub", "deletes = \"hard\"").await;
    let (hub, file, state) = (&t.hub, &t.file, &t.state);
    hub.fail_every(40);
    // Slow calls, so that the kills land while records are being written.
    hub.set_delay_ms(15);
    let path = file.to_str().unwrap();

    for (kill, at_least) in [(1, 1_500usize), (2, 5_000)] {
        let mut child = spawn_syncflow(&["run", path, "--json"], state, ENV);
        let deadline = Instant::now() + Duration::from_secs(120);
        while hub.records("items").len() < at_least {
            assert!(
                Instant::now() < deadline,
                "kill {kill}: the hub got too few records"
            );
            if let Ok(Some(status)) = child.try_wait() {
                panic!("kill {kill}: the run ended ({status}) before it could be killed");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(hub.most_creates_of_one_key("items"), 1, "kill {kill}");
    }
    hub.set_delay_ms(0);
    let done = run_synced(file, state, ENV).await;
    assert_eq!(done["status"], "completed", "{done}");
    let held = hub.records("items");
    assert_eq!(held.len(), 12_000);
    assert_eq!(
        hub.most_creates_of_one_key("items"),
        1,
        "nothing created twice"
    );
    assert_eq!(by_id(held.iter()), source_rows(&records));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_the_hub_refuses_are_failed_records_with_its_reply_and_the_rest_lands_through_429s()
{
    let mut records = items(3_000);
    for i in [10usize, 1_500, 2_999] {
        records[i]["name"] = Value::String(format!("REJECT me {i}"));
    }
    let t = erp_to_hub(&records, "refusing-hub", "").await;
    let (hub, file, state) = (&t.hub, &t.file, &t.state);
    hub.refuse_names_with(Some("REJECT"));
    // The hub asks to slow down (429, Retry-After: 1) once in 300 calls.
    hub.slow_down_every(300);
    // A hub without batch create: one POST per record.
    hub.without_batch(true);
    let out = syncflow_async(&["run", file.to_str().unwrap(), "--json"], state, ENV).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary = last_json_line(&out.stdout);
    assert_eq!(summary["entities"]["items"]["failed"], 3, "{summary}");
    assert_eq!(summary["entities"]["items"]["inserted"], 2_997, "{summary}");
    assert_eq!(hub.records("items").len(), 2_997);
    assert!(
        hub.slowed_down() >= 10,
        "{} calls were answered 429",
        hub.slowed_down()
    );
    assert_eq!(hub.most_creates_of_one_key("items"), 1);
    let failed = syncflow_async(&["failed", "list", "refusing-hub", "--json"], state, &[]).await;
    let listed = String::from_utf8_lossy(&failed.stdout);
    assert!(
        listed.contains("422") && listed.contains("may not contain"),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_whose_customer_the_hub_lacks_wait_and_land_once_it_arrives() {
    let mut app = shop_app();
    // Customers 0 and 1 are missing when the first run reads the app: 10 invoices name them.
    let late: Vec<Map<String, Value>> = app.types[0].things.drain(0..2).collect();
    let emulator = syncflow_engine::emulator::bubble::BubbleEmulator::start(
        app,
        syncflow_engine::emulator::bubble::Faults::default(),
    )
    .await
    .unwrap();
    let hub = HubServer::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let file = shop_pipeline(dir.path(), &emulator.base_url, &hub.base_url);
    let state = dir.path().join("state.db");

    let first = run_synced(&file, &state, ENV).await;
    let invoices = &first["entities"]["invoice"];
    assert_eq!(
        (invoices["inserted"].as_u64(), invoices["pending"].as_u64()),
        (Some(90), Some(10)),
        "{first}"
    );
    assert_eq!(
        hub.records("invoice").len(),
        90,
        "no child before its parent"
    );
    assert_eq!(hub.records("customer").len(), 18);

    // A check of the waiting children while their customers are still missing keeps them waiting.
    let out = syncflow_async(&["failed", "retry", "shop"], &state, ENV).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("0 landed, 10 still waiting"), "{stderr}");
    assert_eq!(hub.records("invoice").len(), 90);

    // The customers arrive at the source: the next run brings them, and their invoices land.
    emulator.edit(|a| a.types[0].things.extend(late.iter().cloned()));
    let second = run_synced(&file, &state, ENV).await;
    assert_eq!(second["entities"]["invoice"]["inserted"], 10, "{second}");
    assert_eq!(hub.records("customer").len(), 20);
    assert_eq!(
        hub.records("invoice").len(),
        100,
        "the waiting invoices landed"
    );
    assert_eq!(hub.most_creates_of_one_key("invoice"), 1);
    let listed = syncflow_async(&["failed", "list", "shop", "--json"], &state, &[]).await;
    assert_eq!(
        String::from_utf8_lossy(&listed.stdout).trim(),
        "[]",
        "nothing waits any more"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rowversion_delta_reads_only_what_changed_since_the_highest_stamp_written() {
    let stamp = |second: u64| {
        chrono::DateTime::from_timestamp(1_767_225_600 + second as i64, 0)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    };
    let record = |id: u64, name: &str, second: u64| serde_json::json!({"id": id, "name": name, "updated_at": stamp(second)});
    let mut source: Vec<Value> = (1..=300)
        .map(|i| record(i, &format!("item {i}"), i))
        .collect();
    let erp = ErpServer::start(source.clone(), PW, 100, 3600).await;
    let hub = HubServer::start(TOKEN).await;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    let file = erp.pipeline_file(
        dir.path(),
        "inc-hub",
        "{ env = \"PW\" }",
        &format!(
            "kind = \"rest\"\nbase_url = \"{}\"\nauth = {{ kind = \"bearer\", token = {{ env = \"HUB_TOKEN\" }} }}",
            hub.base_url
        ),
        "items",
        "pagination = { kind = \"offset\", offset_param = \"offset\", limit_param = \"limit\", size = 100 }\n\
         records = \"/data\"\nbusiness_key = [\"id\"]\ndelta = \"rowversion\"\nrowversion = \"updated_at\"\n\
         since_param = \"updated_since\"",
    );
    let counts = |summary: &Value| {
        let c = &summary["entities"]["items"];
        let n = |k: &str| c[k].as_u64().unwrap_or(u64::MAX);
        (n("fetched"), n("inserted"), n("updated"), n("skipped"))
    };
    let first = run_synced(&file, &state, ENV).await;
    assert_eq!(counts(&first), (300, 300, 0, 0), "{first}");
    assert!(
        hub.records("items")
            .iter()
            .all(|r| r.get("erp_rowversion").is_some()),
        "the hub keeps each record's rowversion"
    );

    // Nothing changed: only the record with the highest stamp is read again, and nothing is written.
    let (served, calls) = (erp.records_served(), hub.write_calls());
    let unchanged = run_synced(&file, &state, ENV).await;
    assert_eq!(counts(&unchanged), (1, 0, 0, 1), "{unchanged}");
    assert_eq!(erp.records_served() - served, 1);
    assert_eq!(hub.write_calls(), calls);

    source[4] = record(5, "item 5, renamed", 310);
    source[9] = record(10, "item 10, renamed", 311);
    source.push(record(301, "new item", 312));
    erp.set_records(source.clone());
    let changed = run_synced(&file, &state, ENV).await;
    assert_eq!(counts(&changed), (4, 1, 2, 1), "{changed}");
    let names: BTreeMap<i64, String> = hub
        .records("items")
        .iter()
        .map(|r| (r["id"].as_i64().unwrap_or(0), text(r.get("name"))))
        .collect();
    let expected: BTreeMap<i64, String> = source
        .iter()
        .map(|r| (r["id"].as_i64().unwrap_or(0), text(r.get("name"))))
        .collect();
    assert_eq!(names, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invoices_the_hub_refuses_for_a_missing_parent_wait_and_land_once_it_has_it() {
    let app = shop_app();
    let customers: Vec<Map<String, Value>> = app.types[0].things.clone();
    let emulator = syncflow_engine::emulator::bubble::BubbleEmulator::start(
        app,
        syncflow_engine::emulator::bubble::Faults::default(),
    )
    .await
    .unwrap();
    let hub = HubServer::start(TOKEN).await;
    // The hub checks an invoice's customer against its own customer master, which lacks two of them: the engine's
    // lookup of the customer resource finds all 20, the hub answers 404 for the invoices of those two.
    hub.require_parent(ParentRule {
        entity: "invoice".into(),
        field: "Customer".into(),
        parent: "customer_master".into(),
        parent_field: "_id".into(),
    });
    let master = |c: &Map<String, Value>| {
        let mut m = Map::new();
        m.insert("_id".into(), c["_id"].clone());
        m
    };
    for c in &customers[2..] {
        hub.put("customer_master", master(c));
    }
    let dir = tempfile::tempdir().unwrap();
    let file = shop_pipeline(dir.path(), &emulator.base_url, &hub.base_url);
    let state = dir.path().join("state.db");
    let first = run_synced(&file, &state, ENV).await;
    let invoices = &first["entities"]["invoice"];
    assert_eq!(
        (
            invoices["inserted"].as_u64(),
            invoices["pending"].as_u64(),
            invoices["failed"].as_u64()
        ),
        (Some(90), Some(10), Some(0)),
        "{first}"
    );
    assert_eq!(hub.records("invoice").len(), 90);

    // The hub gets the two customers into its master data: a check of the waiting children lands their invoices.
    for c in &customers[..2] {
        hub.put("customer_master", master(c));
    }
    let out = syncflow_async(&["failed", "retry", "shop"], &state, ENV).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("10 landed"), "{stderr}");
    assert_eq!(hub.records("invoice").len(), 100);
    assert_eq!(hub.most_creates_of_one_key("invoice"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_delete_guard_holds_a_pass_that_would_delete_most_records_until_confirmed() {
    let records = items(1_000);
    let t = erp_to_hub(&records, "guarded-hub", "deletes = \"hard\"").await;
    let (erp, hub, file, state) = (&t.erp, &t.hub, &t.file, &t.state);
    run_synced(file, state, ENV).await;
    assert_eq!(hub.records("items").len(), 1_000);

    // The source lost 600 of its 1,000 records: more than the default 50 % guard.
    erp.set_records(records[..400].to_vec());
    let path = file.to_str().unwrap();
    let summary = failed_run(path, state).await;
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(error.contains("would delete 600 of the 1000"), "{summary}");
    assert_eq!(hub.records("items").len(), 1_000, "nothing deleted");

    let confirmed = syncflow_async(&["run", path, "--json", "--confirm-deletes"], state, ENV).await;
    let summary = last_json_line(&confirmed.stdout);
    assert_eq!(confirmed.status.code(), Some(0), "{summary}");
    assert_eq!(hub.records("items").len(), 400);
    assert_eq!(
        by_id(hub.records("items").iter()),
        source_rows(&records[..400])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_target_that_keeps_failing_fails_the_run_and_the_next_run_resumes_exactly() {
    let records = items(2_000);
    let t = erp_to_hub(&records, "down-hub", "").await;
    let (hub, file, state) = (&t.hub, &t.file, &t.state);
    let path = file.to_str().unwrap();
    // Every call answers 500 (half of the writes after doing them).
    hub.fail_every(1);
    let summary = failed_run(path, state).await;
    let error = summary["error"].as_str().unwrap_or_default();
    assert!(
        error.contains("answered 500") && error.contains("run again to resume"),
        "{summary}"
    );
    hub.fail_every(0);
    let done = run_synced(file, state, ENV).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(by_id(hub.records("items").iter()), source_rows(&records));
    assert_eq!(hub.most_creates_of_one_key("items"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_created_just_before_an_outage_are_deleted_once_the_source_drops_them() {
    let records = items(5_000);
    let t = erp_to_hub(&records, "outage-hub", "deletes = \"hard\"").await;
    let (erp, hub, file, state) = (&t.erp, &t.hub, &t.file, &t.state);
    let path = file.to_str().unwrap();
    // The first create lands and the hub goes down before answering it: the run cannot learn what it created.
    hub.down_after_next_create();
    failed_run(path, state).await;
    let landed: Vec<i64> = by_id(hub.records("items").iter()).into_keys().collect();
    assert!(!landed.is_empty(), "the first create landed");

    // Before the next run the source drops exactly the records that landed unannounced.
    let kept: Vec<Value> = records
        .iter()
        .filter(|r| !landed.contains(&r["id"].as_i64().unwrap_or_default()))
        .cloned()
        .collect();
    erp.set_records(kept.clone());
    hub.come_back();
    let done = run_synced(file, state, ENV).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(
        done["entities"]["items"]["deleted"].as_u64(),
        Some(landed.len() as u64),
        "{done}"
    );
    assert_eq!(by_id(hub.records("items").iter()), source_rows(&kept));
    assert_eq!(hub.most_creates_of_one_key("items"), 1);
}

/// The `_id`, `Amount` and `Customer` of Bubble things (the REST target sends the source's field names).
fn things<'a>(
    things: impl Iterator<Item = &'a Map<String, Value>>,
) -> BTreeMap<String, (String, String)> {
    things
        .map(|t| {
            (
                text(t.get("_id")),
                (text(t.get("Amount")), text(t.get("Customer"))),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parents_deletes_and_faults_together_at_size_leave_the_hub_equal_to_the_source() {
    use syncflow_engine::emulator::app::{sample_app, Scale};
    use syncflow_engine::emulator::bubble::{BubbleEmulator, Faults};
    let mut app = sample_app(
        Scale {
            customers: 1_000,
            invoices: 6_000,
            line_items: 0,
        },
        true,
    );
    // 20 customers come late: their 120 invoices wait for them.
    let late: Vec<Map<String, Value>> = app.types[0].things.drain(0..20).collect();
    let faults = Faults {
        error_rate: 0.02,
        ..Faults::default()
    };
    let emulator = BubbleEmulator::start(app, faults).await.unwrap();
    let hub = HubServer::start(TOKEN).await;
    hub.fail_every(40);
    hub.slow_down_every(300);
    let dir = tempfile::tempdir().unwrap();
    let file = shop_pipeline_with(
        dir.path(),
        &emulator.base_url,
        &hub.base_url,
        "deletes = \"hard\"",
    );
    let state = dir.path().join("state.db");

    let first = run_synced(&file, &state, ENV).await;
    let invoices = &first["entities"]["invoice"];
    assert_eq!(
        (invoices["inserted"].as_u64(), invoices["pending"].as_u64()),
        (Some(5_880), Some(120)),
        "{first}"
    );
    assert_eq!(hub.records("customer").len(), 980);

    // The source moves on: the late customers arrive, 10 customers leave with their invoices, 100 invoices change
    // their amount and 50 new ones are issued.
    let app = emulator.edit(|a| {
        a.types[0].things.extend(late.iter().cloned());
        let leaving: Vec<Value> = a.types[0]
            .things
            .drain(100..110)
            .map(|c| c["_id"].clone())
            .collect();
        a.types[1]
            .things
            .retain(|i| !leaving.contains(&i["Customer"]));
        for invoice in a.types[1].things.iter_mut().step_by(50).take(100) {
            invoice.insert("Amount".into(), serde_json::json!(123.45));
        }
        let issued: Vec<Map<String, Value>> = a.types[1].things[..50]
            .iter()
            .enumerate()
            .map(|(n, template)| {
                let mut new = template.clone();
                new.insert(
                    "_id".into(),
                    Value::String(format!("1767225600000x{:018}", n + 1)),
                );
                new.insert("Invoice No".into(), Value::String(format!("NEW-{n:04}")));
                new
            })
            .collect();
        a.types[1].things.extend(issued);
        a.clone()
    });
    let second = run_synced(&file, &state, ENV).await;
    assert_eq!(second["status"], "completed", "{second}");
    let deleted = |entity: &str| second["entities"][entity]["deleted"].as_u64();
    assert_eq!(
        (deleted("customer"), deleted("invoice")),
        (Some(10), Some(60)),
        "{second}"
    );
    for (entity, source) in [("customer", &app.types[0]), ("invoice", &app.types[1])] {
        let held = hub.records(entity);
        assert_eq!(
            things(held.iter()),
            things(source.things.iter()),
            "{entity}"
        );
    }
    assert_eq!(hub.most_creates_of_one_key("customer"), 1);
    assert_eq!(hub.most_creates_of_one_key("invoice"), 1);
    assert!(hub.slowed_down() > 0, "the hub asked to slow down");
}
