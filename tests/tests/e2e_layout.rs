//! Every screen at 1024×768 in the real window, after a run of the Demo (so that history, failed records, mapping and
//! schema have content; the run itself reads "completed with 3 failed" in amber and leads to the three records): a screenshot of each in tests/artifacts (1024-<screen>.png, to be looked at), and two
//! checks a person would make by eye — nothing scrolls sideways, and no two controls or texts cover each other
//! (each element's box clipped by the scrolling boxes it sits in, compared with every element it does not contain).

use std::time::Duration;
use syncflow_tests::artifacts_dir;
use syncflow_tests::webdriver::{AppWindow, Session};

/// Elements a person reads or clicks, and the pairs of them that overlap on screen (at most 10, described).
const OVERLAPS: &str = r#"
const sel = "button, input, select, textarea, h1, h2, h3, th, td, legend, p, li, .tab-count, .form-label, .help, .field-error, .failed-row > span";
const clip = (e) => {
  const st = getComputedStyle(e);
  if (st.visibility === "hidden" || st.display === "none") return null;
  const r = e.getBoundingClientRect();
  let box = { l: r.left, t: r.top, r: r.right, b: r.bottom };
  for (let a = e.parentElement; a && a !== document.documentElement; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX !== "visible" || s.overflowY !== "visible") {
      const q = a.getBoundingClientRect();
      box = { l: Math.max(box.l, q.left), t: Math.max(box.t, q.top), r: Math.min(box.r, q.right), b: Math.min(box.b, q.bottom) };
    }
  }
  return box.r - box.l >= 2 && box.b - box.t >= 2 ? box : null;
};
const name = (e) => {
  const id = e.getAttribute("data-testid");
  const text = (e.textContent || e.value || "").trim().slice(0, 30);
  return `${e.tagName.toLowerCase()}${id ? "[" + id + "]" : ""} "${text}"`;
};
const items = [...document.querySelectorAll(sel)].map((e) => [e, clip(e)]).filter(([, b]) => b);
const clashes = [];
for (let i = 0; i < items.length && clashes.length < 10; i++) {
  for (let j = i + 1; j < items.length && clashes.length < 10; j++) {
    const [a, A] = items[i];
    const [b, B] = items[j];
    if (a.contains(b) || b.contains(a)) continue;
    const w = Math.min(A.r, B.r) - Math.max(A.l, B.l);
    const h = Math.min(A.b, B.b) - Math.max(A.t, B.t);
    if (w > 2 && h > 2) clashes.push(`${name(a)} × ${name(b)}`);
  }
}
return { clashes, checked: items.length, sideways: document.documentElement.scrollWidth - window.innerWidth };
"#;

async fn check_screen(session: &Session, screen: &str) -> u64 {
    session.script("window.scrollTo(0, 0); return 0;").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    session
        .screenshot(&artifacts_dir().join(format!("1024-{screen}.png")))
        .await;
    let found = session.script(OVERLAPS).await;
    let clashes: Vec<String> = found["clashes"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|c| c.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    assert!(
        clashes.is_empty(),
        "{screen} at 1024×768: elements cover each other: {clashes:#?}"
    );
    let sideways = found["sideways"].as_f64().unwrap_or(f64::NAN);
    assert!(
        sideways <= 0.0,
        "{screen} at 1024×768 scrolls sideways by {sideways} px"
    );
    found["checked"].as_u64().unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_screen_fits_1024_by_768_without_overlaps() {
    let window = AppWindow::open().await;
    let session = &window.session;
    let wait = Duration::from_secs(60);
    session.set_window_size(1024, 768).await;

    session.click_on("[data-testid='run-Demo']", wait).await;
    session.review_and_run("Demo", wait).await;
    // The Demo's three bad invoices: the run says so, in amber, and leads to them.
    let status = session
        .wait_text("[data-testid='run-status']", wait, |t| {
            t.starts_with("completed")
        })
        .await;
    assert_eq!(status, "completed with 3 failed");
    let class = session
        .script("return document.querySelector(\"[data-testid='run-status']\").className;")
        .await;
    assert!(
        class.as_str().unwrap_or_default().contains("with-failed"),
        "{class}"
    );
    let mut checked = vec![("pipelines", check_screen(session, "pipelines").await)];
    session.click_on("[data-testid='open-failed']", wait).await;
    let listed = session
        .wait_content("[data-testid='failed-table']", wait, |t| t.contains("TBD"))
        .await;
    assert!(listed.contains("invoice"), "{listed}");

    session.click_on("[data-testid='tab-runs']", wait).await;
    session.wait_for("[data-testid='run-history']", wait).await;
    session
        .wait_for("[data-testid='schedule-editor']", wait)
        .await;
    checked.push(("runs", check_screen(session, "runs").await));

    session.click_on("[data-testid='tab-connect']", wait).await;
    session.choose("source.kind", "rest", wait).await;
    session.click_on("[data-testid='add-entity']", wait).await;
    session.choose("target.kind", "postgres", wait).await;
    checked.push(("new-pipeline", check_screen(session, "new-pipeline").await));
    session.click_on("[data-testid='tab-mapping']", wait).await;
    session
        .click_on("[data-testid='unsaved-leave']", wait)
        .await;
    session
        .wait_for("[data-testid='field-scroller']", wait)
        .await;
    checked.push(("mapping", check_screen(session, "mapping").await));

    session.click_on("[data-testid='tab-schema']", wait).await;
    session
        .wait_for("[data-testid='export-schema']:not([disabled])", wait)
        .await;
    checked.push(("schema", check_screen(session, "schema").await));

    session.click_on("[data-testid='tab-failed']", wait).await;
    session.click_on("[data-testid^='failed-row-']", wait).await;
    session
        .wait_for("[data-testid='failed-detail']", wait)
        .await;
    checked.push(("failed", check_screen(session, "failed").await));

    session
        .click_on("[data-testid='tab-conflicts']", wait)
        .await;
    checked.push(("conflicts", check_screen(session, "conflicts").await));

    for (screen, count) in checked {
        assert!(count > 10, "{screen}: only {count} elements checked");
    }
}
