//! GEPA's per-example Pareto frontier of candidates.
//!
//! For every validation example the frontier keeps the candidates that reach
//! the best score seen on it. A parent is sampled among non-dominated frontier
//! candidates with probability proportional to the number of examples on
//! which it is best, so specialists survive next to generalists.

use rand::Rng;
use std::collections::{BTreeMap, BTreeSet};

/// Frontier state: best score per example and who reaches it.
#[derive(Debug, Clone, Default)]
pub struct ParetoFront {
    best: BTreeMap<i64, (f64, BTreeSet<usize>)>,
}

impl ParetoFront {
    /// An empty frontier.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a candidate's per-example scores.
    pub fn add(&mut self, candidate: usize, scores: &[(i64, f64)]) {
        for &(ex, s) in scores {
            match self.best.get_mut(&ex) {
                Some((best, who)) if (s - *best).abs() < 1e-12 => {
                    who.insert(candidate);
                }
                Some((best, who)) if s > *best => {
                    *best = s;
                    who.clear();
                    who.insert(candidate);
                }
                Some(_) => {}
                None => {
                    self.best.insert(ex, (s, BTreeSet::from([candidate])));
                }
            }
        }
    }

    /// Best score on each example.
    pub fn best_scores(&self) -> BTreeMap<i64, f64> {
        self.best.iter().map(|(k, (s, _))| (*k, *s)).collect()
    }

    /// Candidates on the frontier with the number of examples each leads,
    /// after removing candidates dominated by another (whose set of led
    /// examples strictly contains theirs, or equals it with a lower index).
    pub fn frequencies(&self) -> BTreeMap<usize, usize> {
        let mut led: BTreeMap<usize, BTreeSet<i64>> = BTreeMap::new();
        for (ex, (_, who)) in &self.best {
            for c in who {
                led.entry(*c).or_default().insert(*ex);
            }
        }
        let cands: Vec<usize> = led.keys().copied().collect();
        let dominated: BTreeSet<usize> = cands
            .iter()
            .copied()
            .filter(|a| {
                cands.iter().any(|b| {
                    b != a && led[a].is_subset(&led[b]) && (led[a].len() < led[b].len() || b < a)
                })
            })
            .collect();
        let mut freq: BTreeMap<usize, usize> = BTreeMap::new();
        for (ex, (_, who)) in &self.best {
            let _ = ex;
            for c in who.iter().filter(|c| !dominated.contains(c)) {
                *freq.entry(*c).or_insert(0) += 1;
            }
        }
        freq
    }

    /// Samples a parent weighted by frontier frequency.
    pub fn sample<R: Rng>(&self, rng: &mut R) -> Option<usize> {
        let freq = self.frequencies();
        let total: usize = freq.values().sum();
        if total == 0 {
            return None;
        }
        let mut x = rng.gen_range(0..total);
        for (c, n) in freq {
            if x < n {
                return Some(c);
            }
            x -= n;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn frontier_keeps_per_example_winners_and_drops_dominated() {
        let mut f = ParetoFront::new();
        f.add(0, &[(1, 0.5), (2, 0.5), (3, 0.5)]);
        f.add(1, &[(1, 1.0), (2, 0.0), (3, 0.5)]);
        f.add(2, &[(1, 0.0), (2, 1.0), (3, 0.0)]);
        // Example 1: {1}; example 2: {2}; example 3: {0, 1} tie at 0.5.
        assert_eq!(
            f.best_scores(),
            BTreeMap::from([(1, 1.0), (2, 1.0), (3, 0.5)])
        );
        let freq = f.frequencies();
        // Candidate 0 leads only example 3, which candidate 1 also leads: dominated.
        assert_eq!(freq, BTreeMap::from([(1, 2), (2, 1)]));
        // A new candidate better everywhere takes the whole frontier.
        f.add(3, &[(1, 1.0), (2, 1.0), (3, 1.0)]);
        assert_eq!(f.frequencies(), BTreeMap::from([(3, 3)]));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        assert_eq!(f.sample(&mut rng), Some(3));
    }

    #[test]
    fn sampling_follows_frequency() {
        let mut f = ParetoFront::new();
        f.add(0, &[(1, 1.0), (2, 1.0), (3, 1.0), (4, 0.0)]);
        f.add(1, &[(1, 0.0), (2, 0.0), (3, 0.0), (4, 1.0)]);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let picks: Vec<usize> = (0..400).filter_map(|_| f.sample(&mut rng)).collect();
        let zeros = picks.iter().filter(|&&c| c == 0).count();
        assert!((250..350).contains(&zeros), "{zeros}");
    }
}
