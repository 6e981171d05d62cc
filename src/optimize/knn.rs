//! KNNFewShot (DSPy's `KNNFewShot`): a version that picks, for each input,
//! the `k` train examples nearest to it as demos. The optimizer itself makes
//! no LM calls beyond scoring: it stores the train split in the spec as the
//! pool (`program::knn`), and the validation set scores the result like any
//! other candidate.

use super::fewshot::validate;
use super::session::{Outcome, Session};
use super::Optimizer;
use crate::error::Result;
use crate::eval::EvalExample;
use crate::program::knn::{DemoSelection, KnnSelection, PoolExample, Retriever};
use crate::program::ProgramSpec;
use serde::{Deserialize, Serialize};

/// KNN few-shot settings. DSPy's `KNNFewShot` takes `k` without a default;
/// 4 is the demo count of its BootstrapFewShot, which fits a small model's
/// context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default)]
pub struct KnnFewShot {
    /// Demos picked per input (`max_labeled_demos` in requests).
    #[schema(minimum = 1, maximum = 64)]
    pub k: usize,
    /// `bm25` (over the input text) or `embedding` (the task model's).
    #[schema(inline)]
    pub retriever: Retriever,
}

impl Default for KnnFewShot {
    fn default() -> Self {
        KnnFewShot {
            k: 4,
            retriever: Retriever::Bm25,
        }
    }
}

/// `spec` picking `k` demos per input from `pool` by `retriever`. Its own
/// fixed demos stay (a chain `bootstrap+knn` keeps the bootstrapped ones).
pub fn with_knn(
    spec: &ProgramSpec,
    pool: &[EvalExample],
    k: usize,
    retriever: Retriever,
) -> ProgramSpec {
    let mut out = spec.clone();
    out.demo_selection = Some(DemoSelection {
        knn: KnnSelection {
            k,
            retriever,
            fields: Vec::new(),
            pool: pool
                .iter()
                .map(|ex| {
                    let mut fields = ex.inputs.clone();
                    fields.extend(ex.labels.iter().map(|(k, v)| (k.clone(), v.clone())));
                    PoolExample {
                        example_id: Some(ex.example_id),
                        fields,
                    }
                })
                .collect(),
        },
    });
    out
}

#[async_trait::async_trait]
impl Optimizer for KnnFewShot {
    fn name(&self) -> &'static str {
        "knn"
    }

    async fn compile(&self, session: &Session) -> Result<Outcome> {
        let spec = with_knn(session.base(), session.train(), self.k, self.retriever);
        let origin = format!("knn(k={}, {})", self.k, self.retriever.as_str());
        validate(session, &spec, &origin, 0).await?;
        Ok(session.outcome(session.should_stop()))
    }
}
