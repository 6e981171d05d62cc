//! `skill-fleet eval`, `predict` and `metrics test|score`: argument parsing
//! and output around the jobs in `crate::jobs`.

use super::{output, App};
use crate::data::Part;
use crate::jobs::{self, AbSelection, EnsembleRequest, EvalRequest, PredictRequest};
use crate::program::ProgramRef;
use crate::progress::Event;
use anyhow::{anyhow, Context, Result};
use clap::{Args, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value};
use std::process::ExitCode;
use std::sync::Arc;

/// Which program version to use.
#[derive(Debug, Clone, Args)]
pub struct ProgramArgs {
    /// Spec file (YAML, or DSPy JSON) or registered program name.
    #[arg(long, default_value = "config/programs/skill_understanding.yaml")]
    pub program: String,
    #[arg(long, conflicts_with = "alias")]
    pub version: Option<i64>,
    #[arg(long)]
    pub alias: Option<String>,
}

impl ProgramArgs {
    pub fn to_ref(&self) -> ProgramRef {
        ProgramRef {
            program: self.program.clone(),
            version: self.version,
            alias: self.alias.clone(),
        }
    }
}

/// Ensemble flags shared by `eval` and `predict`.
#[derive(Debug, Clone, Args)]
pub struct EnsembleArgs {
    /// BestOfN: sample N answers and keep the one with the highest --reward.
    #[arg(long, conflicts_with = "vote")]
    pub best_of: Option<usize>,
    /// MajorityVote: sample N answers and keep the most common --vote-field.
    #[arg(long)]
    pub vote: Option<usize>,
    /// Field to vote on (also the selector of a --versions ensemble).
    #[arg(long)]
    pub vote_field: Option<String>,
    /// Minimum share of samples agreeing with the winner.
    #[arg(long, default_value_t = 0.0)]
    pub min_agreement: f64,
    /// Sampling temperature of ensemble samples.
    #[arg(long, default_value_t = 0.7)]
    pub sample_temperature: f32,
    /// Reward metric (gold-free) for --best-of or a --versions ensemble.
    #[arg(long)]
    pub reward: Option<String>,
    /// Stop --best-of early once a sample reaches this reward.
    #[arg(long)]
    pub threshold: Option<f64>,
    /// Other versions of the program joining as ensemble members (comma-separated).
    #[arg(long, value_delimiter = ',')]
    pub versions: Vec<i64>,
}

impl EnsembleArgs {
    fn to_request(&self) -> Option<EnsembleRequest> {
        if self.best_of.is_none() && self.vote.is_none() && self.versions.is_empty() {
            return None;
        }
        Some(EnsembleRequest {
            best_of: self.best_of,
            vote: self.vote,
            vote_field: self.vote_field.clone(),
            min_agreement: self.min_agreement,
            temperature: self.sample_temperature,
            reward: self.reward.clone(),
            threshold: self.threshold,
            versions: self.versions.clone(),
        })
    }
}

#[derive(Debug, Args)]
pub struct EvalArgs {
    #[command(flatten)]
    pub program: ProgramArgs,
    /// Stored trainset (id, name or hash prefix).
    #[arg(long)]
    pub trainset: String,
    /// Evaluate one part of the newest split (train, val, test).
    #[arg(long)]
    pub split: Option<String>,
    #[arg(long)]
    pub metric: Option<String>,
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    #[arg(long)]
    pub limit: Option<usize>,
    #[arg(long)]
    pub no_cache: bool,
    #[command(flatten)]
    pub ensemble: EnsembleArgs,
}

#[derive(Debug, Args)]
pub struct PredictArgs {
    #[command(flatten)]
    pub program: ProgramArgs,
    /// Inputs as a JSON object, e.g. '{"task_description": "Create a ..."}'.
    #[arg(long)]
    pub input: String,
    #[arg(long)]
    pub no_cache: bool,
    /// Print the rendered prompt of each predictor too.
    #[arg(long)]
    pub show_prompt: bool,
    #[command(flatten)]
    pub ensemble: EnsembleArgs,
    /// Route through this A/B test: its program, at the version of the
    /// variant it picks for --key (the assignment is stored).
    #[arg(long, requires = "key", conflicts_with_all = ["version", "alias"])]
    pub ab: Option<String>,
    /// The unit (user, session) an A/B test routes by.
    #[arg(long, requires = "ab")]
    pub key: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Shows a metric on gold labels (should be ~1) and on perturbed labels (should drop).
    Test {
        #[arg(long, default_value = crate::tasks::skill::DEFAULT_METRIC)]
        metric: String,
        #[arg(long)]
        trainset: String,
        #[arg(long, default_value_t = 10)]
        examples: usize,
        #[arg(long, default_value = "config/programs/skill_understanding.yaml")]
        program: String,
    },
    /// Scores predictions made elsewhere (another framework, a hand-written
    /// file) with a metric of ours, so both sides of a comparison use one metric.
    ///
    /// PREDICTIONS is JSONL, one `{"idx": N, "prediction": {FIELD: VALUE, ...}}`
    /// per line, where N is the example's 0-based index in the trainset.
    Score {
        #[arg(long, default_value = crate::tasks::skill::DEFAULT_METRIC)]
        metric: String,
        #[arg(long)]
        trainset: String,
        #[arg(long, default_value = "config/programs/skill_understanding.yaml")]
        program: String,
        predictions: std::path::PathBuf,
    },
}

fn bar(total: u64) -> ProgressBar {
    let pb = ProgressBar::new(total);
    pb.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    pb
}

pub async fn eval(app: &App, a: EvalArgs) -> Result<ExitCode> {
    let split = a
        .split
        .as_deref()
        .map(|s| {
            Part::parse(s).ok_or_else(|| anyhow!("--split `{s}`: expected train, val or test"))
        })
        .transpose()?;
    let req = EvalRequest {
        program: a.program.to_ref(),
        trainset: a.trainset,
        split,
        metric: a.metric,
        threads: a.threads,
        no_cache: a.no_cache,
        limit: a.limit,
        ensemble: a.ensemble.to_request(),
    };
    let pb = if app.json {
        ProgressBar::hidden()
    } else {
        bar(0)
    };
    let pb2 = pb.clone();
    let on_event = Arc::new(move |e: &Event| {
        if let Event::Progress { done, planned, .. } = e {
            pb2.set_length(*planned);
            pb2.set_position(*done);
        }
    });
    let report = jobs::run_eval(&app.context()?, req, Some(on_event)).await?;
    pb.finish_and_clear();
    if app.json {
        output::json(&report)?;
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "run #{}: {} v{} on {} examples, metric {}",
        report.run_id, report.program, report.version, report.n, report.metric
    );
    println!(
        "mean score: {:.4}   errors: {}   LM calls: {} ({} cache hits)   {:.1}s",
        report.mean, report.errors, report.lm_calls, report.cache_hits, report.wall_secs
    );
    let rows: Vec<Vec<String>> = report
        .field_accuracy
        .iter()
        .map(|(f, acc)| vec![f.clone(), format!("{:.1}%", acc * 100.0)])
        .collect();
    output::table(&["field", "exact accuracy"], &rows);
    println!("\nworst examples:");
    for (id, score, fb) in &report.worst {
        let first = fb.lines().next().unwrap_or("");
        println!("  example {id}: {score:.2}  {first}");
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn predict(app: &App, a: PredictArgs) -> Result<ExitCode> {
    let inputs: Map<String, Value> = serde_json::from_str(&a.input)
        .context("--input: expected a JSON object of input fields")?;
    let req = PredictRequest {
        program: a.program.to_ref(),
        inputs,
        no_cache: a.no_cache,
        ensemble: a.ensemble.to_request(),
        ab: a.ab.zip(a.key).map(|(test, key)| AbSelection { test, key }),
    };
    let r = jobs::predict(&app.context()?, req, a.show_prompt).await?;
    for (name, prompt) in &r.prompts {
        eprintln!("--- prompt of `{name}` ---\n{prompt}\n---");
    }
    if app.json {
        output::json(&serde_json::json!({
            "program": r.program, "version": r.version, "outputs": r.outputs,
            "lm_calls": r.lm_calls, "cache_hits": r.cache_hits,
            "chosen": r.chosen, "runs": r.runs, "agreement": r.agreement, "reward": r.reward,
            "ab": r.ab,
        }))?;
    } else {
        if let Some(ab) = &r.ab {
            println!(
                "ab: test {} routed key {} to variant {} (version {})",
                ab.test, ab.key, ab.variant, ab.version
            );
        }
        if r.runs > 1 {
            eprintln!(
                "[chose run {} of {}{}{}]",
                r.chosen + 1,
                r.runs,
                r.agreement
                    .map(|a| format!(", agreement {a:.2}"))
                    .unwrap_or_default(),
                r.reward
                    .map(|x| format!(", reward {x:.2}"))
                    .unwrap_or_default()
            );
        }
        for (k, v) in &r.outputs {
            println!("{k}: {}", crate::program::signature::render_value(v));
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn metrics(app: &App, cmd: MetricsCommand) -> Result<ExitCode> {
    let ctx = app.context()?;
    match cmd {
        MetricsCommand::Test {
            metric,
            trainset,
            examples,
            program,
        } => {
            let r = jobs::test_metric(&ctx, &metric, &trainset, &program, examples).await?;
            if app.json {
                let means: Map<String, Value> = r
                    .labels
                    .iter()
                    .zip(&r.means)
                    .map(|(l, m)| (l.clone(), serde_json::json!(m)))
                    .collect();
                output::json(&serde_json::json!({"metric": r.metric, "mean": means}))?;
            } else {
                let mut headers = vec!["example"];
                headers.extend(r.labels.iter().map(String::as_str));
                let table: Vec<Vec<String>> = r
                    .rows
                    .iter()
                    .map(|(id, scores)| {
                        std::iter::once(id.to_string())
                            .chain(scores.iter().map(|s| format!("{s:.2}")))
                            .collect()
                    })
                    .collect();
                output::table(&headers, &table);
                let mean_row: Vec<String> = std::iter::once("mean".to_string())
                    .chain(r.means.iter().map(|m| format!("{m:.2}")))
                    .collect();
                output::table(&headers, &[mean_row]);
            }
        }
        MetricsCommand::Score {
            metric,
            trainset,
            program,
            predictions,
        } => {
            let r =
                jobs::score_predictions(&ctx, &metric, &trainset, &program, &predictions).await?;
            if app.json {
                let rows: Vec<Value> = r
                    .scores
                    .iter()
                    .map(|(idx, score, feedback)| serde_json::json!({"idx": idx, "score": score, "feedback": feedback}))
                    .collect();
                output::json(&serde_json::json!({
                    "metric": r.metric,
                    "n": r.n,
                    "mean": r.mean,
                    "scores": rows,
                }))?;
            } else {
                let table: Vec<Vec<String>> = r
                    .scores
                    .iter()
                    .map(|(idx, score, feedback)| {
                        vec![idx.to_string(), format!("{score:.3}"), feedback.clone()]
                    })
                    .collect();
                output::table(&["idx", "score", "feedback"], &table);
                println!("{}: mean {:.4} over {} predictions", r.metric, r.mean, r.n);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
