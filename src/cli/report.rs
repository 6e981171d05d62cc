//! `skill-fleet report` and `skill-fleet traces export`: arguments in, a
//! report or an export from `crate::report` out, to a file or stdout.

use super::App;
use crate::report::comparison::{find_comparison, render_comparison};
use crate::report::redact::Redactor;
use crate::report::traces::{export_traces, parse_since, TraceFormat};
use crate::report::{build_run_report, render, Format};
use crate::store::TraceFilter;
use anyhow::{Context, Result};
use clap::{Args, Subcommand};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// A report of one run (optimize or eval).
///
/// Sections: configuration (the stored request and the LM roles called),
/// trainset and split sizes, baseline against best on validation and test,
/// every evaluation, score over trials, the candidate leaderboard, per-example
/// wins and losses of the best against the baseline (test, else validation;
/// an eval run lists its per-example scores instead), LM calls, tokens, cost,
/// cache hit rate and latency percentiles, and the best program's
/// instructions and demos.
///
/// Formats: `md` (Markdown), `html` (one self-contained file with a
/// score-over-trials chart; no network needed to view it), `json` (every
/// section, machine-readable) and `csv` (the per-example table only, one row
/// per example: for an optimize run `split, example_id, idx, input, outcome,
/// baseline_score, best_score, baseline_prediction, best_prediction,
/// baseline_feedback, best_feedback, baseline_error, best_error`; for an eval
/// run `example_id, idx, input, score, prediction, feedback, error`;
/// predictions are JSON text).
#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct ReportArgs {
    #[command(subcommand)]
    pub compare: Option<ReportCompare>,
    /// The run id.
    #[arg(required = true)]
    pub run: Option<i64>,
    /// md | html | json | csv
    #[arg(long, default_value = "md")]
    pub format: String,
    /// Write to this file instead of stdout.
    #[arg(short = 'o', long = "output")]
    pub output: Option<PathBuf>,
}

/// `report compare PROGRAM V1 V2`.
#[derive(Debug, Subcommand)]
pub enum ReportCompare {
    /// The newest stored comparison of two versions (`skill-fleet compare`),
    /// in the same formats: md, html (with a chart of per-example
    /// differences), json (the stored result) or csv (one row per example).
    Compare {
        program: String,
        v1: i64,
        v2: i64,
        /// md | html | json | csv
        #[arg(long, default_value = "md")]
        format: String,
        /// Write to this file instead of stdout.
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum TracesCommand {
    /// Export stored LM call traces (secrets scrubbed), streamed row by row.
    ///
    /// JSONL: one object per trace. CSV: a header row, then one row per trace,
    /// with the columns id, at, run_id, candidate_id, example_id, version_id,
    /// predictor, role, provider, model, prompt_tokens, completion_tokens,
    /// cost_usd, latency_ms, cache_hit, attempts, error, request_json,
    /// response_text.
    Export {
        /// Only this run's traces.
        #[arg(long)]
        run: Option<i64>,
        /// Only traces at or after this time: RFC 3339 (2026-11-29T12:00:00Z)
        /// or a date (2026-11-29, midnight UTC).
        #[arg(long)]
        since: Option<String>,
        /// jsonl | csv
        #[arg(long, default_value = "jsonl")]
        format: String,
        /// Output file.
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
}

/// A buffered writer on the file, or on stdout without one.
fn output(path: Option<&Path>) -> Result<Box<dyn Write>> {
    Ok(match path {
        Some(p) => Box::new(BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(BufWriter::new(std::io::stdout().lock())),
    })
}

pub fn report(app: &App, a: ReportArgs) -> Result<ExitCode> {
    if let Some(ReportCompare::Compare {
        program,
        v1,
        v2,
        format,
        output: path,
    }) = a.compare
    {
        let format = Format::parse(&format)?;
        let c = find_comparison(&app.reader()?, &program, v1, v2)?;
        let mut out = output(path.as_deref())?;
        render_comparison(&c, format, &mut out).context("writing the report")?;
        out.flush().context("writing the report")?;
        if let Some(p) = &path {
            eprintln!("comparison report written to {}", p.display());
        }
        return Ok(ExitCode::SUCCESS);
    }
    let run = a.run.context("name a run: skill-fleet report RUN")?;
    let format = Format::parse(&a.format)?;
    let store = app.reader()?;
    let report = build_run_report(&store, run)
        .with_context(|| format!("building the report of run {run}"))?;
    let mut out = output(a.output.as_deref())?;
    render(&report, format, &mut out).context("writing the report")?;
    out.flush().context("writing the report")?;
    if let Some(p) = &a.output {
        eprintln!("report of run {run} written to {}", p.display());
    }
    Ok(ExitCode::SUCCESS)
}

pub fn traces(app: &App, cmd: TracesCommand) -> Result<ExitCode> {
    match cmd {
        TracesCommand::Export {
            run,
            since,
            format,
            output: path,
        } => {
            let format = TraceFormat::parse(&format)?;
            let since = since.as_deref().map(parse_since).transpose()?;
            let store = app.reader()?;
            if let Some(id) = run {
                store.run(id).with_context(|| format!("--run {id}"))?;
            }
            let out = output(Some(&path))?;
            let n = export_traces(
                &store,
                &TraceFilter { run_id: run, since },
                format,
                &Redactor::from_env(),
                out,
            )
            .with_context(|| format!("exporting traces to {}", path.display()))?;
            eprintln!("{n} traces written to {}", path.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}
