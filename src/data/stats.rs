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
    /// Coverage gaps of a skill trainset and how many examples close each.
    pub gaps: Vec<Gap>,
}

/// Categories the stats call thin: fewer examples than this.
pub const MIN_PER_CATEGORY: usize = 3;

/// A category or style with fewer examples than its target.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Gap {
    /// `category` or `style`.
    pub kind: &'static str,
    pub name: String,
    pub have: usize,
    /// [`MIN_PER_CATEGORY`] for a category; for a style, its even share of
    /// the current total (`ceil(n / styles)`).
    pub target: usize,
    /// Examples to add: `target - have`.
    pub add: usize,
    /// What to do, e.g. "add 2 examples of category `devops`".
    pub suggestion: String,
}

impl Gap {
    fn new(kind: &'static str, name: &str, have: usize, target: usize) -> Gap {
        let add = target - have;
        Gap {
            kind,
            name: name.to_string(),
            have,
            target,
            add,
            suggestion: format!(
                "add {add} example{} of {kind} `{name}` (has {have}, target {target})",
                if add == 1 { "" } else { "s" }
            ),
        }
    }
}

/// Taxonomy categories with fewer than `min_per_category` examples, then
/// styles under half their even share; each with the examples that close it.
pub fn gaps(
    by_category: &BTreeMap<String, usize>,
    by_style: &BTreeMap<String, usize>,
    categories: &[String],
    min_per_category: usize,
) -> Vec<Gap> {
    let mut out = Vec::new();
    for cat in categories {
        let have = by_category.get(cat).copied().unwrap_or(0);
        if have < min_per_category {
            out.push(Gap::new("category", cat, have, min_per_category));
        }
    }
    let styles = crate::tasks::skill::schema::SKILL_STYLES;
    let n: usize = by_style.values().sum();
    let even = n.div_ceil(styles.len());
    for style in styles {
        let have = by_style.get(style).copied().unwrap_or(0);
        if n > 0 && 2 * have < even {
            out.push(Gap::new("style", style, have, even));
        }
    }
    out
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
    let gaps = if skill {
        gaps(&by_category, &by_style, categories, MIN_PER_CATEGORY)
    } else {
        Vec::new()
    };
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
            if *count < MIN_PER_CATEGORY {
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
        gaps,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts(pairs: &[(&str, usize)]) -> BTreeMap<String, usize> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    #[test]
    fn thin_categories_and_styles_under_half_their_even_share_are_gaps_with_counts_to_add() {
        let cats = counts(&[("python", 5), ("rust", 1)]);
        let styles = counts(&[("comprehensive", 10), ("navigation_hub", 1), ("minimal", 3)]);
        let taxonomy = vec!["python".to_string(), "rust".into(), "devops".into()];
        let g = gaps(&cats, &styles, &taxonomy, 3);
        let got: Vec<(&str, &str, usize)> =
            g.iter().map(|g| (g.kind, g.name.as_str(), g.add)).collect();
        // 14 examples, even share ceil(14/3) = 5: navigation_hub (1 < 2.5) is
        // a gap, minimal (3 >= 2.5) is not.
        assert_eq!(
            got,
            [
                ("category", "rust", 2),
                ("category", "devops", 3),
                ("style", "navigation_hub", 4)
            ]
        );
        assert_eq!(
            g[1].suggestion,
            "add 3 examples of category `devops` (has 0, target 3)"
        );
    }
}
