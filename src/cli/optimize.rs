//! `skill-fleet optimize` and `skill-fleet runs`.

use super::eval::ProgramArgs;
use super::{output, App};
use crate::data::SplitFractions;
use crate::lm::budget::BudgetLimits;
use crate::optimize::fewshot::FewShotSettings;
use crate::optimize::mipro::Auto;
use crate::optimize::{run_optimization, OptimizeRequest, OptimizerKind, RunHooks};
use anyhow::{anyhow, Result};
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
    /// labeled | bootstrap | random-search | miprov2 | gepa
    #[arg(long, default_value = "bootstrap")]
    pub optimizer: String,
    /// Pick the optimizer from trainset size and budget, printing why.
    #[arg(long)]
    pub auto_select: bool,
    /// light | medium | heavy (MIPROv2 and GEPA).
    #[arg(long, default_value = "light")]
    pub auto: String,
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
    #[arg(long, default_value_t = 16)]
    pub num_candidates: usize,
    /// MIPROv2 trials (default: the auto formula).
    #[arg(long)]
    pub num_trials: Option<usize>,
    /// GEPA metric-call budget (default: from --auto).
    #[arg(long)]
    pub max_metric_calls: Option<usize>,
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

/// The original's optimizer recommendation: a choice with its reason.
pub fn recommend(
    n_examples: usize,
    max_calls: Option<u64>,
    max_minutes: Option<f64>,
) -> (OptimizerKind, String) {
    let tight = max_calls.is_some_and(|c| c < 300) || max_minutes.is_some_and(|m| m < 10.0);
    if n_examples < 20 {
        (OptimizerKind::Labeled, format!("{n_examples} examples is too few to bootstrap reliably; labeled demos need no optimization calls"))
    } else if tight {
        (
            OptimizerKind::Bootstrap,
            "a tight budget (under 300 calls or 10 minutes) fits one bootstrap pass".into(),
        )
    } else if n_examples < 100 {
        (OptimizerKind::Miprov2, format!("{n_examples} examples and no tight budget: MIPROv2 light searches instructions and demos together"))
    } else {
        (OptimizerKind::Gepa, format!("{n_examples} examples give GEPA's reflection enough feedback to evolve instructions"))
    }
}

pub async fn optimize(app: &App, a: OptimizeArgs) -> Result<ExitCode> {
    let config = app.config()?;
    let mut optimizer = OptimizerKind::parse(&a.optimizer)?;
    if a.auto_select {
        let n = match app.store()?.find_trainset(&a.trainset) {
            Ok(t) => t.n_examples as usize,
            Err(_) => {
                crate::data::load_file(std::path::Path::new(&a.trainset), &config.taxonomy()?)?
                    .examples
                    .len()
            }
        };
        let (choice, why) = recommend(n, a.max_calls, a.max_minutes);
        eprintln!("auto-select: {} — {why}", choice.name());
        optimizer = choice;
    }
    let mut req = OptimizeRequest::new(&a.program.program, &a.trainset, optimizer);
    req.program = a.program.to_ref();
    req.auto = Auto::parse(&a.auto)
        .ok_or_else(|| anyhow!("--auto `{}`: expected light, medium or heavy", a.auto))?;
    req.seed = a.seed;
    let d = FewShotSettings::default();
    req.fewshot = FewShotSettings {
        max_bootstrapped_demos: a.max_bootstrapped_demos.unwrap_or(d.max_bootstrapped_demos),
        max_labeled_demos: a.max_labeled_demos.unwrap_or(d.max_labeled_demos),
        max_rounds: 1,
        metric_threshold: a.metric_threshold.unwrap_or(d.metric_threshold),
    };
    req.num_candidates = a.num_candidates;
    req.num_trials = a.num_trials;
    req.max_metric_calls = a.max_metric_calls;
    req.limits = BudgetLimits {
        max_calls: a.max_calls,
        max_tokens: a.max_tokens,
        max_cost_usd: a.max_cost,
    };
    req.max_minutes = a.max_minutes;
    req.threads = a.threads;
    req.metric = a.metric;
    req.promote = a.promote;
    req.no_cache = a.no_cache;
    req.split = SplitFractions {
        train: a.train_frac,
        val: a.val_frac,
    };
    req.split.validate()?;

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
    let hooks = RunHooks {
        on_progress: Some(Box::new(move |p, msg| {
            pb2.set_position((p * 1000.0) as u64);
            pb2.set_message(msg.to_string());
        })),
        interrupted: Some(interrupted),
        on_run_created: None,
    };
    let report = run_optimization(app.cli_db.clone(), config, req, a.resume, hooks).await?;
    pb.finish_and_clear();
    if app.json {
        output::json(&report)?;
    } else {
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
    Ok(if report.status == "interrupted" {
        ExitCode::from(130)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn runs(app: &App, cmd: RunsCommand) -> Result<ExitCode> {
    let store = app.store()?;
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
                            r.kind.clone(),
                            r.optimizer.clone().unwrap_or_default(),
                            r.status.clone(),
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
                            e.split.clone(),
                            e.kind.clone(),
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
