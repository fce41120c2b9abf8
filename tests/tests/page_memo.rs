//! The page memo (ADR 0015) against a real PostgreSQL and the ERP test server: an unchanged re-sync reads no page
//! again, a changed page is read in full, and whatever the memo cannot vouch for — rows changed by someone else, an
//! undo, a key on two pages, a dropped trigger — makes the next pass read every page, which leaves the table equal
//! to the source.

use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use syncflow_tests::erp::{item, ErpServer};
use syncflow_tests::pg::PgCluster;
use syncflow_tests::{
    finished, id_names, live_id_names, run_synced, spawn_syncflow, syncflow_async,
};

const ENV: [(&str, &str); 1] = [("PW", "pw")];

/// 1,000 items, 100 a page by offset (10 pages and the empty one that ends the listing), soft deletes.
struct Setup {
    server: ErpServer,
    pool: sqlx::PgPool,
    dir: tempfile::TempDir,
    file: PathBuf,
    source: Vec<Value>,
}

impl Setup {
    async fn start(pg: &PgCluster, db: &str) -> Setup {
        let url = pg.create_database(db).await;
        let pool = sqlx::PgPool::connect(&url).await.unwrap();
        let source: Vec<Value> = (1..=1_000).map(item).collect();
        let server = ErpServer::start(source.clone(), "pw", 100, 3600).await;
        let dir = tempfile::tempdir().unwrap();
        let file = server.pipeline_file(
            dir.path(),
            db,
            "{ env = \"PW\" }",
            &format!("kind = \"postgres\"\nurl = \"{url}\""),
            "items",
            "records = \"/data\"\npagination = { kind = \"offset\", size = 100 }\nbusiness_key = [\"id\"]\n\
             deletes = \"soft\"",
        );
        Setup {
            server,
            pool,
            dir,
            file,
            source,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state.db")
    }

    fn serve(&mut self, source: Vec<Value>) {
        self.source = source.clone();
        self.server.set_records(source);
    }

    /// Runs the pipeline; returns the items' counts and the run's page-memo line (pages skipped, pages read).
    async fn sync(&self) -> (Value, Option<(u64, u64, String)>) {
        let summary = run_synced(&self.file, &self.state(), &ENV).await;
        let run_id = summary["run_id"].as_str().unwrap().to_owned();
        let memo = memo_line(self.dir.path(), &run_id);
        (summary["entities"]["items"].clone(), memo)
    }

    /// A statement run on the target by someone other than the pipeline.
    async fn by_hand(&self, sql: &str) {
        sqlx::query(sql).execute(&self.pool).await.unwrap();
    }

    async fn assert_equal_to_source(&self, when: &str) {
        assert_eq!(
            live_id_names(&self.pool, "items").await,
            id_names(&self.source),
            "{when}: the table differs from the source"
        );
    }
}

/// The run log's `page_memo` line of a run: pages skipped, pages read, message.
fn memo_line(dir: &Path, run_id: &str) -> Option<(u64, u64, String)> {
    let log = std::fs::read_to_string(
        dir.join("logs")
            .join("runs")
            .join(format!("{run_id}.jsonl")),
    )
    .unwrap_or_default();
    log.lines()
        .rev()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["event"] == "page_memo")
        .map(|l| {
            (
                l["pages_skipped"].as_u64().unwrap_or(u64::MAX),
                l["pages_read"].as_u64().unwrap_or(u64::MAX),
                l["message"].as_str().unwrap_or_default().to_owned(),
            )
        })
}

fn counts(c: &Value) -> [u64; 4] {
    ["inserted", "updated", "deleted", "skipped"].map(|k| c[k].as_u64().unwrap_or(u64::MAX))
}

fn renamed(mut source: Vec<Value>, ids: &[u64]) -> Vec<Value> {
    for r in source.iter_mut() {
        if ids.contains(&r["id"].as_u64().unwrap()) {
            r["name"] = json!(format!("{} (renamed)", r["name"].as_str().unwrap()));
        }
    }
    source
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unchanged_resync_reads_no_page_again_and_a_changed_page_is_read_in_full() {
    let pg = PgCluster::start();
    let mut s = Setup::start(&pg, "memo_plain").await;
    let (first, _) = s.sync().await;
    assert_eq!(counts(&first), [1_000, 0, 0, 0], "{first}");

    // Nothing changed: every page (and the empty one that ends the listing) is skipped, nothing is deleted.
    let (again, memo) = s.sync().await;
    assert_eq!(counts(&again), [0, 0, 0, 1_000], "{again}");
    let (skipped, read, _) = memo.expect("the run says how the memo served it");
    assert_eq!((skipped, read), (11, 0));
    s.assert_equal_to_source("unchanged").await;

    // Records renamed on pages 3 and 10: those two pages are read, the rest not.
    s.serve(renamed(s.source.clone(), &[250, 990]));
    let (changed, memo) = s.sync().await;
    assert_eq!(counts(&changed), [0, 2, 0, 998], "{changed}");
    let (skipped, read, _) = memo.expect("the run says how the memo served it");
    assert_eq!((skipped, read), (9, 2), "pages 3 and 10 read");
    s.assert_equal_to_source("two renamed").await;

    // The last record gone: every reply says another total, so every page is read; the row is marked deleted.
    let mut source = s.source.clone();
    source.retain(|r| r["id"] != 1_000);
    s.serve(source);
    let (gone, memo) = s.sync().await;
    assert_eq!(counts(&gone), [0, 0, 1, 999], "{gone}");
    assert_eq!(memo.map(|m| (m.0, m.1)), Some((0, 11)));
    s.assert_equal_to_source("one gone").await;

    // It comes back as it was: the row lives again; then the next unchanged re-sync skips every page.
    let mut back = s.source.clone();
    back.push(item(1_000));
    s.serve(back);
    let (restored, _) = s.sync().await;
    assert_eq!(counts(&restored), [0, 1, 0, 999], "{restored}");
    s.assert_equal_to_source("restored").await;
    let (_, memo) = s.sync().await;
    assert_eq!(memo.map(|m| (m.0, m.1)), Some((11, 0)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_changed_by_anyone_but_the_page_writes_make_the_next_pass_read_every_page() {
    let pg = PgCluster::start();
    let s = Setup::start(&pg, "memo_changed").await;
    s.sync().await;

    // Someone deletes a row and edits another's stored hash by hand: the re-sync reads every page and repairs both.
    s.by_hand("DELETE FROM items WHERE id = 17").await;
    s.by_hand("UPDATE items SET name = 'edited', _bridge_data_hash = '\\x00' WHERE id = 18")
        .await;
    let (repaired, memo) = s.sync().await;
    assert_eq!(counts(&repaired), [1, 1, 0, 998], "{repaired}");
    let (skipped, _, message) = memo.unwrap();
    assert_eq!(skipped, 0);
    assert!(
        message.contains("the table changed since the last pass"),
        "{message}"
    );
    s.assert_equal_to_source("after the hand edits").await;

    // The trigger that counts the changes dropped: nothing is trusted; the pass counts them again.
    let (_, memo) = s.sync().await;
    assert_eq!(
        memo.map(|m| m.0),
        Some(11),
        "trusted again after a full pass"
    );
    s.by_hand("DROP TRIGGER _syncflow_changes ON items").await;
    s.by_hand("UPDATE items SET name = 'no trigger', _bridge_data_hash = '\\x00' WHERE id = 19")
        .await;
    let (after_drop, memo) = s.sync().await;
    assert_eq!(counts(&after_drop), [0, 1, 0, 999], "{after_drop}");
    assert_eq!(memo.map(|m| m.0), Some(0));
    s.assert_equal_to_source("after the trigger was dropped")
        .await;
    let (_, memo) = s.sync().await;
    assert_eq!(memo.map(|m| m.0), Some(11), "counted again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_undo_the_next_pass_reads_every_page() {
    let pg = PgCluster::start();
    let mut s = Setup::start(&pg, "memo_undo").await;
    s.sync().await;
    let original = s.source.clone();
    s.serve(renamed(original.clone(), &[5, 505]));
    let changed = run_synced(&s.file, &s.state(), &ENV).await;
    assert_eq!(changed["entities"]["items"]["updated"], 2, "{changed}");
    let run_id = changed["run_id"].as_str().unwrap();

    // The run is undone: the table holds the old names again, though the source (unchanged since) has the new ones.
    let out = syncflow_async(&["undo", run_id], &s.state(), &ENV).await;
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(live_id_names(&s.pool, "items").await, id_names(&original));

    // The pages' replies are the ones the undone run wrote, but the table is not: every page is read.
    let (resynced, memo) = s.sync().await;
    assert_eq!(counts(&resynced), [0, 2, 0, 998], "{resynced}");
    assert_eq!(memo.map(|m| m.0), Some(0));
    s.assert_equal_to_source("after the undo").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_on_two_pages_is_never_skipped_into_the_wrong_version() {
    let pg = PgCluster::start();
    let mut s = Setup::start(&pg, "memo_repeats").await;
    // Item 150 (page 2) also comes on page 5 with another name: the later page's version wins.
    let mut source: Vec<Value> = (1..=1_000).map(item).collect();
    source[449] = json!({"id": 150, "name": "item 150 again", "price": "1.00"});
    s.serve(source.clone());
    s.sync().await;
    let name_of_150 = |pool: sqlx::PgPool| async move {
        sqlx::query_scalar::<_, String>("SELECT name FROM items WHERE id = 150")
            .fetch_one(&pool)
            .await
            .unwrap()
    };
    assert_eq!(name_of_150(s.pool.clone()).await, "item 150 again");
    let (_, memo) = s.sync().await;
    let (skipped, _, _) = memo.unwrap();
    assert_eq!(
        skipped, 0,
        "the memo of a pass with a key on two pages is not kept"
    );

    // Page 5 drops its copy (item 450 is back): page 2's version is the source's now, and the table has it.
    source[449] = item(450);
    s.serve(source);
    s.sync().await;
    assert_eq!(name_of_150(s.pool.clone()).await, "item 150");
    s.assert_equal_to_source("after the repeat went").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resync_killed_among_skipped_pages_resumes_exactly_and_deletes_nothing() {
    let pg = PgCluster::start();
    let mut s = Setup::start(&pg, "memo_killed").await;
    s.sync().await;
    // Item 950 (page 10) renamed; each reply takes 150 ms, so the run dies among the pages it skips.
    s.serve(renamed(s.source.clone(), &[950]));
    s.server.set_delay_ms(150);
    let file = s.file.to_str().unwrap().to_owned();
    let mut child = spawn_syncflow(
        &["run", &file, "--apply-schema", "--json"],
        &s.state(),
        &ENV,
    );
    let started = std::time::Instant::now();
    loop {
        let page: Option<i64> = sqlx::query_scalar(
            "SELECT (checkpoint->>'page_no')::bigint FROM _syncflow_checkpoints WHERE entity = 'items'",
        )
        .fetch_optional(&s.pool)
        .await
        .unwrap();
        // The first sync left page 11; the re-sync's own checkpoints count from 1.
        if page.is_some_and(|p| (2..=8).contains(&p)) {
            break;
        }
        assert!(
            started.elapsed().as_secs() < 60,
            "the re-sync never got going"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    child.kill().unwrap();
    finished(child).await;
    s.server.set_delay_ms(0);

    // The next run finishes the pass: the skipped pages' keys were recorded as seen, so nothing is taken for gone.
    let (resumed, _) = s.sync().await;
    assert_eq!(resumed["deleted"], 0, "{resumed}");
    s.assert_equal_to_source("after the kill").await;
    // A pass that resumed keeps no memo; the one after it reads every page and remembers them again.
    let (_, memo) = s.sync().await;
    assert_eq!(memo.map(|m| m.0), Some(0));
    let (_, memo) = s.sync().await;
    assert_eq!(memo.map(|m| (m.0, m.1)), Some((11, 0)));
}
