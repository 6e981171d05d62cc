//! The bundled skill task (`config/programs/skill_understanding.yaml`): a
//! request to create an agent skill in, its taxonomy placement and metadata
//! out. Its trainset schema ([`schema`]), its metrics and their default
//! composite, the label perturbations of `metrics test`, the example
//! generation of `trainset expand` and `trainset synthesize`, and its field
//! names live here; the generic modules call in through the functions below.

pub mod expand;
pub mod metrics;
pub mod perturb;
pub mod schema;
pub mod synthesis_prompts;
pub mod synthesize;

use crate::metrics::{Metric, MetricDef, WeightedMetric};
use metrics::{KeywordsF1, MetadataQuality, NameMatch, SkillStyleAlignment, TaxonomyAccuracy};
use std::collections::BTreeMap;
use std::sync::Arc;

/// The metric jobs use when neither the request nor the program names one.
pub const DEFAULT_METRIC: &str = "skill_comprehensive";

/// The task's built-in metrics, by name.
pub const METRICS: [&str; 5] = [
    "taxonomy_accuracy",
    "metadata_quality",
    "skill_style_alignment",
    "name_match",
    "keywords_f1",
];

/// The output fields the task's metrics read.
pub mod fields {
    pub const TAXONOMY_PATH: &str = "taxonomy_path";
    pub const NAME: &str = "name";
    pub const SKILL_STYLE: &str = "skill_style";
    pub const KEYWORDS: &str = "keywords";
    pub const DESCRIPTION: &str = "description";
    pub const SUBDIRECTORIES: &str = "subdirectories";
}

/// The built-in metric called `name`, if it is one of the task's.
pub fn metric(name: &str) -> Option<Arc<dyn Metric>> {
    Some(match name {
        "taxonomy_accuracy" => Arc::new(TaxonomyAccuracy),
        "metadata_quality" => Arc::new(MetadataQuality),
        "skill_style_alignment" => Arc::new(SkillStyleAlignment),
        "name_match" => Arc::new(NameMatch),
        "keywords_f1" => Arc::new(KeywordsF1),
        _ => return None,
    })
}

/// Composite metrics that exist without any config: `skill_comprehensive`,
/// 0.4 taxonomy + 0.3 metadata + 0.3 style.
pub fn metric_definitions() -> BTreeMap<String, MetricDef> {
    let part = |metric: &str, weight: f64| WeightedMetric {
        metric: metric.into(),
        weight,
    };
    BTreeMap::from([(
        DEFAULT_METRIC.to_string(),
        MetricDef::Composite(vec![
            part("taxonomy_accuracy", 0.4),
            part("metadata_quality", 0.3),
            part("skill_style_alignment", 0.3),
        ]),
    )])
}
