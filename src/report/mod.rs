//! Run reports and trace export.
//!
//! [`RunReport`] is everything worth reading about one run, gathered from the
//! store by [`build_run_report`] in one place, so that every output format
//! shows the same numbers: JSON is its serde form, `csv` writes its
//! per-example table, and `document` lays it out as format-neutral sections
//! that `markdown` and `html` render (another report kind, such as a stored
//! version comparison, builds its own `Document` and reuses both renderers).
//! `traces` streams trace rows to JSONL or CSV; `redact` keeps secrets out of
//! everything exported.

pub mod comparison;
pub mod csv;
pub mod document;
pub mod html;
pub mod markdown;
pub mod redact;
pub mod traces;

use crate::error::{Error, Result};
use crate::program::ProgramSpec;
use crate::store::{
    EvaluationRow, ExampleOutcomeRow, LeaderboardRow, LmTotals, RoleUse, RunKind, Split, Store,
};
use serde::Serialize;
use serde_json::{Map, Value};
use std::io::Write;

/// The output formats of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Markdown,
    Html,
    Json,
    Csv,
}

impl Format {
    /// Parses `md`/`markdown`, `html`, `json` or `csv`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Format::Markdown),
            "html" => Ok(Format::Html),
            "json" => Ok(Format::Json),
            "csv" => Ok(Format::Csv),
            other => Err(Error::Invalid(format!(
                "report format `{other}`: expected md, html, json or csv"
            ))),
        }
    }
}

/// Everything a run report shows.
#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub run: RunInfo,
    /// The run's stored request (optimizer settings, split fractions, limits),
    /// with anything secret-looking redacted.
    pub config: Value,
    pub program: Option<ProgramInfo>,
    pub trainset: Option<TrainsetInfo>,
    pub scores: Headline,
    pub evaluations: Vec<EvaluationInfo>,
    /// One point per finished validation evaluation, in the order they ran.
    pub trials: Vec<TrialPoint>,
    pub leaderboard: Vec<LeaderboardRow>,
    /// Best against baseline, example by example (optimize runs).
    pub comparison: Option<Comparison>,
    /// The scores of an eval run's evaluation (eval runs).
    pub example_scores: Vec<ExampleScore>,
    pub lm: LmUsage,
    /// The best candidate's program (optimize runs) or the evaluated version.
    pub best_program: Option<BestProgram>,
}

/// The run row's identity and status.
#[derive(Debug, Clone, Serialize)]
pub struct RunInfo {
    pub id: i64,
    pub kind: RunKind,
    pub optimizer: Option<String>,
    pub status: String,
    pub progress: f64,
    pub seed: Option<i64>,
    pub metric: Option<String>,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub error: Option<String>,
}

/// The program a run worked on.
#[derive(Debug, Clone, Serialize)]
pub struct ProgramInfo {
    pub name: String,
    /// The version the run started from.
    pub base_version: Option<i64>,
    /// The version the run registered (its best candidate).
    pub result_version: Option<i64>,
}

/// The trainset and split a run used.
#[derive(Debug, Clone, Serialize)]
pub struct TrainsetInfo {
    pub id: i64,
    pub name: String,
    pub content_hash: String,
    pub n_examples: i64,
    pub split: Option<SplitInfo>,
}

/// Sizes of the parts of a split.
#[derive(Debug, Clone, Serialize)]
pub struct SplitInfo {
    pub id: i64,
    pub seed: i64,
    pub train_frac: f64,
    pub val_frac: f64,
    pub train: i64,
    pub val: i64,
    pub test: i64,
}

/// Baseline against best: the run row's numbers and the test evaluations'.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Headline {
    pub baseline_val: Option<f64>,
    pub best_val: Option<f64>,
    pub baseline_test: Option<f64>,
    pub best_test: Option<f64>,
    pub best_candidate_id: Option<i64>,
    pub baseline_candidate_id: Option<i64>,
}

/// One evaluation of the run.
#[derive(Debug, Clone, Serialize)]
pub struct EvaluationInfo {
    pub id: i64,
    pub candidate_id: Option<i64>,
    pub origin: Option<String>,
    pub split: Split,
    pub kind: String,
    pub metric: String,
    pub n: i64,
    pub mean_score: Option<f64>,
    pub status: String,
}

/// One validation evaluation on the score-over-trials chart.
#[derive(Debug, Clone, Serialize)]
pub struct TrialPoint {
    /// 1-based position among the run's validation evaluations.
    pub step: usize,
    pub evaluation_id: i64,
    pub candidate_id: Option<i64>,
    pub trial: Option<i64>,
    pub origin: Option<String>,
    /// `full` or `minibatch`.
    pub kind: String,
    pub score: f64,
    /// Best full-validation score so far (a minibatch mean is too noisy to
    /// count as a best, as the optimizers themselves treat it).
    pub best_so_far: Option<f64>,
}

/// Best against baseline on one split, example by example.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub split: Split,
    pub baseline_evaluation_id: i64,
    pub best_evaluation_id: i64,
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    pub examples: Vec<ExampleOutcome>,
}

/// One example under baseline and best.
#[derive(Debug, Clone, Serialize)]
pub struct ExampleOutcome {
    pub example_id: i64,
    pub idx: i64,
    /// The example's first input (for telling examples apart in a table).
    pub input: Option<String>,
    /// `win`, `loss` or `tie` of the best against the baseline.
    pub outcome: String,
    pub baseline_score: f64,
    pub best_score: f64,
    pub baseline_prediction: Option<Value>,
    pub best_prediction: Option<Value>,
    pub baseline_feedback: Option<String>,
    pub best_feedback: Option<String>,
    pub baseline_error: Option<String>,
    pub best_error: Option<String>,
}

/// One example's score in an eval run.
#[derive(Debug, Clone, Serialize)]
pub struct ExampleScore {
    pub example_id: i64,
    pub idx: i64,
    pub input: Option<String>,
    pub score: f64,
    pub prediction: Option<Value>,
    pub feedback: Option<String>,
    pub error: Option<String>,
}

/// LM calls, tokens, cost, latency and cache use of a run.
#[derive(Debug, Clone, Serialize)]
pub struct LmUsage {
    #[serde(flatten)]
    pub totals: LmTotals,
    /// Cache hits over calls (None without calls).
    pub cache_hit_rate: Option<f64>,
    /// Latency percentiles (ms) of calls answered by a provider, not the cache.
    pub latency_p50_ms: Option<f64>,
    pub latency_p90_ms: Option<f64>,
    pub latency_p99_ms: Option<f64>,
    pub roles: Vec<RoleUse>,
}

/// The instructions and demos of the run's best program.
#[derive(Debug, Clone, Serialize)]
pub struct BestProgram {
    pub candidate_id: Option<i64>,
    pub version_id: Option<i64>,
    pub predictors: Vec<PredictorInfo>,
}

/// One predictor's instructions and demos.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorInfo {
    pub name: String,
    pub instructions: String,
    pub demos: Vec<Map<String, Value>>,
}

/// Gathers the report of run `run_id` from the store.
pub fn build_run_report(store: &Store, run_id: i64) -> Result<RunReport> {
    let run = store.run(run_id)?;
    let redactor = redact::Redactor::from_env();
    let mut config: Value =
        serde_json::from_str(&run.config_json).unwrap_or(Value::String(run.config_json.clone()));
    redactor.json(&mut config);
    let candidates = store.candidates(run_id)?;
    let origin_of = |id: Option<i64>| -> Option<String> {
        let id = id?;
        candidates
            .iter()
            .find(|c| c.id == id)
            .map(|c| c.origin.clone())
    };
    let trial_of = |id: Option<i64>| -> Option<i64> {
        let id = id?;
        candidates.iter().find(|c| c.id == id).and_then(|c| c.trial)
    };
    let evals = store.evaluations(run_id)?;
    let metric = evals.first().map(|e| e.metric.clone()).or_else(|| {
        config
            .get("metric")
            .and_then(Value::as_str)
            .map(String::from)
    });

    let program = match run.program_id {
        Some(pid) => {
            let name = store
                .program_name(pid)?
                .unwrap_or_else(|| format!("#{pid}"));
            let version_number = |id: Option<i64>| -> Result<Option<i64>> {
                id.map(|id| store.version_by_id(id).map(|v| v.version))
                    .transpose()
            };
            Some(ProgramInfo {
                name,
                base_version: version_number(run.base_version_id).ok().flatten(),
                result_version: version_number(store.run_result_version(run_id)?)
                    .ok()
                    .flatten(),
            })
        }
        None => None,
    };
    let trainset = match run.trainset_id {
        Some(tid) => {
            let t = store.find_trainset(&tid.to_string())?;
            let split = match run.split_id {
                Some(sid) => Some(store.split(sid)?),
                None => None,
            };
            Some(TrainsetInfo {
                id: t.id,
                name: t.name,
                content_hash: t.content_hash,
                n_examples: t.n_examples,
                split: split.map(|s| SplitInfo {
                    id: s.id,
                    seed: s.seed,
                    train_frac: s.train_frac,
                    val_frac: s.val_frac,
                    train: s.counts[0],
                    val: s.counts[1],
                    test: s.counts[2],
                }),
            })
        }
        None => None,
    };

    let baseline_id = candidates
        .iter()
        .find(|c| c.origin == "baseline")
        .map(|c| c.id);
    // A run whose candidates never beat the baseline keeps the baseline as its best.
    let best_id = run.best_candidate_id.or(baseline_id);
    let test_mean = |cid: Option<i64>| -> Option<f64> {
        let cid = cid?;
        evals
            .iter()
            .rev()
            .find(|e| is_done_full(e) && e.candidate_id == Some(cid) && e.split == Split::Test)
            .and_then(|e| e.mean_score)
    };
    let scores = Headline {
        baseline_val: run.baseline_score,
        best_val: run.best_score.or(run.baseline_score),
        baseline_test: test_mean(baseline_id),
        best_test: run.test_score.or_else(|| test_mean(best_id)),
        best_candidate_id: best_id,
        baseline_candidate_id: baseline_id,
    };

    let mut trials = Vec::new();
    let mut best_so_far: Option<f64> = None;
    for e in evals
        .iter()
        .filter(|e| e.split == Split::Val && e.status == "done")
    {
        let Some(score) = e.mean_score else { continue };
        if e.kind == crate::store::EvalKind::Full {
            best_so_far = Some(best_so_far.map_or(score, |b| b.max(score)));
        }
        trials.push(TrialPoint {
            step: trials.len() + 1,
            evaluation_id: e.id,
            candidate_id: e.candidate_id,
            trial: trial_of(e.candidate_id),
            origin: origin_of(e.candidate_id),
            kind: e.kind.to_string(),
            score,
            best_so_far,
        });
    }

    let best_spec: Option<ProgramSpec> = match (best_id, run.kind) {
        (Some(id), _) => candidates
            .iter()
            .find(|c| c.id == id)
            .and_then(|c| serde_json::from_str(&c.spec_json).ok()),
        (None, RunKind::Eval) => run
            .base_version_id
            .and_then(|v| store.version_by_id(v).ok())
            .and_then(|v| serde_json::from_str(&v.spec_json).ok()),
        _ => None,
    };
    let input_field = best_spec
        .as_ref()
        .and_then(|s| s.predictors.first())
        .and_then(|p| p.signature.inputs.first())
        .map(|f| f.name.clone());
    let input_of = |fields_json: &str| example_input(fields_json, input_field.as_deref());

    let comparison = match (baseline_id, best_id) {
        (Some(a), Some(b)) => compare(store, a, b, &input_of)?,
        _ => None,
    };
    let example_scores = if run.kind == RunKind::Eval {
        match evals.iter().rev().find(|e| is_done_full(e)) {
            Some(e) => store
                .example_scores(e.id)?
                .into_iter()
                .map(|s| ExampleScore {
                    example_id: s.example_id,
                    idx: s.idx,
                    input: input_of(&s.fields_json),
                    score: s.score,
                    prediction: parse_json(s.prediction_json.as_deref()),
                    feedback: s.feedback,
                    error: s.error,
                })
                .collect(),
            None => Vec::new(),
        }
    } else {
        Vec::new()
    };

    let totals = store.run_lm_totals(run_id)?;
    let p = store.run_latency_percentiles(run_id, &[0.5, 0.9, 0.99])?;
    let lm = LmUsage {
        cache_hit_rate: (totals.calls > 0).then(|| totals.cache_hits as f64 / totals.calls as f64),
        latency_p50_ms: p.first().copied().flatten(),
        latency_p90_ms: p.get(1).copied().flatten(),
        latency_p99_ms: p.get(2).copied().flatten(),
        roles: store.run_lm_roles(run_id)?,
        totals,
    };

    let best_program = best_spec.map(|spec| BestProgram {
        candidate_id: best_id,
        version_id: if run.kind == RunKind::Eval {
            run.base_version_id
        } else {
            None
        },
        predictors: spec
            .predictors
            .into_iter()
            .map(|p| PredictorInfo {
                name: p.name,
                instructions: p.signature.instructions,
                demos: p.demos,
            })
            .collect(),
    });

    Ok(RunReport {
        run: RunInfo {
            id: run.id,
            kind: run.kind,
            optimizer: run.optimizer,
            status: run.status.to_string(),
            progress: run.progress,
            seed: run.seed,
            metric,
            started_at: run.started_at,
            finished_at: run.finished_at,
            error: run.error.map(|e| redactor.text(&e)),
        },
        config,
        program,
        trainset,
        scores,
        evaluations: evals
            .iter()
            .map(|e| EvaluationInfo {
                id: e.id,
                candidate_id: e.candidate_id,
                origin: origin_of(e.candidate_id),
                split: e.split,
                kind: e.kind.to_string(),
                metric: e.metric.clone(),
                n: e.n,
                mean_score: e.mean_score,
                status: e.status.clone(),
            })
            .collect(),
        trials,
        leaderboard: store.candidate_leaderboard(run_id)?,
        comparison,
        example_scores,
        lm,
        best_program,
    })
}

/// Best against baseline on test when both were evaluated there, else on
/// validation; None when neither split has both (or best is the baseline).
fn compare(
    store: &Store,
    baseline: i64,
    best: i64,
    input_of: &dyn Fn(&str) -> Option<String>,
) -> Result<Option<Comparison>> {
    if baseline == best {
        return Ok(None);
    }
    for split in [Split::Test, Split::Val] {
        let (Some(a), Some(b)) = (
            store.candidate_evaluation(baseline, split)?,
            store.candidate_evaluation(best, split)?,
        ) else {
            continue;
        };
        let rows = store.example_outcomes(a, b)?;
        let count = |o: &str| rows.iter().filter(|r| r.outcome == o).count();
        return Ok(Some(Comparison {
            split,
            baseline_evaluation_id: a,
            best_evaluation_id: b,
            wins: count("win"),
            losses: count("loss"),
            ties: count("tie"),
            examples: rows.into_iter().map(|r| outcome(r, input_of)).collect(),
        }));
    }
    Ok(None)
}

fn outcome(r: ExampleOutcomeRow, input_of: &dyn Fn(&str) -> Option<String>) -> ExampleOutcome {
    ExampleOutcome {
        example_id: r.example_id,
        idx: r.idx,
        input: input_of(&r.fields_json),
        outcome: r.outcome,
        baseline_score: r.a_score,
        best_score: r.b_score,
        baseline_prediction: parse_json(r.a_prediction_json.as_deref()),
        best_prediction: parse_json(r.b_prediction_json.as_deref()),
        baseline_feedback: r.a_feedback,
        best_feedback: r.b_feedback,
        baseline_error: r.a_error,
        best_error: r.b_error,
    }
}

fn is_done_full(e: &EvaluationRow) -> bool {
    e.status == "done" && e.kind == crate::store::EvalKind::Full
}

/// A stored prediction as the outputs it predicted: `prediction_json` holds
/// `{"outputs": ..., "traces": [...]}`, and the traces (whole prompts) belong
/// in the trace export, not in a report. Text that is not JSON is kept as a
/// string.
fn parse_json(text: Option<&str>) -> Option<Value> {
    let text = text?;
    let mut v: Value =
        serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()));
    if let Some(outputs) = v.get_mut("outputs") {
        return Some(outputs.take());
    }
    Some(v)
}

/// The example's value for the program's first input, or its first string field.
fn example_input(fields_json: &str, field: Option<&str>) -> Option<String> {
    let fields: Map<String, Value> = serde_json::from_str(fields_json).ok()?;
    let value = field
        .and_then(|f| fields.get(f))
        .or_else(|| fields.values().find(|v| v.is_string()))?;
    Some(match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    })
}

/// Renders `report` in `format` to `out`.
pub fn render(report: &RunReport, format: Format, out: &mut dyn Write) -> Result<()> {
    let io = |e| Error::io("report output", e);
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, report)?;
            out.write_all(b"\n").map_err(io)
        }
        Format::Markdown => out
            .write_all(markdown::run_report(report).as_bytes())
            .map_err(io),
        Format::Html => out
            .write_all(html::run_report(report).as_bytes())
            .map_err(io),
        Format::Csv => csv::run_report(report, out),
    }
}

/// A score for display: four decimals, or `-` when absent.
pub fn fmt_score(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.4}")).unwrap_or_else(|| "-".into())
}

/// A signed difference for display, or `-` when either side is absent.
pub fn fmt_delta(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => format!("{:+.4}", b - a),
        _ => "-".into(),
    }
}

/// Milliseconds for display.
pub fn fmt_ms(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.1} ms"))
        .unwrap_or_else(|| "-".into())
}

/// A prediction as one line of text: `field: value; ...` for an object.
pub fn prediction_text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::Object(m)) => m
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => format!("{k}: {s}"),
                other => format!("{k}: {other}"),
            })
            .collect::<Vec<_>>()
            .join("; "),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// Text cut to `max` characters (with an ellipsis), for table cells.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut t: String = s.chars().take(max.saturating_sub(1)).collect();
        t.push('…');
        t
    }
}
