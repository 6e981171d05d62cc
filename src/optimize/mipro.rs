//! MIPROv2: bootstrapped demo-set candidates, grounded instruction proposals
//! from the prompt role, and a seeded TPE search over (instruction, demo set)
//! per predictor with minibatch evaluation and periodic full validation.

use super::fewshot::{bootstrap, default_teacher, with_labeled_demos, FewShotSettings};
use super::session::{Outcome, Session};
use super::tpe::{mipro_num_trials, Observation, Tpe};
use crate::error::Result;
use crate::eval::EvalExample;
use crate::lm::client::CallContext;
use crate::lm::LmRequest;
use crate::program::signature::render_value;
use crate::program::{Demo, ProgramSpec};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::collections::HashMap;

/// Light / medium / heavy presets (DSPy: 6/12/18 candidates, val 100/300/1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// MIPROv2 settings.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
pub struct MiproSettings {
    pub auto: Auto,
    pub fewshot: FewShotSettings,
    pub minibatch_size: usize,
    pub full_eval_steps: usize,
    /// Overrides the trial-count formula.
    pub num_trials: Option<usize>,
}

impl MiproSettings {
    /// DSPy's MIPROv2 defaults (4 bootstrapped + 4 labeled demos, minibatch 35, full eval every 5 trials).
    pub fn new(auto: Auto) -> Self {
        MiproSettings {
            auto,
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

/// Tips mixed into instruction proposals for diversity (as in DSPy's proposer).
pub const TIPS: [&str; 6] = [
    "",
    "Don't be afraid to be creative when writing the new instruction.",
    "Keep the instruction clear and concise.",
    "Make the instruction informative and descriptive.",
    "Mention what is at stake if the answer is wrong.",
    "Begin the instruction with a persona relevant to the task (\"You are a ...\").",
];

/// Demo-set candidates: zero-shot, labeled-only, unshuffled bootstrap, then seeded bootstraps.
async fn demo_candidates(
    session: &Session,
    s: &MiproSettings,
    n: usize,
) -> Result<Vec<HashMap<String, Vec<Demo>>>> {
    let teacher = default_teacher(session, s.fewshot);
    let mut sets = Vec::new();
    let extract = |spec: &ProgramSpec| -> HashMap<String, Vec<Demo>> {
        spec.predictors
            .iter()
            .map(|p| (p.name.clone(), p.demos.clone()))
            .collect()
    };
    sets.push(extract(&session.base));
    sets.push(extract(&with_labeled_demos(
        &session.base,
        &session.train,
        s.fewshot.max_labeled_demos,
        session.seed,
    )));
    let mut i = 0u64;
    while sets.len() < n.max(3) {
        if session.should_stop().is_some() {
            break;
        }
        let seed = if i == 0 {
            u64::MAX
        } else {
            session.seed.wrapping_add(i)
        };
        let mut settings = s.fewshot;
        if i > 0 {
            settings.max_bootstrapped_demos = ChaCha8Rng::seed_from_u64(seed)
                .gen_range(1..=s.fewshot.max_bootstrapped_demos.max(1));
        }
        let (spec, _) = bootstrap(
            session,
            &session.base,
            &teacher,
            &session.train,
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
async fn dataset_summary(session: &Session, examples: &[EvalExample]) -> String {
    let lm = match session.lms.role("prompt") {
        Ok(lm) => lm,
        Err(_) => return String::new(),
    };
    let sample: String = examples
        .iter()
        .take(5)
        .map(|e| {
            let ins: Vec<String> = e.inputs.values().map(render_value).collect();
            let outs: Vec<String> = e
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", render_value(v)))
                .collect();
            format!("- {} -> {}\n", ins.join(" | "), outs.join("; "))
        })
        .collect();
    let mut req = LmRequest::text(format!(
        "Here are examples from a dataset:\n{sample}\nA one-sentence summary of what this dataset is about:"
    ));
    req.params = lm.default_params();
    req.params.stop = vec!["\n\n".into()];
    req.params.max_tokens = 80;
    let ctx = CallContext {
        run_id: Some(session.run_id),
        predictor: Some("mipro:dataset_summary".into()),
        ..Default::default()
    };
    match lm.call(&req, &ctx).await {
        Ok(out) => clean_instruction(out.response.text()).unwrap_or_default(),
        Err(_) => String::new(),
    }
}

/// Trims a proposed instruction; rejects empty or runaway text.
pub fn clean_instruction(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_matches('`')
        .trim()
        .trim_matches('"')
        .trim();
    let t = t
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (t.len() >= 15 && t.len() <= 1500).then_some(t)
}

/// Instruction candidates for one predictor: the original first, then proposals.
async fn instruction_candidates(
    session: &Session,
    predictor: &str,
    n: usize,
    summary: &str,
    demo_sets: &[HashMap<String, Vec<Demo>>],
) -> Vec<String> {
    let Some(p) = session.base.predictor(predictor) else {
        return Vec::new();
    };
    let mut out = vec![p.signature.instructions.clone()];
    let Ok(lm) = session.lms.role("prompt") else {
        return out;
    };
    let mut rng = ChaCha8Rng::seed_from_u64(session.seed ^ 0x4d49_5052);
    for k in 1..(n * 2) {
        if out.len() >= n || session.should_stop().is_some() {
            break;
        }
        let tip = TIPS[rng.gen_range(0..TIPS.len())];
        let demos = &demo_sets[k % demo_sets.len()];
        let example = demos
            .get(predictor)
            .and_then(|d| d.first())
            .map(|d| {
                d.iter()
                    .filter(|(k, _)| k.as_str() != "categories")
                    .map(|(k, v)| format!("{k}: {}", render_value(v)))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .unwrap_or_default();
        let prompt = format!(
            "Dataset: {summary}\nProgram: {}\nInputs: {}\nOutputs: {}\nExample:\n{example}\n\nCurrent instruction: {}\n{}\nWrite a better instruction for this task.\nNew instruction:",
            session.base.description,
            p.signature.inputs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
            p.signature.outputs.iter().map(|f| f.name.as_str()).collect::<Vec<_>>().join(", "),
            p.signature.instructions.trim(),
            if tip.is_empty() { String::new() } else { format!("Tip: {tip}\n") },
        );
        let mut req = LmRequest::text(prompt);
        req.params = lm.default_params();
        req.params.stop = vec!["\n\n".into()];
        req.rollout_id = Some(format!("mipro-instruction-{k}"));
        req.params.seed = Some(session.seed.wrapping_add(k as u64));
        let ctx = CallContext {
            run_id: Some(session.run_id),
            predictor: Some(format!("mipro:propose:{predictor}")),
            ..Default::default()
        };
        if let Ok(o) = lm.call(&req, &ctx).await {
            if let Some(instr) = clean_instruction(o.response.text()) {
                if !out.contains(&instr) {
                    out.push(instr);
                }
            }
        }
    }
    out
}

/// Runs MIPROv2.
pub async fn mipro(session: &Session, s: MiproSettings) -> Result<Outcome> {
    let n = s.auto.n_candidates();
    let mut val = session.val.clone();
    val.truncate(s.auto.val_size());
    let demo_sets = demo_candidates(session, &s, n).await?;
    let summary = dataset_summary(session, &session.train).await;
    let predictors: Vec<String> = session
        .base
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
        let mut spec = session.base.clone();
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
        .evaluate(base_id, &base_spec, "val", "full", &val)
        .await?;
    let mut best = Outcome {
        best: base_spec,
        best_candidate_id: Some(base_id),
        best_val_score: base_r.mean,
        stopped: None,
    };

    let mut tpe = Tpe::new(sizes.clone(), session.seed);
    let mut history: Vec<Observation> = Vec::new();
    // Minibatch scores per choice, for picking what to validate fully.
    let mut mb_scores: HashMap<Vec<usize>, Vec<f64>> = HashMap::new();
    let mut fully_evaluated: HashMap<Vec<usize>, f64> = HashMap::new();
    fully_evaluated.insert(default_choice.clone(), base_r.mean);
    let mut rng = ChaCha8Rng::seed_from_u64(session.seed ^ 0x6d62);
    for trial in 1..=num_trials {
        if let Some(stop) = session.should_stop() {
            best.stopped = Some(stop);
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
                .evaluate(id, &spec, "val", "minibatch", &batch)
                .await?;
            mb_scores.entry(choice.clone()).or_default().push(r.mean);
            r.mean
        } else {
            let r = match fully_evaluated.get(&choice) {
                Some(v) => *v,
                None => session.evaluate(id, &spec, "val", "full", &val).await?.mean,
            };
            fully_evaluated.insert(choice.clone(), r);
            if r > best.best_val_score {
                best = Outcome {
                    best: spec.clone(),
                    best_candidate_id: Some(id),
                    best_val_score: r,
                    stopped: None,
                };
            }
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
                let r = session.evaluate(id, &spec, "val", "full", &val).await?;
                fully_evaluated.insert(c, r.mean);
                if r.mean > best.best_val_score {
                    best = Outcome {
                        best: spec,
                        best_candidate_id: Some(id),
                        best_val_score: r.mean,
                        stopped: None,
                    };
                }
            }
        }
    }
    Ok(best)
}
