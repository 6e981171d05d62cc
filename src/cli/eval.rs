//! `skill-fleet eval`, `predict` and `metrics test`.

use super::{output, App};
use crate::data::Part;
use crate::eval::{run_eval, EnsembleRequest, EvalRequest};
use crate::lm::budget::Budget;
use crate::lm::client::{CallContext, LmOptions, Lms};
use crate::metrics;
use crate::program::ensemble::{infer, Member, Strategy};
use crate::program::{load_program, ProgramRef};
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
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Shows a metric on gold labels (should be ~1) and on perturbed labels (should drop).
    Test {
        #[arg(long, default_value = "skill_comprehensive")]
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
        #[arg(long, default_value = "skill_comprehensive")]
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
    let report = run_eval(app.cli_db.clone(), app.config()?, req, |done, total| {
        pb.set_length(total as u64);
        pb.set_position(done as u64);
    })
    .await?;
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
    let config = app.config()?;
    let taxonomy = config.taxonomy()?;
    let mut store = app.store()?;
    let (spec, version) = load_program(&mut store, &a.program.to_ref())?;
    let inputs: Map<String, Value> = serde_json::from_str(&a.input)
        .context("--input: expected a JSON object of input fields")?;
    let missing: Vec<String> = spec
        .input_fields()
        .into_iter()
        .filter(|f| !inputs.contains_key(f))
        .collect();
    if !missing.is_empty() {
        return Err(anyhow!(
            "--input lacks field(s) {}; the program's inputs are {}",
            missing.join(", "),
            spec.input_fields().join(", ")
        ));
    }
    let lms = Arc::new(Lms::new(
        config.clone(),
        LmOptions {
            db: Some(app.cli_db.clone()),
            no_cache: a.no_cache,
        },
        Arc::new(Budget::unlimited()),
    )?);
    let lm = lms.role("task")?;
    let constants = Arc::new(spec.resolve_constants(&taxonomy.names()));
    if a.show_prompt {
        for p in &spec.predictors {
            let r = crate::program::adapter::render(spec.adapter, p, &constants, &inputs);
            eprintln!(
                "--- prompt of `{}` ---\n{}\n---",
                p.name,
                crate::program::run::prompt_text(&r.prompt)
            );
        }
    }
    let (strategy, others) = match a.ensemble.to_request() {
        Some(e) => e.build(&config, &lms, &mut store, &spec.name, &constants)?,
        None => (Strategy::Single, Vec::new()),
    };
    let mut members = vec![Member {
        spec: Arc::new(spec.clone()),
        constants: constants.clone(),
        lm,
    }];
    members.extend(others);
    let chosen = infer(&members, &strategy, &inputs, &CallContext::default()).await?;
    let pred = chosen.prediction;
    lms.flush_traces();
    if app.json {
        output::json(&serde_json::json!({
            "program": spec.name, "version": version.version, "outputs": pred.outputs,
            "lm_calls": pred.lm_calls, "cache_hits": pred.cache_hits,
            "chosen": chosen.index, "runs": chosen.runs, "agreement": chosen.agreement, "reward": chosen.reward,
        }))?;
    } else {
        if chosen.runs > 1 {
            eprintln!(
                "[chose run {} of {}{}{}]",
                chosen.index + 1,
                chosen.runs,
                chosen
                    .agreement
                    .map(|a| format!(", agreement {a:.2}"))
                    .unwrap_or_default(),
                chosen
                    .reward
                    .map(|r| format!(", reward {r:.2}"))
                    .unwrap_or_default()
            );
        }
        for (k, v) in &pred.outputs {
            println!("{k}: {}", crate::program::signature::render_value(v));
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Perturbations applied to gold labels by `metrics test`.
fn perturb(labels: &Map<String, Value>) -> Vec<(&'static str, Map<String, Value>)> {
    let mut out = Vec::new();
    let mut wrong_cat = labels.clone();
    if let Some(Value::String(p)) = labels.get("taxonomy_path") {
        let name = p.rsplit('/').next().unwrap_or("");
        let other = if p.starts_with("python/") {
            "rust"
        } else {
            "python"
        };
        wrong_cat.insert(
            "taxonomy_path".into(),
            Value::String(format!("{other}/{name}")),
        );
        out.push(("wrong category", wrong_cat));
    }
    let mut style = labels.clone();
    if let Some(Value::String(s)) = labels.get("skill_style") {
        style.insert(
            "skill_style".into(),
            Value::String(
                if s == "minimal" {
                    "comprehensive"
                } else {
                    "minimal"
                }
                .into(),
            ),
        );
        out.push(("wrong style", style));
    }
    let mut bad_meta = labels.clone();
    bad_meta.insert("name".into(), Value::String("Not_Kebab Name".into()));
    bad_meta.insert("description".into(), Value::String("A skill.".into()));
    bad_meta.insert("keywords".into(), serde_json::json!(["One"]));
    out.push(("broken metadata", bad_meta));
    let empty: Map<String, Value> = labels
        .keys()
        .map(|k| (k.clone(), Value::String(String::new())))
        .collect();
    out.push(("empty answer", empty));
    out
}

pub async fn metrics(app: &App, cmd: MetricsCommand) -> Result<ExitCode> {
    let (metric, trainset, examples, program) = match cmd {
        MetricsCommand::Test {
            metric,
            trainset,
            examples,
            program,
        } => (metric, trainset, examples, program),
        MetricsCommand::Score {
            metric,
            trainset,
            program,
            predictions,
        } => return score_predictions(app, &metric, &trainset, &program, &predictions).await,
    };
    let config = app.config()?;
    let mut store = app.store()?;
    let (spec, _) = load_program(
        &mut store,
        &ProgramRef {
            program,
            ..Default::default()
        },
    )?;
    let ts = store.find_trainset(&trainset)?;
    let rows = store.examples(ts.id)?;
    let m = metrics::resolve(&metric, &config.metrics, None)?;
    let mut table = Vec::new();
    let mut sums: Vec<(String, f64, usize)> = Vec::new();
    for e in rows.iter().take(examples) {
        let (_, gold) = spec.example_io(&e.fields);
        let g = m.score(&gold, &gold).await;
        let mut row = vec![e.id.to_string(), format!("{:.2}", g.score)];
        let mut add = |label: &str, s: f64| match sums.iter_mut().find(|x| x.0 == label) {
            Some(x) => {
                x.1 += s;
                x.2 += 1;
            }
            None => sums.push((label.to_string(), s, 1)),
        };
        add("gold", g.score);
        for (label, p) in perturb(&gold) {
            let r = m.score(&gold, &p).await;
            row.push(format!("{:.2}", r.score));
            add(label, r.score);
        }
        table.push(row);
    }
    if app.json {
        let means: Map<String, Value> = sums
            .iter()
            .map(|(l, s, n)| (l.clone(), serde_json::json!(s / *n as f64)))
            .collect();
        output::json(&serde_json::json!({"metric": m.name(), "mean": means}))?;
    } else {
        let mut headers = vec!["example"];
        headers.extend(sums.iter().map(|s| s.0.as_str()));
        output::table(&headers, &table);
        let mean_row: Vec<String> = std::iter::once("mean".to_string())
            .chain(sums.iter().map(|(_, s, n)| format!("{:.2}", s / *n as f64)))
            .collect();
        output::table(&headers, &[mean_row]);
    }
    Ok(ExitCode::SUCCESS)
}

/// One line of a predictions file for `metrics score`.
#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct PredictionLine {
    idx: i64,
    prediction: Map<String, Value>,
}

async fn score_predictions(
    app: &App,
    metric: &str,
    trainset: &str,
    program: &str,
    path: &std::path::Path,
) -> Result<ExitCode> {
    let config = app.config()?;
    let mut store = app.store()?;
    let (spec, _) = load_program(
        &mut store,
        &ProgramRef {
            program: program.to_string(),
            ..Default::default()
        },
    )?;
    let ts = store.find_trainset(trainset)?;
    let rows = store.examples(ts.id)?;
    let m = metrics::resolve(metric, &config.metrics, None)?;
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("reading predictions {}", path.display()))?;
    let by_idx: std::collections::HashMap<i64, _> = rows.iter().map(|r| (r.idx, r)).collect();
    let mut scored = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let p: PredictionLine = serde_json::from_str(line).map_err(|e| {
            anyhow!(
                "{}:{}: {e}; expected {{\"idx\": <example index>, \"prediction\": {{<field>: <value>, ...}}}}",
                path.display(),
                n + 1
            )
        })?;
        let example = by_idx.get(&p.idx).ok_or_else(|| {
            anyhow!(
                "{}:{}: idx {} is not an example of trainset `{}` (it has {} examples, idx 0..{})",
                path.display(),
                n + 1,
                p.idx,
                ts.name,
                rows.len(),
                rows.len()
            )
        })?;
        let (_, gold) = spec.example_io(&example.fields);
        let r = m.score(&gold, &p.prediction).await;
        scored.push((p.idx, r.score, r.feedback));
    }
    if scored.is_empty() {
        return Err(anyhow!("{}: no predictions", path.display()));
    }
    let mean = scored.iter().map(|s| s.1).sum::<f64>() / scored.len() as f64;
    if app.json {
        let rows: Vec<Value> = scored
            .iter()
            .map(|(idx, score, feedback)| serde_json::json!({"idx": idx, "score": score, "feedback": feedback}))
            .collect();
        output::json(&serde_json::json!({
            "metric": m.name(),
            "n": scored.len(),
            "mean": mean,
            "scores": rows,
        }))?;
    } else {
        let table: Vec<Vec<String>> = scored
            .iter()
            .map(|(idx, score, feedback)| {
                vec![idx.to_string(), format!("{score:.3}"), feedback.clone()]
            })
            .collect();
        output::table(&["idx", "score", "feedback"], &table);
        println!(
            "{}: mean {mean:.4} over {} predictions",
            m.name(),
            scored.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
