//! Jobs: the things a user asks for — evaluate, optimize, predict, score
//! predictions made elsewhere, test a metric, synthesize examples — each a
//! typed request in and a report out, with progress through a callback. The
//! CLI and the HTTP server (`crate::server`) only translate their arguments
//! into these requests.
//!
//! Every job works on a [`Context`]: the configuration and the process's one
//! store [`Writer`] (all writes, committed in groups); reads that do not
//! depend on the job's own writes use read-only connections.

pub mod compare;
pub mod eval;
pub mod metrics;
pub mod optimize;
pub mod predict;
mod run;
pub mod synthesize;

pub use compare::{run_compare, CompareRequest};
pub use eval::{run_eval, EnsembleRequest, EvalReport, EvalRequest};
pub use metrics::{score_predictions, test_metric, MetricTestReport, ScoredPredictions};
pub use optimize::{
    recommend, run_optimization, OptimizeParams, OptimizeReport, OptimizeRequest, RunHooks,
};
pub use predict::{predict, AbSelection, PredictReport, PredictRequest};
pub use run::ActiveRun;
pub use synthesize::{run_synthesize, SynthesizeReport, SynthesizeRequest};

use crate::config::Config;
use crate::error::Result;
use crate::eval::EvalExample;
use crate::lm::budget::Budget;
use crate::lm::cache::LmCache;
use crate::lm::client::{LmOptions, Lms};
use crate::program::ProgramSpec;
use crate::store::{ExampleRow, PooledReader, Writer};
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// What every job needs: the configuration and the store writer.
#[derive(Clone)]
pub struct Context {
    pub config: Config,
    pub writer: Writer,
    /// The LM response cache every job of this process shares, built on
    /// first use (with the writer's database as its persistent tier).
    lm_cache: Arc<OnceLock<Arc<LmCache>>>,
}

impl Context {
    /// Opens (creating and migrating) the database at `db` and starts its writer.
    pub fn open(db: &Path, config: Config) -> Result<Self> {
        Ok(Context {
            config,
            writer: Writer::start(db)?,
            lm_cache: Arc::default(),
        })
    }

    /// A read-only connection to the database, from the writer's pool.
    pub fn reader(&self) -> Result<PooledReader> {
        self.writer.readers().get()
    }

    /// The process's shared LM cache.
    fn lm_cache(&self) -> Result<Arc<LmCache>> {
        if let Some(cache) = self.lm_cache.get() {
            return Ok(cache.clone());
        }
        let cache = Arc::new(LmCache::with_db(
            self.config.lm.cache.memory_entries,
            &self.writer,
        )?);
        // A racing first use may have set it meanwhile: keep the one stored.
        Ok(self.lm_cache.get_or_init(|| cache).clone())
    }

    /// The LM clients of a job: cached and traced through the writer unless
    /// `no_cache`, charging `budget`.
    pub fn lms(&self, no_cache: bool, budget: Arc<Budget>) -> Result<Arc<Lms>> {
        Ok(Arc::new(Lms::new(
            self.config.clone(),
            LmOptions {
                writer: Some(self.writer.clone()),
                no_cache,
                shared_cache: Some(self.lm_cache()?),
            },
            budget,
        )?))
    }
}

/// The metric a job uses: the one asked for, else the program's own, else
/// the bundled task's default.
pub fn metric_name(asked: Option<&str>, spec: &ProgramSpec) -> String {
    asked
        .map(str::to_string)
        .or_else(|| spec.metric.clone())
        .unwrap_or_else(|| crate::tasks::skill::DEFAULT_METRIC.to_string())
}

/// The rows of `all` with ids `ids`, in that order.
pub fn rows_by_ids(all: &[ExampleRow], ids: &[i64]) -> Vec<ExampleRow> {
    let by_id: HashMap<i64, &ExampleRow> = all.iter().map(|e| (e.id, e)).collect();
    ids.iter()
        .filter_map(|id| by_id.get(id).map(|e| (*e).clone()))
        .collect()
}

/// `rows` split into the program's inputs and labels.
pub fn eval_examples(spec: &ProgramSpec, rows: &[ExampleRow]) -> Vec<EvalExample> {
    rows.iter()
        .map(|e| {
            let (inputs, labels) = spec.example_io(&e.fields);
            EvalExample {
                example_id: e.id,
                inputs,
                labels,
            }
        })
        .collect()
}
