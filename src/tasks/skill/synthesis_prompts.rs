//! The prompts `trainset synthesize` sends to a language model, and the
//! parsing of its answers, kept in one place (as `optimize::proposers` keeps
//! the optimizers' prompts).
//!
//! The prompt is a text-completion prompt that works with base models (the
//! bundled local model has no chat template): a short header, a few of the
//! trainset's examples as records, then the start of a new record whose
//! category and style are already filled in with the gap being aimed at. The
//! model writes the rest of the record; [`parse_answer`] turns it into an
//! example of the skill schema. The category and style are not the model's
//! to choose, so they never come back different from what was asked.

use crate::tasks::skill::schema::SUBDIRECTORIES;
use serde::Serialize;
use serde_json::{Map, Value};

/// Ends a record in the prompt; the model is stopped there.
pub const RECORD_END: &str = "###";

/// What one request aims at: a category and a style, with the gap it closes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Target {
    pub category: String,
    pub style: String,
    /// Why this pair: the counts it was picked for, e.g.
    /// "category `devops` has 0 examples, style `minimal` has 3".
    pub aim: String,
}

/// A skill example in the record form the prompt shows: the skill's title
/// and what it teaches, split from `task_description` ("Create a {title}
/// skill: {teaches}" or "... skill - {teaches}").
pub fn title_and_teaches(task: &str, name: &str) -> (String, String) {
    let body = task
        .trim()
        .strip_prefix("Create a ")
        .or_else(|| task.trim().strip_prefix("Create an "));
    if let Some(body) = body {
        for sep in [" skill: ", " skill - ", " skill — "] {
            if let Some((title, teaches)) = body.split_once(sep) {
                return (title.trim().to_string(), teaches.trim().to_string());
            }
        }
    }
    let title = name
        .split('-')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_uppercase().chain(c).collect(),
                None => String::new(),
            }
        })
        .collect::<Vec<String>>()
        .join(" ");
    (title, task.trim().to_string())
}

fn list(fields: &Map<String, Value>, key: &str) -> String {
    let items: Vec<&str> = fields
        .get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if items.is_empty() {
        "none".into()
    } else {
        items.join(", ")
    }
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> &'a str {
    fields.get(key).and_then(Value::as_str).unwrap_or("")
}

/// One example of the skill schema as a prompt record (ending in [`RECORD_END`]).
pub fn record(fields: &Map<String, Value>) -> String {
    let name = text(fields, "expected_name");
    let (title, teaches) = title_and_teaches(text(fields, "task_description"), name);
    let category = text(fields, "expected_taxonomy_path")
        .split('/')
        .next()
        .unwrap_or("");
    format!(
        "Category: {category}\nStyle: {}\nSkill: {title}\nTeaches: {teaches}\nKeywords: {}\nSubdirectories: {}\nDescription: {}\n{RECORD_END}\n",
        text(fields, "expected_skill_style"),
        list(fields, "expected_keywords"),
        list(fields, "expected_subdirectories"),
        text(fields, "expected_description"),
    )
}

/// The style cues of the bundled task, one line each.
const STYLE_CUES: &str =
    "navigation_hub = an overview or index of a broad area that points to focused sub-guides; \
minimal = one narrow technique, quick reference or checklist; \
comprehensive = an in-depth guide to one substantial topic.";

/// The prompt asking for one new example aimed at `target`: `demos` as
/// records, the names the new skill must not reuse, and the new record's
/// first lines.
pub fn synthesis_prompt(
    target: &Target,
    demos: &[&Map<String, Value>],
    taken_names: &[String],
) -> String {
    let mut p = String::from(
        "A library of agent skills. Each record describes one skill: its category, its style, \
its title, what it teaches, 3 to 6 lowercase keywords, the subdirectories it needs (from: ",
    );
    p.push_str(&SUBDIRECTORIES.join(", "));
    p.push_str(
        "; or none), and a one-sentence description of 15 to 35 words that starts with \"Use when\".\n",
    );
    p.push_str("Styles: ");
    p.push_str(STYLE_CUES);
    p.push('\n');
    // In the header, not next to the new record: a small base model given
    // the list right before "Skill:" copies the list as the skill.
    if !taken_names.is_empty() {
        p.push_str(&format!(
            "Skills of category {} already in the library (a new record is a different skill): {}\n",
            target.category,
            taken_names.join(", ")
        ));
    }
    p.push('\n');
    for d in demos {
        p.push_str(&record(d));
    }
    p.push_str(&format!(
        "Category: {}\nStyle: {}\nSkill:",
        target.category, target.style
    ));
    p
}

/// Why an answer could not be read as a record.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AnswerError {
    #[error("the answer is empty")]
    Empty,
    #[error("the answer has no `{0}:` line")]
    Missing(&'static str),
}

/// Reads the model's continuation of [`synthesis_prompt`] into an example of
/// the skill schema (not yet validated). Keywords and subdirectories are
/// trimmed and lowercased and `none` is an empty list; everything else is
/// taken as written, so the validator judges the model's own words.
pub fn parse_answer(target: &Target, answer: &str) -> Result<Map<String, Value>, AnswerError> {
    let record = answer.split(RECORD_END).next().unwrap_or("");
    if record.trim().is_empty() {
        return Err(AnswerError::Empty);
    }
    // The prompt ends with "Skill:", so the first line is the title.
    let full = format!("Skill:{record}");
    let mut found: Map<String, Value> = Map::new();
    for line in full.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let key = key.trim();
        // A second record (the model going on) ends this one.
        if key == "Category" || key == "Style" {
            break;
        }
        if !found.contains_key(key) {
            found.insert(key.to_string(), Value::String(value.trim().to_string()));
        }
    }
    let get = |key: &'static str| -> Result<String, AnswerError> {
        found
            .get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|s| !s.is_empty())
            .ok_or(AnswerError::Missing(key))
    };
    let title = get("Skill")?;
    let teaches = get("Teaches")?;
    let keywords = get("Keywords")?;
    let description = get("Description")?;
    let subdirectories = found
        .get("Subdirectories")
        .and_then(Value::as_str)
        .unwrap_or("none")
        .to_string();
    let items = |s: &str| -> Vec<Value> {
        s.split(',')
            .map(|w| w.trim().to_lowercase())
            .filter(|w| !w.is_empty() && w != "none")
            .map(Value::String)
            .collect()
    };
    let name = crate::data::similar::normalized_name(&title);
    let mut fields = Map::new();
    fields.insert(
        "task_description".into(),
        Value::String(format!("Create a {title} skill: {teaches}")),
    );
    fields.insert(
        "expected_taxonomy_path".into(),
        Value::String(format!("{}/{name}", target.category)),
    );
    fields.insert("expected_name".into(), Value::String(name));
    fields.insert(
        "expected_skill_style".into(),
        Value::String(target.style.clone()),
    );
    fields.insert(
        "expected_subdirectories".into(),
        Value::Array(items(&subdirectories)),
    );
    fields.insert("expected_keywords".into(), Value::Array(items(&keywords)));
    fields.insert("expected_description".into(), Value::String(description));
    fields.insert("source".into(), Value::String("synthetic".into()));
    Ok(fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn demo() -> Map<String, Value> {
        json!({
            "task_description": "Create a Type Hints Cheat Sheet skill: a quick reference for generics and Protocol",
            "expected_taxonomy_path": "python/type-hints-cheat-sheet",
            "expected_name": "type-hints-cheat-sheet",
            "expected_skill_style": "minimal",
            "expected_subdirectories": [],
            "expected_keywords": ["typing", "generics", "protocol"],
            "expected_description": "Use when you need a quick reminder of Python typing syntax."
        })
        .as_object()
        .cloned()
        .unwrap()
    }

    fn target() -> Target {
        Target {
            category: "devops".into(),
            style: "minimal".into(),
            aim: "category `devops` has 0 examples".into(),
        }
    }

    #[test]
    fn the_prompt_shows_demos_as_records_and_ends_with_the_targets_category_and_style() {
        let d = demo();
        let p = synthesis_prompt(&target(), &[&d], &["docker-basics".into()]);
        assert!(p.contains(
            "Category: python\nStyle: minimal\nSkill: Type Hints Cheat Sheet\nTeaches: a quick reference for generics and Protocol\nKeywords: typing, generics, protocol\nSubdirectories: none\n"
        ), "{p}");
        let taken = p
            .find("Skills of category devops already in the library (a new record is a different skill): docker-basics\n")
            .expect("the taken names");
        assert!(
            taken < p.find("Category: python").unwrap(),
            "taken names after the demos: {p}"
        );
        assert!(
            p.ends_with("Category: devops\nStyle: minimal\nSkill:"),
            "{p}"
        );
        assert!(p.contains("references, guides, templates, scripts, examples"));
    }

    #[test]
    fn a_task_without_the_request_form_is_shown_whole_under_the_names_title() {
        let (title, teaches) = title_and_teaches("Explain pods", "k8s-pods");
        assert_eq!(
            (title.as_str(), teaches.as_str()),
            ("K8s Pods", "Explain pods")
        );
        let (title, teaches) =
            title_and_teaches("Create a Git Bisect skill - finding a bad commit", "x");
        assert_eq!(
            (title.as_str(), teaches.as_str()),
            ("Git Bisect", "finding a bad commit")
        );
    }

    #[test]
    fn an_answer_becomes_a_synthetic_skill_example_in_the_asked_category_and_style() {
        let answer = " Docker Image Slimming\nTeaches: multi-stage builds that shrink images\nKeywords: Docker, images, multi-stage\nSubdirectories: References, none\nDescription: Use when a container image is too large.\n###\nCategory: rust\n";
        let f = parse_answer(&target(), answer).unwrap();
        assert_eq!(
            f["task_description"],
            "Create a Docker Image Slimming skill: multi-stage builds that shrink images"
        );
        assert_eq!(f["expected_taxonomy_path"], "devops/docker-image-slimming");
        assert_eq!(f["expected_name"], "docker-image-slimming");
        assert_eq!(f["expected_skill_style"], "minimal");
        assert_eq!(f["expected_subdirectories"], json!(["references"]));
        assert_eq!(
            f["expected_keywords"],
            json!(["docker", "images", "multi-stage"])
        );
        assert_eq!(f["source"], "synthetic");
    }

    #[test]
    fn an_answer_missing_a_line_or_empty_is_an_error_naming_it() {
        assert_eq!(
            parse_answer(&target(), " Foo\nTeaches: x\nDescription: Use when y"),
            Err(AnswerError::Missing("Keywords"))
        );
        assert_eq!(parse_answer(&target(), "  \n###"), Err(AnswerError::Empty));
        // A second record's lines do not fill the first one's gaps.
        assert_eq!(
            parse_answer(
                &target(),
                " Foo\nTeaches: x\nCategory: rust\nKeywords: a, b, c\nDescription: Use when z"
            ),
            Err(AnswerError::Missing("Keywords"))
        );
    }
}
