//! `syncflow run`, `syncflow runs list` and `syncflow daemon`.

use super::*;

pub(crate) async fn run(
    file: &Path,
    state: Option<PathBuf>,
    options: RunOptions,
    json: bool,
) -> u8 {
    let pipeline = match app::pipelines::read_file(file) {
        Ok(p) => p,
        Err(e) => return fail(&e, true),
    };
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, true),
    };
    let stop = match app::runs::claim(&ctx, &pipeline.name, options.started_by) {
        Ok(stop) => stop,
        Err(e) => return fail(&e, true),
    };
    spawn_signal_handler(stop.clone());
    let reporter = Reporter::new();
    let progress = |event: RunEvent| reporter.report(&event);
    let outcome = app::runs::run_claimed(&ctx, &pipeline, options, &progress, &stop).await;
    reporter.finish();
    match outcome {
        Ok(outcome) => {
            print_summary(&outcome.summary, json);
            if let Some(error) = &outcome.summary.error {
                eprintln!("error: {error}");
            }
            outcome.exit_code() as u8
        }
        Err(e) => fail(&e, true),
    }
}

/// `syncflow daemon`: the scheduler without the window.
pub(crate) async fn daemon(state: Option<PathBuf>, max_jobs: usize, tick_seconds: u64) -> u8 {
    let ctx = match context(state, max_jobs).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    match ctx.note_interrupted_runs().await {
        Ok(ids) if !ids.is_empty() => eprintln!(
            "{} interrupted run(s) will resume when next started",
            ids.len()
        ),
        Ok(_) => {}
        Err(e) => eprintln!("warning: {e}"),
    }
    let scheduler = ctx.scheduler();
    eprintln!("syncflow daemon: looking at the schedules every {tick_seconds} s (Ctrl-C pauses the jobs and stops)");
    let stop = StopSignal::default();
    spawn_signal_handler(stop.clone());
    let every = Duration::from_secs(tick_seconds.max(1));
    // Each action as a JSON line; what needs a person also goes to the alert webhook, when one is configured.
    let report = |action: &SchedulerAction| {
        eprintln!("{}", serde_json::to_string(action).unwrap_or_default());
        if let Some(alert) = syncflow_engine::jobs::alerts::alert_for(action) {
            tokio::task::spawn_blocking(move || notify_desktop(&alert));
        }
        let action = action.clone();
        tokio::spawn(async move {
            if let Some(Err(e)) = syncflow_engine::jobs::alerts::announce(&action).await {
                eprintln!("warning: {e}");
            }
        });
    };
    loop {
        match scheduler.tick().await {
            Ok(actions) => actions.iter().for_each(report),
            Err(e) => eprintln!("error: {e}"),
        }
        let deadline = Instant::now() + every;
        while Instant::now() < deadline && !stop.requested() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if stop.requested() {
            break;
        }
    }
    scheduler.pause_all().await;
    eprintln!("syncflow daemon: stopped");
    0
}

/// A desktop notification, when the daemon runs in a desktop session (a session D-Bus); a server without one gets
/// the JSON line on stderr and the webhook only.
fn notify_desktop(alert: &syncflow_engine::jobs::alerts::Alert) {
    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
        return;
    }
    let shown = notify_rust::Notification::new()
        .appname("SyncFlow")
        .summary(&alert.title)
        .body(&alert.text)
        .show();
    if let Err(e) = shown {
        tracing::debug!("desktop notification not shown: {e}");
    }
}

/// `syncflow runs list`: the run history, newest first.
pub(crate) async fn runs_list(pipeline: &str, state: Option<PathBuf>, json: bool) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let runs = match app::runs::history(&ctx, pipeline).await {
        Ok(runs) => runs,
        Err(e) => return fail(&e, false),
    };
    if json {
        print_json_line(&runs);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for r in &runs {
        let _ = writeln!(
            out,
            "{} {:<11} {} → {} by {}",
            r.run_id,
            r.status.as_str(),
            r.started_at,
            r.finished_at.as_deref().unwrap_or("…"),
            r.by
        );
        for (entity, c) in &r.entities {
            let _ = writeln!(
                out,
                "    {entity}: {} fetched, {} inserted, {} updated, {} deleted, {} skipped, {} failed, {} pending, {} conflicts",
                c.fetched, c.inserted, c.updated, c.deleted, c.skipped, c.failed, c.pending, c.conflicts
            );
        }
        if let Some(error) = &r.error {
            let _ = writeln!(out, "    error: {error}");
        }
        if let Some(at) = &r.undone_at {
            let _ = writeln!(out, "    undone at {at}");
        }
    }
    let _ = writeln!(out, "{} run(s)", runs.len());
    0
}

/// `syncflow undo RUN_ID`: exit 0 when undone (or, with `--dry-run`, when it could be), 2 when it cannot be, 4
/// when the pipeline is busy.
pub(crate) async fn undo(run_id: &str, state: Option<PathBuf>, dry_run: bool, json: bool) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let report = if dry_run {
        app::undo::preview(&ctx, run_id).await
    } else {
        app::undo::undo(&ctx, run_id).await
    };
    let report = match report {
        Ok(report) => report,
        Err(e) => return fail(&e, false),
    };
    if json {
        print_json_line(&report);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    let verb = if report.undone {
        "undone"
    } else {
        "would undo"
    };
    let _ = writeln!(
        out,
        "{verb}: run {} of \"{}\"",
        report.run_id, report.pipeline
    );
    for t in &report.tables {
        let _ = writeln!(
            out,
            "    {}: {} inserted row(s) removed, {} updated or deleted row(s) restored",
            t.table, t.removed, t.restored
        );
    }
    let w = report.withdrawn;
    let _ = writeln!(
        out,
        "    withdrawn: {} failed record(s), {} waiting child(ren), {} open conflict(s)",
        w.failed_records, w.waiting_children, w.conflicts
    );
    0
}
