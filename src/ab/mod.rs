//! A/B tests between versions of one program: creating a test, routing
//! requests to variants (sticky by key, or random), changing weights,
//! recording outcomes, the status with its statistics, and concluding with an
//! optional alias promotion. The arithmetic lives in [`stats`]; rows are read
//! and written through `crate::store`.

pub mod stats;

use crate::error::{Error, Result};
use crate::store::{
    AbStatus, AbStrategy, AbTestRow, AbVariantRow, NewAbVariant, OutcomeKind, Store,
};
use rand::distributions::{Distribution, WeightedIndex};
use rand::Rng;
use serde::Serialize;
use sha2::{Digest, Sha256};
use std::str::FromStr;

pub use stats::{StatusOptions, StatusReport};

/// A variant as the user names it: a version of the test's program and its
/// routing weight, written `V3=90` (`v3=90` and `3=90` mean the same).
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct VariantWeight {
    /// The canonical name, `V` and the version number.
    pub name: String,
    pub version: i64,
    pub weight: f64,
}

/// Parses a variant name (`V3`, `v3` or `3`) into its version number.
pub fn parse_variant_name(s: &str) -> Result<i64> {
    let digits = s.trim().trim_start_matches(['V', 'v']);
    match digits.parse::<i64>() {
        Ok(v) if v > 0 => Ok(v),
        _ => Err(Error::Invalid(format!(
            "`{s}` is not a variant; expected a version number of the program such as V3"
        ))),
    }
}

impl FromStr for VariantWeight {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let (name, weight) = s.split_once('=').ok_or_else(|| {
            Error::Invalid(format!(
                "`{s}` lacks a weight; expected VERSION=WEIGHT such as V3=90"
            ))
        })?;
        let version = parse_variant_name(name)?;
        let weight: f64 = weight.trim().parse().map_err(|_| {
            Error::Invalid(format!(
                "the weight `{weight}` of `{s}` is not a number; expected a positive number such as V3=90"
            ))
        })?;
        if !(weight.is_finite() && weight > 0.0) {
            return Err(Error::Invalid(format!(
                "the weight of `{s}` must be a positive number, got {weight}"
            )));
        }
        Ok(VariantWeight {
            name: format!("V{version}"),
            version,
            weight,
        })
    }
}

/// What to create: a test of `program` over at least two of its versions.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct CreateRequest {
    pub program: String,
    /// Defaults to `PROGRAM-V3-vs-V4`.
    pub name: Option<String>,
    pub strategy: AbStrategy,
    pub variants: Vec<VariantWeight>,
}

/// A test with its variants and their current weights.
#[derive(Debug, Clone, Serialize)]
pub struct AbTest {
    #[serde(flatten)]
    pub test: AbTestRow,
    pub variants: Vec<AbVariantRow>,
}

impl AbTest {
    /// The variant named `name` (`V3`, `v3` or `3`), or an error listing those that exist.
    pub fn variant(&self, name: &str) -> Result<&AbVariantRow> {
        let version = parse_variant_name(name)?;
        self.variants
            .iter()
            .find(|v| v.version == version)
            .ok_or_else(|| Error::NotFound {
                kind: "variant",
                name: format!(
                    "{name} in A/B test `{}` (its variants are {})",
                    self.test.name,
                    self.variant_names()
                ),
            })
    }

    fn variant_names(&self) -> String {
        self.variants
            .iter()
            .map(|v| v.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    }

    fn ensure_active(&self) -> Result<()> {
        match self.test.status {
            AbStatus::Active => Ok(()),
            AbStatus::Concluded => Err(Error::Invalid(format!(
                "A/B test `{}` is concluded (winner {}); it takes no more routes or outcomes",
                self.test.name,
                self.test.winner.as_deref().unwrap_or("none")
            ))),
        }
    }

    /// The index of the variant a request with `key` goes to: by weighted
    /// rendezvous hashing for a sticky test, by a weighted draw from `rng`
    /// for a random one.
    pub fn choose(&self, key: &str, rng: &mut impl Rng) -> usize {
        let weights = self.variants.iter().map(|v| (v.name.as_str(), v.weight));
        match self.test.strategy {
            AbStrategy::Sticky => rendezvous(&self.test.salt, key, weights),
            AbStrategy::Random => weighted_draw(weights.map(|(_, w)| w), rng),
        }
    }
}

/// Weighted rendezvous (highest random weight) hashing: every variant `i`
/// scores `-w_i / ln(u_i)` with `u_i` uniform in (0, 1) from
/// sha256(salt, key, name), and the highest score wins. A variant wins with
/// probability `w_i / Σw`, the choice depends on nothing but the salt, the key
/// and the weights (so it survives restarts), and a weight change moves only
/// keys that must move: lowering a weight lowers that variant's scores only,
/// so a key moves only off a variant whose weight fell or onto one whose
/// weight rose. Cumulative intervals over one hash would shift keys between
/// unchanged variants too.
pub fn rendezvous<'a>(
    salt: &str,
    key: &str,
    weights: impl IntoIterator<Item = (&'a str, f64)>,
) -> usize {
    let mut best = (0, f64::NEG_INFINITY);
    for (i, (name, weight)) in weights.into_iter().enumerate() {
        let score = -weight / unit_hash(salt, key, name).ln();
        if score > best.1 {
            best = (i, score);
        }
    }
    best.0
}

/// A number uniform in the open interval (0, 1) from sha256 of the salt, key
/// and variant name (NUL-separated, so ("ab", "c") and ("a", "bc") differ).
/// Stable across processes, platforms and Rust versions, unlike std's hasher.
fn unit_hash(salt: &str, key: &str, name: &str) -> f64 {
    let mut h = Sha256::new();
    for part in [salt, key, name] {
        h.update(part.as_bytes());
        h.update([0u8]);
    }
    let digest = h.finalize();
    let mut top = [0u8; 8];
    top.copy_from_slice(&digest[..8]);
    // 53 random bits, offset by half a step: never 0, never 1.
    ((u64::from_be_bytes(top) >> 11) as f64 + 0.5) / (1u64 << 53) as f64
}

/// A weighted draw of an index (the first when the weights are unusable,
/// which the checks at creation and on every weight change rule out).
fn weighted_draw(weights: impl Iterator<Item = f64>, rng: &mut impl Rng) -> usize {
    WeightedIndex::new(weights).map_or(0, |d| d.sample(rng))
}

/// Each variant at most once, every weight a positive finite number.
fn check_weights(weights: &[VariantWeight]) -> Result<()> {
    for (i, v) in weights.iter().enumerate() {
        if weights[..i].iter().any(|o| o.version == v.version) {
            return Err(Error::Invalid(format!(
                "--variant: variant {} is given twice; each version appears once",
                v.name
            )));
        }
        if !(v.weight.is_finite() && v.weight > 0.0) {
            return Err(Error::Invalid(format!(
                "--variant: the weight of {} must be a positive number, got {}",
                v.name, v.weight
            )));
        }
    }
    Ok(())
}

/// Creates a test after checking its variants: at least two, distinct, each
/// an existing version of the program, each with a positive weight.
pub fn create(store: &mut Store, req: &CreateRequest) -> Result<AbTest> {
    if req.variants.len() < 2 {
        return Err(Error::Invalid(format!(
            "--variant: an A/B test needs at least two variants, got {}",
            req.variants.len()
        )));
    }
    check_weights(&req.variants)?;
    let mut variants = Vec::with_capacity(req.variants.len());
    for v in &req.variants {
        let row = store.find_version(&req.program, Some(v.version))?;
        variants.push(NewAbVariant {
            name: v.name.clone(),
            version_id: row.id,
            weight: v.weight,
        });
    }
    let program_id = store.find_version(&req.program, None)?.program_id;
    let name = req.name.clone().unwrap_or_else(|| {
        let names: Vec<&str> = req.variants.iter().map(|v| v.name.as_str()).collect();
        format!("{}-{}", req.program, names.join("-vs-"))
    });
    if name.trim().is_empty() {
        return Err(Error::Invalid("--name: the test's name is empty".into()));
    }
    let salt = format!("{:032x}", rand::random::<u128>());
    let test = store.create_ab_test(&name, program_id, req.strategy, &salt, &variants)?;
    load_rows(store, test)
}

/// A test and its variants by name.
pub fn load(store: &Store, name: &str) -> Result<AbTest> {
    let test = store.ab_test(name)?;
    load_rows(store, test)
}

fn load_rows(store: &Store, test: AbTestRow) -> Result<AbTest> {
    let variants = store.ab_variants(test.id)?;
    Ok(AbTest { test, variants })
}

/// Every test with its variants, newest first.
pub fn list(store: &Store) -> Result<Vec<AbTest>> {
    store
        .ab_tests()?
        .into_iter()
        .map(|t| load_rows(store, t))
        .collect()
}

/// Where one request went.
#[derive(Debug, Clone, Serialize)]
pub struct Routed {
    pub test: String,
    pub key: String,
    pub variant: String,
    pub version: i64,
    pub version_id: i64,
    pub assignment_id: i64,
}

/// Routes each key of a batch and stores one assignment row per key, all in
/// one transaction. Random tests draw from the thread's RNG.
pub fn route(store: &mut Store, test: &str, keys: &[String]) -> Result<Vec<Routed>> {
    route_with(store, test, keys, &mut rand::thread_rng())
}

/// [`route`] with the RNG a random test draws from (seeded in tests).
pub fn route_with(
    store: &mut Store,
    test: &str,
    keys: &[String],
    rng: &mut impl Rng,
) -> Result<Vec<Routed>> {
    let test = load(store, test)?;
    test.ensure_active()?;
    if let Some(bad) = keys.iter().position(|k| k.is_empty()) {
        return Err(Error::Invalid(format!(
            "--key: key #{} is empty; a key names the unit (user, session) being routed",
            bad + 1
        )));
    }
    let chosen: Vec<&AbVariantRow> = keys
        .iter()
        .map(|k| &test.variants[test.choose(k, rng)])
        .collect();
    let rows: Vec<(&str, i64)> = keys
        .iter()
        .zip(&chosen)
        .map(|(k, v)| (k.as_str(), v.id))
        .collect();
    let ids = store.insert_ab_assignments(test.test.id, &rows)?;
    Ok(keys
        .iter()
        .zip(chosen)
        .zip(ids)
        .map(|((key, v), assignment_id)| Routed {
            test: test.test.name.clone(),
            key: key.clone(),
            variant: v.name.clone(),
            version: v.version,
            version_id: v.version_id,
            assignment_id,
        })
        .collect())
}

/// Changes the weights of the named variants (the others keep theirs) and
/// records every new weight in the test's weight history.
pub fn set_weights(store: &mut Store, test: &str, weights: &[VariantWeight]) -> Result<AbTest> {
    let current = load(store, test)?;
    current.ensure_active()?;
    if weights.is_empty() {
        return Err(Error::Invalid(
            "--variant: give at least one new weight, e.g. --variant V3=80".into(),
        ));
    }
    check_weights(weights)?;
    let changes = weights
        .iter()
        .map(|w| Ok((current.variant(&w.name)?.id, w.weight)))
        .collect::<Result<Vec<_>>>()?;
    store.set_ab_weights(current.test.id, &changes)?;
    load(store, test)
}

/// An observed outcome of a routed request.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase", tag = "kind", content = "value")]
pub enum Outcome {
    Score(f64),
    Success,
    Failure,
}

impl Outcome {
    fn kind(self) -> OutcomeKind {
        match self {
            Outcome::Score(_) => OutcomeKind::Score,
            Outcome::Success => OutcomeKind::Success,
            Outcome::Failure => OutcomeKind::Failure,
        }
    }

    fn value(self) -> f64 {
        match self {
            Outcome::Score(x) => x,
            Outcome::Success => 1.0,
            Outcome::Failure => 0.0,
        }
    }
}

/// A stored outcome and the assignment it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct Recorded {
    pub test: String,
    pub key: String,
    pub variant: String,
    pub version: i64,
    pub assignment_id: i64,
    pub outcome_id: i64,
    pub kind: OutcomeKind,
    pub value: f64,
}

/// Records an outcome for the latest assignment of `key`. A test measures
/// one kind of thing: scores and success/failure outcomes are not mixed in
/// one test (their statistics differ).
pub fn record(store: &mut Store, test: &str, key: &str, outcome: Outcome) -> Result<Recorded> {
    let t = load(store, test)?;
    t.ensure_active()?;
    if let Outcome::Score(x) = outcome {
        if !x.is_finite() {
            return Err(Error::Invalid(format!(
                "--score: expected a finite number, got {x}"
            )));
        }
    }
    let (assignment_id, variant_id) = store
        .latest_ab_assignment(t.test.id, key)?
        .ok_or_else(|| {
            Error::Invalid(format!(
                "--key: key `{key}` was never routed in A/B test `{test}`; an outcome belongs to a routed request \
                 (route it with `ab route` or `predict --ab` first)"
            ))
        })?;
    let binary = outcome.kind() != OutcomeKind::Score;
    if let Some(other) = store
        .ab_outcome_kinds(t.test.id)?
        .into_iter()
        .find(|k| (*k != OutcomeKind::Score) != binary)
    {
        return Err(Error::Invalid(format!(
            "A/B test `{test}` records {} outcomes; it cannot take a {} outcome too",
            if other == OutcomeKind::Score {
                "score"
            } else {
                "success/failure"
            },
            outcome.kind()
        )));
    }
    let outcome_id = store.insert_ab_outcome(assignment_id, outcome.kind(), outcome.value())?;
    let v = t
        .variants
        .iter()
        .find(|v| v.id == variant_id)
        .ok_or_else(|| Error::NotFound {
            kind: "variant",
            name: variant_id.to_string(),
        })?;
    Ok(Recorded {
        test: t.test.name.clone(),
        key: key.to_string(),
        variant: v.name.clone(),
        version: v.version,
        assignment_id,
        outcome_id,
        kind: outcome.kind(),
        value: outcome.value(),
    })
}

/// The per-variant statistics of a test and what the stop rule says.
pub fn status(store: &Store, test: &str, opts: &StatusOptions) -> Result<StatusReport> {
    let t = load(store, test)?;
    let requests = store.ab_request_counts(t.test.id)?;
    let outcomes = store.ab_outcomes(t.test.id)?;
    stats::report(t, &requests, &outcomes, opts)
}

/// Concludes a test with `winner`; with `promote`, the program's alias of
/// that name moves to the winner's version (recorded in the alias history
/// with the test as the reason).
pub fn conclude(
    store: &mut Store,
    test: &str,
    winner: &str,
    promote: Option<&str>,
) -> Result<AbTest> {
    let t = load(store, test)?;
    t.ensure_active()?;
    let w = t.variant(winner)?.clone();
    if let Some(alias) = promote {
        crate::registry::validate_alias(alias)?;
    }
    let reason = format!("A/B test `{}` concluded: winner {}", t.test.name, w.name);
    store.conclude_ab_test(&t.test, &w, promote.map(|a| (a, reason.as_str())))?;
    load(store, test)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variant_weights_parse_and_bad_ones_say_what_was_expected() {
        let v: VariantWeight = "v3=90".parse().unwrap();
        assert_eq!((v.name.as_str(), v.version, v.weight), ("V3", 3, 90.0));
        assert_eq!("4=0.5".parse::<VariantWeight>().unwrap().name, "V4");
        let err = |s: &str| s.parse::<VariantWeight>().unwrap_err().to_string();
        assert!(err("V3=0").contains("positive"), "{}", err("V3=0"));
        assert!(err("V3=-1").contains("positive"));
        assert!(err("V3=abc").contains("not a number"));
        assert!(err("V3").contains("VERSION=WEIGHT"));
        assert!(err("X=1").contains("not a variant"));
        assert!(err("V3=inf").contains("positive"));
    }

    #[test]
    fn rendezvous_is_deterministic_and_follows_the_weights() {
        let w = [("V1", 90.0), ("V2", 10.0)];
        let picks: Vec<usize> = (0..20_000)
            .map(|i| rendezvous("salt", &format!("user-{i}"), w))
            .collect();
        let again: Vec<usize> = (0..20_000)
            .map(|i| rendezvous("salt", &format!("user-{i}"), w))
            .collect();
        assert_eq!(picks, again);
        let share = picks.iter().filter(|&&i| i == 0).count() as f64 / 20_000.0;
        assert!((share - 0.9).abs() < 0.01, "{share}");
    }

    #[test]
    fn a_different_salt_routes_keys_independently() {
        let w = [("V1", 1.0), ("V2", 1.0)];
        let same = (0..2000)
            .filter(|i| {
                let k = format!("k{i}");
                rendezvous("a", &k, w) == rendezvous("b", &k, w)
            })
            .count();
        assert!((800..1200).contains(&same), "{same}");
    }

    #[test]
    fn unit_hash_stays_inside_the_open_interval() {
        for i in 0..1000 {
            let u = unit_hash("s", &i.to_string(), "V1");
            assert!(u > 0.0 && u < 1.0);
        }
        // Separators matter: these would collide if parts were concatenated.
        assert_ne!(unit_hash("ab", "c", "V1"), unit_hash("a", "bc", "V1"));
    }

    #[test]
    fn a_weighted_draw_follows_the_weights() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let ones = (0..n)
            .filter(|_| weighted_draw([3.0, 1.0].into_iter(), &mut rng) == 1)
            .count();
        let share = ones as f64 / n as f64;
        assert!((share - 0.25).abs() < 0.015, "{share}");
    }
}
