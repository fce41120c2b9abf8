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

mod mapping;
mod progress;
mod records;
mod runs;

use mapping::*;
use progress::*;
use records::*;
use runs::*;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc commits its arenas as they are used instead of eagerly: a 1M-row first sync peaked at 110–130 MB of RSS
/// instead of 143–168 MB, at the same speed. Set from the process's constructors, before the first allocation
/// (which reserves the first arena), so not from `main`.
#[cfg(target_os = "linux")]
#[used]
#[link_section = ".init_array"]
static COMMIT_ARENAS_AS_USED: extern "C" fn() = commit_arenas_as_used;

#[cfg(target_os = "linux")]
extern "C" fn commit_arenas_as_used() {
    // mimalloc v3's `mi_option_arena_eager_commit`, which libmimalloc-sys does not name.
    const ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    // SAFETY: sets one option of the allocator before anything is allocated, while no other thread exists.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0) }
}

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
        /// Write the schema to this file instead of stdout (for Prisma 7, with a prisma.config.ts beside it unless
        /// one is there).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The Prisma major version to write for: 7 (the default; the URL goes in prisma.config.ts) or 6 (the URL
        /// in the schema's datasource).
        #[arg(long, default_value = "7")]
        prisma: syncflow_engine::schema::prisma::PrismaVersion,
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
    /// Alerts about scheduled runs: `syncflow alert test` sends a test message to the alert webhook (its URL from
    /// SYNCFLOW_ALERT_WEBHOOK, else the keychain entry "alert-webhook").
    Alert {
        #[command(subcommand)]
        action: AlertAction,
    },
    /// Runs of a pipeline.
    Runs {
        #[command(subcommand)]
        action: RunsAction,
    },
    /// Undo a run: every table it changed put back as it was before it (inserted rows removed, updated and deleted
    /// rows restored), in one transaction; its failed records, waiting children and open conflicts withdrawn.
    /// Only the latest run of a pipeline that changed its target can be undone.
    Undo {
        run_id: String,
        #[arg(long)]
        state: Option<PathBuf>,
        /// Say what would change, and change nothing.
        #[arg(long)]
        dry_run: bool,
        /// One JSON object instead of lines.
        #[arg(long)]
        json: bool,
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
enum RunsAction {
    /// The run history of PIPELINE, newest first: id, status, start and end, who started it, counters per entity.
    List {
        pipeline: String,
        #[arg(long)]
        state: Option<PathBuf>,
        /// One JSON array instead of lines.
        #[arg(long)]
        json: bool,
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
enum AlertAction {
    /// Send a test message to the alert webhook.
    Test,
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
                    samples: None,
                };
                run(&file, state, options, json).await
            }
            Command::Schema {
                file,
                state,
                out,
                prisma,
            } => schema(&file, state, out, prisma).await,
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
            Command::Alert {
                action: AlertAction::Test,
            } => alert_test().await,
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
            Command::Runs {
                action:
                    RunsAction::List {
                        pipeline,
                        state,
                        json,
                    },
            } => runs_list(&pipeline, state, json).await,
            Command::Undo {
                run_id,
                state,
                dry_run,
                json,
            } => undo(&run_id, state, dry_run, json).await,
        }
    });
    ExitCode::from(code)
}

/// Prints the error where the CLI's user looks and returns its exit code (`is_run`: the `run` command).
fn fail(e: &AppError, is_run: bool) -> u8 {
    eprintln!("error: {e}");
    e.exit_code(is_run)
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
