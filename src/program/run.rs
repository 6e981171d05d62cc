//! Running a program: each predictor in pipeline order, with validation
//! retries and fallbacks (the original's ValidatedModule and phase fallbacks).

use super::adapter::{self, ParseError};
use super::knn::{Chosen, DemoSelection, RetrieveError};
use super::spec::{PredictorSpec, ProgramSpec};
use crate::lm::client::{CallContext, LmClient};
use crate::lm::{LmError, LmRequest, Prompt};
use serde_json::{Map, Value};

/// What one predictor did during a run; optimizers read these (bootstrap
/// turns successful ones into demos, GEPA reflects on them).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct PredictorTrace {
    pub predictor: String,
    pub inputs: Map<String, Value>,
    pub outputs: Map<String, Value>,
    pub raw_answer: String,
    /// Validation failures of earlier attempts.
    pub failures: Vec<String>,
    /// Outputs came from the configured fallback, not the model.
    pub used_fallback: bool,
}

/// Result of running a program on one input.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Prediction {
    /// All output fields of all predictors.
    pub outputs: Map<String, Value>,
    pub traces: Vec<PredictorTrace>,
    pub lm_calls: u32,
    pub cache_hits: u32,
}

/// Why a program run failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RunError {
    #[error("predictor `{predictor}`: {error}")]
    Lm { predictor: String, error: LmError },
    #[error(
        "predictor `{predictor}`: answer failed validation after {attempts} attempt(s): {error}"
    )]
    Parse {
        predictor: String,
        attempts: u32,
        error: ParseError,
        raw_answer: String,
    },
    #[error("{0}")]
    Demos(RetrieveError),
}

/// Sampling overrides for one run (ensembles re-sample the same program).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    pub temperature: Option<f32>,
    /// Makes the run's requests distinct cache keys (a deliberate re-sample).
    pub rollout: Option<String>,
}

/// Runs `spec` on `inputs` with the task model `lm`. `constants` are the
/// program's resolved fixed inputs.
pub async fn run_program(
    spec: &ProgramSpec,
    constants: &Map<String, Value>,
    lm: &LmClient,
    inputs: &Map<String, Value>,
    ctx: &CallContext,
) -> Result<Prediction, RunError> {
    run_program_with(spec, constants, lm, inputs, ctx, &RunOptions::default()).await
}

/// [`run_program`] with sampling overrides.
pub async fn run_program_with(
    spec: &ProgramSpec,
    constants: &Map<String, Value>,
    lm: &LmClient,
    inputs: &Map<String, Value>,
    ctx: &CallContext,
    options: &RunOptions,
) -> Result<Prediction, RunError> {
    // A call without an example (predict, A/B traffic) records the
    // program's inputs (constants left out), so the traced prediction can
    // later become an example again. A call on a stored example needs not:
    // `trainset from-traces` reads its inputs from the example, and eval and
    // optimize runs make thousands of such calls.
    let mut ctx = ctx.clone();
    if ctx.inputs_json.is_none() && ctx.example_id.is_none() {
        let program_inputs: Map<String, Value> = inputs
            .iter()
            .filter(|(k, _)| !constants.contains_key(k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        ctx.inputs_json = serde_json::to_string(&program_inputs).ok();
    }
    // Per-input demos (KNN): chosen once for the whole program from its
    // inputs, traced with every call they shape.
    let chosen = choose_demos(spec, lm, inputs, ctx.example_id).await?;
    if !chosen.is_empty() {
        ctx.selected_demos = serde_json::to_string(&chosen).ok();
    }
    let ctx = &ctx;
    let mut values = inputs.clone();
    let mut prediction = Prediction {
        outputs: Map::new(),
        traces: Vec::new(),
        lm_calls: 0,
        cache_hits: 0,
    };
    for p in &spec.predictors {
        // Per-input demos change nothing the constraint depends on: it is
        // compiled from, and kept on, the spec's own predictor.
        let own = p;
        let with_chosen;
        let p = if chosen.is_empty() {
            p
        } else {
            with_chosen = with_chosen_demos(spec, p, &chosen);
            &with_chosen
        };
        let p_inputs: Map<String, Value> = p
            .signature
            .inputs
            .iter()
            .filter(|f| !constants.contains_key(&f.name))
            .map(|f| {
                (
                    f.name.clone(),
                    values
                        .get(&f.name)
                        .cloned()
                        .unwrap_or(Value::String(String::new())),
                )
            })
            .collect();
        let rendered = adapter::render(spec.adapter, p, constants, &p_inputs);
        // Patterns were checked when the spec was loaded.
        let super::spec::Constraint {
            grammar,
            json_schema,
        } = if spec.constrained {
            own.compiled_constraint
                .get_or_compile(spec.adapter, constants, || super::spec::Constraint {
                    grammar: super::grammar::compile(spec.adapter, own, constants)
                        .ok()
                        .map(|g| g.to_gbnf()),
                    json_schema: (spec.adapter == super::spec::AdapterKind::Json)
                        .then(|| super::json_schema::answer_schema(own, constants).ok())
                        .flatten(),
                })
        } else {
            super::spec::Constraint::default()
        };
        let mut ctx = ctx.clone();
        ctx.predictor = Some(p.name.clone());
        let mut failures = Vec::new();
        let attempts = spec.validation_retries + 1;
        let mut outcome = None;
        let mut last_raw = String::new();
        for attempt in 0..attempts {
            let mut req = LmRequest {
                prompt: rendered.prompt.clone(),
                params: lm.default_params(),
                rollout_id: None,
            };
            req.params.stop = rendered.stop.clone();
            req.params.grammar = grammar.clone();
            req.params.json_schema = json_schema.clone();
            if let Some(t) = options.temperature {
                req.params.temperature = t;
            }
            req.rollout_id = options.rollout.clone();
            if attempt > 0 {
                // A deterministic re-ask would return the same (cached) answer:
                // re-sample with a distinct rollout id and some temperature.
                req.rollout_id = Some(format!(
                    "{}validation-retry-{attempt}",
                    options
                        .rollout
                        .as_deref()
                        .map(|r| format!("{r}/"))
                        .unwrap_or_default()
                ));
                req.params.temperature = req.params.temperature.max(0.7);
                req.params.seed = Some(attempt as u64);
            }
            let out = lm.call(&req, &ctx).await.map_err(|error| RunError::Lm {
                predictor: p.name.clone(),
                error,
            })?;
            prediction.lm_calls += 1;
            if out.cache_hit {
                prediction.cache_hits += 1;
            }
            last_raw = out.response.text().to_string();
            match adapter::parse(spec.adapter, p, &last_raw) {
                Ok(parsed) => {
                    outcome = Some((parsed, false));
                    break;
                }
                Err(e) => failures.push(e.to_string()),
            }
        }
        let (outputs, used_fallback) = match (outcome, &p.fallback) {
            (Some(o), _) => o,
            (None, Some(fb)) => (fb.clone(), true),
            (None, None) => {
                let error = match adapter::parse(spec.adapter, p, &last_raw) {
                    Err(e) => e,
                    Ok(_) => ParseError::Missing("?".into()),
                };
                return Err(RunError::Parse {
                    predictor: p.name.clone(),
                    attempts,
                    error,
                    raw_answer: last_raw,
                });
            }
        };
        for (k, v) in &outputs {
            values.insert(k.clone(), v.clone());
            if k != "reasoning" {
                prediction.outputs.insert(k.clone(), v.clone());
            }
        }
        prediction.traces.push(PredictorTrace {
            predictor: p.name.clone(),
            inputs: p_inputs,
            outputs,
            raw_answer: last_raw,
            failures,
            used_fallback,
        });
    }
    Ok(prediction)
}

/// The pool examples `spec`'s demo selection picks for `inputs` (none
/// without a selection). `example_id`, the stored example being run, is
/// never picked.
async fn choose_demos(
    spec: &ProgramSpec,
    lm: &LmClient,
    inputs: &Map<String, Value>,
    example_id: Option<i64>,
) -> Result<Vec<Chosen>, RunError> {
    let Some(DemoSelection { knn }) = &spec.demo_selection else {
        return Ok(Vec::new());
    };
    let program_inputs = spec.input_fields();
    knn.select(knn.compared_fields(&program_inputs), inputs, lm, example_id)
        .await
        .map_err(RunError::Demos)
}

/// `p` with the chosen pool examples as demos after its fixed ones: fixed
/// demos first keep the longest prompt prefix shared across inputs (the
/// local engine evaluates a shared prefix once).
fn with_chosen_demos(spec: &ProgramSpec, p: &PredictorSpec, chosen: &[Chosen]) -> PredictorSpec {
    let Some(DemoSelection { knn }) = &spec.demo_selection else {
        return p.clone();
    };
    let mut out = p.clone();
    out.demos.extend(
        chosen
            .iter()
            .filter_map(|c| knn.pool.get(c.pool))
            .filter_map(|ex| p.demo_from(|name| ex.fields.get(name))),
    );
    out
}

/// The full text of a rendered prompt (for `--show-prompt` and snapshots).
pub fn prompt_text(prompt: &Prompt) -> String {
    match prompt {
        Prompt::Text(t) => t.clone(),
        Prompt::Chat(messages) => messages
            .iter()
            .map(|m| format!("<{}>\n{}", m.role, m.content))
            .collect::<Vec<_>>()
            .join("\n\n"),
    }
}
