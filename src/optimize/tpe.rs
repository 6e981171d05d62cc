//! Tree-structured Parzen Estimator over categorical parameters (what MIPROv2
//! searches: one instruction index and one demo-set index per predictor).
//!
//! Follows Optuna's univariate TPE for categorical distributions: random
//! startup trials, then observations are split into the best `gamma` share and
//! the rest; each parameter's value is chosen among samples from the "good"
//! density l(x) by the largest l(x)/g(x). Seeded, so suggestions reproduce.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A finished trial: one choice per parameter and its score (higher is better).
#[derive(Debug, Clone, PartialEq)]
pub struct Observation {
    pub choice: Vec<usize>,
    pub score: f64,
}

/// A seeded TPE sampler over parameters with `sizes[i]` categories each.
pub struct Tpe {
    sizes: Vec<usize>,
    rng: ChaCha8Rng,
    /// Trials sampled uniformly before modelling (Optuna: 10).
    pub n_startup: usize,
    /// Candidates drawn from l(x) per parameter (Optuna: 24).
    pub n_ei_candidates: usize,
    /// Prior weight spread uniformly over categories (Optuna: 1.0).
    pub prior_weight: f64,
}

impl Tpe {
    /// A sampler for the given category counts.
    pub fn new(sizes: Vec<usize>, seed: u64) -> Self {
        Tpe {
            sizes,
            rng: ChaCha8Rng::seed_from_u64(seed),
            n_startup: 10,
            n_ei_candidates: 24,
            prior_weight: 1.0,
        }
    }

    /// Optuna's default gamma: the best min(ceil(0.1 n), 25) observations are "good".
    pub fn n_good(n: usize) -> usize {
        ((0.1 * n as f64).ceil() as usize).clamp(1, 25)
    }

    /// Suggests the next choice given past observations.
    pub fn suggest(&mut self, history: &[Observation]) -> Vec<usize> {
        if history.len() < self.n_startup {
            return self
                .sizes
                .iter()
                .map(|&k| self.rng.gen_range(0..k.max(1)))
                .collect();
        }
        let mut sorted: Vec<&Observation> = history.iter().collect();
        sorted.sort_by(|a, b| {
            b.score
                .partial_cmp(&a.score)
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let n_good = Self::n_good(history.len());
        let (good, bad) = sorted.split_at(n_good.min(sorted.len()));
        let sizes = self.sizes.clone();
        sizes
            .iter()
            .enumerate()
            .map(|(p, &k)| {
                let k = k.max(1);
                let density = |obs: &[&Observation]| -> Vec<f64> {
                    let mut w = vec![self.prior_weight / k as f64; k];
                    for o in obs {
                        if let Some(&c) = o.choice.get(p) {
                            if c < k {
                                w[c] += 1.0;
                            }
                        }
                    }
                    let total: f64 = w.iter().sum();
                    w.into_iter().map(|x| x / total).collect()
                };
                let l = density(good);
                let g = density(bad);
                let mut best = (0usize, f64::MIN);
                for _ in 0..self.n_ei_candidates {
                    let c = sample_weighted(&mut self.rng, &l);
                    let ratio = l[c].ln() - g[c].ln();
                    if ratio > best.1 {
                        best = (c, ratio);
                    }
                }
                best.0
            })
            .collect()
    }
}

fn sample_weighted(rng: &mut ChaCha8Rng, weights: &[f64]) -> usize {
    let total: f64 = weights.iter().sum();
    let mut x = rng.gen::<f64>() * total;
    for (i, w) in weights.iter().enumerate() {
        if x < *w {
            return i;
        }
        x -= w;
    }
    weights.len().saturating_sub(1)
}

/// MIPROv2's trial count: max(2 · vars · log2(n), 1.5 · n), where `vars` is the
/// number of searched parameters (instruction and demos per predictor) and `n`
/// the candidates per parameter. Truncated to an integer as DSPy does
/// (`int(...)`), so that `auto` budgets match DSPy's trial for trial.
pub fn mipro_num_trials(num_vars: usize, n_candidates: usize) -> usize {
    let n = n_candidates.max(1) as f64;
    let a = 2.0 * num_vars as f64 * n.log2();
    let b = 1.5 * n;
    a.max(b).trunc() as usize
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_reproduce_by_seed() {
        let history: Vec<Observation> = (0..20)
            .map(|i| Observation {
                choice: vec![i % 4, i % 3],
                score: if i % 4 == 2 { 0.9 } else { 0.1 },
            })
            .collect();
        let a: Vec<Vec<usize>> = {
            let mut t = Tpe::new(vec![4, 3], 9);
            (0..5).map(|_| t.suggest(&history)).collect()
        };
        let b: Vec<Vec<usize>> = {
            let mut t = Tpe::new(vec![4, 3], 9);
            (0..5).map(|_| t.suggest(&history)).collect()
        };
        assert_eq!(a, b);
        // The good region (first parameter = 2) dominates the suggestions.
        assert!(a.iter().filter(|c| c[0] == 2).count() >= 4, "{a:?}");
    }

    #[test]
    fn startup_is_random_within_bounds() {
        let mut t = Tpe::new(vec![3, 5], 1);
        for _ in 0..10 {
            let c = t.suggest(&[]);
            assert!(c[0] < 3 && c[1] < 5);
        }
    }

    #[test]
    fn trial_count_formula() {
        // One predictor, instructions + demos = 2 vars, n = 6 (auto light):
        // max(2*2*log2 6, 9) = 10.34 -> 10, DSPy 3.4.1's `num_trials: 10`
        // (an earlier version rounded up to 11: one trial more than DSPy).
        assert_eq!(mipro_num_trials(2, 6), 10);
        // n = 12: max(4 * 3.585, 18) = 18.
        assert_eq!(mipro_num_trials(2, 12), 18);
        // n = 18, 4 vars: max(8 * 4.17, 27) = 33.4 -> 33.
        assert_eq!(mipro_num_trials(4, 18), 33);
        assert_eq!(Tpe::n_good(5), 1);
        assert_eq!(Tpe::n_good(100), 10);
        assert_eq!(Tpe::n_good(1000), 25);
    }
}
