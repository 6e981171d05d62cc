//! Trainsets: reading JSON arrays, JSONL and CSV; validating them with precise
//! locations; hashing for dedupe; stats and seeded stratified splits;
//! merging, near-duplicate detection ([`similar`]) and examples rebuilt from
//! traced predictions ([`from_traces`]).
//!
//! Two schemas are recognised. The *skill* schema (the original Python
//! skill-fleet's `trainset_v4.json`) is checked field by field by the skill
//! task ([`crate::tasks::skill::schema`]). Any other file is
//! a *generic* trainset: objects with arbitrary fields whose roles a program
//! decides later; only its shape and duplicates are checked.

pub mod from_traces;
pub mod merge;
mod parse;
pub mod similar;
mod split;
mod stats;
pub mod validate;

pub use parse::{detect_format, parse_text, Format};
pub use split::{stratified_split, Part, SplitFractions};
pub use stats::{gaps, stats, Gap, TrainsetStats, MIN_PER_CATEGORY};
pub use validate::validate;

use crate::config::Taxonomy;
use crate::util::content_hash;
use serde_json::{Map, Value};
use std::fmt;
use std::path::Path;

/// One example as read from a file: its position and its fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Example {
    /// 0-based position among the file's examples.
    pub index: usize,
    /// 1-based line where the example starts, when the format has lines.
    pub line: Option<usize>,
    pub fields: Map<String, Value>,
}

impl Example {
    /// Content hash of the fields (key order does not matter).
    pub fn hash(&self) -> String {
        content_hash(&Value::Object(self.fields.clone()))
    }

    /// A string field, if present and a string.
    pub fn str_field(&self, key: &str) -> Option<&str> {
        self.fields.get(key).and_then(Value::as_str)
    }

    /// The example's category (splits are stratified by it): the skill
    /// task's, or a generic example's `category` field.
    pub fn category(&self) -> Option<String> {
        crate::tasks::skill::schema::category(&self.fields)
            .or_else(|| self.str_field("category").map(str::to_string))
    }

    /// The example's style (splits are stratified by it too): the skill task's.
    pub fn style(&self) -> Option<String> {
        crate::tasks::skill::schema::style(&self.fields)
    }

    /// Where the example came from, when recorded.
    pub fn source(&self) -> Option<String> {
        self.str_field("source").map(str::to_string)
    }
}

/// Which validation rules apply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Schema {
    Skill,
    Generic,
}

impl Schema {
    /// The skill schema when the examples carry its fields (the rule is the
    /// skill task's: [`crate::tasks::skill::schema::carries_skill_fields`]),
    /// else the generic one.
    pub fn detect(examples: &[Example]) -> Schema {
        if crate::tasks::skill::schema::carries_skill_fields(examples) {
            Schema::Skill
        } else {
            Schema::Generic
        }
    }
}

/// What kind of problem a trainset has; stable names for tests and `--json`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    MalformedJson,
    MalformedCsv,
    NotArray,
    NotObject,
    EmptyFile,
    EmptyArray,
    MissingField,
    WrongType,
    InvalidLiteral,
    NotKebabCase,
    NamePathMismatch,
    UnknownCategory,
    BadPath,
    DuplicateName,
    DuplicateTask,
    DuplicateExample,
    EmptyString,
    KeywordCount,
    NotLowercase,
    DescriptionPrefix,
    DescriptionLength,
    EmptyExample,
}

impl ProblemKind {
    /// The snake_case name used in manifests and JSON output.
    pub fn as_str(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }
}

/// One problem in a trainset file, located as precisely as the format allows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Problem {
    pub file: String,
    pub line: Option<usize>,
    pub column: Option<usize>,
    /// 0-based example index.
    pub index: Option<usize>,
    pub field: Option<String>,
    pub kind: ProblemKind,
    /// What was found and what was expected.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file)?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(col) = self.column {
                write!(f, ":{col}")?;
            }
        }
        write!(f, ":")?;
        if let Some(i) = self.index {
            write!(f, " example #{i}")?;
        }
        if let Some(field) = &self.field {
            write!(f, " field `{field}`")?;
        }
        write!(f, " [{}] {}", self.kind.as_str(), self.message)
    }
}

/// One problem per line, for error messages.
pub fn format_problems(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The problems of one example on one line, `field message; ...`: how a
/// generated example's rejection says what was wrong with it.
pub fn problems_inline(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| match &p.field {
            Some(f) => format!("{f} {}", p.message),
            None => p.message.clone(),
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// A parsed and validated trainset, ready to store.
#[derive(Debug, Clone)]
pub struct Trainset {
    pub format: Format,
    pub schema: Schema,
    pub examples: Vec<Example>,
}

impl Trainset {
    /// Content hash of the whole trainset: independent of file format and key
    /// order, so importing the same examples twice finds the same trainset.
    pub fn content_hash(&self) -> String {
        let all = Value::Array(
            self.examples
                .iter()
                .map(|e| Value::Object(e.fields.clone()))
                .collect(),
        );
        content_hash(&all)
    }
}

/// Reads, parses and validates a trainset file, returning every problem at once.
pub fn load_file(path: &Path, taxonomy: &Taxonomy) -> crate::Result<Trainset> {
    let text = std::fs::read_to_string(path).map_err(|e| crate::Error::io(path, e))?;
    let format = detect_format(path);
    load_text(&path.display().to_string(), &text, format, taxonomy)
}

/// Parses and validates trainset text; `file` names it in problems.
pub fn load_text(
    file: &str,
    text: &str,
    format: Format,
    taxonomy: &Taxonomy,
) -> crate::Result<Trainset> {
    let (examples, mut problems) = parse_text(file, text, format);
    let schema = Schema::detect(&examples);
    problems.extend(validate(file, &examples, schema, taxonomy));
    if problems.is_empty() {
        Ok(Trainset {
            format,
            schema,
            examples,
        })
    } else {
        Err(crate::Error::InvalidTrainset(problems))
    }
}
