//! The `optimize` job: split, baseline, optimizer, test evaluation,
//! versioning and promotion — or the continuation of an interrupted run —
//! and the optimizer recommendation of `--auto-select`.

use super::{eval_examples, metric_name, rows_by_ids, ActiveRun, Context};
use crate::data::{Part, SplitFractions};
use crate::error::{Error, Result};
use crate::lm::budget::{Budget, BudgetLimits};
use crate::optimize::{OptimizerConfig, Overrides, Session, StopReason};
use crate::program::{load_program, ProgramRef, ProgramSpec};
use crate::progress::{Event, EventFn};
use crate::store::{EvalKind, NewRun, NewVersion, RunKind, Split, Status, Store};
use serde::{Deserialize, Serialize};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Everything an optimization needs; stored with the run so it can resume.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OptimizeRequest {
    pub program: ProgramRef,
    /// Trainset name/id/hash, or a file to import.
    pub trainset: String,
    pub optimizer: OptimizerConfig,
    pub seed: u64,
    pub limits: BudgetLimits,
    pub max_minutes: Option<f64>,
    pub threads: usize,
    pub metric: Option<String>,
    pub promote: Option<String>,
    pub split: SplitFractions,
    pub no_cache: bool,
}

impl OptimizeRequest {
    /// A request with the optimizer's defaults (DSPy's) and ours.
    pub fn new(program: &str, trainset: &str, optimizer: OptimizerConfig) -> Self {
        OptimizeRequest {
            program: ProgramRef {
                program: program.to_string(),
                ..Default::default()
            },
            trainset: trainset.to_string(),
            optimizer,
            seed: 42,
            limits: BudgetLimits::default(),
            max_minutes: None,
            threads: 4,
            metric: None,
            promote: None,
            split: SplitFractions::default(),
            no_cache: false,
        }
    }
}

/// What a user gives to start an optimization (the CLI's flags, the HTTP
/// API's body) before it becomes an [`OptimizeRequest`]: the optimizer by
/// name, or picked by `auto_select`, with settings over its defaults; every
/// other setting is already in `request`. Both front ends go through
/// [`OptimizeParams::into_request`], so a flag and a JSON field mean the
/// same thing.
#[derive(Debug, Clone)]
pub struct OptimizeParams {
    /// The request; its `optimizer` is replaced by the one chosen here.
    pub request: OptimizeRequest,
    pub optimizer: String,
    pub auto_select: bool,
    pub overrides: Overrides,
}

impl OptimizeParams {
    /// Parameters with our defaults (those of [`OptimizeRequest::new`]).
    pub fn new(program: ProgramRef, trainset: &str, optimizer: &str) -> Self {
        let mut request = OptimizeRequest::new(
            &program.program,
            trainset,
            OptimizerConfig::Bootstrap(Default::default()),
        );
        request.program = program;
        OptimizeParams {
            request,
            optimizer: optimizer.to_string(),
            auto_select: false,
            overrides: Overrides::default(),
        }
    }

    /// With `auto_select`: replaces `optimizer` by the recommended optimizer
    /// or chain (`bootstrap+gepa`) and returns why; otherwise None. Callers
    /// that can run chains call this first and then look at `optimizer`.
    pub fn choose_optimizer(&mut self, ctx: &Context) -> Result<Option<String>> {
        if !self.auto_select {
            return Ok(None);
        }
        let (name, why) = auto_select(
            ctx,
            &self.request.trainset,
            &self.request.limits,
            self.request.max_minutes,
        )?;
        self.optimizer = name;
        self.auto_select = false;
        Ok(Some(why))
    }

    /// The request, checked (optimizer settings, split fractions, alias);
    /// with `auto_select`, also the reason the optimizer was chosen. A
    /// recommended chain is refused here: run it with [`run_chain`] after
    /// [`OptimizeParams::choose_optimizer`].
    pub fn into_request(mut self, ctx: &Context) -> Result<(OptimizeRequest, Option<String>)> {
        let why = self.choose_optimizer(ctx)?;
        if chain_steps(&self.optimizer).len() > 1 {
            return Err(Error::Invalid(format!(
                "`{}` is a chain: run it with run_chain",
                self.optimizer
            )));
        }
        let mut req = self.request;
        req.optimizer = OptimizerConfig::with_overrides(&self.optimizer, &self.overrides)?;
        req.split.validate()?;
        if let Some(alias) = &req.promote {
            crate::registry::validate_alias(alias)?;
        }
        Ok((req, why))
    }
}

/// The stored request as read back: today's form, with `optimizer` a tagged
/// config, or the flat form of runs stored before optimizers had their own
/// configs (`"optimizer": "miprov2"` beside `auto`, `fewshot`,
/// `num_candidates`, `num_trials`, `max_metric_calls`), so old runs resume.
#[derive(Deserialize)]
struct StoredRequest {
    program: ProgramRef,
    trainset: String,
    optimizer: StoredOptimizer,
    seed: u64,
    #[serde(default)]
    limits: BudgetLimits,
    max_minutes: Option<f64>,
    threads: usize,
    metric: Option<String>,
    promote: Option<String>,
    split: SplitFractions,
    #[serde(default)]
    no_cache: bool,
    // The flat form's optimizer settings.
    auto: Option<crate::optimize::Auto>,
    fewshot: Option<crate::optimize::FewShotSettings>,
    num_candidates: Option<usize>,
    num_trials: Option<usize>,
    max_metric_calls: Option<usize>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum StoredOptimizer {
    Config(OptimizerConfig),
    Name(String),
}

impl<'de> Deserialize<'de> for OptimizeRequest {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = StoredRequest::deserialize(d)?;
        let optimizer = match s.optimizer {
            StoredOptimizer::Config(c) => c,
            StoredOptimizer::Name(name) => {
                let mut c = OptimizerConfig::parse(&name).map_err(serde::de::Error::custom)?;
                // The flat form stored every setting for every optimizer;
                // each takes what it has (MIPROv2 keeps its own demo
                // defaults, as the flat form's runs did).
                let f = s.fewshot.unwrap_or_default();
                match &mut c {
                    OptimizerConfig::Labeled(l) => l.k = f.max_labeled_demos,
                    OptimizerConfig::Bootstrap(b) => b.fewshot = f,
                    OptimizerConfig::RandomSearch(r) => {
                        r.fewshot = f;
                        r.num_candidates = s.num_candidates.unwrap_or(r.num_candidates);
                    }
                    OptimizerConfig::Miprov2(m) => {
                        m.auto = s.auto.unwrap_or(m.auto);
                        m.num_trials = s.num_trials;
                    }
                    OptimizerConfig::Gepa(g) => {
                        g.auto = s.auto.unwrap_or(g.auto);
                        g.max_metric_calls = s.max_metric_calls;
                    }
                    // Newer than the flat form: never stored in it.
                    OptimizerConfig::Knn(_) => {}
                }
                c
            }
        };
        Ok(OptimizeRequest {
            program: s.program,
            trainset: s.trainset,
            optimizer,
            seed: s.seed,
            limits: s.limits,
            max_minutes: s.max_minutes,
            threads: s.threads,
            metric: s.metric,
            promote: s.promote,
            split: s.split,
            no_cache: s.no_cache,
        })
    }
}

/// What an optimization produced.
#[derive(Debug, Clone, Serialize)]
pub struct OptimizeReport {
    pub run_id: i64,
    pub optimizer: String,
    pub metric: String,
    pub baseline_val: f64,
    pub best_val: f64,
    pub baseline_test: Option<f64>,
    pub optimized_test: Option<f64>,
    pub n_train: usize,
    pub n_val: usize,
    pub n_test: usize,
    pub candidates: usize,
    pub lm_calls: i64,
    pub cache_hits: i64,
    pub wall_secs: f64,
    pub version: Option<i64>,
    pub version_id: Option<i64>,
    pub promoted: Option<String>,
    pub stopped: Option<String>,
    pub status: Status,
}

/// What the caller provides besides the request.
#[derive(Default, Clone)]
pub struct RunHooks {
    /// Progress and score events.
    pub on_event: Option<EventFn>,
    /// Set (Ctrl-C, a cancel request) to stop after the current step.
    pub interrupted: Option<Arc<AtomicBool>>,
}

/// The optimizer recommendation of `--auto-select`: an optimizer name, or a
/// chain of them (`bootstrap+gepa`), with its reason. The original's rules,
/// with chains where they are what DSPy users reach for: on a large
/// trainset with room in the budget, GEPA starts from a bootstrapped
/// program (as DSPy's GEPA tutorials and BetterTogether do) instead of
/// from zero-shot, so its reflective instruction search builds on demos
/// that already work.
pub fn recommend(
    n_examples: usize,
    max_calls: Option<u64>,
    max_minutes: Option<f64>,
) -> (String, String) {
    let tight = max_calls.is_some_and(|c| c < 300) || max_minutes.is_some_and(|m| m < 10.0);
    let (name, why) = if n_examples < 20 {
        ("labeled", format!("{n_examples} examples is too few to bootstrap reliably; labeled demos need no optimization calls"))
    } else if tight {
        (
            "bootstrap",
            "a tight budget (under 300 calls or 10 minutes) fits one bootstrap pass".into(),
        )
    } else if n_examples < 100 {
        ("miprov2", format!("{n_examples} examples and no tight budget: MIPROv2 light searches instructions and demos together"))
    } else {
        ("bootstrap+gepa", format!("{n_examples} examples and no tight budget: bootstrapped demos first, then GEPA's reflection evolves the instructions from that program (a chain; each step is its own run)"))
    };
    (name.to_string(), why)
}

/// `--auto-select`: the recommended optimizer or chain for `trainset`
/// (stored, or a file), and the reason.
pub fn auto_select(
    ctx: &Context,
    trainset: &str,
    limits: &BudgetLimits,
    max_minutes: Option<f64>,
) -> Result<(String, String)> {
    let n = match ctx.reader()?.find_trainset(trainset) {
        Ok(t) => t.n_examples as usize,
        Err(_) => crate::data::load_file(std::path::Path::new(trainset), &ctx.config.taxonomy()?)?
            .examples
            .len(),
    };
    Ok(recommend(n, limits.max_calls, max_minutes))
}

/// Everything fixed before the run row exists: checked up front, so a bad
/// request leaves no run behind.
struct Prepared {
    spec: ProgramSpec,
    base_version_id: i64,
    program_id: i64,
    trainset_id: i64,
    split_id: i64,
    train: Vec<crate::eval::EvalExample>,
    val: Vec<crate::eval::EvalExample>,
    test: Vec<crate::eval::EvalExample>,
}

/// Resolves the program, the trainset (importing a file on first use) and
/// the split, and checks every example against the program.
fn prepare(ctx: &Context, req: &OptimizeRequest, split_id: Option<i64>) -> Result<Prepared> {
    let taxonomy = ctx.config.taxonomy()?;
    let program = req.program.clone();
    let (spec, base_version) = ctx.writer.call(move |s| load_program(s, &program))?;
    let (trainset_key, seed, fractions) = (req.trainset.clone(), req.seed, req.split);
    let (trainset_id, split_id) = ctx.writer.call(move |s| {
        let trainset = find_or_import(s, &trainset_key, &taxonomy)?;
        // A resumed run keeps its split; a new one uses the trainset's newest
        // split (so runs with different optimizer seeds compare on the same
        // examples), or makes a seeded one when there is none.
        let split = match (split_id, s.latest_split(trainset.id)?) {
            (Some(id), _) => s.split(id)?,
            (None, Some(split)) => split,
            (None, None) => s.split_trainset(trainset.id, seed, fractions)?,
        };
        Ok((trainset.id, split.id))
    })?;
    // What the calls stored is read on another connection: commit it first.
    ctx.writer.flush()?;
    let reader = ctx.reader()?;
    let all = reader.examples(trainset_id)?;
    crate::program::check_examples(&spec, &all)?;
    let part = |p| -> Result<Vec<crate::eval::EvalExample>> {
        Ok(eval_examples(
            &spec,
            &rows_by_ids(&all, &reader.split_part(split_id, p)?),
        ))
    };
    let (train, val, test) = (part(Part::Train)?, part(Part::Val)?, part(Part::Test)?);
    if train.is_empty() || val.is_empty() {
        return Err(Error::Invalid(format!(
            "split #{split_id} has {} train and {} val examples; need at least one of each",
            train.len(),
            val.len()
        )));
    }
    Ok(Prepared {
        spec,
        base_version_id: base_version.id,
        program_id: base_version.program_id,
        trainset_id,
        split_id,
        train,
        val,
        test,
    })
}

/// A stored trainset by name/id/hash, or the file at `key` imported now.
fn find_or_import(
    s: &mut Store,
    key: &str,
    taxonomy: &crate::config::Taxonomy,
) -> Result<crate::store::TrainsetRow> {
    match s.find_trainset(key) {
        Ok(t) => Ok(t),
        Err(_) if std::path::Path::new(key).is_file() => {
            let path = std::path::Path::new(key);
            let ts = crate::data::load_file(path, taxonomy)?;
            let name = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(s.import_trainset(&name, key, &ts)?.0)
        }
        Err(e) => Err(e),
    }
}

/// The optimizers of a chained name, in order: `bootstrap+gepa` is
/// BootstrapFewShot, then GEPA from its result. A plain name is a chain of
/// one.
pub fn chain_steps(optimizer: &str) -> Vec<&str> {
    optimizer
        .split('+')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect()
}

/// Runs `params` as a chain of optimizations, as DSPy's BetterTogether and
/// GEPA-from-bootstrap do: each step is its own optimize run (resumable on
/// its own), started from the version the previous step registered, so
/// the versions' lineage records the chain. A step that registered no
/// version (no gain) hands on what it started from. Only the last step
/// promotes. Every step's settings are checked before the first runs.
pub async fn run_chain(
    ctx: &Context,
    params: OptimizeParams,
    hooks: RunHooks,
) -> Result<Vec<OptimizeReport>> {
    let names: Vec<String> = chain_steps(&params.optimizer)
        .into_iter()
        .map(str::to_string)
        .collect();
    if names.is_empty() {
        return Err(Error::Invalid(format!(
            "optimizer `{}`: expected a name or names joined by `+` (bootstrap+gepa)",
            params.optimizer
        )));
    }
    let singles = single_overrides(&params.overrides);
    let mut used = vec![false; singles.len()];
    let mut requests = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let mut step = params.clone();
        step.optimizer = name.clone();
        step.auto_select = false;
        if names.len() > 1 {
            // Each step takes the settings it has; a setting no step has is
            // refused below.
            step.overrides = Overrides::default();
            for (k, (_, single)) in singles.iter().enumerate() {
                if OptimizerConfig::with_overrides(name, single).is_ok() {
                    merge_overrides(&mut step.overrides, single);
                    used[k] = true;
                }
            }
        }
        if i + 1 < names.len() {
            step.request.promote = None;
        }
        requests.push(step.into_request(ctx)?.0);
    }
    if let Some(k) = used.iter().position(|u| !u) {
        return Err(Error::Invalid(format!(
            "{} applies to none of the chain's optimizers ({})",
            singles[k].0,
            names.join(", ")
        )));
    }
    let mut reports: Vec<OptimizeReport> = Vec::with_capacity(requests.len());
    let mut program = params.request.program.clone();
    for mut req in requests {
        req.program = program.clone();
        let report = run_optimization(ctx, req, None, hooks.clone()).await?;
        let stopped = report.status != Status::Completed;
        if let Some(v) = report.version {
            program.version = Some(v);
            program.alias = None;
        }
        reports.push(report);
        if stopped {
            break;
        }
    }
    Ok(reports)
}

/// Each setting of `o` as overrides of its own, with its flag's name.
fn single_overrides(o: &Overrides) -> Vec<(&'static str, Overrides)> {
    let d = Overrides::default;
    let mut v = Vec::new();
    if o.auto.is_some() {
        v.push((
            "--auto",
            Overrides {
                auto: o.auto,
                ..d()
            },
        ));
    }
    if o.max_bootstrapped_demos.is_some() {
        let max_bootstrapped_demos = o.max_bootstrapped_demos;
        v.push((
            "--max-bootstrapped-demos",
            Overrides {
                max_bootstrapped_demos,
                ..d()
            },
        ));
    }
    if o.max_labeled_demos.is_some() {
        let max_labeled_demos = o.max_labeled_demos;
        v.push((
            "--max-labeled-demos",
            Overrides {
                max_labeled_demos,
                ..d()
            },
        ));
    }
    if o.metric_threshold.is_some() {
        let metric_threshold = o.metric_threshold;
        v.push((
            "--metric-threshold",
            Overrides {
                metric_threshold,
                ..d()
            },
        ));
    }
    if o.num_candidates.is_some() {
        let num_candidates = o.num_candidates;
        v.push((
            "--num-candidates",
            Overrides {
                num_candidates,
                ..d()
            },
        ));
    }
    if o.num_trials.is_some() {
        let num_trials = o.num_trials;
        v.push(("--num-trials", Overrides { num_trials, ..d() }));
    }
    if o.max_metric_calls.is_some() {
        let max_metric_calls = o.max_metric_calls;
        v.push((
            "--max-metric-calls",
            Overrides {
                max_metric_calls,
                ..d()
            },
        ));
    }
    if o.retriever.is_some() {
        let retriever = o.retriever;
        v.push(("--retriever", Overrides { retriever, ..d() }));
    }
    v
}

/// Sets in `into` every setting `from` has.
fn merge_overrides(into: &mut Overrides, from: &Overrides) {
    into.auto = from.auto.or(into.auto);
    into.max_bootstrapped_demos = from.max_bootstrapped_demos.or(into.max_bootstrapped_demos);
    into.max_labeled_demos = from.max_labeled_demos.or(into.max_labeled_demos);
    into.metric_threshold = from.metric_threshold.or(into.metric_threshold);
    into.num_candidates = from.num_candidates.or(into.num_candidates);
    into.num_trials = from.num_trials.or(into.num_trials);
    into.max_metric_calls = from.max_metric_calls.or(into.max_metric_calls);
    into.retriever = from.retriever.or(into.retriever);
}

/// Runs (or, with `resume`, continues) an optimization.
pub async fn run_optimization(
    ctx: &Context,
    req: OptimizeRequest,
    resume: Option<i64>,
    hooks: RunHooks,
) -> Result<OptimizeReport> {
    let started = Instant::now();
    if let Some(alias) = &req.promote {
        crate::registry::validate_alias(alias)?;
    }
    let (req, resumed) = match resume {
        Some(id) => {
            let row = ctx.reader()?.run(id)?;
            if row.kind != RunKind::Optimize {
                return Err(Error::Invalid(format!(
                    "run {id} is a `{}` run; only optimize runs resume",
                    row.kind
                )));
            }
            if row.status == Status::Completed {
                return Err(Error::Invalid(format!(
                    "run {id} already completed; nothing to resume"
                )));
            }
            let req: OptimizeRequest = serde_json::from_str(&row.config_json).map_err(|e| {
                Error::Invalid(format!(
                    "run {id}: its stored request does not read back: {e}"
                ))
            })?;
            (req, Some((id, row.split_id)))
        }
        None => (req, None),
    };
    let prepared = prepare(ctx, &req, resumed.and_then(|(_, split)| split))?;
    let run = match resumed {
        Some((id, _)) => ActiveRun::resume(&ctx.writer, id)?,
        None => {
            let mut new_run = NewRun::new(RunKind::Optimize, serde_json::to_string(&req)?);
            new_run.optimizer = Some(req.optimizer.name().to_string());
            new_run.trainset_id = Some(prepared.trainset_id);
            new_run.split_id = Some(prepared.split_id);
            new_run.program_id = Some(prepared.program_id);
            new_run.base_version_id = Some(prepared.base_version_id);
            new_run.seed = Some(req.seed as i64);
            ActiveRun::start(&ctx.writer, new_run)?
        }
    };
    if let Some(f) = &hooks.on_event {
        f(&Event::RunStarted { run_id: run.id() });
    }
    let result = optimize_in_run(ctx, &req, prepared, run.id(), hooks, started).await;
    run.finish(result, |r| (r.status, r.stopped.clone()))
}

async fn optimize_in_run(
    ctx: &Context,
    req: &OptimizeRequest,
    p: Prepared,
    run_id: i64,
    hooks: RunHooks,
    started: Instant,
) -> Result<OptimizeReport> {
    let lms = ctx.lms(req.no_cache, Arc::new(Budget::new(req.limits)))?;
    let metric_name = metric_name(req.metric.as_deref(), &p.spec);
    let metric = crate::metrics::resolve(&metric_name, &ctx.config.metrics, Some(&lms))?;
    let constants = Arc::new(p.spec.resolve_constants(&ctx.config.taxonomy()?.names()));
    let mut builder = Session::builder(
        ctx.writer.clone(),
        run_id,
        p.spec.clone(),
        lms.clone(),
        &metric_name,
        metric,
    )
    .constants(constants)
    .examples(p.train, p.val, p.test)
    .threads(req.threads)
    .seed(req.seed)
    .deadline(
        req.max_minutes
            .map(|m| Instant::now() + Duration::from_secs_f64(m * 60.0)),
    )
    .on_event(hooks.on_event.clone());
    if let Some(flag) = hooks.interrupted.clone() {
        builder = builder.interrupt(flag);
    }
    let session = builder.build()?;
    let mut report = optimize_in_session(&session, req, p.base_version_id).await?;
    ctx.writer.flush()?;
    let (calls, hits) = ctx.reader()?.run_trace_counts(run_id)?;
    report.lm_calls = calls;
    report.cache_hits = hits;
    report.wall_secs = started.elapsed().as_secs_f64();
    ctx.writer.write(crate::store::Write::RunProgress {
        run_id,
        progress: if report.status == Status::Completed {
            1.0
        } else {
            session.progress()
        },
        lm_calls: calls,
        cache_hits: hits,
    });
    Ok(report)
}

async fn optimize_in_session(
    session: &Session,
    req: &OptimizeRequest,
    base_version_id: i64,
) -> Result<OptimizeReport> {
    let run_id = session.run_id();
    let base = session.base().clone();
    let base_id = session.add_candidate(&base, "baseline", &[], None)?;
    session.plan(session.val().len() + 2 * session.test().len());
    let baseline = session
        .score(base_id, &base, Split::Val, EvalKind::Full, session.val())
        .await?;
    let baseline_val = baseline.mean;
    session
        .writer()
        .call(move |s| s.update_run_scores(run_id, Some(baseline_val), None, None, None))?;
    let outcome = req.optimizer.optimizer().compile(session).await?;
    // The session's best replaces the baseline only by beating it on validation.
    let best = session.best();
    let (best_spec, best_id, best_val) = match &best {
        Some(b) => (b.spec.clone(), b.candidate_id, b.score),
        None => (base.clone(), base_id, baseline.mean),
    };
    let n_candidates = session
        .writer()
        .call(move |s| Ok(s.candidates(run_id)?.len()))?;
    let mut report = OptimizeReport {
        run_id,
        optimizer: req.optimizer.name().into(),
        metric: session.metric_name().to_string(),
        baseline_val: baseline.mean,
        best_val,
        baseline_test: None,
        optimized_test: None,
        n_train: session.train().len(),
        n_val: session.val().len(),
        n_test: session.test().len(),
        candidates: n_candidates,
        lm_calls: 0,
        cache_hits: 0,
        wall_secs: 0.0,
        version: None,
        version_id: None,
        promoted: None,
        stopped: outcome.stopped.as_ref().map(|s| s.to_string()),
        status: Status::Completed,
    };
    if outcome.stopped == Some(StopReason::Interrupted)
        || session.should_stop() == Some(StopReason::Interrupted)
    {
        report.status = Status::Interrupted;
        report.stopped = Some(StopReason::Interrupted.to_string());
        return Ok(report);
    }
    if !session.test().is_empty() {
        let bt = session
            .score(base_id, &base, Split::Test, EvalKind::Full, session.test())
            .await?;
        report.baseline_test = Some(bt.mean);
        let ot = if best_id == base_id {
            bt.mean
        } else {
            session
                .score(
                    best_id,
                    &best_spec,
                    Split::Test,
                    EvalKind::Full,
                    session.test(),
                )
                .await?
                .mean
        };
        report.optimized_test = Some(ot);
        session
            .writer()
            .call(move |s| s.update_run_scores(run_id, None, None, None, Some(ot)))?;
    }
    let note = format!("{} run {run_id}", req.optimizer.name());
    let (spec_json, hash, name) = (
        serde_json::to_string(&best_spec)?,
        best_spec.content_hash(),
        best_spec.name.clone(),
    );
    let score = report.optimized_test.or(Some(best_val));
    let promote = req.promote.clone();
    let (version, promoted) = session.writer().call(move |s| {
        let (version, _) = s.save_version(
            &name,
            &spec_json,
            &hash,
            NewVersion {
                parent_id: (best_id != base_id).then_some(base_version_id),
                run_id: Some(run_id),
                candidate_id: Some(best_id),
                score,
                note: Some(&note),
            },
        )?;
        if let Some(alias) = &promote {
            s.set_alias(&name, alias, version.id, "promote", Some(&note))?;
        }
        Ok((version, promote))
    })?;
    report.version = Some(version.version);
    report.version_id = Some(version.id);
    report.promoted = promoted;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_select_recommends_a_chain_only_for_a_large_trainset_with_budget_room() {
        assert_eq!(recommend(10, None, None).0, "labeled");
        assert_eq!(recommend(150, Some(200), None).0, "bootstrap");
        assert_eq!(recommend(60, None, None).0, "miprov2");
        let (chain, why) = recommend(150, None, None);
        assert_eq!(chain_steps(&chain), ["bootstrap", "gepa"]);
        assert!(why.contains("150 examples"), "{why}");
        // Every recommended step is an optimizer that exists.
        for n in [10, 60, 150] {
            for step in chain_steps(&recommend(n, None, None).0) {
                assert!(OptimizerConfig::parse(step).is_ok(), "{step}");
            }
        }
    }

    /// A run stored before optimizers had their own configs still reads back,
    /// each optimizer taking the flat settings it has.
    #[test]
    fn a_flat_stored_request_reads_back_as_a_tagged_config() {
        let old = r#"{"program":{"program":"config/programs/skill_understanding.yaml","version":null,"alias":null},
            "trainset":"config/training/trainset.json","optimizer":"random-search","auto":"light","seed":7,
            "fewshot":{"max_bootstrapped_demos":3,"max_labeled_demos":16,"max_rounds":1,"metric_threshold":0.9},
            "num_candidates":5,"limits":{"max_calls":null,"max_tokens":null,"max_cost_usd":null},"max_minutes":null,
            "threads":4,"metric":null,"promote":null,"split":{"train":0.4,"val":0.3},"no_cache":false,
            "num_trials":null,"max_metric_calls":null}"#;
        let req: OptimizeRequest = serde_json::from_str(old).unwrap();
        let OptimizerConfig::RandomSearch(r) = &req.optimizer else {
            panic!("{:?}", req.optimizer)
        };
        assert_eq!((r.num_candidates, r.fewshot.max_bootstrapped_demos), (5, 3));
        assert_eq!(req.seed, 7);
        // And today's form round-trips.
        let again: OptimizeRequest =
            serde_json::from_str(&serde_json::to_string(&req).unwrap()).unwrap();
        assert_eq!(again, req);
    }
}
