//! GEPA: reflective instruction evolution with a per-example Pareto frontier.
//!
//! Each iteration samples a parent from the frontier, runs it on a minibatch
//! of training examples, asks the reflection role to rewrite one predictor's
//! instruction from the inputs, outputs and metric feedback, and keeps the
//! child only if it strictly beats the parent on that minibatch; kept children
//! are scored on the full validation set and join the frontier. Merges combine
//! two frontier candidates predictor by predictor.

use super::mipro::Auto;
use super::pareto::ParetoFront;
use super::proposers::{ask, reflection_prompt, reflection_records};
use super::session::{Outcome, Session};
use super::tpe::mipro_num_trials;
use super::Optimizer;
use crate::error::Result;
use crate::eval::EvalResult;
use crate::program::ProgramSpec;
use crate::store::{EvalKind, Split};
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// GEPA with its settings.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct Gepa {
    #[schema(inline)]
    pub auto: Auto,
    /// Budget in example evaluations (metric calls); derived from `auto` when None.
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_metric_calls: Option<usize>,
    /// Examples per reflection minibatch.
    #[schema(minimum = 1)]
    pub minibatch_size: usize,
    /// Whether to merge candidates from different lineages.
    pub use_merge: bool,
    /// Merges at most.
    #[schema(minimum = 0)]
    pub max_merges: usize,
}

impl Default for Gepa {
    /// GEPA defaults: auto light, reflection minibatch of 3, merges on (5 at most).
    fn default() -> Self {
        Gepa {
            auto: Auto::Light,
            max_metric_calls: None,
            minibatch_size: 3,
            use_merge: true,
            max_merges: 5,
        }
    }
}

impl Gepa {
    /// Metric-call budget for `auto`, by DSPy's rule of thumb: one full
    /// validation, the bootstrap allowance, the trials' minibatches and the
    /// periodic full validations MIPROv2 would make with as many candidates.
    pub fn budget(&self, num_predictors: usize, val_size: usize) -> usize {
        if let Some(m) = self.max_metric_calls {
            return m;
        }
        let n = self.auto.n_candidates();
        let trials = mipro_num_trials(2 * num_predictors, n);
        let (m, steps) = (35usize, 5usize);
        let periodic = (trials + 1) / steps + 1 + usize::from(trials < steps);
        val_size + n * 5 + trials * m + periodic * val_size
    }
}

/// A candidate of the search with its lineage and validation scores.
struct Member {
    spec: ProgramSpec,
    id: i64,
    parents: Vec<usize>,
    val: EvalResult,
}

fn per_example(r: &EvalResult) -> Vec<(i64, f64)> {
    r.scores.iter().map(|s| (s.example_id, s.score)).collect()
}

#[async_trait::async_trait]
impl Optimizer for Gepa {
    fn name(&self) -> &'static str {
        "gepa"
    }

    async fn compile(&self, session: &Session) -> Result<Outcome> {
        gepa(session, self).await
    }
}

/// Runs GEPA.
async fn gepa(session: &Session, s: &Gepa) -> Result<Outcome> {
    let val = session.val().to_vec();
    let budget = s.budget(session.base().predictors.len(), val.len()) as u64;
    let used_at_start = session.work_done();
    let used = || session.work_done() - used_at_start;
    session.plan(budget as usize);
    let mut rng = ChaCha8Rng::seed_from_u64(session.seed() ^ 0x6765_7061);
    let reflection = session.lms().role("reflection")?;

    let base_id = session.add_candidate(session.base(), "gepa seed", &[], Some(0))?;
    let base_val = session
        .score(base_id, session.base(), Split::Val, EvalKind::Full, &val)
        .await?;
    let mut front = ParetoFront::new();
    front.add(0, &per_example(&base_val));
    let mut pool = vec![Member {
        spec: session.base().clone(),
        id: base_id,
        parents: vec![],
        val: base_val,
    }];
    let predictors: Vec<String> = session
        .base()
        .predictors
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let mut merges_left = if s.use_merge { s.max_merges } else { 0 };
    let mut merge_due = false;
    let mut iteration = 0usize;
    let mut stopped = None;
    while used() < budget {
        if let Some(stop) = session.should_stop() {
            stopped = Some(stop);
            break;
        }
        iteration += 1;
        if iteration > 10 * budget as usize + 10 {
            break;
        }
        // Merge two frontier candidates after an accepted mutation.
        if merge_due && merges_left > 0 {
            merge_due = false;
            if let Some(child) = try_merge(&front, &pool, &predictors, &mut rng) {
                merges_left -= 1;
                let (a, b) = (child.1, child.2);
                let spec = child.0;
                let id = session.add_candidate(
                    &spec,
                    "gepa merge",
                    &[pool[a].id, pool[b].id],
                    Some(iteration as i64),
                )?;
                let mut batch = val.clone();
                batch.shuffle(&mut rng);
                batch.truncate(s.minibatch_size.max(5));
                let r = session
                    .score(id, &spec, Split::Val, EvalKind::Minibatch, &batch)
                    .await?;
                let parent_best = [a, b]
                    .iter()
                    .map(|&i| {
                        let m: f64 = batch
                            .iter()
                            .filter_map(|e| {
                                pool[i]
                                    .val
                                    .scores
                                    .iter()
                                    .find(|x| x.example_id == e.example_id)
                            })
                            .map(|x| x.score)
                            .sum();
                        m
                    })
                    .fold(f64::MIN, f64::max);
                if r.scores.iter().map(|x| x.score).sum::<f64>() >= parent_best {
                    let full = session
                        .score(id, &spec, Split::Val, EvalKind::Full, &val)
                        .await?;
                    front.add(pool.len(), &per_example(&full));
                    pool.push(Member {
                        spec,
                        id,
                        parents: vec![a, b],
                        val: full,
                    });
                }
                continue;
            }
        }
        let parent = front.sample(&mut rng).unwrap_or(0);
        let predictor = predictors[iteration % predictors.len()].clone();
        let mut batch = session.train().to_vec();
        batch.shuffle(&mut rng);
        batch.truncate(s.minibatch_size);
        let parent_spec = pool[parent].spec.clone();
        let parent_r = session
            .score(
                pool[parent].id,
                &parent_spec,
                Split::Train,
                EvalKind::Minibatch,
                &batch,
            )
            .await?;
        if parent_r.scores.iter().all(|x| x.score >= 1.0) {
            // Nothing to learn from a perfect minibatch.
            continue;
        }
        let current = parent_spec
            .predictor(&predictor)
            .map(|p| p.signature.instructions.clone())
            .unwrap_or_default();
        let prompt = reflection_prompt(
            &current,
            &reflection_records(session.base(), &predictor, &parent_r.scores),
        );
        let rollout = (
            format!("gepa-{iteration}"),
            session.seed().wrapping_add(iteration as u64),
        );
        let traced_as = format!("gepa:reflect:{predictor}");
        let Some(new_instruction) = ask(
            &reflection,
            prompt,
            "```",
            None,
            Some(rollout),
            session.run_id(),
            traced_as,
        )
        .await
        else {
            continue;
        };
        if new_instruction == current {
            continue;
        }
        let mut child = parent_spec.clone();
        if let Some(p) = child.predictor_mut(&predictor) {
            p.signature.instructions = new_instruction;
        }
        let child_id = session.add_candidate(
            &child,
            &format!("gepa reflect on {predictor}"),
            &[pool[parent].id],
            Some(iteration as i64),
        )?;
        let child_r = session
            .score(child_id, &child, Split::Train, EvalKind::Minibatch, &batch)
            .await?;
        let sum = |r: &EvalResult| r.scores.iter().map(|x| x.score).sum::<f64>();
        if sum(&child_r) <= sum(&parent_r) {
            continue;
        }
        let full = session
            .score(child_id, &child, Split::Val, EvalKind::Full, &val)
            .await?;
        front.add(pool.len(), &per_example(&full));
        pool.push(Member {
            spec: child,
            id: child_id,
            parents: vec![parent],
            val: full,
        });
        merge_due = true;
    }
    Ok(session.outcome(stopped))
}

fn ancestors(pool: &[Member], i: usize) -> Vec<usize> {
    let mut out = vec![i];
    let mut k = 0;
    while k < out.len() {
        for &p in &pool[out[k]].parents {
            if !out.contains(&p) {
                out.push(p);
            }
        }
        k += 1;
    }
    out
}

/// Picks two frontier candidates with a common ancestor and combines them:
/// per predictor, the instruction of whichever side changed it from the
/// ancestor (the better-scoring side when both did).
fn try_merge(
    front: &ParetoFront,
    pool: &[Member],
    predictors: &[String],
    rng: &mut ChaCha8Rng,
) -> Option<(ProgramSpec, usize, usize)> {
    let cands: Vec<usize> = front.frequencies().keys().copied().collect();
    if cands.len() < 2 {
        return None;
    }
    for _ in 0..10 {
        let a = cands[rng.gen_range(0..cands.len())];
        let b = cands[rng.gen_range(0..cands.len())];
        if a == b {
            continue;
        }
        let (anc_a, anc_b) = (ancestors(pool, a), ancestors(pool, b));
        if anc_a.contains(&b) || anc_b.contains(&a) {
            continue;
        }
        let Some(&common) = anc_a.iter().find(|x| anc_b.contains(x)) else {
            continue;
        };
        let instr = |i: usize, p: &str| {
            pool[i]
                .spec
                .predictor(p)
                .map(|x| x.signature.instructions.clone())
                .unwrap_or_default()
        };
        let mut child = pool[common].spec.clone();
        let mut changed = false;
        for p in predictors {
            let (ia, ib, ic) = (instr(a, p), instr(b, p), instr(common, p));
            let pick = match (ia != ic, ib != ic) {
                (true, false) => ia,
                (false, true) => ib,
                (true, true) => {
                    if pool[a].val.mean >= pool[b].val.mean {
                        ia
                    } else {
                        ib
                    }
                }
                (false, false) => ic.clone(),
            };
            if pick != ic {
                changed = true;
            }
            if let Some(ps) = child.predictor_mut(p) {
                ps.signature.instructions = pick;
                // Demos follow the better parent.
                let better = if pool[a].val.mean >= pool[b].val.mean {
                    a
                } else {
                    b
                };
                ps.demos = pool[better]
                    .spec
                    .predictor(p)
                    .map(|x| x.demos.clone())
                    .unwrap_or_default();
            }
        }
        let merged_is_new = pool
            .iter()
            .all(|m| m.spec.content_hash() != child.content_hash());
        if changed && merged_is_new {
            return Some((child, a, b));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_budget_matches_dspy() {
        // dspy.GEPA(auto="light").auto_budget(num_preds=1, num_candidates=6,
        // valset_size=28) in DSPy 3.4.1 prints 492: 28 + 6*5 + 10*35 + 3*28.
        assert_eq!(Gepa::default().budget(1, 28), 492);
        let fixed = Gepa {
            max_metric_calls: Some(40),
            ..Gepa::default()
        };
        assert_eq!(fixed.budget(1, 28), 40);
    }
}
