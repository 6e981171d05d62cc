//! Strict, typed parsing of model answers into field values.

use super::signature::FieldType;
use serde_json::Value;

/// Normalises a literal for lenient comparison: case, quotes, whitespace,
/// trailing punctuation and `-`/` `/`_` separators are ignored.
fn literal_key(s: &str) -> String {
    s.trim_matches(|c: char| {
        c.is_whitespace() || matches!(c, '\'' | '"' | '`' | '*' | '.' | ',' | ';')
    })
    .to_lowercase()
    .replace(['-', ' '], "_")
}

/// Parses `text` as a value of type `ty`, explaining what was expected on failure.
pub fn parse_value(text: &str, ty: &FieldType) -> Result<Value, String> {
    let t = text.trim();
    match ty {
        FieldType::Str => Ok(Value::String(
            t.trim_matches(|c| c == '"' || c == '`').trim().to_string(),
        )),
        FieldType::Int => t
            .trim_matches(|c: char| !c.is_ascii_digit() && c != '-')
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("`{}` is not an integer", short(t))),
        FieldType::Float => t
            .trim_end_matches(['.', '%'])
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| format!("`{}` is not a number", short(t))),
        FieldType::Bool => match literal_key(t).as_str() {
            "true" | "yes" | "1" => Ok(Value::Bool(true)),
            "false" | "no" | "0" => Ok(Value::Bool(false)),
            _ => Err(format!("`{}` is not true or false", short(t))),
        },
        FieldType::Literal(values) => {
            if let Some(v) = values.iter().find(|v| v.as_str() == t) {
                return Ok(Value::String(v.clone()));
            }
            let key = literal_key(t);
            values
                .iter()
                .find(|v| literal_key(v) == key)
                .map(|v| Value::String(v.clone()))
                .ok_or_else(|| format!("`{}` is not one of: {}", short(t), values.join(", ")))
        }
        FieldType::List(inner) => {
            let items: Vec<String> = if t.starts_with('[') {
                match serde_json::from_str::<Vec<Value>>(t) {
                    Ok(vs) => vs
                        .into_iter()
                        .map(|v| match v {
                            Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect(),
                    Err(_) => {
                        let body = t.trim_start_matches('[').trim_end_matches(']');
                        if t.ends_with(']') {
                            split_items(body)
                        } else {
                            return Err(format!("`{}` is a malformed list", short(t)));
                        }
                    }
                }
            } else {
                split_items(t)
            };
            if items.len() == 1
                && matches!(literal_key(&items[0]).as_str(), "none" | "n/a" | "empty")
            {
                return Ok(Value::Array(Vec::new()));
            }
            items
                .iter()
                .map(|i| parse_value(i, inner))
                .collect::<Result<Vec<_>, _>>()
                .map(Value::Array)
        }
    }
}

fn split_items(t: &str) -> Vec<String> {
    let lines: Vec<&str> = t.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    let bullet = lines.len() > 1
        && lines
            .iter()
            .all(|l| l.starts_with('-') || l.starts_with('*'));
    let raw: Vec<String> = if bullet {
        lines.iter().map(|l| l[1..].trim().to_string()).collect()
    } else {
        t.split([',', '\n']).map(|s| s.trim().to_string()).collect()
    };
    raw.into_iter()
        .map(|s| s.trim_matches(|c| c == '\'' || c == '"').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

fn short(t: &str) -> String {
    let s: String = t.chars().take(60).collect();
    if t.chars().count() > 60 {
        format!("{s}…")
    } else {
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit() -> FieldType {
        FieldType::Literal(vec![
            "comprehensive".into(),
            "navigation_hub".into(),
            "minimal".into(),
        ])
    }

    #[test]
    fn literals_exact_then_lenient() {
        assert_eq!(parse_value("minimal", &lit()).unwrap(), json!("minimal"));
        assert_eq!(
            parse_value(" 'Navigation Hub'. ", &lit()).unwrap(),
            json!("navigation_hub")
        );
        let err = parse_value("detailed", &lit()).unwrap_err();
        assert!(
            err.contains("not one of") && err.contains("minimal"),
            "{err}"
        );
    }

    #[test]
    fn lists_numbers_bools() {
        let l = FieldType::List(Box::new(FieldType::Str));
        assert_eq!(parse_value("a, b ,c", &l).unwrap(), json!(["a", "b", "c"]));
        assert_eq!(
            parse_value("[\"a\", \"b\"]", &l).unwrap(),
            json!(["a", "b"])
        );
        assert_eq!(parse_value("- a\n- b", &l).unwrap(), json!(["a", "b"]));
        assert_eq!(parse_value("none", &l).unwrap(), json!([]));
        assert!(parse_value("[\"a\", \"b\"", &l).is_err());
        let ll = FieldType::List(Box::new(lit()));
        assert!(parse_value("minimal, huge", &ll).is_err());
        assert_eq!(parse_value("42", &FieldType::Int).unwrap(), json!(42));
        assert!(parse_value("many", &FieldType::Int).is_err());
        assert_eq!(parse_value("0.5", &FieldType::Float).unwrap(), json!(0.5));
        assert_eq!(parse_value("Yes", &FieldType::Bool).unwrap(), json!(true));
    }
}
