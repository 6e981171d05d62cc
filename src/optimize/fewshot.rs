//! Few-shot optimizers: LabeledFewShot, BootstrapFewShot and random search
//! over bootstrapped demo sets (DSPy's BootstrapFewShotWithRandomSearch), and
//! the bootstrapping step MIPROv2 reuses.

use super::session::{Outcome, Session};
use super::Optimizer;
use crate::error::Result;
use crate::eval::EvalExample;
use crate::program::adapter::demo_from;
use crate::program::{Demo, ProgramSpec};
use crate::store::{EvalKind, Split};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Demo-count settings (DSPy defaults: 4 bootstrapped, 16 labeled, 1 round,
/// and our 0.9 threshold for a teacher trace to count as passing).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct FewShotSettings {
    /// Teacher traces kept as demos per predictor.
    #[schema(minimum = 0, maximum = 64)]
    pub max_bootstrapped_demos: usize,
    /// Labeled examples added as demos per predictor.
    #[schema(minimum = 0, maximum = 256)]
    pub max_labeled_demos: usize,
    /// Passes over the train set while bootstrapping.
    #[schema(minimum = 1, maximum = 10)]
    pub max_rounds: usize,
    /// Minimum metric score for a teacher trace to become a demo.
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub metric_threshold: f64,
}

impl Default for FewShotSettings {
    fn default() -> Self {
        FewShotSettings {
            max_bootstrapped_demos: 4,
            max_labeled_demos: 16,
            max_rounds: 1,
            metric_threshold: 0.9,
        }
    }
}

/// LabeledFewShot: `k` demos sampled from train (DSPy default 16).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct LabeledFewShot {
    /// Labeled demos sampled per predictor (`max_labeled_demos` in requests).
    #[schema(minimum = 0, maximum = 256)]
    pub k: usize,
}

impl Default for LabeledFewShot {
    fn default() -> Self {
        LabeledFewShot { k: 16 }
    }
}

/// BootstrapFewShot: one bootstrapped program.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct BootstrapFewShot {
    #[schema(inline)]
    pub fewshot: FewShotSettings,
}

/// Random search over demo sets (DSPy's BootstrapFewShotWithRandomSearch).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct RandomSearch {
    #[schema(inline)]
    pub fewshot: FewShotSettings,
    /// Seeded bootstrapped candidates after the three fixed ones (DSPy default 16).
    #[schema(minimum = 0, maximum = 1000)]
    pub num_candidates: usize,
}

impl Default for RandomSearch {
    fn default() -> Self {
        RandomSearch {
            fewshot: FewShotSettings::default(),
            num_candidates: 16,
        }
    }
}

/// A labeled demo for a predictor: the example's inputs and gold labels
/// restricted to the predictor's fields.
pub fn labeled_demo(spec: &ProgramSpec, predictor: &str, ex: &EvalExample) -> Option<Demo> {
    spec.predictor(predictor)?
        .demo_from(|name| ex.inputs.get(name).or_else(|| ex.labels.get(name)))
}

/// `k` labeled demos sampled (seeded) from `pool` for every predictor.
pub fn with_labeled_demos(
    spec: &ProgramSpec,
    pool: &[EvalExample],
    k: usize,
    seed: u64,
) -> ProgramSpec {
    with_demos_of(spec, &sample(pool, k, seed))
}

/// `k` examples of `pool`, sampled with `seed`.
fn sample(pool: &[EvalExample], k: usize, seed: u64) -> Vec<EvalExample> {
    let mut order: Vec<&EvalExample> = pool.iter().collect();
    order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    order.into_iter().take(k).cloned().collect()
}

/// `spec` with the labeled demos of `examples` for every predictor.
fn with_demos_of(spec: &ProgramSpec, examples: &[EvalExample]) -> ProgramSpec {
    let mut out = spec.clone();
    for p in &mut out.predictors {
        p.demos = examples
            .iter()
            .filter_map(|ex| labeled_demo(spec, &p.name, ex))
            .collect();
    }
    out
}

/// A teacher: a program and the examples its labeled demos were made from,
/// so that an example is never run by a teacher showing its own gold answer.
#[derive(Debug, Clone)]
pub struct Teacher {
    pub spec: ProgramSpec,
    pub demo_sources: Vec<EvalExample>,
}

impl Teacher {
    /// A teacher that shows no labeled demos of ours (e.g. an optimized program).
    pub fn plain(spec: ProgramSpec) -> Self {
        Teacher {
            spec,
            demo_sources: Vec::new(),
        }
    }

    /// The teacher DSPy uses by default: the student with labeled demos
    /// (at most 8) sampled from train. The sample uses its own seed, not the
    /// seed of the order bootstrapping runs the examples in.
    pub fn labeled(session: &Session, settings: FewShotSettings) -> Self {
        let k = settings.max_labeled_demos.min(8);
        let sources = sample(session.train(), k, session.seed() ^ 0x0074_6561_6368_6572);
        Teacher {
            spec: with_demos_of(session.base(), &sources),
            demo_sources: sources,
        }
    }

    /// The teacher for running `example`: without that example's demo, as
    /// DSPy's BootstrapFewShot drops `x == example` from the teacher's demos.
    fn for_example(&self, example: &EvalExample) -> Option<ProgramSpec> {
        if !self
            .demo_sources
            .iter()
            .any(|d| d.example_id == example.example_id)
        {
            return None;
        }
        let others: Vec<EvalExample> = self
            .demo_sources
            .iter()
            .filter(|d| d.example_id != example.example_id)
            .cloned()
            .collect();
        Some(with_demos_of(&self.spec, &others))
    }
}

/// Runs a teacher over (shuffled) train examples and turns traces scoring at
/// least the threshold into demos, per predictor, up to `max_bootstrapped`;
/// then fills with labeled demos of examples not bootstrapped, up to
/// `max_labeled` in total. An example among the teacher's own labeled demos
/// is run by the teacher without that demo. `seed` `None` keeps train order.
/// Returns the student and the number bootstrapped.
pub async fn bootstrap(
    session: &Session,
    student: &ProgramSpec,
    teacher: &Teacher,
    train: &[EvalExample],
    settings: FewShotSettings,
    seed: Option<u64>,
) -> Result<(ProgramSpec, usize)> {
    let teacher_id = session.add_candidate(&teacher.spec, "bootstrap-teacher", &[], None)?;
    let mut bootstrapped: BTreeMap<String, Vec<Demo>> = BTreeMap::new();
    let mut used: Vec<i64> = Vec::new();
    let max = settings.max_bootstrapped_demos;
    let mut order: Vec<EvalExample> = train.to_vec();
    if let Some(seed) = seed {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    // Teacher runs in chunks, stopping once every predictor has enough demos.
    let chunk = session.threads() * 2;
    'rounds: for _round in 0..settings.max_rounds.max(1) {
        for batch in order.chunks(chunk) {
            if bootstrapped.values().map(Vec::len).min().unwrap_or(0) >= max
                && bootstrapped.len() == student.predictors.len()
            {
                break 'rounds;
            }
            if session.should_stop().is_some() {
                break 'rounds;
            }
            let batch: Vec<EvalExample> = batch
                .iter()
                .filter(|e| !used.contains(&e.example_id))
                .cloned()
                .collect();
            session.plan(batch.len());
            // Examples the teacher holds as demos run one by one without
            // their own demo; the rest together.
            let (own, rest): (Vec<EvalExample>, Vec<EvalExample>) = batch
                .into_iter()
                .partition(|e| teacher.for_example(e).is_some());
            let mut scores = session
                .score(
                    teacher_id,
                    &teacher.spec,
                    Split::Train,
                    EvalKind::Minibatch,
                    &rest,
                )
                .await?
                .scores;
            for ex in &own {
                let Some(spec) = teacher.for_example(ex) else {
                    continue;
                };
                let id = session.add_candidate(
                    &spec,
                    &format!("bootstrap-teacher without example {}", ex.example_id),
                    &[teacher_id],
                    None,
                )?;
                let r = session
                    .score(
                        id,
                        &spec,
                        Split::Train,
                        EvalKind::Minibatch,
                        std::slice::from_ref(ex),
                    )
                    .await?;
                scores.extend(r.scores);
            }
            for s in &scores {
                if s.score < settings.metric_threshold {
                    continue;
                }
                let Some(pred) = &s.prediction else { continue };
                if pred.traces.iter().any(|t| t.used_fallback) {
                    continue;
                }
                used.push(s.example_id);
                for t in &pred.traces {
                    let demos = bootstrapped.entry(t.predictor.clone()).or_default();
                    if demos.len() < max {
                        demos.push(demo_from(&t.inputs, &t.outputs));
                    }
                }
            }
        }
    }
    let mut out = student.clone();
    let n_boot = bootstrapped.values().map(Vec::len).max().unwrap_or(0);
    for p in &mut out.predictors {
        let mut demos = bootstrapped.get(&p.name).cloned().unwrap_or_default();
        let room = settings.max_labeled_demos.saturating_sub(demos.len());
        demos.extend(
            order
                .iter()
                .filter(|e| !used.contains(&e.example_id))
                .filter_map(|e| labeled_demo(student, &p.name, e))
                .take(room),
        );
        p.demos = demos;
    }
    Ok((out, n_boot))
}

/// Adds `spec` as a candidate and scores it on the full validation set.
pub(super) async fn validate(
    session: &Session,
    spec: &ProgramSpec,
    origin: &str,
    trial: i64,
) -> Result<()> {
    let id = session.add_candidate(spec, origin, &[], Some(trial))?;
    session.plan(session.val().len());
    session
        .score(id, spec, Split::Val, EvalKind::Full, session.val())
        .await?;
    Ok(())
}

#[async_trait::async_trait]
impl Optimizer for LabeledFewShot {
    fn name(&self) -> &'static str {
        "labeled"
    }

    async fn compile(&self, session: &Session) -> Result<Outcome> {
        let spec = with_labeled_demos(session.base(), session.train(), self.k, session.seed());
        validate(session, &spec, "labeled", 0).await?;
        Ok(session.outcome(session.should_stop()))
    }
}

#[async_trait::async_trait]
impl Optimizer for BootstrapFewShot {
    fn name(&self) -> &'static str {
        "bootstrap"
    }

    async fn compile(&self, session: &Session) -> Result<Outcome> {
        let teacher = Teacher::labeled(session, self.fewshot);
        let (spec, n) = bootstrap(
            session,
            session.base(),
            &teacher,
            session.train(),
            self.fewshot,
            Some(session.seed()),
        )
        .await?;
        validate(session, &spec, &format!("bootstrap({n} traced)"), 0).await?;
        Ok(session.outcome(session.should_stop()))
    }
}

#[async_trait::async_trait]
impl Optimizer for RandomSearch {
    fn name(&self) -> &'static str {
        "random-search"
    }

    /// Zero-shot, labeled-only, unshuffled bootstrap, then seeded shuffles
    /// with a random number of bootstrapped demos; the best on val wins.
    async fn compile(&self, session: &Session) -> Result<Outcome> {
        let settings = self.fewshot;
        let teacher = Teacher::labeled(session, settings);
        for trial in 0..self.num_candidates + 3 {
            if let Some(stop) = session.should_stop() {
                return Ok(session.outcome(Some(stop)));
            }
            let (spec, origin) = match trial {
                0 => (session.base().clone(), "zero-shot".to_string()),
                1 => (
                    with_labeled_demos(
                        session.base(),
                        session.train(),
                        settings.max_labeled_demos,
                        session.seed(),
                    ),
                    "labeled-only".into(),
                ),
                2 => {
                    let (s, n) = bootstrap(
                        session,
                        session.base(),
                        &teacher,
                        session.train(),
                        settings,
                        None,
                    )
                    .await?;
                    (s, format!("bootstrap unshuffled ({n} traced)"))
                }
                _ => {
                    let seed = session.seed().wrapping_add(trial as u64);
                    let k = ChaCha8Rng::seed_from_u64(seed)
                        .gen_range(1..=settings.max_bootstrapped_demos.max(1));
                    let s2 = FewShotSettings {
                        max_bootstrapped_demos: k,
                        ..settings
                    };
                    let (s, n) = bootstrap(
                        session,
                        session.base(),
                        &teacher,
                        session.train(),
                        s2,
                        Some(seed),
                    )
                    .await?;
                    (s, format!("bootstrap seed {seed} ({n} traced)"))
                }
            };
            validate(session, &spec, &origin, trial as i64).await?;
        }
        Ok(session.outcome(None))
    }
}
