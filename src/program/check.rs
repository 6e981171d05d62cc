//! Checking stored examples against a program before anything runs: every
//! example must carry the program's inputs and the labels of its outputs.
//!
//! A trainset can validate on its own and still not fit a program (another
//! task's file, a column the `field_map` does not rename, a blank input).
//! Without this check the program would run on an empty input and the metric
//! would score against an empty label, spending LM calls on a meaningless
//! score; with it the caller refuses up front, naming every example that
//! does not fit.

use super::spec::ProgramSpec;
use crate::error::{Error, Result};
use crate::store::ExampleRow;
use serde_json::{Map, Value};
use std::fmt;

/// At most this many examples are listed in one error; the rest are counted.
pub const MAX_REPORTED: usize = 20;

/// Whether a field the program needs is an input it reads or a label its
/// outputs are scored against.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FieldRole {
    Input,
    Label,
}

/// What is wrong with one needed field of one example.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FieldGap {
    /// The program's name for the field.
    pub field: String,
    pub role: FieldRole,
    /// True when the column is present but null or blank; false when absent.
    pub empty: bool,
}

/// One example that does not fit the program.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExampleMismatch {
    /// 0-based position in the trainset.
    pub idx: i64,
    /// Row id of the example in the store.
    pub example_id: i64,
    pub gaps: Vec<FieldGap>,
}

/// Why a set of examples cannot run through a program: what the program
/// expects and, for the first [`MAX_REPORTED`] examples that do not fit, what
/// they lack.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExamplesDoNotFit {
    pub program: String,
    /// Input fields every example must provide (program names).
    pub inputs: Vec<String>,
    /// Label fields every example must provide (program names).
    pub labels: Vec<String>,
    /// Trainset columns that feed each needed field, when renamed by `field_map`.
    pub columns: Vec<(String, Vec<String>)>,
    /// How many examples were checked.
    pub total: usize,
    /// How many do not fit (may exceed `problems.len()`).
    pub mismatched: usize,
    pub problems: Vec<ExampleMismatch>,
}

impl ExamplesDoNotFit {
    /// `field`, with the differently named columns it is read from.
    fn describe(&self, field: &str) -> String {
        let renamed: Vec<String> = self
            .columns
            .iter()
            .filter(|(f, _)| f == field)
            .flat_map(|(_, cols)| cols.iter().filter(|c| *c != field))
            .map(|c| format!("`{c}`"))
            .collect();
        if renamed.is_empty() {
            format!("`{field}`")
        } else {
            format!("`{field}` (column {})", renamed.join(" or "))
        }
    }

    fn list(&self, fields: &[String]) -> String {
        if fields.is_empty() {
            return "none".into();
        }
        fields
            .iter()
            .map(|f| self.describe(f))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl fmt::Display for ExamplesDoNotFit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} of {} example(s) do not fit program `{}`; every example needs inputs {} and labels {}, present and non-empty:",
            self.mismatched,
            self.total,
            self.program,
            self.list(&self.inputs),
            self.list(&self.labels),
        )?;
        for p in &self.problems {
            // Program names only: the header already says which columns feed them.
            let mut groups: Vec<String> = Vec::new();
            for (empty, role) in [
                (false, FieldRole::Input),
                (true, FieldRole::Input),
                (false, FieldRole::Label),
                (true, FieldRole::Label),
            ] {
                let names: Vec<String> = p
                    .gaps
                    .iter()
                    .filter(|g| g.empty == empty && g.role == role)
                    .map(|g| format!("`{}`", g.field))
                    .collect();
                if names.is_empty() {
                    continue;
                }
                let what = if empty { "empty" } else { "missing" };
                let role = match role {
                    FieldRole::Input => "input",
                    FieldRole::Label => "label",
                };
                let plural = if names.len() > 1 { "s" } else { "" };
                groups.push(format!("{what} {role}{plural} {}", names.join(", ")));
            }
            write!(
                f,
                "\n  example #{} (id {}): {}",
                p.idx,
                p.example_id,
                groups.join("; ")
            )?;
        }
        if self.mismatched > self.problems.len() {
            write!(
                f,
                "\n  ... and {} more",
                self.mismatched - self.problems.len()
            )?;
        }
        Ok(())
    }
}

/// The output fields examples must label: outputs no later predictor reads.
///
/// An intermediate output (one predictor's answer feeding the next) is the
/// program's own business; trainsets label only what the program returns.
pub fn label_fields(spec: &ProgramSpec) -> Vec<String> {
    let read: Vec<&str> = spec
        .predictors
        .iter()
        .flat_map(|p| p.signature.inputs.iter().map(|f| f.name.as_str()))
        .collect();
    spec.output_fields()
        .into_iter()
        .filter(|f| !read.contains(&f.as_str()))
        .collect()
}

/// Trainset columns that become program field `field` (see
/// [`ProgramSpec::example_io`]): columns renamed to it by `field_map`, and the
/// column of the same name unless `field_map` renames that one away.
fn columns_for(spec: &ProgramSpec, field: &str) -> Vec<String> {
    let mut cols: Vec<String> = spec
        .field_map
        .iter()
        .filter(|(_, to)| to.as_str() == field)
        .map(|(from, _)| from.clone())
        .collect();
    if !spec.field_map.contains_key(field) && !cols.iter().any(|c| c == field) {
        cols.push(field.to_string());
    }
    cols
}

/// Null and blank strings carry nothing. Empty lists do: a list label can be
/// legitimately empty (a skill with no subdirectories).
fn is_blank(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::String(s) => s.trim().is_empty(),
        _ => false,
    }
}

/// The gap of `field` in `fields`, if any column feeding it is absent or blank.
fn gap(fields: &Map<String, Value>, cols: &[String]) -> Option<bool> {
    let present: Vec<&Value> = cols.iter().filter_map(|c| fields.get(c)).collect();
    if present.iter().any(|v| !is_blank(v)) {
        None
    } else {
        Some(!present.is_empty())
    }
}

/// Checks that every example provides every input of `spec` that is not a
/// constant, and a label for every output the program returns, as present
/// and non-empty values (after renaming through `field_map`).
///
/// Call it before any LM call: a trainset that does not fit the program is
/// refused with every offending example (up to [`MAX_REPORTED`]) named by
/// index and id, the fields it lacks, and what the program expects.
pub fn check_examples(spec: &ProgramSpec, examples: &[ExampleRow]) -> Result<()> {
    let inputs = spec.input_fields();
    let labels = label_fields(spec);
    let needed: Vec<(&String, FieldRole, Vec<String>)> = inputs
        .iter()
        .map(|f| (f, FieldRole::Input))
        .chain(labels.iter().map(|f| (f, FieldRole::Label)))
        .map(|(f, role)| (f, role, columns_for(spec, f)))
        .collect();
    let mut problems = Vec::new();
    let mut mismatched = 0usize;
    for ex in examples {
        let gaps: Vec<FieldGap> = needed
            .iter()
            .filter_map(|(field, role, cols)| {
                gap(&ex.fields, cols).map(|empty| FieldGap {
                    field: (*field).clone(),
                    role: *role,
                    empty,
                })
            })
            .collect();
        if gaps.is_empty() {
            continue;
        }
        mismatched += 1;
        if problems.len() < MAX_REPORTED {
            problems.push(ExampleMismatch {
                idx: ex.idx,
                example_id: ex.id,
                gaps,
            });
        }
    }
    if mismatched == 0 {
        return Ok(());
    }
    let columns = needed
        .iter()
        .map(|(f, _, cols)| ((*f).clone(), cols.clone()))
        .collect();
    Err(Error::ExamplesDoNotFit(Box::new(ExamplesDoNotFit {
        program: spec.name.clone(),
        inputs,
        labels,
        columns,
        total: examples.len(),
        mismatched,
        problems,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The bundled skill program's shape: a constant input, a renamed label set.
    fn skill_spec() -> ProgramSpec {
        ProgramSpec::from_yaml(
            "skill.yaml",
            r#"
name: skill
field_map:
  expected_name: name
  expected_subdirectories: subdirectories
constants:
  categories: "@taxonomy"
predictors:
  - name: understand
    signature:
      inputs:
        - name: categories
        - name: task_description
      outputs:
        - name: name
        - name: subdirectories
          type: "list[str]"
"#,
        )
        .unwrap()
    }

    fn row(idx: i64, fields: Value) -> ExampleRow {
        ExampleRow {
            id: 100 + idx,
            idx,
            fields: fields.as_object().cloned().unwrap_or_default(),
            hash: String::new(),
            category: None,
            style: None,
        }
    }

    fn good(idx: i64) -> ExampleRow {
        row(
            idx,
            json!({"task_description": "Create a X skill", "expected_name": "x",
                   "expected_subdirectories": ["guides"]}),
        )
    }

    fn mismatch(r: Result<()>) -> ExamplesDoNotFit {
        match r {
            Err(Error::ExamplesDoNotFit(m)) => *m,
            other => panic!("expected ExamplesDoNotFit, got {other:?}"),
        }
    }

    #[test]
    fn fitting_examples_pass_without_constants_or_extra_columns() {
        let mut extra = good(1);
        extra.fields.insert("source".into(), json!("handwritten"));
        assert!(check_examples(&skill_spec(), &[good(0), extra]).is_ok());
    }

    #[test]
    fn missing_input_names_example_idx_id_field_and_expectation() {
        let bad = row(
            3,
            json!({"expected_name": "x", "expected_subdirectories": []}),
        );
        let m = mismatch(check_examples(&skill_spec(), &[good(0), bad]));
        assert_eq!((m.total, m.mismatched), (2, 1));
        assert_eq!(
            m.problems,
            vec![ExampleMismatch {
                idx: 3,
                example_id: 103,
                gaps: vec![FieldGap {
                    field: "task_description".into(),
                    role: FieldRole::Input,
                    empty: false,
                }],
            }]
        );
        let text = Error::ExamplesDoNotFit(Box::new(m)).to_string();
        assert!(
            text.contains("example #3 (id 103): missing input `task_description`"),
            "{text}"
        );
        assert!(
            text.contains("program `skill`") && text.contains("inputs `task_description`"),
            "{text}"
        );
        assert!(text.contains("`name` (column `expected_name`)"), "{text}");
    }

    #[test]
    fn blank_and_null_values_are_empty_but_an_empty_list_label_is_not() {
        let bad = row(
            0,
            json!({"task_description": "  ", "expected_name": null,
                   "expected_subdirectories": []}),
        );
        let m = mismatch(check_examples(&skill_spec(), &[bad]));
        let gaps: Vec<(&str, FieldRole, bool)> = m.problems[0]
            .gaps
            .iter()
            .map(|g| (g.field.as_str(), g.role, g.empty))
            .collect();
        assert_eq!(
            gaps,
            vec![
                ("task_description", FieldRole::Input, true),
                ("name", FieldRole::Label, true),
            ]
        );
        let text = m.to_string();
        assert!(
            text.contains(
                "example #0 (id 100): empty input `task_description`; empty label `name`"
            ),
            "{text}"
        );
    }

    #[test]
    fn a_column_named_like_the_field_counts_unless_the_map_renames_it() {
        // `field_map` renames `expected_name` to `name` but leaves a `name`
        // column as it is, so example_io reads that too.
        let r = row(
            0,
            json!({"task_description": "t", "name": "x", "subdirectories": []}),
        );
        assert!(check_examples(&skill_spec(), &[r]).is_ok());
        // A column the map renames to something else does not count.
        let mut spec = skill_spec();
        spec.field_map
            .insert("task_description".into(), "other".into());
        let m = mismatch(check_examples(&spec, &[good(0)]));
        assert_eq!(m.problems[0].gaps[0].field, "task_description");
    }

    #[test]
    fn intermediate_outputs_need_no_label() {
        let spec = ProgramSpec::from_yaml(
            "two.yaml",
            r#"
name: two
predictors:
  - name: plan
    signature:
      inputs: [{name: question}]
      outputs: [{name: plan}]
  - name: answer
    signature:
      inputs: [{name: question}, {name: plan}]
      outputs: [{name: answer}]
"#,
        )
        .unwrap();
        assert_eq!(label_fields(&spec), vec!["answer".to_string()]);
        let r = row(0, json!({"question": "q", "answer": "a"}));
        assert!(check_examples(&spec, &[r]).is_ok());
        let r = row(0, json!({"question": "q", "plan": "p"}));
        let m = mismatch(check_examples(&spec, &[r]));
        assert_eq!(m.problems[0].gaps[0].field, "answer");
    }

    #[test]
    fn every_mismatch_is_counted_and_the_first_twenty_listed() {
        let bad: Vec<ExampleRow> = (0..25).map(|i| row(i, json!({}))).collect();
        let m = mismatch(check_examples(&skill_spec(), &bad));
        assert_eq!((m.total, m.mismatched, m.problems.len()), (25, 25, 20));
        assert_eq!(m.problems[0].gaps.len(), 3);
        let text = m.to_string();
        assert!(text.contains("example #19 (id 119)"), "{text}");
        assert!(!text.contains("example #20 "), "{text}");
        assert!(text.ends_with("... and 5 more"), "{text}");
    }
}
