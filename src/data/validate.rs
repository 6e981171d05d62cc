//! Field-level validation of trainsets, reporting every problem with its location.

use super::{Example, Problem, ProblemKind, Schema, SKILL_STYLES, SUBDIRECTORIES};
use crate::config::Taxonomy;
use serde_json::Value;
use std::collections::HashMap;

/// True for lowercase ASCII words of `[a-z0-9]` joined by single hyphens.
pub fn is_kebab_case(s: &str) -> bool {
    !s.is_empty()
        && s.split('-').all(|w| {
            !w.is_empty()
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        })
}

/// Minimum and maximum words of a skill description (DESIGN.md: 15–35).
pub const DESCRIPTION_WORDS: (usize, usize) = (15, 35);
/// Minimum and maximum keywords of a skill (DESIGN.md: 3–6).
pub const KEYWORD_COUNT: (usize, usize) = (3, 6);

struct Checker<'a> {
    file: &'a str,
    problems: Vec<Problem>,
}

impl Checker<'_> {
    fn report(&mut self, ex: &Example, field: Option<&str>, kind: ProblemKind, message: String) {
        self.problems.push(Problem {
            file: self.file.to_string(),
            line: ex.line,
            column: None,
            index: Some(ex.index),
            field: field.map(str::to_string),
            kind,
            message,
        });
    }

    /// A non-empty string field, or a reported problem.
    fn string<'e>(&mut self, ex: &'e Example, key: &str) -> Option<&'e str> {
        match ex.fields.get(key) {
            None => {
                self.report(
                    ex,
                    Some(key),
                    ProblemKind::MissingField,
                    "missing; expected a string".into(),
                );
                None
            }
            Some(Value::String(s)) if s.trim().is_empty() => {
                self.report(
                    ex,
                    Some(key),
                    ProblemKind::EmptyString,
                    "is empty; expected non-empty text".into(),
                );
                None
            }
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.report(
                    ex,
                    Some(key),
                    ProblemKind::WrongType,
                    format!("is {other}; expected a string"),
                );
                None
            }
        }
    }

    /// A list of strings, or a reported problem.
    fn string_list<'e>(&mut self, ex: &'e Example, key: &str) -> Option<Vec<&'e str>> {
        match ex.fields.get(key) {
            None => {
                self.report(
                    ex,
                    Some(key),
                    ProblemKind::MissingField,
                    "missing; expected a list of strings".into(),
                );
                None
            }
            Some(Value::Array(items)) => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item.as_str() {
                        Some(s) => out.push(s),
                        None => {
                            self.report(
                                ex,
                                Some(key),
                                ProblemKind::WrongType,
                                format!("item {i} is {item}; expected a string"),
                            );
                            return None;
                        }
                    }
                }
                Some(out)
            }
            Some(other) => {
                self.report(
                    ex,
                    Some(key),
                    ProblemKind::WrongType,
                    format!("is {other}; expected a list of strings"),
                );
                None
            }
        }
    }
}

/// Checks examples against `schema`; an empty result means the trainset is valid.
pub fn validate(
    file: &str,
    examples: &[Example],
    schema: Schema,
    taxonomy: &Taxonomy,
) -> Vec<Problem> {
    let mut c = Checker {
        file,
        problems: Vec::new(),
    };
    match schema {
        Schema::Skill => {
            let mut names: HashMap<&str, usize> = HashMap::new();
            let mut tasks: HashMap<String, usize> = HashMap::new();
            for ex in examples {
                check_skill(&mut c, ex, taxonomy);
                if let Some(name) = ex.str_field("expected_name") {
                    if let Some(first) = names.get(name) {
                        c.report(ex, Some("expected_name"), ProblemKind::DuplicateName,
                            format!("`{name}` is already the name of example #{first}; expected unique names"));
                    } else {
                        names.insert(name, ex.index);
                    }
                }
                if let Some(task) = ex.str_field("task_description") {
                    let key = task.trim().to_lowercase();
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
        Schema::Generic => {
            let mut seen: HashMap<String, usize> = HashMap::new();
            for ex in examples {
                if ex.fields.is_empty() {
                    c.report(
                        ex,
                        None,
                        ProblemKind::EmptyExample,
                        "has no fields; expected at least one".into(),
                    );
                    continue;
                }
                let h = ex.hash();
                if let Some(first) = seen.get(&h) {
                    c.report(
                        ex,
                        None,
                        ProblemKind::DuplicateExample,
                        format!("same content as example #{first}; expected unique examples"),
                    );
                } else {
                    seen.insert(h, ex.index);
                }
            }
        }
    }
    c.problems
}

fn check_skill(c: &mut Checker<'_>, ex: &Example, taxonomy: &Taxonomy) {
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
                c.report(ex, Some("expected_name"), ProblemKind::NamePathMismatch,
                    format!("`{name}` differs from the path's last segment `{last}`; expected them equal"));
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
