//! Perturbations of gold labels for `metrics test`: each breaks one thing a
//! skill metric should notice, so its score should drop below gold's.

use super::fields::{DESCRIPTION, KEYWORDS, NAME, SKILL_STYLE, TAXONOMY_PATH};
use serde_json::{Map, Value};

/// The perturbed copies of `labels`, each with what was broken.
pub fn perturb(labels: &Map<String, Value>) -> Vec<(&'static str, Map<String, Value>)> {
    let mut out = Vec::new();
    if let Some(Value::String(p)) = labels.get(TAXONOMY_PATH) {
        let name = p.rsplit('/').next().unwrap_or("");
        let other = if p.starts_with("python/") {
            "rust"
        } else {
            "python"
        };
        let mut wrong_cat = labels.clone();
        wrong_cat.insert(
            TAXONOMY_PATH.into(),
            Value::String(format!("{other}/{name}")),
        );
        out.push(("wrong category", wrong_cat));
    }
    if let Some(Value::String(s)) = labels.get(SKILL_STYLE) {
        let mut style = labels.clone();
        let other = if s == "minimal" {
            "comprehensive"
        } else {
            "minimal"
        };
        style.insert(SKILL_STYLE.into(), Value::String(other.into()));
        out.push(("wrong style", style));
    }
    let mut bad_meta = labels.clone();
    bad_meta.insert(NAME.into(), Value::String("Not_Kebab Name".into()));
    bad_meta.insert(DESCRIPTION.into(), Value::String("A skill.".into()));
    bad_meta.insert(KEYWORDS.into(), serde_json::json!(["One"]));
    out.push(("broken metadata", bad_meta));
    let empty: Map<String, Value> = labels
        .keys()
        .map(|k| (k.clone(), Value::String(String::new())))
        .collect();
    out.push(("empty answer", empty));
    out
}
