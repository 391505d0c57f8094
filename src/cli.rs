//! Command-line interface: `run` (the default), `check`, `sign`, `ca`,
//! `token` and `store`.

mod ca;
mod log_event;
mod log_format;
mod log_sink;
mod sign;
mod store;
mod token;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::app::{App, StartError, StartOptions};
use crate::config::{self, ConfigError};

/// Exit status for a config that does not validate (EX_USAGE).
pub const EXIT_BAD_CONFIG: u8 = 64;

#[derive(Debug, Parser)]
#[command(
    name = "countersign",
    version,
    about = "Signs outbound HTTP requests for an app that never holds the secrets"
)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve: the forward proxy, route listeners, hot reload (the default).
    Run(RunArgs),
    /// Validate a config and list every problem (exit 0, or 64).
    Check(ConfigArg),
    /// Print exactly the headers countersign would add to a request.
    Sign(sign::SignArgs),
    /// Manage the local CA that HTTPS interception signs with.
    Ca(ca::CaArgs),
    /// Show an OAuth2 credential's token state (the token only with --reveal).
    Token(token::TokenArgs),
    /// The shared store ([store]): `migrate` copies the token_store files into it.
    Store(store::StoreArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    config: ConfigArg,
    /// Log lines as human-readable text or as JSON objects.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, env = "COUNTERSIGN_LOG_FORMAT")]
    log_format: LogFormat,
    /// Threads that serve connections (default: one per CPU available to
    /// the process).
    #[arg(long, env = "COUNTERSIGN_WORKERS", value_parser = clap::value_parser!(u16).range(1..=1024))]
    workers: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum LogFormat {
    Human,
    Json,
}

#[derive(Debug, Args)]
pub struct ConfigArg {
    /// Path to proxy.toml.
    #[arg(long, short, default_value = "proxy.toml", env = "COUNTERSIGN_CONFIG")]
    config: PathBuf,
}

pub fn main(cli: Cli) -> ExitCode {
    // Before any command may open a TLS connection of a library's making
    // (a `rediss://` store).
    crate::pki::provider::install();
    match cli.command {
        None => run(cli.run),
        Some(Command::Run(args)) => run(args),
        Some(Command::Check(args)) => check(args),
        Some(Command::Sign(args)) => sign::sign(args),
        Some(Command::Ca(args)) => ca::ca(args),
        Some(Command::Token(args)) => token::token(args),
        Some(Command::Store(args)) => store::store(args),
    }
}

/// Installs the log; the guard writes what is still queued when dropped.
fn init_logs(format: LogFormat) -> log_sink::Flush<std::io::Stderr> {
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref());
    let (sink, flush) = log_sink::start(std::io::stderr());
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(sink);
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    match format {
        LogFormat::Json => logs.json().flatten_event(true).init(),
        LogFormat::Human if terminal => logs.with_ansi(true).init(),
        // The same text, written for less (the access line is per request).
        LogFormat::Human => logs
            .with_ansi(false)
            .fmt_fields(log_format::PlainFields)
            .event_format(log_event::PlainEvent::default())
            .init(),
    }
    // Panics go to the log like everything else, with their location and
    // without their message unless it is a literal from the code: a
    // formatted one may quote request data or a secret (std's own hook
    // would print it to stderr).
    std::panic::set_hook(Box::new(|info| {
        let message = info.payload().downcast_ref::<&'static str>().copied();
        let location = info.location().map(ToString::to_string).unwrap_or_default();
        tracing::error!(%location, panic = message.unwrap_or("(withheld)"), "panicked");
    }));
    flush
}

/// The log filter from `RUST_LOG`: `info` when it is unset or blank. The
/// value is trimmed first (tracing-subscriber would take ` info` for a
/// target named " info" and log nothing), and one it cannot parse is
/// reported on stderr and replaced by `info`, so a typo never silences the
/// log without a word.
fn log_filter(value: Option<&str>) -> tracing_subscriber::EnvFilter {
    let value = value.map(str::trim).unwrap_or_default();
    if value.is_empty() {
        return tracing_subscriber::EnvFilter::new("info");
    }
    tracing_subscriber::EnvFilter::try_new(value).unwrap_or_else(|e| {
        eprintln!("countersign: RUST_LOG={value:?} is not a log filter ({e}); logging at info");
        tracing_subscriber::EnvFilter::new("info")
    })
}

fn runtime(workers: Option<u16>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = workers {
        builder.worker_threads(usize::from(n));
    }
    builder.enable_all().build()
}

fn print_problems(e: &ConfigError) {
    eprintln!(
        "countersign: {} problem(s) in the config:",
        e.problems.len()
    );
    for p in &e.problems {
        eprintln!("  {p}");
    }
}

fn check(args: ConfigArg) -> ExitCode {
    match config::load(&args.config) {
        Ok(c) => {
            println!(
                "{}: ok ({} route(s), {} credential(s))",
                args.config.display(),
                c.routes.len(),
                c.credentials.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_problems(&e);
            ExitCode::from(EXIT_BAD_CONFIG)
        }
    }
}

fn run(args: RunArgs) -> ExitCode {
    let flush = init_logs(args.log_format);
    let workers = args.workers;
    let args = args.config;
    let rt = match runtime(workers) {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("countersign: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let code = rt.block_on(async {
        // Registered before anything starts, so a SIGTERM during startup is
        // still a graceful stop rather than the default kill.
        let terminated = termination();
        let options = StartOptions {
            watch_files: true,
            reload_on_sighup: true,
        };
        let app = match App::start(&args.config, options).await {
            Ok(app) => app,
            Err(StartError::Config(e)) => {
                print_problems(&e);
                return ExitCode::from(EXIT_BAD_CONFIG);
            }
            Err(e) => {
                eprintln!("countersign: {e}");
                return ExitCode::FAILURE;
            }
        };
        let workers = tokio::runtime::Handle::current().metrics().num_workers();
        tracing::info!(config = %args.config.display(), proxy = %app.proxy_addr(), workers, "countersign is serving");
        terminated.await;
        tracing::info!("shutting down: no new connections; finishing requests in flight");
        app.shutdown().await;
        tracing::info!("shut down");
        ExitCode::SUCCESS
    });
    // Not a plain drop, which would wait for every blocking task: a reload
    // still waiting on a stalled file read must not keep the process alive.
    rt.shutdown_timeout(std::time::Duration::from_millis(100));
    drop(flush);
    code
}

/// Installs the SIGTERM/SIGINT handlers now; the future resolves on either.
fn termination() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{signal, SignalKind};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
