//! The command line: clap definitions and a few lines per command that call
//! the library. Errors are reported here, with context, via `anyhow`.

mod ab;
mod db;
mod eval;
mod export;
mod lm;
mod optimize;
mod output;
mod program;
mod report;
mod serve;
mod sql;
mod trainset;
mod versions;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

use crate::config::Config;
use crate::store::Store;

/// Optimize LM programs DSPy-style and track everything in one SQLite file.
#[derive(Debug, Parser)]
#[command(name = "skill-fleet", version, about)]
pub struct Cli {
    /// Tracker database file.
    #[arg(
        long,
        global = true,
        env = "SKILL_FLEET_DB",
        default_value = "skill-fleet.db"
    )]
    pub db: PathBuf,
    /// Configuration file (LM roles, taxonomy, retries, cache).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    /// Print machine-readable JSON instead of tables.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Inspect the tracker database.
    #[command(subcommand)]
    Db(db::DbCommand),
    /// Import, validate, inspect and split trainsets.
    #[command(subcommand)]
    Trainset(trainset::TrainsetCommand),
    /// Run a read-only SQL query on the tracker.
    Sql(sql::SqlArgs),
    /// Register, inspect, export (DSPy JSON) and alias program versions.
    #[command(subcommand)]
    Program(program::ProgramCommand),
    /// Program versions: list, show, diff, promote (with an evidence gate),
    /// roll back, alias history.
    #[command(subcommand)]
    Versions(versions::VersionsCommand),
    /// Compare two versions on the same examples (paired bootstrap interval,
    /// sign test, per-example wins); the comparison is stored.
    Compare(versions::CompareArgs),
    /// Evaluate a program version on a trainset; every score is stored.
    Eval(eval::EvalArgs),
    /// Run a program on one input.
    Predict(eval::PredictArgs),
    /// Check metrics on gold and perturbed labels.
    #[command(subcommand)]
    Metrics(eval::MetricsCommand),
    /// Optimize a program (labeled, bootstrap, random-search, miprov2, gepa).
    Optimize(Box<optimize::OptimizeArgs>),
    /// List and inspect runs.
    #[command(subcommand)]
    Runs(optimize::RunsCommand),
    /// Export runs to other systems (an MLflow tracking server).
    #[command(subcommand)]
    Export(export::ExportCommand),
    /// Call a language model directly.
    #[command(subcommand)]
    Lm(lm::LmCommand),
    /// Inspect or clear the LM response cache.
    #[command(subcommand)]
    Cache(lm::CacheCommand),
    /// A/B tests between program versions: create, route, weights, record, status, conclude.
    #[command(subcommand)]
    Ab(ab::AbCommand),
    /// Report on a run: Markdown, self-contained HTML, JSON or CSV.
    Report(report::ReportArgs),
    /// Export LM call traces (JSONL or CSV).
    #[command(subcommand)]
    Traces(report::TracesCommand),
    /// Serve the HTTP API (optimization jobs, registry, predict, metrics).
    Serve(serve::ServeArgs),
}

/// Default config location, relative to the working directory.
pub const DEFAULT_CONFIG: &str = "config/config.yaml";

/// What every command gets: parsed global flags and lazily opened resources.
pub struct App {
    pub cli_db: PathBuf,
    pub config_path: Option<PathBuf>,
    pub json: bool,
}

impl App {
    /// Loads the config (defaults when the default file is absent).
    pub fn config(&self) -> Result<Config> {
        let (path, explicit) = match &self.config_path {
            Some(p) => (p.clone(), true),
            None => (PathBuf::from(DEFAULT_CONFIG), false),
        };
        Config::load(&path, explicit).with_context(|| format!("loading config {}", path.display()))
    }

    /// Opens (and migrates) the tracker database for a command's own
    /// writes (imports, registrations, aliases): one transaction each.
    pub fn store(&self) -> Result<Store> {
        Store::open(&self.cli_db)
            .with_context(|| format!("opening database {}", self.cli_db.display()))
    }

    /// A read-only connection, after making sure the file exists and is
    /// migrated (so a fresh path or an older schema reads like a new one).
    pub fn reader(&self) -> Result<Store> {
        drop(self.store()?);
        Store::open_read_only(&self.cli_db)
            .with_context(|| format!("opening database {} read-only", self.cli_db.display()))
    }

    /// What jobs need: the config and a store writer on the database.
    pub fn context(&self) -> Result<crate::jobs::Context> {
        crate::jobs::Context::open(&self.cli_db, self.config()?)
            .with_context(|| format!("opening database {}", self.cli_db.display()))
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    restore_sigpipe();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_report(&e));
            ExitCode::from(1)
        }
    }
}

/// Rust ignores SIGPIPE, so writing to a closed pipe (`skill-fleet ... |
/// head`) is an error, and `println!` panics on it. A command-line tool should
/// end quietly instead, as it does with the default disposition.
fn restore_sigpipe() {
    #[cfg(unix)]
    // SAFETY: called first thing in main, before any thread exists; setting
    // a signal's disposition to the default has no other effect.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}

/// The error and its causes on one line, like `{:#}`, but a cause whose text
/// the line already holds is left out: library errors such as
/// `database error: {0}` show their source in their own message, and `{:#}`
/// would print it a second time.
pub fn error_report(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<ExitCode> {
    let ctx = App {
        cli_db: cli.db,
        config_path: cli.config,
        json: cli.json,
    };
    match cli.command {
        Command::Db(c) => db::run(&ctx, c),
        Command::Trainset(c) => trainset::run(&ctx, c),
        Command::Sql(a) => sql::run(&ctx, a),
        Command::Program(c) => program::run(&ctx, c),
        Command::Versions(c) => versions::run(&ctx, c),
        Command::Compare(a) => runtime()?.block_on(versions::compare(&ctx, a)),
        Command::Runs(c) => optimize::runs(&ctx, c),
        Command::Cache(c) => lm::run_cache(&ctx, c),
        Command::Ab(c) => ab::run(&ctx, c),
        Command::Report(a) => report::report(&ctx, a),
        Command::Traces(c) => report::traces(&ctx, c),
        Command::Eval(a) => runtime()?.block_on(eval::eval(&ctx, a)),
        Command::Predict(a) => runtime()?.block_on(eval::predict(&ctx, a)),
        Command::Metrics(c) => runtime()?.block_on(eval::metrics(&ctx, c)),
        Command::Optimize(a) => runtime()?.block_on(optimize::optimize(&ctx, *a)),
        Command::Export(c) => runtime()?.block_on(export::run(&ctx, c)),
        Command::Lm(c) => runtime()?.block_on(lm::run(&ctx, c)),
        Command::Serve(a) => runtime()?.block_on(serve::run(&ctx, a)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn a_cause_already_in_the_message_is_reported_once() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        let db = conn.prepare("SELEC 1").unwrap_err();
        let e = Err::<(), _>(crate::error::Error::from(db))
            .context("running the query")
            .unwrap_err();
        let line = error_report(&e);
        assert_eq!(line.matches("syntax error").count(), 1, "{line}");
        assert!(
            line.starts_with("running the query: database error: near \"SELEC\""),
            "{line}"
        );
        // A cause that adds something is kept.
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let e = anyhow::Error::new(io).context("reading t.json");
        assert_eq!(error_report(&e), "reading t.json: no such file");
    }

    /// clap checks argument names only when a subcommand is parsed; this checks
    /// them all (a `--version` argument once clashed with the version flag).
    #[test]
    fn command_line_definition_is_consistent() {
        Cli::command().debug_assert();
    }
}
