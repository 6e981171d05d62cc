//! MIPROv2: bootstrapped demo-set candidates, grounded instruction proposals
//! from the prompt role, and a seeded TPE search over (instruction, demo set)
//! per predictor with minibatch evaluation and periodic full validation.

use super::fewshot::{bootstrap, with_labeled_demos, FewShotSettings, Teacher};
use super::proposers::{ask, dataset_summary_prompt, instruction_prompt, TIPS};
use super::session::{Outcome, Session};
use super::tpe::{mipro_num_trials, Observation, Tpe};
use super::Optimizer;
use crate::error::Result;
use crate::program::{Demo, ProgramSpec};
use crate::store::{EvalKind, Split};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Light / medium / heavy presets (DSPy: 6/12/18 candidates, val 100/300/1000).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Auto {
    Light,
    Medium,
    Heavy,
}

impl Auto {
    /// Parses `light|medium|heavy`.
    pub fn parse(s: &str) -> Option<Auto> {
        match s {
            "light" => Some(Auto::Light),
            "medium" => Some(Auto::Medium),
            "heavy" => Some(Auto::Heavy),
            _ => None,
        }
    }

    /// Candidates per parameter.
    pub fn n_candidates(self) -> usize {
        match self {
            Auto::Light => 6,
            Auto::Medium => 12,
            Auto::Heavy => 18,
        }
    }

    /// Validation examples used at most.
    pub fn val_size(self) -> usize {
        match self {
            Auto::Light => 100,
            Auto::Medium => 300,
            Auto::Heavy => 1000,
        }
    }
}

/// MIPROv2 with its settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Miprov2 {
    #[schema(inline)]
    pub auto: Auto,
    #[schema(inline)]
    pub fewshot: FewShotSettings,
    /// Validation examples per minibatch trial.
    #[schema(minimum = 1)]
    pub minibatch_size: usize,
    /// A full validation evaluation every this many trials.
    #[schema(minimum = 1)]
    pub full_eval_steps: usize,
    /// Overrides the trial-count formula.
    #[schema(minimum = 1, maximum = 10000)]
    pub num_trials: Option<usize>,
}

impl Default for Miprov2 {
    /// DSPy's MIPROv2 defaults: auto light, 4 bootstrapped + 4 labeled demos,
    /// minibatch 35, full evaluation every 5 trials.
    fn default() -> Self {
        Miprov2 {
            auto: Auto::Light,
            fewshot: FewShotSettings {
                max_bootstrapped_demos: 4,
                max_labeled_demos: 4,
                max_rounds: 1,
                metric_threshold: 0.9,
            },
            minibatch_size: 35,
            full_eval_steps: 5,
            num_trials: None,
        }
    }
}

/// Demo-set candidates: zero-shot, labeled-only, unshuffled bootstrap, then seeded bootstraps.
async fn demo_candidates(
    session: &Session,
    s: &Miprov2,
    n: usize,
) -> Result<Vec<HashMap<String, Vec<Demo>>>> {
    let teacher = Teacher::labeled(session, s.fewshot);
    let mut sets = Vec::new();
    let extract = |spec: &ProgramSpec| -> HashMap<String, Vec<Demo>> {
        spec.predictors
            .iter()
            .map(|p| (p.name.clone(), p.demos.clone()))
            .collect()
    };
    sets.push(extract(session.base()));
    sets.push(extract(&with_labeled_demos(
        session.base(),
        session.train(),
        s.fewshot.max_labeled_demos,
        session.seed(),
    )));
    let mut i = 0u64;
    while sets.len() < n.max(3) {
        if session.should_stop().is_some() {
            break;
        }
        let seed = (i > 0).then(|| session.seed().wrapping_add(i));
        let mut settings = s.fewshot;
        if let Some(seed) = seed {
            settings.max_bootstrapped_demos = ChaCha8Rng::seed_from_u64(seed)
                .gen_range(1..=s.fewshot.max_bootstrapped_demos.max(1));
        }
        let (spec, _) = bootstrap(
            session,
            session.base(),
            &teacher,
            session.train(),
            settings,
            seed,
        )
        .await?;
        let set = extract(&spec);
        if !sets.contains(&set) {
            sets.push(set);
        }
        i += 1;
        if i > 3 * n as u64 {
            break;
        }
    }
    Ok(sets)
}

/// A short, grounded summary of the training data (one prompt-role call).
async fn dataset_summary(session: &Session) -> String {
    let Ok(lm) = session.lms().role("prompt") else {
        return String::new();
    };
    let prompt = dataset_summary_prompt(session.base(), session.train());
    let predictor = "mipro:dataset_summary".to_string();
    ask(
        &lm,
        prompt,
        "\n\n",
        Some(80),
        None,
        session.run_id(),
        predictor,
    )
    .await
    .unwrap_or_default()
}

/// Instruction candidates for one predictor: the original first, then proposals.
async fn instruction_candidates(
    session: &Session,
    predictor: &str,
    n: usize,
    summary: &str,
    demo_sets: &[HashMap<String, Vec<Demo>>],
) -> Vec<String> {
    let Some(p) = session.base().predictor(predictor) else {
        return Vec::new();
    };
    let mut out = vec![p.signature.instructions.clone()];
    let Ok(lm) = session.lms().role("prompt") else {
        return out;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(session.seed() ^ 0x4d49_5052);
    for k in 1..(n * 2) {
        if out.len() >= n || session.should_stop().is_some() {
            break;
        }
        let tip = TIPS[rng.gen_range(0..TIPS.len())];
        let demo = demo_sets[k % demo_sets.len()]
            .get(predictor)
            .and_then(|d| d.first());
        let prompt = instruction_prompt(session.base(), p, summary, demo, tip);
        let rollout = (
            format!("mipro-instruction-{k}"),
            session.seed().wrapping_add(k as u64),
        );
        let traced_as = format!("mipro:propose:{predictor}");
        if let Some(instr) = ask(
            &lm,
            prompt,
            "\n\n",
            None,
            Some(rollout),
            session.run_id(),
            traced_as,
        )
        .await
        {
            if !out.contains(&instr) {
                out.push(instr);
            }
        }
    }
    out
}

#[async_trait::async_trait]
impl Optimizer for Miprov2 {
    fn name(&self) -> &'static str {
        "miprov2"
    }

    async fn compile(&self, session: &Session) -> Result<Outcome> {
        mipro(session, self).await
    }
}

/// Runs MIPROv2.
async fn mipro(session: &Session, s: &Miprov2) -> Result<Outcome> {
    let n = s.auto.n_candidates();
    let mut val = session.val().to_vec();
    val.truncate(s.auto.val_size());
    let demo_sets = demo_candidates(session, s, n).await?;
    let summary = dataset_summary(session).await;
    let predictors: Vec<String> = session
        .base()
        .predictors
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut instructions: HashMap<String, Vec<String>> = HashMap::new();
    for p in &predictors {
        instructions.insert(
            p.clone(),
            instruction_candidates(session, p, n, &summary, &demo_sets).await,
        );
    }
    // Parameters: per predictor, an instruction index and a demo-set index.
    let mut sizes = Vec::new();
    for p in &predictors {
        sizes.push(instructions[p].len().max(1));
        sizes.push(demo_sets.len().max(1));
    }
    let num_trials = s
        .num_trials
        .unwrap_or_else(|| mipro_num_trials(sizes.len(), n));
    let minibatch = val.len() > s.minibatch_size;
    let build = |choice: &[usize]| -> ProgramSpec {
        let mut spec = session.base().clone();
        for (i, p) in predictors.iter().enumerate() {
            if let Some(ps) = spec.predictor_mut(p) {
                ps.signature.instructions = instructions[p][choice[2 * i]].clone();
                ps.demos = demo_sets[choice[2 * i + 1]]
                    .get(p)
                    .cloned()
                    .unwrap_or_default();
            }
        }
        spec
    };
    session.plan(
        val.len()
            + num_trials
                * if minibatch {
                    s.minibatch_size
                } else {
                    val.len()
                }
            + if minibatch {
                (num_trials / s.full_eval_steps + 1) * val.len()
            } else {
                0
            },
    );

    // Trial 0: the default program on the full validation set.
    let default_choice = vec![0; sizes.len()];
    let base_spec = build(&default_choice);
    let base_id = session.add_candidate(&base_spec, "mipro default", &[], Some(0))?;
    let base_r = session
        .score(base_id, &base_spec, Split::Val, EvalKind::Full, &val)
        .await?;
    let mut stopped = None;

    let mut tpe = Tpe::new(sizes.clone(), session.seed());
    let mut history: Vec<Observation> = Vec::new();
    // Minibatch scores per choice, for picking what to validate fully.
    let mut mb_scores: HashMap<Vec<usize>, Vec<f64>> = HashMap::new();
    let mut fully_evaluated: HashMap<Vec<usize>, f64> = HashMap::new();
    fully_evaluated.insert(default_choice.clone(), base_r.mean);
    let mut rng = ChaCha8Rng::seed_from_u64(session.seed() ^ 0x6d62);
    for trial in 1..=num_trials {
        if let Some(stop) = session.should_stop() {
            stopped = Some(stop);
            break;
        }
        let choice = tpe.suggest(&history);
        let spec = build(&choice);
        let id = session.add_candidate(
            &spec,
            &format!("mipro trial {trial} {choice:?}"),
            &[base_id],
            Some(trial as i64),
        )?;
        let score = if minibatch {
            let mut batch = val.clone();
            batch.shuffle(&mut rng);
            batch.truncate(s.minibatch_size);
            let r = session
                .score(id, &spec, Split::Val, EvalKind::Minibatch, &batch)
                .await?;
            mb_scores.entry(choice.clone()).or_default().push(r.mean);
            r.mean
        } else {
            let r = match fully_evaluated.get(&choice) {
                Some(v) => *v,
                None => {
                    session
                        .score(id, &spec, Split::Val, EvalKind::Full, &val)
                        .await?
                        .mean
                }
            };
            fully_evaluated.insert(choice.clone(), r);
            r
        };
        history.push(Observation {
            choice: choice.clone(),
            score,
        });
        // Every `full_eval_steps` trials (and at the end), validate the best-averaged minibatch choice fully.
        if minibatch && (trial % s.full_eval_steps == 0 || trial == num_trials) {
            let top = mb_scores
                .iter()
                .filter(|(c, _)| !fully_evaluated.contains_key(*c))
                .map(|(c, v)| (c.clone(), v.iter().sum::<f64>() / v.len() as f64))
                .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal));
            if let Some((c, _)) = top {
                let spec = build(&c);
                let id = session.add_candidate(
                    &spec,
                    &format!("mipro trial {trial} {c:?}"),
                    &[base_id],
                    Some(trial as i64),
                )?;
                let r = session
                    .score(id, &spec, Split::Val, EvalKind::Full, &val)
                    .await?;
                fully_evaluated.insert(c, r.mean);
            }
        }
    }
    Ok(session.outcome(stopped))
}
