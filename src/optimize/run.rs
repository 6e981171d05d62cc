//! The whole `optimize` job, shared by the CLI and the HTTP API: split,
//! baseline, optimizer, test evaluation, versioning and promotion — or the
//! continuation of an interrupted run.

use super::fewshot::{self, FewShotSettings};
use super::gepa::{gepa, GepaSettings};
use super::mipro::{mipro, Auto, MiproSettings};
use super::session::{Session, StopReason};
use crate::config::Config;
use crate::data::SplitFractions;
use crate::error::{Error, Result};
use crate::eval::EvalExample;
use crate::lm::budget::{Budget, BudgetLimits};
use crate::lm::client::{LmOptions, Lms};
use crate::program::{load_program, ProgramRef, ProgramSpec};
use crate::store::{NewRun, NewVersion, Store};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Which optimizer to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OptimizerKind {
    Labeled,
    Bootstrap,
    RandomSearch,
    Miprov2,
    Gepa,
}

impl OptimizerKind {
    /// Parses a CLI/API name.
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "labeled" | "labeled-fewshot" => Ok(Self::Labeled),
            "bootstrap" | "bootstrap-fewshot" => Ok(Self::Bootstrap),
            "random-search" | "random_search" => Ok(Self::RandomSearch),
            "miprov2" | "mipro" => Ok(Self::Miprov2),
            "gepa" => Ok(Self::Gepa),
            other => Err(Error::Invalid(format!(
                "optimizer `{other}`; expected labeled, bootstrap, random-search, miprov2 or gepa"
            ))),
        }
    }

    /// The stored name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Labeled => "labeled",
            Self::Bootstrap => "bootstrap",
            Self::RandomSearch => "random-search",
            Self::Miprov2 => "miprov2",
            Self::Gepa => "gepa",
        }
    }

    /// Every optimizer with a one-line description (for `/optimizers`).
    pub fn all() -> Vec<(Self, &'static str)> {
        vec![
            (
                Self::Labeled,
                "k labeled demos sampled from train; no LM calls to optimize",
            ),
            (
                Self::Bootstrap,
                "teacher traces that pass the metric become demos (DSPy BootstrapFewShot)",
            ),
            (
                Self::RandomSearch,
                "zero-shot, labeled and seeded bootstrapped demo sets; best on val wins",
            ),
            (
                Self::Miprov2,
                "instruction proposals x demo sets searched with TPE (DSPy MIPROv2)",
            ),
            (
                Self::Gepa,
                "reflective instruction evolution on a per-example Pareto frontier (GEPA)",
            ),
        ]
    }
}

/// Everything an optimization needs; stored with the run so it can resume.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OptimizeRequest {
    pub program: ProgramRef,
    /// Trainset name/id/hash, or a file to import.
    pub trainset: String,
    pub optimizer: OptimizerKind,
    pub auto: Auto,
    pub seed: u64,
    pub fewshot: FewShotSettings,
    /// Candidates of random search (DSPy default 16).
    pub num_candidates: usize,
    pub limits: BudgetLimits,
    pub max_minutes: Option<f64>,
    pub threads: usize,
    pub metric: Option<String>,
    pub promote: Option<String>,
    pub split: SplitFractions,
    pub no_cache: bool,
    /// Overrides MIPROv2's trial count / GEPA's metric-call budget.
    pub num_trials: Option<usize>,
    pub max_metric_calls: Option<usize>,
}

impl OptimizeRequest {
    /// A request with DSPy's defaults.
    pub fn new(program: &str, trainset: &str, optimizer: OptimizerKind) -> Self {
        OptimizeRequest {
            program: ProgramRef {
                program: program.to_string(),
                ..Default::default()
            },
            trainset: trainset.to_string(),
            optimizer,
            auto: Auto::Light,
            seed: 42,
            fewshot: FewShotSettings::default(),
            num_candidates: 16,
            limits: BudgetLimits::default(),
            max_minutes: None,
            threads: 4,
            metric: None,
            promote: None,
            split: SplitFractions::default(),
            no_cache: false,
            num_trials: None,
            max_metric_calls: None,
        }
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
    pub status: String,
}

/// Hooks the caller provides (progress display, interruption).
#[derive(Default)]
pub struct RunHooks {
    pub on_progress: Option<super::session::ProgressFn>,
    pub interrupted: Option<Arc<AtomicBool>>,
    /// Called once the run row exists (the HTTP API links its job to it).
    pub on_run_created: Option<Box<dyn Fn(i64) + Send + Sync>>,
}

fn examples_for(
    spec: &ProgramSpec,
    ids: &[i64],
    all: &[crate::store::ExampleRow],
) -> Vec<EvalExample> {
    ids.iter()
        .filter_map(|id| all.iter().find(|e| e.id == *id))
        .map(|e| {
            let (inputs, labels) = spec.example_io(&e.fields);
            EvalExample {
                example_id: e.id,
                inputs,
                labels,
            }
        })
        .collect()
}

/// Runs (or, with `resume`, continues) an optimization.
pub async fn run_optimization(
    db: PathBuf,
    config: Config,
    req: OptimizeRequest,
    resume: Option<i64>,
    hooks: RunHooks,
) -> Result<OptimizeReport> {
    let started = Instant::now();
    let mut store = Store::open(&db)?;
    let taxonomy = config.taxonomy()?;
    let (req, run_id) = match resume {
        Some(id) => {
            let row = store.run(id)?;
            if row.kind != "optimize" {
                return Err(Error::Invalid(format!(
                    "run {id} is a `{}` run; only optimize runs resume",
                    row.kind
                )));
            }
            if row.status == "succeeded" {
                return Err(Error::Invalid(format!(
                    "run {id} already succeeded; nothing to resume"
                )));
            }
            let req: OptimizeRequest = serde_json::from_str(&row.config_json)?;
            store.set_run_status(id, "running", None)?;
            (req, Some(id))
        }
        None => (req, None),
    };
    let (spec, base_version) = load_program(&mut store, &req.program)?;
    // Trainset: a stored one, or a file imported now.
    let trainset = match store.find_trainset(&req.trainset) {
        Ok(t) => t,
        Err(_) if std::path::Path::new(&req.trainset).is_file() => {
            let ts = crate::data::load_file(std::path::Path::new(&req.trainset), &taxonomy)?;
            let name = std::path::Path::new(&req.trainset)
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default();
            store.import_trainset(&name, &req.trainset, &ts)?.0
        }
        Err(e) => return Err(e),
    };
    // A resumed run keeps its split; a new one uses the trainset's newest split
    // (so runs with different optimizer seeds compare on the same examples),
    // or makes a seeded one when there is none (`trainset split` makes others).
    let resumed_split = resume
        .and_then(|id| store.run(id).ok())
        .and_then(|r| r.split_id);
    let split = match (resumed_split, store.latest_split(trainset.id)?) {
        (Some(id), _) => store.split(id)?,
        (None, Some(s)) => s,
        (None, None) => store.split_trainset(trainset.id, req.seed, req.split)?,
    };
    let all = store.examples(trainset.id)?;
    let part = |p| store.split_part(split.id, p);
    let train = examples_for(&spec, &part(crate::data::Part::Train)?, &all);
    let val = examples_for(&spec, &part(crate::data::Part::Val)?, &all);
    let test = examples_for(&spec, &part(crate::data::Part::Test)?, &all);
    if train.is_empty() || val.is_empty() {
        return Err(Error::Invalid(format!(
            "split #{} has {} train and {} val examples; need at least one of each",
            split.id,
            train.len(),
            val.len()
        )));
    }
    let metric_name = req
        .metric
        .clone()
        .or_else(|| spec.metric.clone())
        .unwrap_or_else(|| "skill_comprehensive".into());
    let run_id = match run_id {
        Some(id) => id,
        None => store.create_run(&NewRun {
            kind: "optimize",
            optimizer: Some(req.optimizer.name()),
            config_json: serde_json::to_string(&req)?,
            trainset_id: Some(trainset.id),
            split_id: Some(split.id),
            program_id: Some(base_version.program_id),
            base_version_id: Some(base_version.id),
            seed: Some(req.seed as i64),
        })?,
    };
    if let Some(cb) = &hooks.on_run_created {
        cb(run_id);
    }
    let budget = Arc::new(Budget::new(req.limits));
    let lms = Arc::new(
        Lms::new(
            config.clone(),
            LmOptions {
                db: Some(db.clone()),
                no_cache: req.no_cache,
            },
            budget,
        )
        .map_err(|e| Error::Invalid(e.to_string()))?,
    );
    let task_lm = lms
        .role("task")
        .map_err(|e| Error::Invalid(e.to_string()))?;
    let metric = crate::metrics::resolve(&metric_name, &config.metrics, Some(&lms))?;
    let constants = Arc::new(spec.resolve_constants(&taxonomy.names()));
    let session = Session {
        store: Mutex::new(store),
        run_id,
        base: spec.clone(),
        constants,
        lms: lms.clone(),
        task_lm,
        metric,
        metric_name: metric_name.clone(),
        train,
        val,
        test,
        threads: req.threads.max(1),
        seed: req.seed,
        interrupted: hooks.interrupted.clone().unwrap_or_default(),
        deadline: req
            .max_minutes
            .map(|m| Instant::now() + Duration::from_secs_f64(m * 60.0)),
        planned: AtomicU64::new(0),
        done: AtomicU64::new(0),
        on_progress: hooks.on_progress,
    };
    let result = optimize_in_session(&session, &req, base_version.id).await;
    lms.flush_traces();
    let store = session
        .store
        .lock()
        .map_err(|_| Error::Invalid("store lock poisoned".into()))?;
    match result {
        Ok(mut report) => {
            let (calls, hits) = store.run_trace_counts(run_id)?;
            report.lm_calls = calls;
            report.cache_hits = hits;
            report.wall_secs = started.elapsed().as_secs_f64();
            store.update_run_progress(
                run_id,
                if report.status == "succeeded" {
                    1.0
                } else {
                    session.progress()
                },
                calls,
                hits,
            )?;
            store.set_run_status(run_id, &report.status, report.stopped.as_deref())?;
            Ok(report)
        }
        Err(e) => {
            store.set_run_status(run_id, "failed", Some(&e.to_string()))?;
            Err(e)
        }
    }
}

async fn optimize_in_session(
    session: &Session,
    req: &OptimizeRequest,
    base_version_id: i64,
) -> Result<OptimizeReport> {
    let base_id = session.add_candidate(&session.base, "baseline", &[], None)?;
    session.plan(session.val.len() + 2 * session.test.len());
    let baseline = session
        .evaluate(base_id, &session.base, "val", "full", &session.val)
        .await?;
    {
        let store = session
            .store
            .lock()
            .map_err(|_| Error::Invalid("store lock poisoned".into()))?;
        store.update_run_scores(
            session.run_id,
            Some(baseline.mean),
            Some(baseline.mean),
            Some(base_id),
            None,
        )?;
    }
    let outcome = match req.optimizer {
        OptimizerKind::Labeled => fewshot::labeled(session, req.fewshot.max_labeled_demos).await?,
        OptimizerKind::Bootstrap => fewshot::bootstrap_fewshot(session, req.fewshot).await?,
        OptimizerKind::RandomSearch => {
            fewshot::random_search(session, req.fewshot, req.num_candidates).await?
        }
        OptimizerKind::Miprov2 => {
            let mut s = MiproSettings::new(req.auto);
            s.num_trials = req.num_trials;
            if req.fewshot.max_bootstrapped_demos
                != FewShotSettings::default().max_bootstrapped_demos
                || req.fewshot.max_labeled_demos != FewShotSettings::default().max_labeled_demos
            {
                s.fewshot = req.fewshot;
            }
            mipro(session, s).await?
        }
        OptimizerKind::Gepa => {
            let mut s = GepaSettings::new(req.auto);
            s.max_metric_calls = req.max_metric_calls;
            gepa(session, s).await?
        }
    };
    // The optimized program must beat the baseline on validation to replace it.
    let (best_spec, best_id, best_val) = if outcome.best_val_score > baseline.mean {
        (
            outcome.best.clone(),
            outcome.best_candidate_id.unwrap_or(base_id),
            outcome.best_val_score,
        )
    } else {
        (session.base.clone(), base_id, baseline.mean)
    };
    {
        let store = session
            .store
            .lock()
            .map_err(|_| Error::Invalid("store lock poisoned".into()))?;
        store.update_run_scores(session.run_id, None, Some(best_val), Some(best_id), None)?;
    }
    let n_candidates = session
        .store
        .lock()
        .map_err(|_| Error::Invalid("store lock poisoned".into()))?
        .candidates(session.run_id)?
        .len();
    let mut report = OptimizeReport {
        run_id: session.run_id,
        optimizer: req.optimizer.name().into(),
        metric: session.metric_name.clone(),
        baseline_val: baseline.mean,
        best_val,
        baseline_test: None,
        optimized_test: None,
        n_train: session.train.len(),
        n_val: session.val.len(),
        n_test: session.test.len(),
        candidates: n_candidates,
        lm_calls: 0,
        cache_hits: 0,
        wall_secs: 0.0,
        version: None,
        version_id: None,
        promoted: None,
        stopped: outcome.stopped.as_ref().map(|s| s.to_string()),
        status: "succeeded".into(),
    };
    if outcome.stopped == Some(StopReason::Interrupted)
        || session.should_stop() == Some(StopReason::Interrupted)
    {
        report.status = "interrupted".into();
        report.stopped = Some(StopReason::Interrupted.to_string());
        return Ok(report);
    }
    if !session.test.is_empty() {
        let bt = session
            .evaluate(base_id, &session.base, "test", "full", &session.test)
            .await?;
        report.baseline_test = Some(bt.mean);
        let ot = if best_id == base_id {
            bt.mean
        } else {
            session
                .evaluate(best_id, &best_spec, "test", "full", &session.test)
                .await?
                .mean
        };
        report.optimized_test = Some(ot);
        let store = session
            .store
            .lock()
            .map_err(|_| Error::Invalid("store lock poisoned".into()))?;
        store.update_run_scores(session.run_id, None, None, None, Some(ot))?;
    }
    let mut store = session
        .store
        .lock()
        .map_err(|_| Error::Invalid("store lock poisoned".into()))?;
    let note = format!("{} run {}", req.optimizer.name(), session.run_id);
    let (version, _) = store.save_version(
        &best_spec.name,
        &serde_json::to_string(&best_spec)?,
        &best_spec.content_hash(),
        NewVersion {
            parent_id: (best_id != base_id).then_some(base_version_id),
            run_id: Some(session.run_id),
            candidate_id: Some(best_id),
            score: report.optimized_test.or(Some(best_val)),
            note: Some(&note),
        },
    )?;
    report.version = Some(version.version);
    report.version_id = Some(version.id);
    if let Some(alias) = &req.promote {
        store.set_alias(&best_spec.name, alias, version.id, "promote", Some(&note))?;
        report.promoted = Some(alias.clone());
    }
    Ok(report)
}
