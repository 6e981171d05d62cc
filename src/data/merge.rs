//! Merging trainsets: examples of several inputs in order, duplicates dropped.
//!
//! An example is a duplicate when its content hash equals an earlier one's,
//! or when it shares a dedupe key the task defines (for the skill schema:
//! [`crate::tasks::skill::schema::dedupe_keys`], the name and the normalized
//! task text, which its validator requires unique). Every dropped example is
//! reported with the example it duplicated and the key they share, so the
//! merged set validates like an import.

use super::{Example, Schema};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// One input of a merge: a label naming it in reports (file or trainset) and its examples.
#[derive(Debug, Clone)]
pub struct MergeInput {
    pub label: String,
    pub examples: Vec<Example>,
}

/// Where an example of a merge came from: its input's label and its 0-based index there.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    pub input: String,
    pub index: usize,
}

/// An example left out of the merge, with the kept example it duplicated.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Dropped {
    pub example: Origin,
    pub duplicate_of: Origin,
    /// The key they share: `content` (same fields) or a task key such as `expected_name` or `task`.
    pub by: String,
    /// The shared value (the hash prefix for `content`).
    pub value: String,
}

/// The merged examples and what was dropped.
#[derive(Debug, Clone, Serialize)]
pub struct Merged {
    pub examples: Vec<Map<String, Value>>,
    /// Where each kept example came from, in the same order as `examples`.
    pub origins: Vec<Origin>,
    pub dropped: Vec<Dropped>,
}

/// The dedupe keys of an example beyond its content hash, for the schema.
fn task_keys(schema: Schema, ex: &Example) -> Vec<(&'static str, String)> {
    match schema {
        Schema::Skill => crate::tasks::skill::schema::dedupe_keys(&ex.fields),
        Schema::Generic => Vec::new(),
    }
}

/// Merges the inputs in order: the first occurrence of each key is kept.
pub fn merge(inputs: &[MergeInput]) -> Merged {
    let all: Vec<Example> = inputs.iter().flat_map(|i| i.examples.clone()).collect();
    let schema = Schema::detect(&all);
    let mut seen: HashMap<(&'static str, String), Origin> = HashMap::new();
    let mut out = Merged {
        examples: Vec::new(),
        origins: Vec::new(),
        dropped: Vec::new(),
    };
    for input in inputs {
        for ex in &input.examples {
            let origin = Origin {
                input: input.label.clone(),
                index: ex.index,
            };
            let hash = ex.hash();
            let mut keys = vec![("content", hash)];
            keys.extend(task_keys(schema, ex));
            if let Some((by, value, first)) = keys
                .iter()
                .find_map(|k| seen.get(k).map(|o| (k.0, k.1.clone(), o.clone())))
            {
                let value = if by == "content" {
                    value.chars().take(12).collect()
                } else {
                    value
                };
                out.dropped.push(Dropped {
                    example: origin,
                    duplicate_of: first,
                    by: by.to_string(),
                    value,
                });
                continue;
            }
            for k in keys {
                seen.insert(k, origin.clone());
            }
            out.examples.push(ex.fields.clone());
            out.origins.push(origin);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ex(index: usize, v: Value) -> Example {
        Example {
            index,
            line: None,
            fields: v.as_object().cloned().unwrap_or_default(),
        }
    }

    fn input(label: &str, examples: Vec<Example>) -> MergeInput {
        MergeInput {
            label: label.into(),
            examples,
        }
    }

    #[test]
    fn generic_examples_are_deduplicated_by_content_only() {
        let a = input(
            "a",
            vec![ex(0, json!({"q": "1"})), ex(1, json!({"q": "2"}))],
        );
        let b = input(
            "b",
            vec![ex(0, json!({"q": "2"})), ex(1, json!({"q": "3"}))],
        );
        let m = merge(&[a, b]);
        assert_eq!(m.examples.len(), 3);
        assert_eq!(m.dropped.len(), 1);
        let d = &m.dropped[0];
        assert_eq!(d.by, "content");
        assert_eq!((d.example.input.as_str(), d.example.index), ("b", 0));
        assert_eq!(
            (d.duplicate_of.input.as_str(), d.duplicate_of.index),
            ("a", 1)
        );
    }

    #[test]
    fn skill_examples_sharing_a_name_or_a_normalized_task_are_dropped_with_the_key() {
        let a = input(
            "a",
            vec![ex(
                0,
                json!({"task_description": "Make a  Tokio skill", "expected_name": "tokio"}),
            )],
        );
        let b = input(
            "b",
            vec![
                ex(
                    0,
                    json!({"task_description": "other", "expected_name": "tokio"}),
                ),
                ex(
                    1,
                    json!({"task_description": " make a tokio SKILL ", "expected_name": "x"}),
                ),
                ex(2, json!({"task_description": "new", "expected_name": "y"})),
            ],
        );
        let m = merge(&[a, b]);
        assert_eq!(m.examples.len(), 2);
        let by: Vec<&str> = m.dropped.iter().map(|d| d.by.as_str()).collect();
        assert_eq!(by, ["expected_name", "task"]);
        assert_eq!(m.dropped[1].value, "make a tokio skill");
    }
}
