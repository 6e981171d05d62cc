//! Signatures: typed input and output fields plus instructions, DSPy-style.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

/// The type of a field: what a parser accepts and how a value is rendered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FieldType {
    Str,
    Int,
    Float,
    Bool,
    List(Box<FieldType>),
    /// One of a fixed set of strings.
    Literal(Vec<String>),
}

impl FieldType {
    /// Parses `str`, `int`, `float`, `bool`, `list[T]`, `Literal[a, b]`
    /// (quotes around literal values optional).
    pub fn parse(s: &str) -> Result<FieldType, String> {
        let t = s.trim();
        let inner = |prefix: &str| -> Option<&str> {
            let lower = t.to_ascii_lowercase();
            if lower.starts_with(&prefix.to_ascii_lowercase()) && t.ends_with(']') {
                Some(&t[prefix.len()..t.len() - 1])
            } else {
                None
            }
        };
        if let Some(i) = inner("list[") {
            return Ok(FieldType::List(Box::new(FieldType::parse(i)?)));
        }
        if let Some(i) = inner("literal[") {
            let values: Vec<String> = i
                .split(',')
                .map(|v| v.trim().trim_matches(|c| c == '\'' || c == '"').to_string())
                .filter(|v| !v.is_empty())
                .collect();
            if values.is_empty() {
                return Err(format!("`{s}`: Literal needs at least one value"));
            }
            return Ok(FieldType::Literal(values));
        }
        match t.to_ascii_lowercase().as_str() {
            "str" | "string" | "" => Ok(FieldType::Str),
            "int" | "integer" => Ok(FieldType::Int),
            "float" | "number" => Ok(FieldType::Float),
            "bool" | "boolean" => Ok(FieldType::Bool),
            "list" => Ok(FieldType::List(Box::new(FieldType::Str))),
            _ => Err(format!(
                "`{s}`: expected str, int, float, bool, list[...] or Literal[...]"
            )),
        }
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FieldType::Str => write!(f, "str"),
            FieldType::Int => write!(f, "int"),
            FieldType::Float => write!(f, "float"),
            FieldType::Bool => write!(f, "bool"),
            FieldType::List(t) => write!(f, "list[{t}]"),
            FieldType::Literal(v) => write!(f, "Literal[{}]", v.join(", ")),
        }
    }
}

impl Serialize for FieldType {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for FieldType {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        FieldType::parse(&s).map_err(serde::de::Error::custom)
    }
}

fn default_type() -> FieldType {
    FieldType::Str
}

/// One input or output field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Field {
    pub name: String,
    #[serde(rename = "type", default = "default_type")]
    pub ty: FieldType,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Human-readable constraints rendered into prompts ("3-6 items", "kebab-case").
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub constraints: Vec<String>,
    /// The shape of a `str` output under constrained decoding, e.g.
    /// `{categories}/{kebab-case}`: `{NAME}` is one item of the program's
    /// constant NAME, or `{kebab-case}`, `{word}`, `{text}`; the rest is
    /// literal. Not shown in prompts (see `program::grammar`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pattern: Option<String>,
}

impl Field {
    /// "Taxonomy Path" for `taxonomy_path`: the label used in completion prompts.
    pub fn label(&self) -> String {
        self.name
            .split('_')
            .filter(|w| !w.is_empty())
            .map(|w| {
                let mut c = w.chars();
                match c.next() {
                    Some(f) => f.to_uppercase().collect::<String>() + c.as_str(),
                    None => String::new(),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Description with type and constraints, for prompt headers.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        if !self.description.is_empty() {
            parts.push(self.description.clone());
        }
        match &self.ty {
            FieldType::Literal(v) => parts.push(format!("one of: {}", v.join(", "))),
            FieldType::List(inner) => match inner.as_ref() {
                FieldType::Literal(v) => {
                    parts.push(format!("comma-separated, each one of: {}", v.join(", ")))
                }
                _ => parts.push("comma-separated list".into()),
            },
            FieldType::Int | FieldType::Float => parts.push(format!("a number ({})", self.ty)),
            FieldType::Bool => parts.push("true or false".into()),
            FieldType::Str => {}
        }
        parts.extend(self.constraints.iter().cloned());
        parts.join("; ")
    }
}

/// Instructions plus typed inputs and outputs of one predictor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signature {
    #[serde(default)]
    pub instructions: String,
    pub inputs: Vec<Field>,
    pub outputs: Vec<Field>,
}

impl Signature {
    /// An output field by name.
    pub fn output(&self, name: &str) -> Option<&Field> {
        self.outputs.iter().find(|f| f.name == name)
    }

    /// Checks names are unique and non-empty.
    pub fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for f in self.inputs.iter().chain(&self.outputs) {
            if f.name.trim().is_empty()
                || !f
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_')
            {
                return Err(format!(
                    "field name `{}`: expected letters, digits and '_'",
                    f.name
                ));
            }
            if !seen.insert(f.name.as_str()) {
                return Err(format!("field `{}` appears twice", f.name));
            }
        }
        if self.outputs.is_empty() {
            return Err("a signature needs at least one output field".into());
        }
        Ok(())
    }
}

/// Renders a value for a prompt: strings bare, lists comma-separated.
pub fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Array(items) if items.is_empty() => "none".into(),
        Value::Array(items) => items
            .iter()
            .map(render_value)
            .collect::<Vec<_>>()
            .join(", "),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_types() {
        assert_eq!(FieldType::parse("str").unwrap(), FieldType::Str);
        assert_eq!(
            FieldType::parse("Literal['a', \"b\", c]").unwrap(),
            FieldType::Literal(vec!["a".into(), "b".into(), "c".into()])
        );
        assert_eq!(
            FieldType::parse("list[Literal[x, y]]").unwrap(),
            FieldType::List(Box::new(FieldType::Literal(vec!["x".into(), "y".into()])))
        );
        assert!(FieldType::parse("dict").is_err());
        let t = FieldType::parse("list[int]").unwrap();
        assert_eq!(FieldType::parse(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn labels() {
        let f = Field {
            name: "taxonomy_path".into(),
            ty: FieldType::Str,
            description: String::new(),
            constraints: vec![],
            pattern: None,
        };
        assert_eq!(f.label(), "Taxonomy Path");
    }
}
