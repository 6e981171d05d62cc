//! Paired statistics for comparing two versions on the same examples: the
//! mean difference with a seeded paired-bootstrap interval, and the exact
//! two-sided sign test on per-example wins and losses.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use statrs::distribution::{Binomial, DiscreteCDF};

/// How the per-example differences of B over A sum up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PairedSummary {
    pub n: usize,
    pub a_mean: f64,
    pub b_mean: f64,
    /// `b_mean - a_mean`, the mean of the per-example differences.
    pub mean_diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
    pub resamples: usize,
    pub seed: u64,
    /// Examples where B scores higher than A (by more than [`TIE_EPSILON`]).
    pub wins: usize,
    pub losses: usize,
    pub ties: usize,
    /// Two-sided exact sign test of wins against losses (ties dropped).
    pub p_value: f64,
}

/// Scores closer than this count as a tie: metric scores are sums of
/// fractions, and floating-point noise must not decide a win.
pub const TIE_EPSILON: f64 = 1e-9;

/// Summarises paired scores `a[i]`, `b[i]` (same example `i`).
///
/// The interval is the percentile interval of `resamples` bootstrap means of
/// the differences, resampling examples with replacement (pairs stay
/// together), from a ChaCha8 generator seeded with `seed`: the same inputs
/// and seed always give the same interval.
pub fn paired_summary(
    a: &[f64],
    b: &[f64],
    confidence: f64,
    resamples: usize,
    seed: u64,
) -> PairedSummary {
    let n = a.len().min(b.len());
    let diffs: Vec<f64> = (0..n).map(|i| b[i] - a[i]).collect();
    let mean = |xs: &[f64]| {
        if xs.is_empty() {
            0.0
        } else {
            xs.iter().sum::<f64>() / xs.len() as f64
        }
    };
    let (mut wins, mut losses, mut ties) = (0, 0, 0);
    for d in &diffs {
        if *d > TIE_EPSILON {
            wins += 1;
        } else if *d < -TIE_EPSILON {
            losses += 1;
        } else {
            ties += 1;
        }
    }
    let (ci_low, ci_high) = bootstrap_interval(&diffs, confidence, resamples, seed);
    PairedSummary {
        n,
        a_mean: mean(&a[..n]),
        b_mean: mean(&b[..n]),
        mean_diff: mean(&diffs),
        ci_low,
        ci_high,
        confidence,
        resamples,
        seed,
        wins,
        losses,
        ties,
        p_value: sign_test(wins, losses),
    }
}

/// Percentile bootstrap interval of the mean of `xs`.
pub fn bootstrap_interval(xs: &[f64], confidence: f64, resamples: usize, seed: u64) -> (f64, f64) {
    if xs.is_empty() {
        return (0.0, 0.0);
    }
    let n = xs.len();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..resamples.max(1))
        .map(|_| (0..n).map(|_| xs[rng.gen_range(0..n)]).sum::<f64>() / n as f64)
        .collect();
    means.sort_by(f64::total_cmp);
    let alpha = (1.0 - confidence.clamp(0.0, 1.0)) / 2.0;
    (quantile(&means, alpha), quantile(&means, 1.0 - alpha))
}

/// Linear-interpolation quantile of sorted values (NumPy's default, "type 7").
pub fn quantile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let (lo, hi) = (h.floor() as usize, h.ceil() as usize);
    sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo])
}

/// Two-sided exact sign test: the probability, under "A and B are equally
/// likely to win an example", of a split at least as uneven as
/// `wins`:`losses`. Equals SciPy's `binomtest(wins, wins + losses, 0.5).pvalue`.
pub fn sign_test(wins: usize, losses: usize) -> f64 {
    let n = (wins + losses) as u64;
    if n == 0 {
        return 1.0;
    }
    let k = wins.min(losses) as u64;
    // n >= 1 and p = 0.5 are always valid parameters.
    let Ok(binomial) = Binomial::new(0.5, n) else {
        return 1.0;
    };
    (2.0 * binomial.cdf(k)).min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Exact values, 2 * sum_{i<=min(k, n-k)} C(n, i) / 2^n, worked with
    /// Python's `math.comb`; `scipy.stats.binomtest(k, n, 0.5).pvalue` gives the same.
    #[test]
    fn sign_test_matches_exact_binomial_sums() {
        let cases = [
            (7, 3, 0.34375),
            (10, 0, 0.001953125),
            (0, 10, 0.001953125),
            (5, 5, 1.0),
            (15, 5, 0.04138946533203125),
            (1, 0, 1.0),
        ];
        for (wins, losses, p) in cases {
            let got = sign_test(wins, losses);
            assert!(
                (got - p).abs() < 1e-12,
                "{wins}:{losses} gave {got}, want {p}"
            );
        }
        assert_eq!(sign_test(0, 0), 1.0);
    }

    #[test]
    fn constant_differences_give_a_point_interval_at_that_difference() {
        let a = [0.2, 0.4, 0.6, 0.8];
        let b = [0.3, 0.5, 0.7, 0.9];
        let s = paired_summary(&a, &b, 0.95, 2000, 1);
        assert!((s.mean_diff - 0.1).abs() < 1e-12);
        assert!((s.ci_low - 0.1).abs() < 1e-12 && (s.ci_high - 0.1).abs() < 1e-12);
        assert_eq!((s.wins, s.losses, s.ties), (4, 0, 0));
    }

    #[test]
    fn the_interval_is_seeded_and_brackets_the_mean() {
        let a: Vec<f64> = (0..30).map(|i| (i % 7) as f64 / 7.0).collect();
        let b: Vec<f64> = (0..30).map(|i| ((i * 3) % 5) as f64 / 5.0).collect();
        let s1 = paired_summary(&a, &b, 0.95, 5000, 42);
        let s2 = paired_summary(&a, &b, 0.95, 5000, 42);
        let s3 = paired_summary(&a, &b, 0.95, 5000, 43);
        assert_eq!(s1, s2);
        assert_ne!((s1.ci_low, s1.ci_high), (s3.ci_low, s3.ci_high));
        assert!(s1.ci_low < s1.mean_diff && s1.mean_diff < s1.ci_high);
        // Wider confidence, wider interval.
        let s90 = paired_summary(&a, &b, 0.90, 5000, 42);
        assert!(s90.ci_high - s90.ci_low < s1.ci_high - s1.ci_low);
    }

    /// The bootstrap interval against one worked by hand: two examples with
    /// differences 0 and 1 have resample means 0, 0.5 and 1 with
    /// probabilities 1/4, 1/2, 1/4, so the 50% interval is [0.5, 0.5] and a
    /// 99% interval spans [0, 1] (up to sampling of 20,000 resamples).
    #[test]
    fn bootstrap_interval_matches_the_hand_computed_distribution() {
        let (lo, hi) = bootstrap_interval(&[0.0, 1.0], 0.5, 20_000, 7);
        assert_eq!((lo, hi), (0.5, 0.5));
        let (lo, hi) = bootstrap_interval(&[0.0, 1.0], 0.99, 20_000, 7);
        assert_eq!((lo, hi), (0.0, 1.0));
    }

    #[test]
    fn quantile_interpolates_like_numpy() {
        let xs = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(quantile(&xs, 0.0), 1.0);
        assert_eq!(quantile(&xs, 1.0), 4.0);
        assert!((quantile(&xs, 0.25) - 1.75).abs() < 1e-12);
        assert!((quantile(&xs, 0.5) - 2.5).abs() < 1e-12);
    }
}
