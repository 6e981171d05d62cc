//! `skill-fleet optimize` and `skill-fleet runs`: argument parsing and output
//! around the optimize job in `crate::jobs::optimize`.

use super::eval::ProgramArgs;
use super::{output, App};
use crate::data::SplitFractions;
use crate::jobs::optimize::{chain_steps, run_chain, OptimizeReport};
use crate::jobs::{run_optimization, OptimizeParams, RunHooks};
use crate::lm::budget::BudgetLimits;
use crate::optimize::{Auto, Overrides};
use crate::program::knn::Retriever;
use crate::progress::Event;
use crate::store::Status;
use anyhow::{anyhow, bail, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(Debug, Args)]
pub struct OptimizeArgs {
    #[command(flatten)]
    pub program: ProgramArgs,
    /// Stored trainset or a trainset file (imported on first use).
    #[arg(long, default_value = "config/training/trainset.json")]
    pub trainset: String,
    /// labeled | bootstrap | random-search | knn | miprov2 | gepa, or a chain of
    /// them joined by `+` (bootstrap+gepa: each step starts from the
    /// version the previous one registered)
    #[arg(long, default_value = "bootstrap")]
    pub optimizer: String,
    /// Stream the run to this MLflow tracking server while it runs (in the
    /// background; a server that is down only produces warnings).
    #[arg(long)]
    pub mlflow: Option<String>,
    /// MLflow experiment of --mlflow.
    #[arg(long, default_value = "skill-fleet", requires = "mlflow")]
    pub mlflow_experiment: String,
    /// Pick the optimizer from trainset size and budget, printing why.
    #[arg(long)]
    pub auto_select: bool,
    /// light | medium | heavy (MIPROv2 and GEPA; default light).
    #[arg(long)]
    pub auto: Option<String>,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    #[arg(long)]
    pub max_bootstrapped_demos: Option<usize>,
    #[arg(long)]
    pub max_labeled_demos: Option<usize>,
    /// Minimum score for a teacher trace to become a demo.
    #[arg(long)]
    pub metric_threshold: Option<f64>,
    /// Random-search candidates (DSPy default 16).
    #[arg(long)]
    pub num_candidates: Option<usize>,
    /// MIPROv2 trials (default: the auto formula).
    #[arg(long)]
    pub num_trials: Option<usize>,
    /// GEPA metric-call budget (default: from --auto).
    #[arg(long)]
    pub max_metric_calls: Option<usize>,
    /// KNN's retriever: bm25 (default) or embedding (the task model's
    /// embeddings). KNN's k is --max-labeled-demos (default 4).
    #[arg(long)]
    pub retriever: Option<String>,
    #[arg(long)]
    pub max_calls: Option<u64>,
    #[arg(long)]
    pub max_tokens: Option<u64>,
    #[arg(long)]
    pub max_cost: Option<f64>,
    #[arg(long)]
    pub max_minutes: Option<f64>,
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    #[arg(long)]
    pub metric: Option<String>,
    /// Point this alias at the optimized version.
    #[arg(long)]
    pub promote: Option<String>,
    #[arg(long)]
    pub no_cache: bool,
    /// Continue an interrupted run.
    #[arg(long)]
    pub resume: Option<i64>,
    #[arg(long, default_value_t = 0.4)]
    pub train_frac: f64,
    #[arg(long, default_value_t = 0.3)]
    pub val_frac: f64,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// Recent runs.
    List {
        #[arg(long, default_value_t = 20)]
        limit: i64,
    },
    /// One run with its candidates and evaluations.
    Show { run: i64 },
}

pub async fn optimize(app: &App, a: OptimizeArgs) -> Result<ExitCode> {
    let ctx = app.context()?;
    let mut params = OptimizeParams::new(a.program.to_ref(), &a.trainset, &a.optimizer);
    params.overrides = Overrides {
        auto: a
            .auto
            .as_deref()
            .map(|s| {
                Auto::parse(s)
                    .ok_or_else(|| anyhow!("--auto `{s}`: expected light, medium or heavy"))
            })
            .transpose()?,
        max_bootstrapped_demos: a.max_bootstrapped_demos,
        max_labeled_demos: a.max_labeled_demos,
        metric_threshold: a.metric_threshold,
        num_candidates: a.num_candidates,
        num_trials: a.num_trials,
        max_metric_calls: a.max_metric_calls,
        retriever: a
            .retriever
            .as_deref()
            .map(|s| {
                Retriever::parse(s)
                    .ok_or_else(|| anyhow!("--retriever `{s}`: expected bm25 or embedding"))
            })
            .transpose()?,
    };
    params.auto_select = a.auto_select;
    let req = &mut params.request;
    req.limits = BudgetLimits {
        max_calls: a.max_calls,
        max_tokens: a.max_tokens,
        max_cost_usd: a.max_cost,
    };
    req.seed = a.seed;
    req.max_minutes = a.max_minutes;
    req.threads = a.threads;
    req.metric = a.metric;
    req.promote = a.promote;
    req.no_cache = a.no_cache;
    req.split = SplitFractions {
        train: a.train_frac,
        val: a.val_frac,
    };
    if a.auto_select && a.resume.is_some() {
        bail!("--auto-select picks the optimizer of a new run; a resumed run keeps its own");
    }
    if let Some(why) = params.choose_optimizer(&ctx)? {
        eprintln!("auto-select: {} — {why}", params.optimizer);
    }
    let chained = chain_steps(&params.optimizer).len() > 1;
    if chained && a.resume.is_some() {
        bail!("a chain (`{}`) runs each step as its own run: resume a step's run with --resume RUN and no chain", params.optimizer);
    }
    let request = if chained {
        None
    } else {
        Some(params.clone().into_request(&ctx)?.0)
    };

    let interrupted = Arc::new(AtomicBool::new(false));
    {
        let flag = interrupted.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ninterrupt: finishing the current step and storing the best so far (Ctrl-C again to abort)");
                flag.store(true, Ordering::SeqCst);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let pb = if app.json {
        ProgressBar::hidden()
    } else {
        ProgressBar::new(1000)
    };
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {percent}% {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let pb2 = pb.clone();
    let streamer = match &a.mlflow {
        Some(uri) => Some(Arc::new(crate::export::mlflow::Streamer::start(
            &app.cli_db,
            uri,
            &a.mlflow_experiment,
            std::time::Duration::from_secs(2),
        )?)),
        None => None,
    };
    let stream = streamer.clone();
    let hooks = RunHooks {
        on_event: Some(Arc::new(move |e: &Event| {
            if let (Event::RunStarted { run_id }, Some(s)) = (e, &stream) {
                s.set_run(*run_id);
            }
            if let Event::Progress {
                fraction, message, ..
            } = e
            {
                pb2.set_position((fraction * 1000.0) as u64);
                pb2.set_message(message.clone());
            }
        })),
        interrupted: Some(interrupted),
    };
    let result = match request {
        Some(req) => run_optimization(&ctx, req, a.resume, hooks)
            .await
            .map(|r| vec![r]),
        None => run_chain(&ctx, params, hooks).await,
    };
    pb.finish_and_clear();
    if let Some(s) = &streamer {
        ctx.writer.flush()?;
        if !s.finish(std::time::Duration::from_secs(30)) {
            eprintln!("warning: the final MLflow export did not finish within 30 s");
        }
    }
    let reports = result?;
    if app.json {
        match reports.as_slice() {
            [one] => output::json(one)?,
            chain => output::json(&chain)?,
        }
    } else {
        for report in &reports {
            print_report(report);
        }
    }
    Ok(if reports.iter().any(|r| r.status == Status::Interrupted) {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

fn print_report(report: &OptimizeReport) {
    {
        println!(
            "run #{} ({}, metric {}): {} — {} train / {} val / {} test",
            report.run_id,
            report.optimizer,
            report.metric,
            report.status,
            report.n_train,
            report.n_val,
            report.n_test
        );
        println!(
            "  validation: baseline {:.4} -> best {:.4}",
            report.baseline_val, report.best_val
        );
        if let (Some(b), Some(o)) = (report.baseline_test, report.optimized_test) {
            println!(
                "  test:       baseline {b:.4} -> optimized {o:.4} ({:+.4})",
                o - b
            );
        }
        println!(
            "  candidates: {}   LM calls: {} ({} cache hits)   wall time: {:.1}s",
            report.candidates, report.lm_calls, report.cache_hits, report.wall_secs
        );
        if let Some(v) = report.version {
            println!(
                "  registered as version {v}{}",
                report
                    .promoted
                    .as_ref()
                    .map(|a| format!(", alias `{a}`"))
                    .unwrap_or_default()
            );
        }
        if let Some(s) = &report.stopped {
            println!(
                "  stopped early: {s}; continue with --resume {}",
                report.run_id
            );
        }
    }
}

pub fn runs(app: &App, cmd: RunsCommand) -> Result<ExitCode> {
    let store = app.reader()?;
    match cmd {
        RunsCommand::List { limit } => {
            let runs = store.list_runs(limit)?;
            if app.json {
                output::json(&runs)?;
            } else {
                let f = |x: Option<f64>| x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into());
                let rows: Vec<Vec<String>> = runs
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.kind.to_string(),
                            r.optimizer.clone().unwrap_or_default(),
                            r.status.to_string(),
                            format!("{:.0}%", r.progress * 100.0),
                            f(r.baseline_score),
                            f(r.best_score),
                            f(r.test_score),
                            r.started_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "id",
                        "kind",
                        "optimizer",
                        "status",
                        "progress",
                        "baseline",
                        "best",
                        "test",
                        "started",
                    ],
                    &rows,
                );
            }
        }
        RunsCommand::Show { run } => {
            let r = store.run(run)?;
            let cands = store.candidates(run)?;
            let evals = store.evaluations(run)?;
            if app.json {
                output::json(
                    &serde_json::json!({"run": r, "candidates": cands, "evaluations": evals}),
                )?;
            } else {
                println!(
                    "run #{} {} {} — {} ({:.0}%)",
                    r.id,
                    r.kind,
                    r.optimizer.unwrap_or_default(),
                    r.status,
                    r.progress * 100.0
                );
                let rows: Vec<Vec<String>> = evals
                    .iter()
                    .map(|e| {
                        vec![
                            e.id.to_string(),
                            e.candidate_id.map(|c| c.to_string()).unwrap_or_default(),
                            e.split.to_string(),
                            e.kind.to_string(),
                            e.n.to_string(),
                            e.mean_score.map(|m| format!("{m:.4}")).unwrap_or_default(),
                            e.status.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &["eval", "candidate", "split", "kind", "n", "mean", "status"],
                    &rows,
                );
                println!("{} candidates", cands.len());
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
