//! Seeded, stratified train/val/test splits.

use super::Example;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use std::collections::BTreeMap;

/// A part of a split.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    Train,
    Val,
    Test,
}

impl Part {
    /// Name stored in `split_assignments.part`.
    pub fn as_str(self) -> &'static str {
        match self {
            Part::Train => "train",
            Part::Val => "val",
            Part::Test => "test",
        }
    }

    /// Parses a stored or user-given part name.
    pub fn parse(s: &str) -> Option<Part> {
        match s {
            "train" => Some(Part::Train),
            "val" | "dev" | "validation" => Some(Part::Val),
            "test" => Some(Part::Test),
            _ => None,
        }
    }

    /// Parses a user's `train|val|test|all` choice: `Ok(None)` for `all`
    /// (every example, no split part); `Err(())` for anything else, which
    /// the caller reports with the name of its field or flag.
    #[allow(clippy::result_unit_err)]
    pub fn parse_or_all(s: &str) -> Result<Option<Part>, ()> {
        match s {
            "all" => Ok(None),
            s => Part::parse(s).map(Some).ok_or(()),
        }
    }
}

/// Fractions of train and val; test gets the rest.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SplitFractions {
    pub train: f64,
    pub val: f64,
}

impl Default for SplitFractions {
    /// 40/30/30: optimizers need a validation set as large as the test set to
    /// tell candidates apart, and demos need only a few training examples.
    fn default() -> Self {
        SplitFractions {
            train: 0.4,
            val: 0.3,
        }
    }
}

impl SplitFractions {
    /// Checks the fractions leave a non-negative test share.
    pub fn validate(&self) -> crate::Result<()> {
        let ok = (0.0..=1.0).contains(&self.train)
            && (0.0..=1.0).contains(&self.val)
            && self.train + self.val <= 1.0 + 1e-9
            && self.train > 0.0;
        if ok {
            Ok(())
        } else {
            Err(crate::Error::Invalid(format!(
                "split fractions train={} val={}: expected train > 0, val >= 0 and train + val <= 1",
                self.train, self.val
            )))
        }
    }

    fn targets(&self) -> [(Part, f64); 3] {
        [
            (Part::Train, self.train),
            (Part::Val, self.val),
            (Part::Test, (1.0 - self.train - self.val).max(0.0)),
        ]
    }
}

/// Assigns every example to a part, stratified by (style, category).
///
/// Examples are grouped by stratum, each group is shuffled with the seed, and
/// the groups are laid end to end; walking that sequence, each example goes to
/// the part whose share is furthest behind its target. Every stratum is thus
/// spread over the parts in proportion, and the same seed gives the same split
/// whatever the machine.
pub fn stratified_split(examples: &[Example], fractions: SplitFractions, seed: u64) -> Vec<Part> {
    let mut strata: BTreeMap<(String, String), Vec<usize>> = BTreeMap::new();
    for (i, ex) in examples.iter().enumerate() {
        let key = (
            ex.style().unwrap_or_default(),
            ex.category().unwrap_or_default(),
        );
        strata.entry(key).or_default().push(i);
    }
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut order = Vec::with_capacity(examples.len());
    for members in strata.values_mut() {
        members.shuffle(&mut rng);
        order.extend(members.iter().copied());
    }
    let targets = fractions.targets();
    let mut counts = [0usize; 3];
    let mut parts = vec![Part::Train; examples.len()];
    for (n, &i) in order.iter().enumerate() {
        let seen = (n + 1) as f64;
        let (best, _) = targets
            .iter()
            .enumerate()
            .map(|(k, (_, frac))| (k, seen * frac - counts[k] as f64))
            .fold(
                (0, f64::MIN),
                |acc, x| if x.1 > acc.1 + 1e-12 { x } else { acc },
            );
        counts[best] += 1;
        parts[i] = targets[best].0;
    }
    parts
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ex(i: usize, style: &str, cat: &str) -> Example {
        let v =
            json!({"expected_skill_style": style, "expected_taxonomy_path": format!("{cat}/n{i}")});
        Example {
            index: i,
            line: None,
            fields: v.as_object().cloned().unwrap_or_default(),
        }
    }

    #[test]
    fn proportions_and_reproducibility() {
        let examples: Vec<Example> = (0..100)
            .map(|i| {
                ex(
                    i,
                    ["comprehensive", "minimal"][i % 2],
                    ["rust", "web", "ml"][i % 3],
                )
            })
            .collect();
        let a = stratified_split(&examples, SplitFractions::default(), 7);
        let b = stratified_split(&examples, SplitFractions::default(), 7);
        let c = stratified_split(&examples, SplitFractions::default(), 8);
        assert_eq!(a, b);
        assert_ne!(a, c);
        let n = |p| a.iter().filter(|&&x| x == p).count();
        assert_eq!((n(Part::Train), n(Part::Val), n(Part::Test)), (40, 30, 30));
        // Each stratum (style, category) of ~16 examples lands in every part.
        for style in ["comprehensive", "minimal"] {
            for cat in ["rust", "web", "ml"] {
                for part in [Part::Train, Part::Val, Part::Test] {
                    assert!(examples.iter().zip(&a).any(|(e, p)| {
                        e.style().as_deref() == Some(style)
                            && e.category().as_deref() == Some(cat)
                            && *p == part
                    }));
                }
            }
        }
    }
}
