//! The `syncflow` CLI (its contract: README, "The CLI"): the engine, headless. Results go to stdout, progress and errors to stderr.

use clap::{Parser, Subcommand};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use syncflow_engine::app::{self, AppError, Context};
use syncflow_engine::conflicts::Side;
use syncflow_engine::discover::{model_inputs, Discovered};
use syncflow_engine::jobs::scheduler::SchedulerAction;
use syncflow_engine::run::{RunEvent, RunOptions, StopSignal};
use syncflow_engine::schema::prisma::{self, Provider};
use syncflow_engine::schema::Mapping;
use syncflow_engine::store::Store;
use syncflow_engine::track::RunSummary;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "syncflow",
    version,
    about = "SyncFlow: exact, resumable data sync (the console's engine, headless)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Import or update the pipeline, then run every entity to completion (resuming an unfinished run).
    Run {
        /// The pipeline file (TOML).
        file: PathBuf,
        /// The state database (default: the console's own, in the OS app-data folder).
        #[arg(long)]
        state: Option<PathBuf>,
        /// Create missing target tables and add missing columns first.
        #[arg(long)]
        apply_schema: bool,
        /// Report insert/update/delete/skip counts and write nothing.
        #[arg(long)]
        dry_run: bool,
        /// Apply the deletes the delete guard held back (more than an entity's max_delete_fraction of its rows),
        /// and let this run delete past the guard.
        #[arg(long)]
        confirm_deletes: bool,
        /// Print the run summary as one JSON object on the last stdout line.
        #[arg(long)]
        json: bool,
    },
    /// Discover the fields, sanitise their names and print (or write) the Prisma schema.
    Schema {
        file: PathBuf,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Write the schema to this file instead of stdout.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Print how every source field will be named and typed.
    Mapping {
        file: PathBuf,
        #[arg(long)]
        state: Option<PathBuf>,
        /// One JSON array (the shape README documents) instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Failed records (the dead-letter queue) of a pipeline.
    Failed {
        #[command(subcommand)]
        action: FailedAction,
    },
    /// Store or delete a secret in the OS keychain (the value is read from standard input).
    Secret {
        #[command(subcommand)]
        action: SecretAction,
    },
    /// Manual conflicts: target rows edited outside the engine whose source changed too.
    Conflicts {
        #[command(subcommand)]
        action: ConflictsAction,
    },
    /// Run the scheduler headless: pipelines with a [schedule] start on their cron, inside their window, and
    /// failed records are retried; SIGINT/SIGTERM pause the running jobs and stop.
    Daemon {
        #[arg(long)]
        state: Option<PathBuf>,
        /// Jobs running at once across pipelines.
        #[arg(long, default_value_t = 2)]
        max_jobs: usize,
        /// Seconds between two looks at the schedules.
        #[arg(long, default_value_t = 30)]
        tick_seconds: u64,
    },
}

#[derive(Subcommand)]
enum ConflictsAction {
    /// List the open conflicts of PIPELINE: the key, and per field the source, target and last-synced values.
    List {
        pipeline: String,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Resolved ones too, with who resolved them, when, and what was chosen.
        #[arg(long)]
        all: bool,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
    },
    /// Resolve conflict ID: every field from one side, or some fields from the other with --field.
    Resolve {
        id: i64,
        /// The side every field takes (unless named with --field).
        #[arg(long, value_enum)]
        take: TakeSide,
        /// COLUMN=source|target for one field (repeatable).
        #[arg(long = "field")]
        fields: Vec<String>,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Print the resolved conflict as JSON.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum TakeSide {
    Source,
    Target,
}

impl From<TakeSide> for Side {
    fn from(t: TakeSide) -> Side {
        match t {
            TakeSide::Source => Side::Source,
            TakeSide::Target => Side::Target,
        }
    }
}

#[derive(Subcommand)]
enum FailedAction {
    /// List the failed records of PIPELINE with the stage, the error and the record.
    List {
        pipeline: String,
        #[arg(long)]
        state: Option<PathBuf>,
        /// One JSON array instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Run the failed records of PIPELINE through the stages again (all of them, or those given with --id; all of
    /// them checks the records waiting for their parent first).
    Retry {
        pipeline: String,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Only this record (repeatable).
        #[arg(long = "id")]
        ids: Vec<i64>,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
enum SecretAction {
    /// Read a value from standard input and store it as keychain entry NAME.
    Set { name: String },
    /// Delete keychain entry NAME.
    Delete { name: String },
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let code = runtime.block_on(async {
        match cli.command {
            Command::Run {
                file,
                state,
                apply_schema,
                dry_run,
                confirm_deletes,
                json,
            } => {
                let options = RunOptions {
                    apply_schema,
                    dry_run,
                    base_dir: PathBuf::new(),
                    started_by: "cli",
                    budget: None,
                    confirm_deletes,
                };
                run(&file, state, options, json).await
            }
            Command::Schema { file, state, out } => schema(&file, state, out).await,
            Command::Mapping { file, state, json } => mapping(&file, state, json).await,
            Command::Failed {
                action:
                    FailedAction::List {
                        pipeline,
                        state,
                        json,
                    },
            } => failed_list(&pipeline, state, json).await,
            Command::Failed {
                action:
                    FailedAction::Retry {
                        pipeline,
                        state,
                        ids,
                        json,
                    },
            } => failed_retry(&pipeline, state, &ids, json).await,
            Command::Secret { action } => secret(action),
            Command::Conflicts {
                action:
                    ConflictsAction::List {
                        pipeline,
                        state,
                        all,
                        json,
                    },
            } => conflicts_list(&pipeline, state, all, json).await,
            Command::Conflicts {
                action:
                    ConflictsAction::Resolve {
                        id,
                        take,
                        fields,
                        state,
                        json,
                    },
            } => conflicts_resolve(id, take.into(), &fields, state, json).await,
            Command::Daemon {
                state,
                max_jobs,
                tick_seconds,
            } => daemon(state, max_jobs, tick_seconds).await,
        }
    });
    ExitCode::from(code)
}

/// Prints the error where the CLI's user looks and returns its exit code (`runs` for commands that run a
/// pipeline).
fn fail(e: &AppError, runs: bool) -> u8 {
    eprintln!("error: {e}");
    e.exit_code(runs)
}

/// A result as one JSON line on stdout (`--json`).
fn print_json_line<T: serde::Serialize>(value: &T) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        Err(e) => eprintln!("error: the result could not be written as JSON: {e}"),
    }
}

/// The use cases' context over the state database (`--state`, or the console's own); `max_jobs` runs at once.
async fn context(state: Option<PathBuf>, max_jobs: usize) -> Result<Context, AppError> {
    Context::open(&state.unwrap_or_else(Store::default_path), max_jobs).await
}

async fn run(file: &Path, state: Option<PathBuf>, options: RunOptions, json: bool) -> u8 {
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

/// Discovers a pipeline's entities and names their models and fields (shared by `schema` and `mapping`).
async fn discover_models(
    file: &Path,
    state: Option<PathBuf>,
) -> Result<(Provider, Vec<Discovered>), u8> {
    let ctx = context(state, 1).await.map_err(|e| fail(&e, false))?;
    eprintln!("discovering the fields of {}…", file.display());
    let (pipeline, found) = app::mapping::discover_file(&ctx, file)
        .await
        .map_err(|e| fail(&e, false))?;
    Ok((Provider::of(&pipeline.target), found))
}

/// The discovered mappings, in entity order (for `discover::model_inputs`).
fn mappings_of(found: &[Discovered]) -> Vec<Mapping> {
    found.iter().map(|d| d.mapping.clone()).collect()
}

async fn schema(file: &Path, state: Option<PathBuf>, out: Option<PathBuf>) -> u8 {
    let (provider, found) = match discover_models(file, state).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let text = match prisma::generate(&model_inputs(&found, &mappings_of(&found)), provider) {
        Ok(text) => text,
        Err(problems) => {
            for p in problems {
                eprintln!(
                    "error: {p}; change it under [entities.fields] in {}",
                    file.display()
                );
            }
            return 2;
        }
    };
    match out {
        Some(path) => match std::fs::write(&path, text) {
            Ok(()) => {
                eprintln!("wrote {}", path.display());
                0
            }
            Err(e) => {
                eprintln!("error: cannot write {}: {e}", path.display());
                2
            }
        },
        None => {
            print!("{text}");
            0
        }
    }
}

async fn mapping(file: &Path, state: Option<PathBuf>, json: bool) -> u8 {
    let (_, found) = match discover_models(file, state).await {
        Ok(x) => x,
        Err(code) => return code,
    };
    let reports = prisma::reports(&model_inputs(&found, &mappings_of(&found)));
    if json {
        print_json_line(&reports);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for r in &reports {
        let _ = writeln!(
            out,
            "{} → table \"{}\", model {}",
            r.entity, r.table, r.model
        );
        for f in &r.fields {
            let collides = if f.collides_with.is_empty() {
                String::new()
            } else {
                format!(" (collides with {:?})", f.collides_with)
            };
            let _ = writeln!(
                out,
                "  {:<32} {:<28} {:<8} {}{collides}",
                f.source, f.field, f.ty, f.note
            );
        }
    }
    0
}

/// SIGINT/SIGTERM pause the run: the current page is finished and its checkpoint saved (exit code 3).
fn spawn_signal_handler(stop: StopSignal) {
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

fn print_summary(summary: &RunSummary, json: bool) {
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
        summary.status.as_str(),
        summary.duration_ms as f64 / 1000.0
    );
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
struct Reporter {
    bar: Option<indicatif::ProgressBar>,
    last_line: Mutex<Option<Instant>>,
}

impl Reporter {
    fn new() -> Reporter {
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

    fn report(&self, event: &RunEvent) {
        let (line, always) = match event {
            RunEvent::Started { run_id, pipeline, resumed, .. } => {
                (format!("{} run {run_id} of {pipeline}", if *resumed { "resuming" } else { "starting" }), true)
            }
            RunEvent::Page { entity, page_no, counts, rows_per_s, .. } => (
                format!(
                    "{entity}: page {page_no}, {} fetched, {} inserted, {} updated, {} skipped, {} failed ({rows_per_s:.0} rows/s)",
                    counts.fetched, counts.inserted, counts.updated, counts.skipped, counts.failed
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

    fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

async fn failed_retry(pipeline: &str, state: Option<PathBuf>, ids: &[i64], json: bool) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, true),
    };
    let only = (!ids.is_empty()).then_some(ids);
    eprintln!("retrying the failed records of {pipeline}…");
    let outcome = match app::records::retry_failed(&ctx, pipeline, only, &Default::default()).await
    {
        Ok(outcome) => outcome,
        Err(e) => return fail(&e, true),
    };
    if let Some(children) = outcome.children.as_ref().filter(|c| c.tried > 0) {
        eprintln!(
            "{} record(s) waiting for their parent: {} landed, {} still waiting",
            children.tried, children.landed, children.waiting
        );
    }
    let records = &outcome.records;
    for f in &records.still_failing {
        eprintln!(
            "#{} {} still fails at {}: {}",
            f.id, f.entity, f.stage, f.message
        );
    }
    if json {
        println!(
            "{}",
            serde_json::to_string(&outcome).unwrap_or_else(|_| "{}".into())
        );
    } else {
        println!(
            "{} retried ({} inserted, {} updated, {} unchanged), {} still failing",
            records.retried,
            records.inserted,
            records.updated,
            records.unchanged,
            records.still_failing.len()
        );
    }
    0
}

async fn failed_list(pipeline: &str, state: Option<PathBuf>, json: bool) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let rows = match app::records::failed(&ctx, pipeline).await {
        Ok(rows) => rows,
        Err(e) => return fail(&e, false),
    };
    if json {
        print_json_line(&rows);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for r in &rows {
        let raw: String = r.raw.chars().take(100).collect();
        let _ = writeln!(
            out,
            "#{} {} page {} record {} [{}] {}: {}\n    {raw}",
            r.id, r.entity, r.page_no, r.record_index, r.status, r.stage, r.message
        );
    }
    let _ = writeln!(out, "{} failed record(s)", rows.len());
    // Children waiting for their parent are not failed, but they are not in the target either.
    if let Ok(waiting) = app::records::waiting_children(&ctx, pipeline).await {
        for c in &waiting {
            let _ = writeln!(
                out,
                "waiting {} [{}] {} = {} names {} not in the target yet ({} checks)",
                c.entity, c.status, c.field, c.parent_key, c.parent_entity, c.tries
            );
        }
        if !waiting.is_empty() {
            let _ = writeln!(out, "{} record(s) waiting for their parent", waiting.len());
        }
    }
    0
}

async fn conflicts_list(pipeline: &str, state: Option<PathBuf>, all: bool, json: bool) -> u8 {
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    let found = match app::records::conflicts(&ctx, pipeline, all).await {
        Ok(found) => found,
        Err(e) => return fail(&e, false),
    };
    if json {
        print_json_line(&found);
        return 0;
    }
    let mut out = std::io::stdout().lock();
    for c in &found {
        let _ = writeln!(
            out,
            "#{} {} {} [{}] detected {}",
            c.id, c.entity, c.key, c.status, c.detected_at
        );
        for f in c.fields.iter().filter(|f| f.differs) {
            let _ = writeln!(
                out,
                "    {}: source {} | target {} | last synced {}",
                f.column,
                f.source,
                f.target,
                f.synced
                    .as_ref()
                    .map(|v| v.to_string())
                    .unwrap_or_else(|| "?".into())
            );
        }
    }
    let _ = writeln!(out, "{} conflict(s)", found.len());
    0
}

async fn conflicts_resolve(
    id: i64,
    take: Side,
    fields: &[String],
    state: Option<PathBuf>,
    json: bool,
) -> u8 {
    let mut chosen = std::collections::BTreeMap::new();
    for field in fields {
        let side = match field.rsplit_once('=') {
            Some((column, "source")) => Some((column, Side::Source)),
            Some((column, "target")) => Some((column, Side::Target)),
            _ => None,
        };
        let Some((column, side)) = side else {
            eprintln!("error: --field {field}: write it as COLUMN=source or COLUMN=target");
            return 2;
        };
        chosen.insert(column.to_owned(), side);
    }
    let ctx = match context(state, 1).await {
        Ok(ctx) => ctx,
        Err(e) => return fail(&e, false),
    };
    match app::records::resolve_conflict(&ctx, id, take, &chosen).await {
        Ok(view) => {
            let mut out = std::io::stdout().lock();
            if json {
                let _ = writeln!(out, "{}", serde_json::to_string(&view).unwrap_or_default());
            } else {
                let kind = view
                    .resolution
                    .as_ref()
                    .map(|r| r.kind.as_str())
                    .unwrap_or("");
                let _ = writeln!(out, "conflict {id} resolved ({kind}) in {}", view.table);
            }
            0
        }
        Err(e) => fail(&e, false),
    }
}

/// `syncflow daemon`: the scheduler without the window.
async fn daemon(state: Option<PathBuf>, max_jobs: usize, tick_seconds: u64) -> u8 {
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
    let report = |action: &SchedulerAction| {
        eprintln!("{}", serde_json::to_string(action).unwrap_or_default());
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

fn secret(action: SecretAction) -> u8 {
    let result = match action {
        SecretAction::Set { name } => {
            let mut value = String::new();
            if let Err(e) = std::io::stdin().read_to_string(&mut value) {
                eprintln!("error: cannot read the secret from standard input: {e}");
                return 2;
            }
            let value = value.trim_end_matches(['\n', '\r']);
            if value.is_empty() {
                eprintln!("error: the secret is empty; pipe it in, e.g. `printf %s \"$TOKEN\" | syncflow secret set {name}`");
                return 2;
            }
            app::connections::store_secret(&name, value)
                .map(|_| eprintln!("stored keychain entry \"{name}\""))
        }
        SecretAction::Delete { name } => app::connections::delete_secret(&name)
            .map(|_| eprintln!("deleted keychain entry \"{name}\"")),
    };
    match result {
        Ok(()) => 0,
        Err(e) => {
            eprintln!("error: {e}");
            1
        }
    }
}
