//! The skill task's trainset schema (the original Python skill-fleet's
//! `trainset_v4.json`): its keys, allowed literals and limits, how a file is
//! recognised as using it, and the field-by-field checks `data::validate`
//! runs for [`Schema::Skill`](crate::data::Schema::Skill).

use crate::config::Taxonomy;
use crate::data::validate::Checker;
use crate::data::{Example, ProblemKind};
use std::collections::HashMap;

/// The skill styles of the bundled task (a Literal field).
pub const SKILL_STYLES: [&str; 3] = ["comprehensive", "navigation_hub", "minimal"];
/// Allowed subdirectories of a skill (a list of Literal).
pub const SUBDIRECTORIES: [&str; 5] = ["references", "guides", "templates", "scripts", "examples"];
/// Keys every example of the skill schema carries (`source` is optional).
pub const SKILL_KEYS: [&str; 7] = [
    "task_description",
    "expected_taxonomy_path",
    "expected_name",
    "expected_skill_style",
    "expected_subdirectories",
    "expected_keywords",
    "expected_description",
];
/// Columns holding lists; in CSV they are `;`-separated.
pub const LIST_KEYS: [&str; 2] = ["expected_subdirectories", "expected_keywords"];
/// A skill example's category: the first segment of its taxonomy path.
pub fn category(fields: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    fields
        .get("expected_taxonomy_path")
        .and_then(serde_json::Value::as_str)
        .and_then(|p| p.split('/').next())
        .map(str::to_string)
}

/// A skill example's style.
pub fn style(fields: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    fields
        .get("expected_skill_style")
        .and_then(serde_json::Value::as_str)
        .map(str::to_string)
}

/// The normalized task text two examples must not share: lowercase,
/// whitespace collapsed (at least as strict as [`check`]'s duplicate rule).
pub fn normalized_task(task: &str) -> String {
    task.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// The keys merged trainsets must keep unique (besides content), as
/// `(key name, value)`: `expected_name` and the normalized `task`.
pub fn dedupe_keys(
    fields: &serde_json::Map<String, serde_json::Value>,
) -> Vec<(&'static str, String)> {
    let mut keys = Vec::new();
    if let Some(name) = fields
        .get("expected_name")
        .and_then(serde_json::Value::as_str)
    {
        keys.push(("expected_name", name.to_string()));
    }
    if let Some(task) = fields
        .get("task_description")
        .and_then(serde_json::Value::as_str)
    {
        let t = normalized_task(task);
        if !t.is_empty() {
            keys.push(("task", t));
        }
    }
    keys
}

/// Minimum and maximum words of a skill description (the original skill-fleet's rule: 15–35).
pub const DESCRIPTION_WORDS: (usize, usize) = (15, 35);
/// Minimum and maximum keywords of a skill (the original skill-fleet's rule: 3–6).
pub const KEYWORD_COUNT: (usize, usize) = (3, 6);

/// True for lowercase ASCII words of `[a-z0-9]` joined by single hyphens.
pub fn is_kebab_case(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// True when `key` is one of the schema's label keys (`expected_*`).
///
/// These names are specific enough that an object carrying one is meant as a
/// skill example; `task_description` alone is not, since generic trainsets
/// may use that name for their own input.
pub fn is_label_key(key: &str) -> bool {
    key.starts_with("expected_") && SKILL_KEYS.contains(&key)
}

/// True when the examples use this schema: any example carries one of its
/// label keys, or the first has `task_description` with an `expected_*` key.
///
/// Any example and any label key, so a skill file whose examples lack a
/// required field (even `task_description`, even in the first example) is
/// still checked as a skill file and the missing field reported, instead of
/// the file passing as a generic trainset and the program later running on an
/// empty input.
pub fn carries_skill_fields(examples: &[Example]) -> bool {
    let first_is_skill = examples.first().is_some_and(|e| {
        e.fields.contains_key("task_description")
            && e.fields.keys().any(|k| k.starts_with("expected_"))
    });
    first_is_skill
        || examples
            .iter()
            .any(|e| e.fields.keys().any(|k| is_label_key(k)))
}

/// True when a CSV header names a skill column, so the file must carry every
/// column of the schema and its list columns are split on `;`.
pub fn csv_header_is_skill(headers: &[String]) -> bool {
    headers
        .iter()
        .any(|h| h == "task_description" || h.starts_with("expected_"))
}

/// Checks every example field by field, then names and tasks for duplicates.
pub fn check(c: &mut Checker<'_>, examples: &[Example], taxonomy: &Taxonomy) {
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut tasks: HashMap<String, usize> = HashMap::new();
    for ex in examples {
        check_example(c, ex, taxonomy);
        if let Some(name) = ex.str_field("expected_name") {
            if let Some(first) = names.get(name) {
                c.report(
                    ex,
                    Some("expected_name"),
                    ProblemKind::DuplicateName,
                    format!(
                        "`{name}` is already the name of example #{first}; expected unique names"
                    ),
                );
            } else {
                names.insert(name, ex.index);
            }
        }
        if let Some(task) = ex.str_field("task_description") {
            let key = normalized_task(task);
            if key.is_empty() {
                continue;
            }
            if let Some(first) = tasks.get(&key) {
                c.report(
                    ex,
                    Some("task_description"),
                    ProblemKind::DuplicateTask,
                    format!("same task as example #{first}; expected unique tasks"),
                );
            } else {
                tasks.insert(key, ex.index);
            }
        }
    }
}

/// The field checks of one example.
fn check_example(c: &mut Checker<'_>, ex: &Example, taxonomy: &Taxonomy) {
    c.string(ex, "task_description");
    let path = c.string(ex, "expected_taxonomy_path");
    let name = c.string(ex, "expected_name");
    if let Some(path) = path {
        let parts: Vec<&str> = path.split('/').collect();
        if parts.len() != 2 || parts.iter().any(|p| p.is_empty()) {
            c.report(
                ex,
                Some("expected_taxonomy_path"),
                ProblemKind::BadPath,
                format!("`{path}`; expected `category/name`"),
            );
        } else if !taxonomy.contains(parts[0]) {
            c.report(
                ex,
                Some("expected_taxonomy_path"),
                ProblemKind::UnknownCategory,
                format!(
                    "category `{}` is not in the taxonomy; expected one of: {}",
                    parts[0],
                    taxonomy.names().join(", ")
                ),
            );
        }
    }
    if let Some(name) = name {
        if !is_kebab_case(name) {
            c.report(
                ex,
                Some("expected_name"),
                ProblemKind::NotKebabCase,
                format!("`{name}`; expected kebab-case (lowercase words joined by '-')"),
            );
        } else if let Some(last) = path.and_then(|p| p.rsplit('/').next()) {
            if path.is_some_and(|p| p.contains('/')) && last != name {
                c.report(
                    ex,
                    Some("expected_name"),
                    ProblemKind::NamePathMismatch,
                    format!(
                        "`{name}` differs from the path's last segment `{last}`; expected them equal"
                    ),
                );
            }
        }
    }
    if let Some(style) = c.string(ex, "expected_skill_style") {
        if !SKILL_STYLES.contains(&style) {
            c.report(
                ex,
                Some("expected_skill_style"),
                ProblemKind::InvalidLiteral,
                format!("`{style}`; expected one of: {}", SKILL_STYLES.join(", ")),
            );
        }
    }
    if let Some(dirs) = c.string_list(ex, "expected_subdirectories") {
        for d in &dirs {
            if !SUBDIRECTORIES.contains(d) {
                c.report(
                    ex,
                    Some("expected_subdirectories"),
                    ProblemKind::InvalidLiteral,
                    format!("`{d}`; expected items from: {}", SUBDIRECTORIES.join(", ")),
                );
            }
        }
    }
    if let Some(keywords) = c.string_list(ex, "expected_keywords") {
        let (lo, hi) = KEYWORD_COUNT;
        if keywords.len() < lo || keywords.len() > hi {
            c.report(
                ex,
                Some("expected_keywords"),
                ProblemKind::KeywordCount,
                format!("{} keywords; expected {lo} to {hi}", keywords.len()),
            );
        }
        if let Some(k) = keywords.iter().find(|k| k.trim().is_empty()) {
            c.report(
                ex,
                Some("expected_keywords"),
                ProblemKind::EmptyString,
                format!("keyword `{k}` is empty; expected text"),
            );
        } else if let Some(k) = keywords.iter().find(|k| k.chars().any(char::is_uppercase)) {
            c.report(
                ex,
                Some("expected_keywords"),
                ProblemKind::NotLowercase,
                format!("`{k}`; expected lowercase keywords"),
            );
        }
    }
    if let Some(desc) = c.string(ex, "expected_description") {
        if !desc.trim_start().starts_with("Use when") {
            let start: String = desc.chars().take(30).collect();
            c.report(
                ex,
                Some("expected_description"),
                ProblemKind::DescriptionPrefix,
                format!("starts with `{start}`; expected it to start with \"Use when\""),
            );
        } else {
            let words = desc.split_whitespace().count();
            let (lo, hi) = DESCRIPTION_WORDS;
            if words < lo || words > hi {
                c.report(
                    ex,
                    Some("expected_description"),
                    ProblemKind::DescriptionLength,
                    format!("{words} words; expected {lo} to {hi}"),
                );
            }
        }
    }
    if let Some(source) = ex.fields.get("source") {
        if !source.is_string() {
            c.report(
                ex,
                Some("source"),
                ProblemKind::WrongType,
                format!("is {source}; expected a string"),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Map, Value};

    fn example(index: usize, v: Value) -> Example {
        let fields: Map<String, Value> = v.as_object().cloned().unwrap_or_default();
        Example {
            index,
            line: None,
            fields,
        }
    }

    #[test]
    fn a_skill_label_without_task_description_is_the_skill_schema() {
        let examples = [example(
            0,
            json!({"expected_name": "x", "expected_keywords": []}),
        )];
        assert!(carries_skill_fields(&examples));
    }

    #[test]
    fn a_skill_label_in_a_later_example_is_the_skill_schema() {
        let examples = [
            example(0, json!({"task_description": "t"})),
            example(
                1,
                json!({"task_description": "u", "expected_skill_style": "minimal"}),
            ),
        ];
        assert!(carries_skill_fields(&examples));
    }

    #[test]
    fn task_description_or_other_expected_keys_alone_are_generic() {
        let examples = [
            example(0, json!({"task_description": "t", "answer": "a"})),
            example(1, json!({"question": "q", "expected_answer": "a"})),
        ];
        assert!(!carries_skill_fields(&examples));
    }

    #[test]
    fn kebab_case() {
        assert!(is_kebab_case("tokio-task-cancellation"));
        assert!(is_kebab_case("k8s"));
        assert!(!is_kebab_case("Tokio_Tasks"));
        assert!(!is_kebab_case("a--b"));
        assert!(!is_kebab_case("-a"));
        assert!(!is_kebab_case(""));
    }
}
