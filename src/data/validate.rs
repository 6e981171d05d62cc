//! Validation of trainsets, reporting every problem with its location: the
//! [`Checker`] that records problems, the generic schema's checks, and the
//! dispatch to a task's own schema (the skill schema lives in
//! [`crate::tasks::skill::schema`]).

use super::{Example, Problem, ProblemKind, Schema};
use crate::config::Taxonomy;
use serde_json::Value;
use std::collections::HashMap;

/// Collects the problems of one file, so a task's schema checks report them
/// with the same location and wording as the generic ones.
pub struct Checker<'a> {
    file: &'a str,
    problems: Vec<Problem>,
}

impl<'a> Checker<'a> {
    /// A checker for the examples of `file` (named in every problem).
    pub fn new(file: &'a str) -> Self {
        Checker {
            file,
            problems: Vec::new(),
        }
    }

    /// The problems reported so far.
    pub fn into_problems(self) -> Vec<Problem> {
        self.problems
    }

    /// Records a problem of example `ex`, at its line when known.
    pub fn report(
        &mut self,
        ex: &Example,
        field: Option<&str>,
        kind: ProblemKind,
        message: String,
    ) {
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
    pub fn string<'e>(&mut self, ex: &'e Example, key: &str) -> Option<&'e str> {
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
    pub fn string_list<'e>(&mut self, ex: &'e Example, key: &str) -> Option<Vec<&'e str>> {
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
    let mut c = Checker::new(file);
    match schema {
        Schema::Skill => crate::tasks::skill::schema::check(&mut c, examples, taxonomy),
        Schema::Generic => check_generic(&mut c, examples),
    }
    c.into_problems()
}

/// The generic schema: fields are free, but no example may be empty and no
/// two may be identical.
fn check_generic(c: &mut Checker<'_>, examples: &[Example]) {
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
