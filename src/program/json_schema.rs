//! The JSON adapter's answer as a JSON Schema, for servers that constrain
//! decoding by schema rather than by grammar: OpenAI's `response_format`
//! (`json_schema`, strict) and llama-server's `json_schema` field.
//!
//! The schema says what [`super::grammar::compile`] says for the JSON
//! adapter, built from the same pieces: each answer field a required
//! property in order, a `Literal[...]` an `enum`, a list an array with the
//! same item bounds, and every other string a `pattern` rendered from the
//! grammar's own node for that value, so the two cannot disagree.

use super::adapter::answer_fields;
use super::grammar::{class, list_bounds, rules, scalar, GrammarError, Node};
use super::signature::FieldType;
use super::spec::PredictorSpec;
use serde_json::{json, Map, Value};

/// The schema of predictor `p`'s JSON answer. `constants` are the program's
/// resolved constants (patterns draw their alternatives from them).
pub fn answer_schema(
    p: &PredictorSpec,
    constants: &Map<String, Value>,
) -> Result<Value, GrammarError> {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for f in answer_fields(p) {
        let r = rules(&f);
        let schema = match &f.ty {
            FieldType::List(inner) => {
                let (min, max) = list_bounds(inner, &r);
                json!({
                    "type": "array",
                    "items": scalar_schema(scalar(&f, inner, &r, constants, true, true)?, inner),
                    "minItems": min,
                    "maxItems": max,
                })
            }
            ty => scalar_schema(scalar(&f, ty, &r, constants, true, false)?, ty),
        };
        required.push(Value::String(f.name.clone()));
        properties.insert(f.name.clone(), schema);
    }
    Ok(json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    }))
}

/// A scalar's schema from its JSON grammar node (`node` includes the quotes
/// of a string, which the schema's `pattern` does not see).
fn scalar_schema(node: Node, ty: &FieldType) -> Value {
    match ty {
        FieldType::Literal(values) => json!({"type": "string", "enum": values}),
        FieldType::Bool => json!({"type": "boolean"}),
        FieldType::Int => json!({"type": "integer"}),
        FieldType::Float => json!({"type": "number"}),
        FieldType::Str | FieldType::List(_) => {
            let inner = match node {
                Node::Seq(mut parts)
                    if parts.len() == 3
                        && parts[0] == Node::Lit("\"".into())
                        && parts[2] == Node::Lit("\"".into()) =>
                {
                    parts.swap_remove(1)
                }
                other => other,
            };
            json!({"type": "string", "pattern": format!("^{}$", regex(&inner))})
        }
    }
}

/// `n` as an ECMA-262 regular expression (the dialect JSON Schema uses).
fn regex(n: &Node) -> String {
    match n {
        Node::Lit(s) => s.chars().map(|c| escape(c, false)).collect(),
        Node::Class { ranges, negated } => class(ranges, *negated, escape),
        Node::Seq(items) => items.iter().map(regex).collect(),
        Node::Alt(items) => format!(
            "(?:{})",
            items.iter().map(regex).collect::<Vec<_>>().join("|")
        ),
        Node::Repeat { node, min, max } => {
            let inner = regex(node);
            let count = if (min, max) == (&0, &1) {
                "?".to_string()
            } else {
                format!("{{{min},{max}}}")
            };
            format!("(?:{inner}){count}")
        }
    }
}

fn escape(c: char, in_class: bool) -> String {
    match c {
        '\n' => "\\n".into(),
        '\r' => "\\r".into(),
        '\t' => "\\t".into(),
        '\\' | ']' | '[' | '^' | '-' if in_class => format!("\\{c}"),
        '\\' | '.' | '*' | '+' | '?' | '(' | ')' | '[' | ']' | '{' | '}' | '|' | '^' | '$'
        | '/'
            if !in_class =>
        {
            format!("\\{c}")
        }
        c => c.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::program::spec::ProgramSpec;

    fn bundled() -> (ProgramSpec, Map<String, Value>) {
        let spec = ProgramSpec::load(std::path::Path::new(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/programs/skill_understanding.yaml"
        )))
        .expect("the bundled program");
        let names = crate::config::Taxonomy::bundled().names();
        let constants = spec.resolve_constants(&names);
        (spec, constants)
    }

    fn gold_answers() -> Vec<Value> {
        let text = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/config/training/trainset.json"
        ))
        .expect("the bundled trainset");
        serde_json::from_str(&text).expect("JSON")
    }

    #[test]
    fn the_bundled_answer_schema_accepts_every_gold_answer_and_refuses_invented_ones() {
        let (spec, constants) = bundled();
        let p = &spec.predictors[0];
        let schema = answer_schema(p, &constants).expect("schema");
        let props = schema["properties"].as_object().expect("properties");
        let path = &props["taxonomy_path"]["pattern"];
        let path = regex::Regex::new(path.as_str().expect("a pattern")).expect("a valid regex");
        let style = props["skill_style"]["enum"].as_array().expect("an enum");
        for row in gold_answers() {
            let gold_path = row["expected_taxonomy_path"].as_str().unwrap_or("");
            assert!(path.is_match(gold_path), "gold path {gold_path} refused");
            let gold_style = &row["expected_skill_style"];
            assert!(
                style.contains(gold_style),
                "gold style {gold_style} refused"
            );
        }
        assert!(
            !path.is_match("asyncio/python-patterns"),
            "an invented category"
        );
        assert!(!path.is_match("dataclass-slots"), "no category");
        assert!(!style.contains(&json!("freeform")));
        assert_eq!(schema["additionalProperties"], json!(false));
        assert_eq!(
            schema["required"].as_array().map(Vec::len),
            Some(props.len()),
            "every field is required (OpenAI's strict mode asks for it)"
        );
    }

    #[test]
    fn a_regex_escapes_what_the_grammar_means_literally() {
        let n = Node::Seq(vec![
            Node::Lit("a.b/c".into()),
            Node::Class {
                ranges: vec![('-', '-'), ('a', 'z')],
                negated: true,
            },
        ]);
        let re = regex::Regex::new(&format!("^{}$", regex(&n))).expect("valid");
        assert!(re.is_match("a.b/c1"));
        assert!(!re.is_match("axb/c1"), "`.` is literal");
        assert!(!re.is_match("a.b/c-"), "`-` is excluded");
    }
}
