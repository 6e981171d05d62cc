//! Few-shot optimizers: LabeledFewShot, BootstrapFewShot and random search
//! over bootstrapped demo sets (DSPy's BootstrapFewShotWithRandomSearch).

use super::session::{Outcome, Session};
use crate::error::Result;
use crate::eval::EvalExample;
use crate::program::adapter::demo_from;
use crate::program::{Demo, ProgramSpec};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::Map;
use std::collections::BTreeMap;

/// Demo-count settings (DSPy defaults: 4 bootstrapped, 16 labeled, 1 round).
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct FewShotSettings {
    pub max_bootstrapped_demos: usize,
    pub max_labeled_demos: usize,
    pub max_rounds: usize,
    /// Minimum metric score for a teacher trace to become a demo.
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

/// A labeled demo for a predictor: the example's inputs and gold labels
/// restricted to the predictor's fields.
pub fn labeled_demo(spec: &ProgramSpec, predictor: &str, ex: &EvalExample) -> Option<Demo> {
    let p = spec.predictor(predictor)?;
    let mut d = Map::new();
    for f in p.signature.inputs.iter().chain(&p.signature.outputs) {
        if let Some(v) = ex.inputs.get(&f.name).or_else(|| ex.labels.get(&f.name)) {
            d.insert(f.name.clone(), v.clone());
        }
    }
    // A demo needs every output of the predictor.
    p.signature
        .outputs
        .iter()
        .all(|f| d.contains_key(&f.name))
        .then_some(d)
}

/// `k` labeled demos sampled (seeded) from `pool` for every predictor.
pub fn with_labeled_demos(
    spec: &ProgramSpec,
    pool: &[EvalExample],
    k: usize,
    seed: u64,
) -> ProgramSpec {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order: Vec<&EvalExample> = pool.iter().collect();
    order.shuffle(&mut rng);
    let mut out = spec.clone();
    for p in &mut out.predictors {
        p.demos = order
            .iter()
            .filter_map(|ex| labeled_demo(spec, &p.name, ex))
            .take(k)
            .collect();
    }
    out
}

/// LabeledFewShot: k demos sampled from train.
pub async fn labeled(session: &Session, k: usize) -> Result<Outcome> {
    let spec = with_labeled_demos(&session.base, &session.train, k, session.seed);
    let id = session.add_candidate(&spec, "labeled", &[], Some(0))?;
    session.plan(session.val.len());
    let r = session
        .evaluate(id, &spec, "val", "full", &session.val)
        .await?;
    Ok(Outcome {
        best: spec,
        best_candidate_id: Some(id),
        best_val_score: r.mean,
        stopped: session.should_stop(),
    })
}

/// Runs a teacher over (shuffled) train examples and turns traces scoring at
/// least the threshold into demos, per predictor, up to `max_bootstrapped`;
/// then fills with labeled demos of examples not bootstrapped, up to
/// `max_labeled` in total. Returns the student and the number bootstrapped.
pub async fn bootstrap(
    session: &Session,
    student: &ProgramSpec,
    teacher: &ProgramSpec,
    train: &[EvalExample],
    settings: FewShotSettings,
    seed: u64,
) -> Result<(ProgramSpec, usize)> {
    let teacher_id = session.add_candidate(teacher, "bootstrap-teacher", &[], None)?;
    let mut bootstrapped: BTreeMap<String, Vec<Demo>> = BTreeMap::new();
    let mut used: Vec<i64> = Vec::new();
    let max = settings.max_bootstrapped_demos;
    let mut order: Vec<EvalExample> = train.to_vec();
    if seed != u64::MAX {
        order.shuffle(&mut ChaCha8Rng::seed_from_u64(seed));
    }
    // Teacher runs in chunks, stopping once every predictor has enough demos.
    let chunk = session.threads.max(1) * 2;
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
            let r = session
                .evaluate(teacher_id, teacher, "train", "minibatch", &batch)
                .await?;
            for s in &r.scores {
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

/// The teacher DSPy uses by default: the student with labeled demos.
pub fn default_teacher(session: &Session, settings: FewShotSettings) -> ProgramSpec {
    with_labeled_demos(
        &session.base,
        &session.train,
        settings.max_labeled_demos.min(8),
        session.seed,
    )
}

/// BootstrapFewShot: one bootstrapped program, scored on val.
pub async fn bootstrap_fewshot(session: &Session, settings: FewShotSettings) -> Result<Outcome> {
    let teacher = default_teacher(session, settings);
    let (spec, n) = bootstrap(
        session,
        &session.base,
        &teacher,
        &session.train,
        settings,
        session.seed,
    )
    .await?;
    let id = session.add_candidate(&spec, &format!("bootstrap({n} traced)"), &[], Some(0))?;
    session.plan(session.val.len());
    let r = session
        .evaluate(id, &spec, "val", "full", &session.val)
        .await?;
    Ok(Outcome {
        best: spec,
        best_candidate_id: Some(id),
        best_val_score: r.mean,
        stopped: session.should_stop(),
    })
}

/// Random search: zero-shot, labeled-only, unshuffled bootstrap, then seeded
/// shuffles with a random number of bootstrapped demos; the best on val wins.
pub async fn random_search(
    session: &Session,
    settings: FewShotSettings,
    num_candidates: usize,
) -> Result<Outcome> {
    let mut best: Option<Outcome> = None;
    let teacher = default_teacher(session, settings);
    let total = num_candidates + 3;
    for trial in 0..total {
        if let Some(stop) = session.should_stop() {
            return Ok(best
                .map(|mut b| {
                    b.stopped = Some(stop.clone());
                    b
                })
                .unwrap_or(Outcome {
                    best: session.base.clone(),
                    best_candidate_id: None,
                    best_val_score: 0.0,
                    stopped: Some(stop),
                }));
        }
        let (spec, origin) = match trial {
            0 => (session.base.clone(), "zero-shot".to_string()),
            1 => (
                with_labeled_demos(
                    &session.base,
                    &session.train,
                    settings.max_labeled_demos,
                    session.seed,
                ),
                "labeled-only".into(),
            ),
            2 => {
                let (s, n) = bootstrap(
                    session,
                    &session.base,
                    &teacher,
                    &session.train,
                    settings,
                    u64::MAX,
                )
                .await?;
                (s, format!("bootstrap unshuffled ({n} traced)"))
            }
            _ => {
                let seed = session.seed.wrapping_add(trial as u64);
                let mut rng = ChaCha8Rng::seed_from_u64(seed);
                let k = rng.gen_range(1..=settings.max_bootstrapped_demos.max(1));
                let s2 = FewShotSettings {
                    max_bootstrapped_demos: k,
                    ..settings
                };
                let (s, n) =
                    bootstrap(session, &session.base, &teacher, &session.train, s2, seed).await?;
                (s, format!("bootstrap seed {seed} ({n} traced)"))
            }
        };
        let id = session.add_candidate(&spec, &origin, &[], Some(trial as i64))?;
        session.plan(session.val.len());
        let r = session
            .evaluate(id, &spec, "val", "full", &session.val)
            .await?;
        if best.as_ref().is_none_or(|b| r.mean > b.best_val_score) {
            best = Some(Outcome {
                best: spec,
                best_candidate_id: Some(id),
                best_val_score: r.mean,
                stopped: None,
            });
        }
    }
    Ok(best.unwrap_or(Outcome {
        best: session.base.clone(),
        best_candidate_id: None,
        best_val_score: 0.0,
        stopped: None,
    }))
}
