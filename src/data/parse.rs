//! Reading trainset files (JSON array, JSONL, CSV) into [`Example`]s with positions.

use super::{Example, Problem, ProblemKind};
use crate::tasks::skill::schema::{csv_header_is_skill, LIST_KEYS, SKILL_KEYS};
use serde_json::{Map, Value};
use std::path::Path;

/// A trainset file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Jsonl,
    Csv,
}

impl Format {
    /// Name stored in the `trainsets.format` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Json => "json",
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// Format from the file extension (`.jsonl`/`.ndjson`, `.csv`, anything else JSON).
pub fn detect_format(path: &Path) -> Format {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("jsonl") | Some("ndjson") => Format::Jsonl,
        Some("csv") => Format::Csv,
        _ => Format::Json,
    }
}

fn problem(file: &str, kind: ProblemKind, message: impl Into<String>) -> Problem {
    Problem {
        file: file.to_string(),
        line: None,
        column: None,
        index: None,
        field: None,
        kind,
        message: message.into(),
    }
}

/// Parses text in `format`, returning the examples that could be read and a
/// problem for everything that could not.
pub fn parse_text(file: &str, text: &str, format: Format) -> (Vec<Example>, Vec<Problem>) {
    if text.trim().is_empty() {
        return (
            Vec::new(),
            vec![problem(
                file,
                ProblemKind::EmptyFile,
                "the file is empty; expected at least one example",
            )],
        );
    }
    match format {
        Format::Json => parse_json_array(file, text),
        Format::Jsonl => parse_jsonl(file, text),
        Format::Csv => parse_csv(file, text),
    }
}

fn value_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_json_array(file: &str, text: &str) -> (Vec<Example>, Vec<Problem>) {
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => {
            let mut p = problem(
                file,
                ProblemKind::MalformedJson,
                format!("invalid JSON: {e}"),
            );
            p.line = Some(e.line());
            p.column = Some(e.column());
            return (Vec::new(), vec![p]);
        }
    };
    let Value::Array(items) = value else {
        return (
            Vec::new(),
            vec![problem(
                file,
                ProblemKind::NotArray,
                format!(
                    "the top level is {}; expected a JSON array of example objects",
                    value_kind(&value)
                ),
            )],
        );
    };
    if items.is_empty() {
        return (
            Vec::new(),
            vec![problem(
                file,
                ProblemKind::EmptyArray,
                "the array is empty; expected at least one example",
            )],
        );
    }
    let lines = element_lines(text);
    let mut examples = Vec::new();
    let mut problems = Vec::new();
    for (index, item) in items.into_iter().enumerate() {
        let line = lines.get(index).copied();
        match item {
            Value::Object(fields) => examples.push(Example {
                index,
                line,
                fields,
            }),
            other => {
                let mut p = problem(
                    file,
                    ProblemKind::NotObject,
                    format!("element is {}; expected an object", value_kind(&other)),
                );
                p.index = Some(index);
                p.line = line;
                problems.push(p);
            }
        }
    }
    (examples, problems)
}

/// 1-based start line of every element of a top-level JSON array. Only called on
/// text that already parsed, so a simple scanner of strings and nesting suffices.
fn element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let mut line = 1;
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    let mut expect_element = false;
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if depth == 1 && expect_element && c != ']' {
            lines.push(line);
            expect_element = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                if depth == 1 {
                    expect_element = true;
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expect_element = true,
            _ => {}
        }
    }
    lines
}

fn parse_jsonl(file: &str, text: &str) -> (Vec<Example>, Vec<Problem>) {
    let mut examples = Vec::new();
    let mut problems = Vec::new();
    let mut index = 0;
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        if raw.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<Value>(raw) {
            Ok(Value::Object(fields)) => examples.push(Example {
                index,
                line: Some(line),
                fields,
            }),
            Ok(other) => {
                let mut p = problem(
                    file,
                    ProblemKind::NotObject,
                    format!(
                        "line is {}; expected one JSON object per line",
                        value_kind(&other)
                    ),
                );
                p.index = Some(index);
                p.line = Some(line);
                problems.push(p);
            }
            Err(e) => {
                let mut p = problem(
                    file,
                    ProblemKind::MalformedJson,
                    format!("invalid JSON: {e}; expected one JSON object per line"),
                );
                p.index = Some(index);
                p.line = Some(line);
                p.column = Some(e.column());
                problems.push(p);
            }
        }
        index += 1;
    }
    if examples.is_empty() && problems.is_empty() {
        problems.push(problem(
            file,
            ProblemKind::EmptyFile,
            "no examples in the file",
        ));
    }
    (examples, problems)
}

fn parse_csv(file: &str, text: &str) -> (Vec<Example>, Vec<Problem>) {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|s| s.trim().to_string()).collect(),
        Err(e) => {
            let mut p = problem(
                file,
                ProblemKind::MalformedCsv,
                format!("unreadable header: {e}"),
            );
            p.line = Some(1);
            return (Vec::new(), vec![p]);
        }
    };
    let skill_like = csv_header_is_skill(&headers);
    let mut problems = Vec::new();
    if skill_like {
        for key in SKILL_KEYS {
            if !headers.iter().any(|h| h == key) {
                let mut p = problem(
                    file,
                    ProblemKind::MissingField,
                    format!("the header has no `{key}` column; expected all of the skill schema's columns"),
                );
                p.line = Some(1);
                p.field = Some(key.to_string());
                problems.push(p);
            }
        }
        if !problems.is_empty() {
            return (Vec::new(), problems);
        }
    }
    let mut examples = Vec::new();
    for (index, record) in reader.records().enumerate() {
        match record {
            Ok(rec) => {
                let line = rec.position().map(|p| p.line() as usize);
                let mut fields = Map::new();
                for (h, v) in headers.iter().zip(rec.iter()) {
                    let value = if skill_like && LIST_KEYS.contains(&h.as_str()) {
                        Value::Array(
                            v.split(';')
                                .map(str::trim)
                                .filter(|s| !s.is_empty())
                                .map(|s| Value::String(s.to_string()))
                                .collect(),
                        )
                    } else {
                        Value::String(v.to_string())
                    };
                    fields.insert(h.clone(), value);
                }
                examples.push(Example {
                    index,
                    line,
                    fields,
                });
            }
            Err(e) => {
                let mut p = problem(file, ProblemKind::MalformedCsv, format!("{e}"));
                p.index = Some(index);
                p.line = e.position().map(|p| p.line() as usize);
                problems.push(p);
            }
        }
    }
    if examples.is_empty() && problems.is_empty() {
        problems.push(problem(
            file,
            ProblemKind::EmptyFile,
            "no rows below the header",
        ));
    }
    (examples, problems)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn element_lines_follow_nesting_and_strings() {
        let text = "[\n  {\"a\": \"x,]{\"},\n  {\"b\": [1,\n 2]}\n,\n 3]";
        assert_eq!(element_lines(text), vec![2, 3, 6]);
    }

    #[test]
    fn csv_lists_are_semicolon_separated() {
        let text = "task_description,expected_taxonomy_path,expected_name,expected_skill_style,expected_subdirectories,expected_keywords,expected_description\n\"Create a X skill: y\",rust/x,x,minimal,references; examples,a;b;c,Use when\n";
        let (ex, problems) = parse_text("t.csv", text, Format::Csv);
        assert!(problems.is_empty(), "{problems:?}");
        assert_eq!(
            ex[0].fields["expected_keywords"],
            serde_json::json!(["a", "b", "c"])
        );
        assert_eq!(ex[0].line, Some(2));
    }
}
