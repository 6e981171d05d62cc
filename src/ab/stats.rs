//! The statistics of `ab status`: per-variant means with 95% intervals
//! (Wilson for success/failure, Student t for scores), the probability that
//! each variant is best (seeded Monte Carlo over Beta or normal posteriors),
//! and the stop rule that says whether there is enough data to conclude.

use super::AbTest;
use crate::error::{Error, Result};
use crate::store::{AbOutcomeRow, OutcomeKind};
use rand::SeedableRng;
use rand_distr::Distribution;
use serde::Serialize;
use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

/// Settings of the status computation and its stop rule.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct StatusOptions {
    /// Confidence of the per-variant intervals.
    pub confidence: f64,
    /// The probability of being best one variant must reach to stop.
    pub threshold: f64,
    /// Outcomes every variant needs before the rule may stop the test:
    /// early posteriors are dominated by noise, and a peeked-at test that
    /// stops on the first lucky streak picks the wrong winner too often.
    pub min_outcomes: u64,
    /// Monte Carlo draws for the probability of being best.
    pub draws: usize,
    /// Seed of those draws, so the same data gives the same report.
    pub seed: u64,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            confidence: 0.95,
            threshold: 0.95,
            min_outcomes: 100,
            draws: 20_000,
            seed: 0,
        }
    }
}

impl StatusOptions {
    fn check(&self) -> Result<()> {
        if !(self.confidence > 0.0 && self.confidence < 1.0) {
            return Err(Error::Invalid(format!(
                "--confidence: expected a number between 0 and 1, got {}",
                self.confidence
            )));
        }
        if !(self.threshold > 0.0 && self.threshold <= 1.0) {
            return Err(Error::Invalid(format!(
                "--threshold: expected a probability in (0, 1], got {}",
                self.threshold
            )));
        }
        if self.draws == 0 {
            return Err(Error::Invalid("--draws: expected at least 1".into()));
        }
        Ok(())
    }
}

/// What the outcomes of a test measure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Measure {
    /// No outcome yet.
    None,
    /// Success/failure: Wilson intervals, Beta(1 + s, 1 + f) posteriors.
    Binary,
    /// Scores: Student t intervals, normal posteriors N(mean, sd²/n).
    Score,
}

impl Measure {
    /// The name `--json` prints too.
    pub fn as_str(self) -> &'static str {
        match self {
            Measure::None => "none",
            Measure::Binary => "binary",
            Measure::Score => "score",
        }
    }
}

/// One variant's line of the status.
#[derive(Debug, Clone, Serialize)]
pub struct VariantStatus {
    pub variant: String,
    pub version: i64,
    pub weight: f64,
    /// Its share of the traffic by weight.
    pub share: f64,
    pub requests: i64,
    pub outcomes: u64,
    /// Successes, for success/failure outcomes.
    pub successes: Option<u64>,
    pub mean: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub p_best: Option<f64>,
}

/// Whether the test may stop, by which rule and why.
#[derive(Debug, Clone, Serialize)]
pub struct StopDecision {
    pub stop: bool,
    pub rule: String,
    pub reason: String,
    /// The variant the rule would pick when it says stop.
    pub leader: Option<String>,
}

/// The status of a test.
#[derive(Debug, Clone, Serialize)]
pub struct StatusReport {
    pub test: AbTest,
    pub measure: Measure,
    /// Which interval the `ci_*` columns hold.
    pub interval: Option<&'static str>,
    pub confidence: f64,
    pub draws: usize,
    pub seed: u64,
    pub variants: Vec<VariantStatus>,
    pub decision: StopDecision,
}

/// The Wilson score interval of a binomial proportion: unlike the normal
/// ("Wald") interval it stays inside [0, 1] and keeps its coverage near 0
/// and 1 and for small n. None for n = 0.
pub fn wilson(successes: u64, n: u64, confidence: f64) -> Option<(f64, f64)> {
    if n == 0 {
        return None;
    }
    let z = Normal::standard().inverse_cdf(0.5 + confidence / 2.0);
    let n = n as f64;
    let p = successes as f64 / n;
    let denom = 1.0 + z * z / n;
    let center = (p + z * z / (2.0 * n)) / denom;
    let half = z * (p * (1.0 - p) / n + z * z / (4.0 * n * n)).sqrt() / denom;
    // At s = 0 (s = n) the bound is exactly 0 (1); rounding would leave 1e-17.
    let low = if successes == 0 { 0.0 } else { center - half };
    let high = if successes as f64 == n {
        1.0
    } else {
        center + half
    };
    Some((low.max(0.0), high.min(1.0)))
}

/// Mean, sample standard deviation and count of `values` (Welford's update,
/// which does not lose precision on large values as sum-of-squares does).
pub fn summary(values: &[f64]) -> (f64, f64, usize) {
    let (mut mean, mut m2) = (0.0, 0.0);
    for (i, x) in values.iter().enumerate() {
        let d = x - mean;
        mean += d / (i + 1) as f64;
        m2 += d * (x - mean);
    }
    let n = values.len();
    let sd = if n > 1 {
        (m2 / (n - 1) as f64).sqrt()
    } else {
        0.0
    };
    (mean, sd, n)
}

/// The Student t interval of a mean: mean ± t(1 - α/2, n - 1) · sd / √n.
/// None for fewer than two values (no spread to estimate).
pub fn student_t(values: &[f64], confidence: f64) -> Option<(f64, f64)> {
    let (mean, sd, n) = summary(values);
    if n < 2 {
        return None;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64)
        .ok()?
        .inverse_cdf(0.5 + confidence / 2.0);
    let half = t * sd / (n as f64).sqrt();
    Some((mean - half, mean + half))
}

/// A posterior belief about one variant's mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Posterior {
    Beta { a: f64, b: f64 },
    Normal { mean: f64, sd: f64 },
}

/// The probability that each variant has the highest mean: the share of
/// `draws` joint draws from the posteriors in which it is highest (a tie
/// splits its draw evenly, so identical point masses get 1/k each).
pub fn prob_best(posteriors: &[Posterior], draws: usize, seed: u64) -> Result<Vec<f64>> {
    enum Sampler {
        Beta(rand_distr::Beta<f64>),
        Normal(rand_distr::Normal<f64>),
        Point(f64),
    }
    let samplers = posteriors
        .iter()
        .map(|p| match *p {
            Posterior::Beta { a, b } => rand_distr::Beta::new(a, b)
                .map(Sampler::Beta)
                .map_err(|e| Error::Invalid(format!("Beta({a}, {b}) posterior: {e}"))),
            Posterior::Normal { mean, sd } if sd > 0.0 => rand_distr::Normal::new(mean, sd)
                .map(Sampler::Normal)
                .map_err(|e| Error::Invalid(format!("Normal({mean}, {sd}) posterior: {e}"))),
            Posterior::Normal { mean, .. } => Ok(Sampler::Point(mean)),
        })
        .collect::<Result<Vec<_>>>()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut wins = vec![0.0; posteriors.len()];
    let mut draw = vec![0.0; posteriors.len()];
    for _ in 0..draws {
        for (d, s) in draw.iter_mut().zip(&samplers) {
            *d = match s {
                Sampler::Beta(b) => b.sample(&mut rng),
                Sampler::Normal(n) => n.sample(&mut rng),
                Sampler::Point(x) => *x,
            };
        }
        let best = draw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let tied = draw.iter().filter(|&&x| x == best).count() as f64;
        for (w, &x) in wins.iter_mut().zip(&draw) {
            if x == best {
                *w += 1.0 / tied;
            }
        }
    }
    Ok(wins.into_iter().map(|w| w / draws as f64).collect())
}

/// Builds the status of `test` from its request counts per variant id and
/// its outcomes.
pub fn report(
    test: AbTest,
    requests: &[(i64, i64)],
    outcomes: &[AbOutcomeRow],
    opts: &StatusOptions,
) -> Result<StatusReport> {
    opts.check()?;
    let measure = if outcomes.is_empty() {
        Measure::None
    } else if outcomes.iter().all(|o| o.kind != OutcomeKind::Score) {
        Measure::Binary
    } else {
        Measure::Score
    };
    let total_weight: f64 = test.variants.iter().map(|v| v.weight).sum();
    let mut variants = Vec::with_capacity(test.variants.len());
    let mut posteriors = Vec::with_capacity(test.variants.len());
    for v in &test.variants {
        let values: Vec<f64> = outcomes
            .iter()
            .filter(|o| o.variant_id == v.id)
            .map(|o| o.score)
            .collect();
        let n = values.len() as u64;
        let (mean, sd, _) = summary(&values);
        let successes = values.iter().filter(|&&x| x > 0.5).count() as u64;
        let (ci, posterior) = match measure {
            Measure::None => (None, None),
            Measure::Binary => (
                wilson(successes, n, opts.confidence),
                Some(Posterior::Beta {
                    a: 1.0 + successes as f64,
                    b: 1.0 + (n - successes) as f64,
                }),
            ),
            Measure::Score => (
                student_t(&values, opts.confidence),
                (n >= 2).then(|| Posterior::Normal {
                    mean,
                    sd: sd / (n as f64).sqrt(),
                }),
            ),
        };
        posteriors.push(posterior);
        variants.push(VariantStatus {
            variant: v.name.clone(),
            version: v.version,
            weight: v.weight,
            share: v.weight / total_weight,
            requests: requests
                .iter()
                .find(|(id, _)| *id == v.id)
                .map_or(0, |(_, c)| *c),
            outcomes: n,
            successes: (measure == Measure::Binary).then_some(successes),
            mean: (n > 0).then_some(mean),
            ci_low: ci.map(|c| c.0),
            ci_high: ci.map(|c| c.1),
            p_best: None,
        });
    }
    // P(best) needs a posterior for every variant: with a score variant of
    // fewer than two outcomes there is no spread to draw from.
    if let Some(all) = posteriors.iter().copied().collect::<Option<Vec<_>>>() {
        if measure != Measure::None {
            for (v, p) in variants
                .iter_mut()
                .zip(prob_best(&all, opts.draws, opts.seed)?)
            {
                v.p_best = Some(p);
            }
        }
    }
    let decision = decide(&variants, opts);
    Ok(StatusReport {
        test,
        measure,
        interval: match measure {
            Measure::None => None,
            Measure::Binary => Some("wilson"),
            Measure::Score => Some("student-t"),
        },
        confidence: opts.confidence,
        draws: opts.draws,
        seed: opts.seed,
        variants,
        decision,
    })
}

/// The stop rule: one variant's probability of being best reaches the
/// threshold and every variant has at least the minimum of outcomes.
fn decide(variants: &[VariantStatus], opts: &StatusOptions) -> StopDecision {
    let rule = format!(
        "stop when one variant's probability of being best is at least {} and every variant has at least {} outcomes",
        opts.threshold, opts.min_outcomes
    );
    let short = variants.iter().find(|v| v.outcomes < opts.min_outcomes);
    let leader = variants
        .iter()
        .filter_map(|v| v.p_best.map(|p| (v, p)))
        .max_by(|a, b| a.1.total_cmp(&b.1));
    let (stop, reason) = match (short, leader) {
        (Some(v), _) => (
            false,
            format!(
                "variant {} has {} outcome(s), fewer than the minimum {}",
                v.variant, v.outcomes, opts.min_outcomes
            ),
        ),
        (None, None) => (
            false,
            "no probability of being best yet (a score variant needs at least 2 outcomes)".into(),
        ),
        (None, Some((v, p))) if p >= opts.threshold => (
            true,
            format!(
                "variant {} is best with probability {p:.3} (at least {}), and every variant has at least {} outcomes",
                v.variant, opts.threshold, opts.min_outcomes
            ),
        ),
        (None, Some((v, p))) => (
            false,
            format!(
                "no variant is best with probability {} yet (the leader, {}, has {p:.3})",
                opts.threshold, v.variant
            ),
        ),
    };
    StopDecision {
        stop,
        rule,
        reason,
        leader: stop
            .then(|| leader.map(|(v, _)| v.variant.clone()))
            .flatten(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(variant: &str, outcomes: u64, p_best: Option<f64>) -> VariantStatus {
        VariantStatus {
            variant: variant.into(),
            version: 1,
            weight: 1.0,
            share: 0.5,
            requests: outcomes as i64,
            outcomes,
            successes: None,
            mean: None,
            ci_low: None,
            ci_high: None,
            p_best,
        }
    }

    #[test]
    fn the_stop_rule_needs_both_the_minimum_of_outcomes_and_a_clear_leader() {
        let opts = StatusOptions {
            min_outcomes: 10,
            ..StatusOptions::default()
        };
        let few = decide(
            &[line("V1", 9, Some(0.99)), line("V2", 50, Some(0.01))],
            &opts,
        );
        assert!(
            !few.stop && few.reason.contains("V1 has 9 outcome(s)"),
            "{few:?}"
        );
        let close = decide(
            &[line("V1", 10, Some(0.9)), line("V2", 10, Some(0.1))],
            &opts,
        );
        assert!(
            !close.stop && close.reason.contains("the leader, V1, has 0.900"),
            "{close:?}"
        );
        let clear = decide(
            &[line("V1", 10, Some(0.04)), line("V2", 10, Some(0.96))],
            &opts,
        );
        assert!(clear.stop, "{clear:?}");
        assert_eq!(clear.leader.as_deref(), Some("V2"));
        assert!(
            clear.rule.contains("at least 0.95") && clear.rule.contains("at least 10 outcomes")
        );
    }

    #[test]
    fn wilson_of_no_data_is_none_and_stays_inside_zero_one() {
        assert_eq!(wilson(0, 0, 0.95), None);
        let (lo, hi) = wilson(0, 10, 0.95).unwrap();
        assert_eq!(lo, 0.0);
        assert!(hi > 0.2 && hi < 0.35, "{hi}");
        let (lo, hi) = wilson(10, 10, 0.95).unwrap();
        assert!(lo > 0.65 && hi == 1.0, "{lo} {hi}");
    }

    #[test]
    fn student_t_needs_two_values() {
        assert_eq!(student_t(&[1.0], 0.95), None);
        let (lo, hi) = student_t(&[1.0, 2.0, 3.0], 0.95).unwrap();
        assert!((lo + hi) / 2.0 - 2.0 < 1e-12);
    }

    #[test]
    fn identical_point_masses_split_the_probability_of_being_best() {
        let p = prob_best(
            &[
                Posterior::Normal { mean: 1.0, sd: 0.0 },
                Posterior::Normal { mean: 1.0, sd: 0.0 },
            ],
            100,
            0,
        )
        .unwrap();
        assert_eq!(p, vec![0.5, 0.5]);
    }

    #[test]
    fn the_same_seed_gives_the_same_probabilities() {
        let post = [
            Posterior::Beta { a: 3.0, b: 5.0 },
            Posterior::Beta { a: 4.0, b: 4.0 },
        ];
        assert_eq!(
            prob_best(&post, 5000, 9).unwrap(),
            prob_best(&post, 5000, 9).unwrap()
        );
    }

    /// Reference values computed with scipy by
    /// `tests/data/ab/gen_stats_fixture.py`.
    fn fixture() -> serde_json::Value {
        serde_json::from_str(include_str!("../../tests/data/ab/stats_fixture.json")).unwrap()
    }

    fn f(v: &serde_json::Value) -> f64 {
        v.as_f64().unwrap()
    }

    #[test]
    fn wilson_intervals_match_scipy() {
        let fx = fixture();
        for case in fx["wilson"].as_array().unwrap() {
            let (s, n) = (
                case["successes"].as_u64().unwrap(),
                case["n"].as_u64().unwrap(),
            );
            let (lo, hi) = wilson(s, n, 0.95).unwrap();
            assert!((lo - f(&case["low"])).abs() < 1e-9, "{case}: low {lo}");
            assert!((hi - f(&case["high"])).abs() < 1e-9, "{case}: high {hi}");
        }
    }

    #[test]
    fn student_t_intervals_match_scipy() {
        let fx = fixture();
        for case in fx["student_t"].as_array().unwrap() {
            let values: Vec<f64> = case["values"].as_array().unwrap().iter().map(f).collect();
            let (mean, _, _) = summary(&values);
            let (lo, hi) = student_t(&values, 0.95).unwrap();
            assert!(
                (mean - f(&case["mean"])).abs() < 1e-9,
                "{case}: mean {mean}"
            );
            assert!((lo - f(&case["low"])).abs() < 1e-7, "{case}: low {lo}");
            assert!((hi - f(&case["high"])).abs() < 1e-7, "{case}: high {hi}");
        }
    }

    /// P(variant 1 is best) over 100,000 draws against the reference
    /// `p1` of each case: the estimate's standard error is at most 0.0016,
    /// the tolerance four of them.
    fn check_prob_best(
        cases: &serde_json::Value,
        posteriors: impl Fn(&serde_json::Value) -> [Posterior; 2],
    ) {
        for (i, case) in cases.as_array().unwrap().iter().enumerate() {
            let p = prob_best(&posteriors(case), 100_000, i as u64).unwrap();
            assert!((p[0] - f(&case["p1"])).abs() < 0.0064, "{case}: {p:?}");
            assert!((p[0] + p[1] - 1.0).abs() < 1e-9, "{p:?}");
        }
    }

    #[test]
    fn probability_of_best_of_two_betas_matches_scipys_integral() {
        check_prob_best(&fixture()["beta_prob_best"], |c| {
            [
                Posterior::Beta {
                    a: f(&c["a1"]),
                    b: f(&c["b1"]),
                },
                Posterior::Beta {
                    a: f(&c["a2"]),
                    b: f(&c["b2"]),
                },
            ]
        });
    }

    #[test]
    fn probability_of_best_of_two_normals_matches_the_closed_form() {
        check_prob_best(&fixture()["normal_prob_best"], |c| {
            [
                Posterior::Normal {
                    mean: f(&c["m1"]),
                    sd: f(&c["s1"]),
                },
                Posterior::Normal {
                    mean: f(&c["m2"]),
                    sd: f(&c["s2"]),
                },
            ]
        });
    }

    #[test]
    fn identical_variants_are_each_best_half_the_time_and_separated_ones_always() {
        let same = [Posterior::Beta { a: 50.0, b: 50.0 }; 2];
        let p = prob_best(&same, 20_000, 1).unwrap();
        assert!((p[0] - 0.5).abs() < 0.015, "{p:?}");
        let apart = [
            Posterior::Beta { a: 901.0, b: 101.0 },
            Posterior::Beta { a: 101.0, b: 901.0 },
        ];
        assert_eq!(prob_best(&apart, 20_000, 1).unwrap(), vec![1.0, 0.0]);
        let three = [Posterior::Normal {
            mean: 0.5,
            sd: 0.01,
        }; 3];
        let p = prob_best(&three, 30_000, 2).unwrap();
        assert!(p.iter().all(|x| (x - 1.0 / 3.0).abs() < 0.015), "{p:?}");
    }
}
