//! What a person watching sees: progress on stderr (a bar on a terminal, plain lines otherwise), the run's summary
//! on stdout, and SIGINT/SIGTERM turned into a pause.

use super::*;

/// SIGINT/SIGTERM pause the run: the current page is finished and its checkpoint saved (exit code 3).
pub(crate) fn spawn_signal_handler(stop: StopSignal) {
    tokio::spawn(async move {
        let interrupt = tokio::signal::ctrl_c();
        #[cfg(unix)]
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        #[cfg(not(unix))]
        let terminate = std::future::pending::<()>();
        tokio::select! {
            _ = interrupt => {},
            _ = terminate => {},
        }
        eprintln!("pausing: finishing the current page and saving the checkpoint…");
        stop.request();
    });
}

pub(crate) fn print_summary(summary: &RunSummary, json: bool) {
    let mut out = std::io::stdout().lock();
    if json {
        let line = serde_json::to_string(summary).unwrap_or_else(|_| "{}".into());
        let _ = writeln!(out, "{line}");
        return;
    }
    let _ = writeln!(
        out,
        "run {} of {}: {} in {:.1} s",
        summary.run_id,
        summary.pipeline,
        summary.outcome,
        summary.duration_ms as f64 / 1000.0
    );
    if summary.failed() > 0 {
        let _ = writeln!(
            out,
            "{} failed record(s) kept with why: syncflow failed list {} (fix, then syncflow failed retry {})",
            summary.failed(),
            summary.pipeline,
            summary.pipeline
        );
    }
    let _ = writeln!(
        out,
        "{:<24} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
        "entity", "fetched", "inserted", "updated", "skipped", "failed", "pending"
    );
    for (name, c) in &summary.entities {
        let _ = writeln!(
            out,
            "{name:<24} {:>10} {:>10} {:>10} {:>10} {:>10} {:>8}",
            c.fetched, c.inserted, c.updated, c.skipped, c.failed, c.pending
        );
    }
}

/// Progress on stderr: a bar on a terminal, plain lines (at most one a second) otherwise.
pub(crate) struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Option<Instant>>,
}

impl Reporter {
    pub(crate) fn new() -> Reporter {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new_spinner();
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Reporter {
            bar,
            last_line: Mutex::new(None),
        }
    }

    pub(crate) fn report(&self, event: &RunEvent) {
        let (line, always) = match event {
            RunEvent::Started { run_id, pipeline, resumed, .. } => {
                (format!("{} run {run_id} of {pipeline}", if *resumed { "resuming" } else { "starting" }), true)
            }
            RunEvent::Page { entity, page_no, counts, rows_per_s, target_calls, .. } => (
                format!(
                    "{entity}: page {page_no}, {} fetched, {} inserted, {} updated, {} skipped, {} failed ({rows_per_s:.0} rows/s{})",
                    counts.fetched,
                    counts.inserted,
                    counts.updated,
                    counts.skipped,
                    counts.failed,
                    target_calls.map(|n| format!(", {n} write calls to the target")).unwrap_or_default()
                ),
                false,
            ),
            RunEvent::Pending { pipeline } => (format!("{pipeline}: waiting for a free job slot"), true),
            RunEvent::EntityDone { entity, counts } => (format!("{entity}: done, {} records", counts.fetched), true),
            RunEvent::Finished { summary } => (format!("run {}", summary.status.as_str()), true),
            RunEvent::Waiting { entity, on, message, waited_s, budget_s } => (
                format!("{entity}: waiting for the {on} ({waited_s} s of {budget_s} s): {message}"),
                true,
            ),
        };
        match &self.bar {
            Some(bar) => bar.set_message(line),
            None => {
                let Ok(mut last) = self.last_line.lock() else {
                    return;
                };
                if always || last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                    eprintln!("{line}");
                    *last = Some(Instant::now());
                }
            }
        }
    }

    pub(crate) fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}
