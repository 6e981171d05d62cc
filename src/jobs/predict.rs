//! The `predict` job: one input through a program version (or an ensemble),
//! traced like every other call.

use super::{Context, EnsembleRequest};
use crate::error::{Error, Result};
use crate::lm::budget::Budget;
use crate::lm::client::CallContext;
use crate::program::ensemble::{infer, Member, Strategy};
use crate::program::{load_program, load_stored_program, ProgramRef};
use serde::Serialize;
use serde_json::{Map, Value};
use std::sync::Arc;

/// One prediction to make.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PredictRequest {
    pub program: ProgramRef,
    pub inputs: Map<String, Value>,
    pub no_cache: bool,
    pub ensemble: Option<EnsembleRequest>,
    /// Route through an A/B test instead: the test's program at the version
    /// of the variant its routing picks for the key (the assignment is stored).
    #[serde(default)]
    pub ab: Option<AbSelection>,
}

/// An A/B test and the key (user, session) a request is routed by.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct AbSelection {
    pub test: String,
    pub key: String,
}

/// The typed outputs and how they were chosen.
#[derive(Debug, Clone, Serialize)]
pub struct PredictReport {
    pub program: String,
    pub version: i64,
    pub version_id: i64,
    pub outputs: Map<String, Value>,
    pub lm_calls: u32,
    pub cache_hits: u32,
    /// Which ensemble run was chosen, of how many, with what agreement or reward.
    pub chosen: usize,
    pub runs: usize,
    pub agreement: Option<f64>,
    pub reward: Option<f64>,
    /// Where the A/B test routed the request, when it went through one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ab: Option<crate::ab::Routed>,
    /// The rendered prompt of each predictor, when asked for.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub prompts: Vec<(String, String)>,
}

/// Runs the program on `req.inputs`; with `show_prompts`, the report holds
/// each predictor's rendered prompt too.
pub async fn predict(
    ctx: &Context,
    req: PredictRequest,
    show_prompts: bool,
) -> Result<PredictReport> {
    let (program, routed) = match &req.ab {
        Some(sel) => {
            let (program, routed) = route(ctx, &req.program, sel)?;
            (program, Some(routed))
        }
        None => (req.program.clone(), None),
    };
    let stored = load_stored_program(&*ctx.reader()?, &program)?;
    let (spec, version) = match stored {
        Some(found) => found,
        None => {
            let found = ctx.writer.call(move |s| load_program(s, &program))?;
            ctx.writer.flush()?;
            found
        }
    };
    let missing: Vec<String> = spec
        .input_fields()
        .into_iter()
        .filter(|f| !req.inputs.contains_key(f) && !spec.constants.contains_key(f))
        .collect();
    if !missing.is_empty() {
        return Err(Error::Invalid(format!(
            "the input lacks field(s) {}; the program's inputs are {}",
            missing.join(", "),
            spec.input_fields().join(", ")
        )));
    }
    let lms = ctx.lms(req.no_cache, Arc::new(Budget::unlimited()))?;
    let lm = lms.role("task")?;
    let constants = Arc::new(spec.resolve_constants(&ctx.config.taxonomy()?.names()));
    let prompts = if show_prompts {
        spec.predictors
            .iter()
            .map(|p| {
                let r = crate::program::adapter::render(spec.adapter, p, &constants, &req.inputs);
                (p.name.clone(), crate::program::run::prompt_text(&r.prompt))
            })
            .collect()
    } else {
        Vec::new()
    };
    let (strategy, others) = match &req.ensemble {
        Some(e) => e.build(&ctx.config, &lms, &*ctx.reader()?, &spec.name, &constants)?,
        None => (Strategy::Single, Vec::new()),
    };
    let mut members = vec![Member {
        spec: Arc::new(spec.clone()),
        constants,
        lm,
    }];
    let others_empty = others.is_empty();
    members.extend(others);
    // With a version ensemble one context cannot say which member's version
    // a call ran, so only a single version's traces carry it.
    let context = CallContext {
        version_id: others_empty.then_some(version.id),
        assignment_id: routed.as_ref().map(|r| r.assignment_id),
        ..Default::default()
    };
    let chosen = infer(&members, &strategy, &req.inputs, &context).await?;
    lms.flush_traces()?;
    let pred = chosen.prediction;
    Ok(PredictReport {
        program: spec.name.clone(),
        version: version.version,
        version_id: version.id,
        outputs: pred.outputs,
        lm_calls: pred.lm_calls,
        cache_hits: pred.cache_hits,
        chosen: chosen.index,
        runs: chosen.runs,
        agreement: chosen.agreement,
        reward: chosen.reward,
        ab: routed,
        prompts,
    })
}

/// Routes the request's key in its A/B test (storing the assignment) and
/// names the version to run. The test picks the version, so a version or
/// alias asked for besides is refused rather than silently ignored.
fn route(
    ctx: &Context,
    asked: &ProgramRef,
    sel: &AbSelection,
) -> Result<(ProgramRef, crate::ab::Routed)> {
    if asked.version.is_some() || asked.alias.is_some() {
        return Err(Error::Invalid(format!(
            "--ab: A/B test `{}` picks the version; drop --version/--alias",
            sel.test
        )));
    }
    let sel = sel.clone();
    ctx.writer.call(move |s| {
        let test = crate::ab::load(s, &sel.test)?;
        let routed = crate::ab::route(s, &sel.test, std::slice::from_ref(&sel.key))?
            .pop()
            .ok_or_else(|| Error::Invalid("routing one key gave no assignment".into()))?;
        let program = ProgramRef {
            program: test.test.program,
            version: Some(routed.version),
            alias: None,
        };
        Ok((program, routed))
    })
}
