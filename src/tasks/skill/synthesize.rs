//! `trainset synthesize`, the parts that need no language model: its settings
//! (`synthesize:` in the config), which category and style each request aims
//! at (spread over the gaps `trainset stats` reports), which examples a
//! request is shown, and the judging of an answer: parsed, validated like an
//! import, and checked against the known examples for near-duplicates. The
//! run itself (LM calls, retries, the run row) is `jobs::synthesize`.

use super::schema::SKILL_STYLES;
use super::synthesis_prompts::{parse_answer, Target};
use crate::config::Taxonomy;
use crate::data::similar::SimilarityIndex;
use crate::data::{validate, Example, Schema};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// An example's fields.
type Fields = Map<String, Value>;

/// How synthesis asks and judges (`synthesize:` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SynthesizeSettings {
    /// A task sharing at least this fraction of its words (token-set Jaccard)
    /// with a known example's is a near-duplicate.
    pub near_duplicate_similarity: f64,
    /// Rounds of requests: the first asks for `--n`, each further one for
    /// the examples still missing.
    pub max_rounds: usize,
    /// Existing examples shown in each request.
    pub demos: usize,
    /// Tokens the model may write per answer (one record is about 100).
    pub max_tokens: u32,
    /// Names of the target category listed as taken, at most.
    pub max_taken_names: usize,
}

impl Default for SynthesizeSettings {
    fn default() -> Self {
        SynthesizeSettings {
            near_duplicate_similarity: 0.6,
            max_rounds: 3,
            demos: 3,
            max_tokens: 200,
            max_taken_names: 12,
        }
    }
}

/// Examples per category and per style, kept up to date as examples are
/// accepted so that later requests aim at what is still thin.
#[derive(Debug, Clone, Default)]
pub struct Coverage {
    pub by_category: BTreeMap<String, usize>,
    pub by_style: BTreeMap<String, usize>,
}

impl Coverage {
    /// The counts of `examples`.
    pub fn of(examples: &[Map<String, Value>]) -> Self {
        let mut c = Coverage::default();
        for e in examples {
            c.count(e);
        }
        c
    }

    /// Counts one more example.
    pub fn count(&mut self, fields: &Map<String, Value>) {
        if let Some(cat) = super::schema::category(fields) {
            *self.by_category.entry(cat).or_insert(0) += 1;
        }
        if let Some(style) = super::schema::style(fields) {
            *self.by_style.entry(style).or_insert(0) += 1;
        }
    }
}

/// The key with the fewest examples, earliest in `keys` on a tie.
fn thinnest<'a>(keys: &'a [String], counts: &BTreeMap<String, usize>) -> Option<&'a String> {
    keys.iter()
        .min_by_key(|k| counts.get(k.as_str()).copied().unwrap_or(0))
}

/// `n` targets spread over the gaps: each takes the taxonomy category and
/// the style with the fewest examples so far (counting the targets already
/// planned), so the thinnest categories and styles are asked for first and
/// several requests spread over several gaps instead of piling on one.
pub fn plan(coverage: &Coverage, categories: &[String], n: usize) -> Vec<Target> {
    let styles: Vec<String> = SKILL_STYLES.iter().map(|s| s.to_string()).collect();
    let mut planned = coverage.clone();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (Some(category), Some(style)) = (
            thinnest(categories, &planned.by_category).cloned(),
            thinnest(&styles, &planned.by_style).cloned(),
        ) else {
            break;
        };
        let have_c = planned.by_category.get(&category).copied().unwrap_or(0);
        let have_s = planned.by_style.get(&style).copied().unwrap_or(0);
        out.push(Target {
            aim: format!(
                "category `{category}` has {have_c} example(s), style `{style}` has {have_s}"
            ),
            category: category.clone(),
            style: style.clone(),
        });
        *planned.by_category.entry(category).or_insert(0) += 1;
        *planned.by_style.entry(style).or_insert(0) += 1;
    }
    out
}

/// The examples a request for `target` is shown: those of the same style
/// first (they teach the style), then others, starting at `offset` in each
/// group so that successive requests see different examples.
pub fn pick_demos<'a>(
    examples: &'a [Map<String, Value>],
    target: &Target,
    count: usize,
    offset: usize,
) -> Vec<&'a Map<String, Value>> {
    let (same, other): (Vec<&Fields>, Vec<&Fields>) = examples
        .iter()
        .partition(|e| super::schema::style(e).as_deref() == Some(target.style.as_str()));
    let rotate = |group: Vec<&'a Map<String, Value>>| -> Vec<&'a Map<String, Value>> {
        if group.is_empty() {
            return group;
        }
        let k = offset % group.len();
        group[k..].iter().chain(&group[..k]).copied().collect()
    };
    rotate(same)
        .into_iter()
        .chain(rotate(other))
        .take(count)
        .collect()
}

/// Why an answer was not accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectKind {
    /// The answer is not a record (a line is missing, or it is empty).
    Unparsed,
    /// The record fails the trainset schema or taxonomy.
    Invalid,
    /// The record repeats a known example (same name, or a too similar task).
    NearDuplicate,
}

impl RejectKind {
    /// The name used in reports (as in `--json`).
    pub fn as_str(self) -> &'static str {
        match self {
            RejectKind::Unparsed => "unparsed",
            RejectKind::Invalid => "invalid",
            RejectKind::NearDuplicate => "near_duplicate",
        }
    }
}

/// A rejected answer and why, naming the example it duplicates if it does.
#[derive(Debug, Clone, Serialize)]
pub struct Rejection {
    pub round: usize,
    pub category: String,
    pub style: String,
    pub kind: RejectKind,
    /// The skill name the answer gave, when it could be read.
    pub name: Option<String>,
    pub reason: String,
    /// For a near-duplicate: the label of the example duplicated.
    pub duplicate_of: Option<String>,
}

/// Judges one answer: the example when it parses, validates and is new.
/// (The rejection is boxed: it is as large as the example, and rarer.)
pub fn judge(
    target: &Target,
    round: usize,
    answer: &str,
    taxonomy: &Taxonomy,
    known: &SimilarityIndex,
) -> Result<Fields, Box<Rejection>> {
    let reject = |kind, name: Option<String>, reason: String, duplicate_of| {
        Box::new(Rejection {
            round,
            category: target.category.clone(),
            style: target.style.clone(),
            kind,
            name,
            reason,
            duplicate_of,
        })
    };
    let fields = parse_answer(target, answer)
        .map_err(|e| reject(RejectKind::Unparsed, None, e.to_string(), None))?;
    let name = fields
        .get("expected_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let example = Example {
        index: 0,
        line: None,
        fields,
    };
    let problems = validate(
        "answer",
        std::slice::from_ref(&example),
        Schema::Skill,
        taxonomy,
    );
    if !problems.is_empty() {
        let reason = crate::data::problems_inline(&problems);
        return Err(reject(RejectKind::Invalid, Some(name), reason, None));
    }
    let task = example.str_field("task_description").unwrap_or("");
    if let Some(d) = known.find(&name, task) {
        return Err(reject(
            RejectKind::NearDuplicate,
            Some(name),
            d.reason,
            Some(d.duplicate_of),
        ));
    }
    Ok(example.fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ex(path: &str, style: &str) -> Map<String, Value> {
        json!({"expected_taxonomy_path": path, "expected_skill_style": style})
            .as_object()
            .cloned()
            .unwrap()
    }

    #[test]
    fn targets_spread_over_the_thinnest_categories_and_styles_first() {
        let have = vec![
            ex("python/a", "comprehensive"),
            ex("python/b", "comprehensive"),
            ex("rust/c", "minimal"),
        ];
        let cats: Vec<String> = ["python", "rust", "devops"].map(String::from).to_vec();
        let t = plan(&Coverage::of(&have), &cats, 4);
        let got: Vec<(&str, &str)> = t
            .iter()
            .map(|t| (t.category.as_str(), t.style.as_str()))
            .collect();
        // devops (0) first, then rust and devops tie at 1 -> rust (taxonomy
        // order); navigation_hub (0) first, then navigation_hub and minimal
        // tie at 1 -> navigation_hub (style order), then minimal; then all tie.
        assert_eq!(
            got,
            [
                ("devops", "navigation_hub"),
                ("rust", "navigation_hub"),
                ("devops", "minimal"),
                ("python", "comprehensive")
            ]
        );
        assert_eq!(
            t[0].aim,
            "category `devops` has 0 example(s), style `navigation_hub` has 0"
        );
    }

    #[test]
    fn demos_of_the_targets_style_come_first_and_rotate_with_the_offset() {
        let all = vec![
            ex("python/a", "minimal"),
            ex("python/b", "comprehensive"),
            ex("rust/c", "minimal"),
        ];
        let target = Target {
            category: "devops".into(),
            style: "minimal".into(),
            aim: String::new(),
        };
        let paths = |d: Vec<&Map<String, Value>>| -> Vec<String> {
            d.iter()
                .map(|m| m["expected_taxonomy_path"].as_str().unwrap().to_string())
                .collect()
        };
        assert_eq!(
            paths(pick_demos(&all, &target, 2, 0)),
            ["python/a", "rust/c"]
        );
        assert_eq!(
            paths(pick_demos(&all, &target, 3, 1)),
            ["rust/c", "python/a", "python/b"]
        );
    }
}
