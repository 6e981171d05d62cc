//! Optimizers that improve a program's held-out score, behind one
//! [`Optimizer`] trait: LabeledFewShot, BootstrapFewShot, random search,
//! KNN few-shot, MIPROv2 and GEPA. Each is a struct owning its settings (with DSPy's
//! defaults); [`OptimizerConfig`] is the tagged, serde-able choice of one,
//! stored with a run so that it can resume. All of them work through a
//! [`Session`], which stores every candidate and score as it happens.
//!
//! Adding an optimizer: a struct implementing [`Optimizer`], a variant of
//! [`OptimizerConfig`], and its name in [`OptimizerConfig::parse`].

pub mod fewshot;
pub mod gepa;
pub mod knn;
pub mod mipro;
pub mod pareto;
pub mod proposers;
pub mod session;
pub mod tpe;

pub use fewshot::{BootstrapFewShot, FewShotSettings, LabeledFewShot, RandomSearch};
pub use gepa::Gepa;
pub use knn::KnnFewShot;
pub use mipro::{Auto, Miprov2};
pub use session::{Best, Outcome, Session, SessionBuilder, StopReason};

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};

/// An optimization strategy: compiles the session's base program into the
/// best candidate it can find (DSPy's `Teleprompter.compile`).
#[async_trait::async_trait]
pub trait Optimizer: Send + Sync {
    /// The stored name (`runs.optimizer`).
    fn name(&self) -> &'static str;

    /// Searches for a better program. The session tracks the best candidate
    /// on validation; the returned outcome is that best and why the search
    /// stopped early, if it did.
    async fn compile(&self, session: &Session) -> Result<Outcome>;
}

/// One optimizer with its settings; `{"kind": "miprov2", ...settings}` in JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum OptimizerConfig {
    Labeled(LabeledFewShot),
    Bootstrap(BootstrapFewShot),
    RandomSearch(RandomSearch),
    Miprov2(Miprov2),
    Gepa(Gepa),
    Knn(KnnFewShot),
}

/// One optimizer described for API clients (`GET /api/v1/optimization/optimizers`).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct OptimizerInfo {
    /// The name to start it with.
    pub name: String,
    pub description: String,
    /// JSON schema of its settings: each parameter's type, range and meaning.
    #[schema(value_type = Object)]
    pub parameters: serde_json::Value,
    /// Its default settings.
    #[schema(value_type = Object)]
    pub defaults: serde_json::Value,
}

/// Settings given on the command line or in an API request, applied over an
/// optimizer's defaults. A setting the chosen optimizer does not have is an
/// error, never silently ignored.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Overrides {
    pub auto: Option<Auto>,
    pub max_bootstrapped_demos: Option<usize>,
    pub max_labeled_demos: Option<usize>,
    pub metric_threshold: Option<f64>,
    pub num_candidates: Option<usize>,
    pub num_trials: Option<usize>,
    pub max_metric_calls: Option<usize>,
    /// KNN's retriever (`bm25` or `embedding`).
    pub retriever: Option<crate::program::knn::Retriever>,
}

impl OptimizerConfig {
    /// Every optimizer name with a one-line description.
    pub const ALL: [(&'static str, &'static str); 6] = [
        (
            "labeled",
            "k labeled demos sampled from train; no LM calls to optimize",
        ),
        (
            "bootstrap",
            "teacher traces that pass the metric become demos (DSPy BootstrapFewShot)",
        ),
        (
            "random-search",
            "zero-shot, labeled and seeded bootstrapped demo sets; best on val wins",
        ),
        (
            "knn",
            "per input, the k nearest train examples as demos (DSPy KNNFewShot); bm25 or embeddings",
        ),
        (
            "miprov2",
            "instruction proposals x demo sets searched with TPE (DSPy MIPROv2)",
        ),
        (
            "gepa",
            "reflective instruction evolution on a per-example Pareto frontier (GEPA)",
        ),
    ];

    /// The optimizer called `name` (CLI/API spelling) with its defaults.
    pub fn parse(name: &str) -> Result<Self> {
        Ok(match name {
            "labeled" | "labeled-fewshot" => Self::Labeled(LabeledFewShot::default()),
            "bootstrap" | "bootstrap-fewshot" => Self::Bootstrap(BootstrapFewShot::default()),
            "random-search" | "random_search" => Self::RandomSearch(RandomSearch::default()),
            "miprov2" | "mipro" => Self::Miprov2(Miprov2::default()),
            "gepa" => Self::Gepa(Gepa::default()),
            "knn" | "knn-fewshot" => Self::Knn(KnnFewShot::default()),
            other => {
                return Err(Error::Invalid(format!(
                "optimizer `{other}`; expected labeled, bootstrap, random-search, knn, miprov2 or gepa"
            )))
            }
        })
    }

    /// The optimizer called `name` with `overrides` applied over its
    /// defaults: what a command line or an API request asks for.
    pub fn with_overrides(name: &str, overrides: &Overrides) -> Result<Self> {
        let mut config = Self::parse(name)?;
        config.apply(overrides)?;
        Ok(config)
    }

    /// Every optimizer's settings as data: types, ranges and descriptions
    /// from the settings structs' JSON schemas, defaults from their
    /// `Default`, so the API's description cannot drift from the code.
    pub fn describe_all() -> Result<Vec<OptimizerInfo>> {
        use utoipa::PartialSchema;
        Self::ALL
            .iter()
            .map(|(name, description)| {
                let config = Self::parse(name)?;
                let schema = match &config {
                    Self::Labeled(_) => LabeledFewShot::schema(),
                    Self::Bootstrap(_) => BootstrapFewShot::schema(),
                    Self::RandomSearch(_) => RandomSearch::schema(),
                    Self::Miprov2(_) => Miprov2::schema(),
                    Self::Gepa(_) => Gepa::schema(),
                    Self::Knn(_) => KnnFewShot::schema(),
                };
                let mut defaults = serde_json::to_value(&config)?;
                if let Some(map) = defaults.as_object_mut() {
                    map.remove("kind");
                }
                Ok(OptimizerInfo {
                    name: name.to_string(),
                    description: description.to_string(),
                    parameters: serde_json::to_value(schema)?,
                    defaults,
                })
            })
            .collect()
    }

    /// The optimizer as a trait object.
    pub fn optimizer(&self) -> &dyn Optimizer {
        match self {
            Self::Labeled(o) => o,
            Self::Bootstrap(o) => o,
            Self::RandomSearch(o) => o,
            Self::Miprov2(o) => o,
            Self::Gepa(o) => o,
            Self::Knn(o) => o,
        }
    }

    /// The stored name.
    pub fn name(&self) -> &'static str {
        self.optimizer().name()
    }

    /// Applies `o` over these settings; a setting this optimizer lacks is an
    /// error naming it and the optimizers that have it.
    pub fn apply(&mut self, o: &Overrides) -> Result<()> {
        let name = self.name();
        let refuse = |flag: &str, has: &str| -> Result<()> {
            Err(Error::Invalid(format!(
                "{flag} does not apply to the `{name}` optimizer; it applies to {has}"
            )))
        };
        let fewshot = match self {
            Self::Labeled(l) => {
                if let Some(k) = o.max_labeled_demos {
                    l.k = k;
                }
                None
            }
            Self::Bootstrap(b) => Some(&mut b.fewshot),
            Self::RandomSearch(r) => {
                if let Some(n) = o.num_candidates {
                    r.num_candidates = n;
                }
                Some(&mut r.fewshot)
            }
            Self::Miprov2(m) => {
                if let Some(a) = o.auto {
                    m.auto = a;
                }
                if o.num_trials.is_some() {
                    m.num_trials = o.num_trials;
                }
                Some(&mut m.fewshot)
            }
            Self::Gepa(g) => {
                if let Some(a) = o.auto {
                    g.auto = a;
                }
                if o.max_metric_calls.is_some() {
                    g.max_metric_calls = o.max_metric_calls;
                }
                None
            }
            Self::Knn(k) => {
                if let Some(n) = o.max_labeled_demos {
                    if n == 0 {
                        return Err(Error::Invalid(
                            "--max-labeled-demos 0: KNN needs at least one demo per input".into(),
                        ));
                    }
                    k.k = n;
                }
                if let Some(r) = o.retriever {
                    k.retriever = r;
                }
                None
            }
        };
        match fewshot {
            Some(f) => {
                if let Some(n) = o.max_bootstrapped_demos {
                    f.max_bootstrapped_demos = n;
                }
                if let Some(n) = o.max_labeled_demos {
                    f.max_labeled_demos = n;
                }
                if let Some(t) = o.metric_threshold {
                    if !(0.0..=1.0).contains(&t) {
                        return Err(Error::Invalid(format!(
                            "--metric-threshold {t}: expected a score between 0 and 1"
                        )));
                    }
                    f.metric_threshold = t;
                }
            }
            None => {
                let fewshot_optimizers = "bootstrap, random-search and miprov2";
                if o.max_bootstrapped_demos.is_some() {
                    refuse("--max-bootstrapped-demos", fewshot_optimizers)?;
                }
                if o.metric_threshold.is_some() {
                    refuse("--metric-threshold", fewshot_optimizers)?;
                }
                if o.max_labeled_demos.is_some() && !matches!(self, Self::Labeled(_) | Self::Knn(_))
                {
                    refuse(
                        "--max-labeled-demos",
                        "labeled, bootstrap, random-search, knn and miprov2",
                    )?;
                }
            }
        }
        if o.num_candidates.is_some() && !matches!(self, Self::RandomSearch(_)) {
            refuse("--num-candidates", "random-search")?;
        }
        if o.num_trials.is_some() && !matches!(self, Self::Miprov2(_)) {
            refuse("--num-trials", "miprov2")?;
        }
        if o.max_metric_calls.is_some() && !matches!(self, Self::Gepa(_)) {
            refuse("--max-metric-calls", "gepa")?;
        }
        if o.retriever.is_some() && !matches!(self, Self::Knn(_)) {
            refuse("--retriever", "knn")?;
        }
        if o.auto.is_some() && !matches!(self, Self::Miprov2(_) | Self::Gepa(_)) {
            refuse("--auto", "miprov2 and gepa")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `--max-labeled-demos 16` reaches MIPROv2 (its default is 4), and
    /// `--metric-threshold` alone is applied: the bug where MIPROv2 only took
    /// few-shot settings that differed from BootstrapFewShot's defaults.
    #[test]
    fn miprov2_takes_every_fewshot_setting_given() {
        let mut c = OptimizerConfig::parse("miprov2").unwrap();
        c.apply(&Overrides {
            max_labeled_demos: Some(16),
            ..Default::default()
        })
        .unwrap();
        let OptimizerConfig::Miprov2(m) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(m.fewshot.max_labeled_demos, 16);
        assert_eq!(m.fewshot.max_bootstrapped_demos, 4);
        let mut c = OptimizerConfig::parse("miprov2").unwrap();
        c.apply(&Overrides {
            metric_threshold: Some(0.5),
            ..Default::default()
        })
        .unwrap();
        let OptimizerConfig::Miprov2(m) = &c else {
            panic!("{c:?}")
        };
        assert_eq!(m.fewshot.metric_threshold, 0.5);
        assert_eq!(m.fewshot.max_labeled_demos, 4);
    }

    #[test]
    fn a_setting_the_optimizer_lacks_is_refused() {
        let mut c = OptimizerConfig::parse("bootstrap").unwrap();
        let err = c
            .apply(&Overrides {
                num_trials: Some(3),
                ..Default::default()
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "--num-trials does not apply to the `bootstrap` optimizer; it applies to miprov2"
        );
    }

    /// KNN's settings: k from `--max-labeled-demos`, the retriever from
    /// `--retriever` (refused elsewhere), both described for the API.
    #[test]
    fn knn_takes_k_and_retriever_and_describes_them() {
        use crate::program::knn::Retriever;
        let c = OptimizerConfig::with_overrides(
            "knn",
            &Overrides {
                max_labeled_demos: Some(3),
                retriever: Some(Retriever::Embedding),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(
            c,
            OptimizerConfig::Knn(KnnFewShot {
                k: 3,
                retriever: Retriever::Embedding
            })
        );
        let err = OptimizerConfig::with_overrides(
            "bootstrap",
            &Overrides {
                retriever: Some(Retriever::Bm25),
                ..Default::default()
            },
        )
        .unwrap_err();
        assert!(err.to_string().contains("--retriever"), "{err}");
        let all = OptimizerConfig::describe_all().unwrap();
        let knn = all.iter().find(|o| o.name == "knn").unwrap();
        assert_eq!(
            knn.defaults,
            serde_json::json!({"k": 4, "retriever": "bm25"})
        );
        // An enum whose variants have doc comments is `oneOf` one-value
        // enums (as `auto` is); the dashboard reads both forms.
        let retriever = &knn.parameters["properties"]["retriever"];
        let values: Vec<&serde_json::Value> = match retriever["enum"].as_array() {
            Some(v) => v.iter().collect(),
            None => retriever["oneOf"]
                .as_array()
                .into_iter()
                .flatten()
                .flat_map(|o| o["enum"].as_array().into_iter().flatten())
                .collect(),
        };
        assert_eq!(values, ["bm25", "embedding"], "{retriever}");
    }

    /// The stored form is tagged by kind and reads back equal.
    #[test]
    fn configs_round_trip_through_json_with_their_kind() {
        for (name, _) in OptimizerConfig::ALL {
            let c = OptimizerConfig::parse(name).unwrap();
            let json = serde_json::to_value(&c).unwrap();
            assert_eq!(json["kind"], name);
            let back: OptimizerConfig = serde_json::from_value(json).unwrap();
            assert_eq!(back, c);
            assert_eq!(c.name(), name);
        }
    }
}
