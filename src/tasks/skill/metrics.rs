//! The original skill-fleet's metrics for the bundled skill task.

use crate::metrics::{list_of, set_f1, text_of, Metric, MetricResult};
use crate::tasks::skill::schema::is_kebab_case;
use serde_json::{Map, Value};

/// 1.0 for the exact taxonomy path, 0.7 for the right category, else 0.
pub struct TaxonomyAccuracy;

#[async_trait::async_trait]
impl Metric for TaxonomyAccuracy {
    fn name(&self) -> String {
        "taxonomy_accuracy".into()
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let g = text_of(gold, "taxonomy_path").to_lowercase();
        let p = text_of(pred, "taxonomy_path").to_lowercase();
        let cat = |s: &str| s.split('/').next().unwrap_or("").trim().to_string();
        if !g.is_empty() && g == p {
            MetricResult::new(1.0, format!("path `{p}` is exact"))
        } else if !cat(&g).is_empty() && cat(&g) == cat(&p) {
            MetricResult::new(
                0.7,
                format!(
                    "category `{}` is right but path `{p}` should be `{g}`",
                    cat(&p)
                ),
            )
        } else {
            MetricResult::new(
                0.0,
                format!("path `{p}` is in the wrong category; expected `{g}`"),
            )
        }
    }
}

/// Form of the generated metadata, independent of gold: kebab-case name
/// (+0.25), description starting "Use when" (+0.25) of 10–40 words (+0.15),
/// 3–7 keywords (+0.20), all lowercase (+0.15).
pub struct MetadataQuality;

#[async_trait::async_trait]
impl Metric for MetadataQuality {
    fn name(&self) -> String {
        "metadata_quality".into()
    }
    async fn score(&self, _gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let mut score = 0.0;
        let mut notes = Vec::new();
        let name = text_of(pred, "name");
        if is_kebab_case(&name) {
            score += 0.25;
        } else {
            notes.push(format!("name `{name}` is not kebab-case"));
        }
        let desc = text_of(pred, "description");
        if desc.starts_with("Use when") {
            score += 0.25;
        } else {
            notes.push("description does not start with \"Use when\"".to_string());
        }
        let words = desc.split_whitespace().count();
        if (10..=40).contains(&words) {
            score += 0.15;
        } else {
            notes.push(format!("description has {words} words (want 10-40)"));
        }
        let raw_keywords: Vec<String> = match pred.get("keywords") {
            Some(Value::Array(items)) => items
                .iter()
                .map(|v| v.as_str().unwrap_or("").to_string())
                .collect(),
            _ => Vec::new(),
        };
        if (3..=7).contains(&raw_keywords.len()) {
            score += 0.20;
        } else {
            notes.push(format!("{} keywords (want 3-7)", raw_keywords.len()));
        }
        if !raw_keywords.is_empty()
            && raw_keywords
                .iter()
                .all(|k| !k.chars().any(char::is_uppercase))
        {
            score += 0.15;
        } else {
            notes.push("keywords are not all lowercase".to_string());
        }
        let feedback = if notes.is_empty() {
            "metadata is well-formed".to_string()
        } else {
            notes.join("; ")
        };
        MetricResult::new(score, feedback)
    }
}

/// 1 when the skill style matches.
pub struct SkillStyleAlignment;

#[async_trait::async_trait]
impl Metric for SkillStyleAlignment {
    fn name(&self) -> String {
        "skill_style_alignment".into()
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let g = text_of(gold, "skill_style");
        let p = text_of(pred, "skill_style");
        if g == p {
            MetricResult::new(1.0, format!("style `{p}` is right"))
        } else {
            MetricResult::new(0.0, format!("style `{p}` should be `{g}`"))
        }
    }
}

/// 1 for the exact name, else F1 of its hyphen-separated words.
pub struct NameMatch;

#[async_trait::async_trait]
impl Metric for NameMatch {
    fn name(&self) -> String {
        "name_match".into()
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let g = text_of(gold, "name").to_lowercase();
        let p = text_of(pred, "name").to_lowercase();
        if g == p {
            return MetricResult::new(1.0, format!("name `{p}` is exact"));
        }
        let words = |s: &str| {
            s.split('-')
                .map(str::to_string)
                .filter(|w| !w.is_empty())
                .collect::<Vec<_>>()
        };
        let s = set_f1(&words(&g), &words(&p));
        MetricResult::new(s, format!("name `{p}` should be `{g}` (word F1 {s:.2})"))
    }
}

/// F1 of keywords against gold keywords.
pub struct KeywordsF1;

#[async_trait::async_trait]
impl Metric for KeywordsF1 {
    fn name(&self) -> String {
        "keywords_f1".into()
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let (g, p) = (list_of(gold, "keywords"), list_of(pred, "keywords"));
        let s = set_f1(&g, &p);
        MetricResult::new(s, format!("keywords F1 {s:.2} against {g:?}"))
    }
}
