//! Trainset statistics: distribution, readiness and diversity warnings.

use super::Example;
use std::collections::BTreeMap;

/// Counts and warnings printed by `skill-fleet trainset stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TrainsetStats {
    pub n_examples: usize,
    pub by_style: BTreeMap<String, usize>,
    pub by_category: BTreeMap<String, usize>,
    pub by_source: BTreeMap<String, usize>,
    /// How usable the trainset is for optimization, by size.
    pub readiness: String,
    pub warnings: Vec<String>,
}

/// Computes stats; `categories` are the taxonomy's, to warn about missing ones.
pub fn stats(examples: &[Example], categories: &[String]) -> TrainsetStats {
    let mut by_style = BTreeMap::new();
    let mut by_category = BTreeMap::new();
    let mut by_source = BTreeMap::new();
    for ex in examples {
        *by_style
            .entry(ex.style().unwrap_or_else(|| "-".into()))
            .or_insert(0) += 1;
        *by_category
            .entry(ex.category().unwrap_or_else(|| "-".into()))
            .or_insert(0) += 1;
        *by_source
            .entry(ex.source().unwrap_or_else(|| "-".into()))
            .or_insert(0) += 1;
    }
    let n = examples.len();
    let readiness = match n {
        0..=19 => "too small: fewer than 20 examples; optimizers will overfit",
        20..=49 => "minimal: fewer than 50 examples; enough for labeled/bootstrap few-shot",
        50..=99 => "usable: fewer than 100 examples; MIPROv2/GEPA work with small validation sets",
        _ => "ready: 100 or more examples",
    }
    .to_string();
    let mut warnings = Vec::new();
    let skill = examples.iter().any(|e| e.style().is_some());
    if skill {
        let missing: Vec<&str> = categories
            .iter()
            .filter(|c| !by_category.contains_key(*c))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            warnings.push(format!(
                "categories without examples: {}",
                missing.join(", ")
            ));
        }
        for (cat, count) in &by_category {
            if *count < 3 {
                warnings.push(format!(
                    "category `{cat}` has only {count} example(s); aim for 3 or more"
                ));
            }
        }
        for style in crate::tasks::skill::schema::SKILL_STYLES {
            let count = by_style.get(style).copied().unwrap_or(0);
            if n > 0 && (count as f64) < 0.1 * n as f64 {
                warnings.push(format!(
                    "style `{style}` is {count} of {n} examples (under 10%)"
                ));
            }
        }
        if let Some((style, count)) = by_style.iter().max_by_key(|(_, c)| **c) {
            if n > 0 && (*count as f64) > 0.7 * n as f64 {
                warnings.push(format!(
                    "style `{style}` dominates with {count} of {n} examples (over 70%)"
                ));
            }
        }
    }
    if by_source.len() == 1 && n >= 20 {
        warnings.push("all examples come from one source; mix sources for diversity".into());
    }
    TrainsetStats {
        n_examples: n,
        by_style,
        by_category,
        by_source,
        readiness,
        warnings,
    }
}
