//! Adapters render one predictor call (instructions, demos, inputs) into a
//! prompt and parse the model's answer back into typed fields.

use super::parse::parse_value;
use super::signature::{render_value, Field, FieldType, Signature};
use super::spec::{AdapterKind, Demo, ModuleKind, PredictorSpec};
use crate::lm::{ChatMessage, Prompt};
use serde_json::{Map, Value};

/// Why an answer could not be parsed; names the field and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParseError {
    #[error("missing output field `{0}`")]
    Missing(String),
    #[error("field `{field}`: {message}")]
    Invalid { field: String, message: String },
    #[error("no JSON object in the answer: {0}")]
    NoJson(String),
}

/// A rendered call: the prompt plus stop strings that end the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub prompt: Prompt,
    pub stop: Vec<String>,
}

/// The reasoning field ChainOfThought adds before the outputs.
pub fn reasoning_field() -> Field {
    Field {
        name: "reasoning".into(),
        ty: FieldType::Str,
        description: "Let's think step by step in order to produce the outputs".into(),
        constraints: vec![],
        pattern: None,
    }
}

/// Output fields as the model writes them (with reasoning first for CoT).
pub fn answer_fields(p: &PredictorSpec) -> Vec<Field> {
    let mut out = Vec::new();
    if p.module == ModuleKind::ChainOfThought {
        out.push(reasoning_field());
    }
    out.extend(p.signature.outputs.iter().cloned());
    out
}

/// Renders a call. `constants` are inputs fixed by the program; they are shown
/// once in the header rather than in every demo, which keeps prompts short and
/// their prefix identical across examples (so the local model reuses its KV cache).
pub fn render(
    kind: AdapterKind,
    p: &PredictorSpec,
    constants: &Map<String, Value>,
    inputs: &Map<String, Value>,
) -> Rendered {
    match kind {
        AdapterKind::Completion => render_completion(p, constants, inputs),
        AdapterKind::Chat => render_chat(p, constants, inputs, false),
        AdapterKind::Json => render_chat(p, constants, inputs, true),
    }
}

/// Parses an answer for predictor `p` rendered with `kind`.
pub fn parse(
    kind: AdapterKind,
    p: &PredictorSpec,
    answer: &str,
) -> Result<Map<String, Value>, ParseError> {
    match kind {
        AdapterKind::Completion => parse_completion(p, answer),
        AdapterKind::Chat => parse_markers(p, answer),
        AdapterKind::Json => parse_json(p, answer),
    }
}

fn is_constant(constants: &Map<String, Value>, f: &Field) -> bool {
    constants.contains_key(&f.name)
}

fn instructions(sig: &Signature) -> String {
    let t = sig.instructions.trim();
    if t.is_empty() {
        let ins: Vec<String> = sig.inputs.iter().map(|f| format!("`{}`", f.name)).collect();
        let outs: Vec<String> = sig
            .outputs
            .iter()
            .map(|f| format!("`{}`", f.name))
            .collect();
        format!(
            "Given the fields {}, produce the fields {}.",
            ins.join(", "),
            outs.join(", ")
        )
    } else {
        t.to_string()
    }
}

fn render_completion(
    p: &PredictorSpec,
    constants: &Map<String, Value>,
    inputs: &Map<String, Value>,
) -> Rendered {
    let sig = &p.signature;
    let outputs = answer_fields(p);
    let mut s = String::new();
    s.push_str(&instructions(sig));
    s.push_str("\n\n");
    for f in sig.inputs.iter().filter(|f| is_constant(constants, f)) {
        s.push_str(&format!(
            "{}: {}\n",
            f.label(),
            render_value(&constants[&f.name])
        ));
    }
    s.push_str("\nFormat:\n");
    for f in sig
        .inputs
        .iter()
        .filter(|f| !is_constant(constants, f))
        .chain(&outputs)
    {
        let d = f.describe();
        s.push_str(&format!(
            "{}: {}\n",
            f.label(),
            if d.is_empty() { "...".into() } else { d }
        ));
    }
    let block = |values: &Map<String, Value>, with_outputs: bool| -> String {
        let mut b = String::new();
        for f in sig.inputs.iter().filter(|f| !is_constant(constants, f)) {
            b.push_str(&format!(
                "{}: {}\n",
                f.label(),
                values.get(&f.name).map(render_value).unwrap_or_default()
            ));
        }
        if with_outputs {
            for f in &outputs {
                if let Some(v) = values.get(&f.name) {
                    b.push_str(&format!("{}: {}\n", f.label(), render_value(v)));
                }
            }
        }
        b
    };
    for demo in &p.demos {
        s.push_str("\n---\n\n");
        s.push_str(&block(demo, true));
    }
    s.push_str("\n---\n\n");
    s.push_str(&block(inputs, false));
    if let Some(first) = outputs.first() {
        s.push_str(&format!("{}:", first.label()));
    }
    // The answer ends at a blank line, a separator, or where the model starts
    // writing the next example's first input.
    let mut stop = vec!["\n\n".to_string(), "\n---".to_string()];
    if let Some(f) = sig.inputs.iter().find(|f| !is_constant(constants, f)) {
        stop.push(format!("\n{}:", f.label()));
    }
    Rendered {
        prompt: Prompt::Text(s),
        stop,
    }
}

fn parse_completion(p: &PredictorSpec, answer: &str) -> Result<Map<String, Value>, ParseError> {
    let outputs = answer_fields(p);
    let Some(first) = outputs.first() else {
        return Ok(Map::new());
    };
    let text = format!("{}:{}", first.label(), answer);
    let mut raw: Vec<(usize, String)> = Vec::new();
    for line in text.lines() {
        let found = outputs.iter().enumerate().find_map(|(i, f)| {
            let label = f.label();
            let lower = line.trim_start().to_lowercase();
            lower
                .strip_prefix(&format!("{}:", label.to_lowercase()))
                .or_else(|| lower.strip_prefix(&format!("{}:", f.name)))
                .map(|_| {
                    let start = line.find(':').map(|c| c + 1).unwrap_or(0);
                    (i, line[start..].to_string())
                })
        });
        match found {
            Some((i, value)) if !raw.iter().any(|(j, _)| *j == i) => raw.push((i, value)),
            // A line that starts with a later demo's input label ends the answer.
            _ if p
                .signature
                .inputs
                .iter()
                .any(|f| line.trim_start().starts_with(&format!("{}:", f.label()))) =>
            {
                break
            }
            _ => {
                if let Some((_, v)) = raw.last_mut() {
                    v.push('\n');
                    v.push_str(line);
                }
            }
        }
    }
    typed(
        &outputs,
        raw.into_iter()
            .map(|(i, v)| (outputs[i].name.clone(), v))
            .collect(),
    )
}

/// Checks presence and types of every answer field.
fn typed(fields: &[Field], raw: Vec<(String, String)>) -> Result<Map<String, Value>, ParseError> {
    let mut out = Map::new();
    for f in fields {
        let Some((_, text)) = raw.iter().find(|(n, _)| *n == f.name) else {
            return Err(ParseError::Missing(f.name.clone()));
        };
        let v = parse_value(text, &f.ty).map_err(|message| ParseError::Invalid {
            field: f.name.clone(),
            message,
        })?;
        out.insert(f.name.clone(), v);
    }
    Ok(out)
}

fn marker(name: &str) -> String {
    format!("[[ ## {name} ## ]]")
}

fn field_list(fields: &[&Field]) -> String {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| {
            let d = f.describe();
            format!(
                "{}. `{}` ({}){}",
                i + 1,
                f.name,
                f.ty,
                if d.is_empty() {
                    String::new()
                } else {
                    format!(": {d}")
                }
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn render_chat(
    p: &PredictorSpec,
    constants: &Map<String, Value>,
    inputs: &Map<String, Value>,
    json: bool,
) -> Rendered {
    let sig = &p.signature;
    let outputs = answer_fields(p);
    let variable: Vec<&Field> = sig
        .inputs
        .iter()
        .filter(|f| !is_constant(constants, f))
        .collect();
    let mut system = String::new();
    system.push_str("Your input fields are:\n");
    system.push_str(&field_list(&variable));
    system.push_str("\nYour output fields are:\n");
    system.push_str(&field_list(&outputs.iter().collect::<Vec<_>>()));
    for f in sig.inputs.iter().filter(|f| is_constant(constants, f)) {
        system.push_str(&format!(
            "\n\nFixed context `{}`: {}",
            f.name,
            render_value(&constants[&f.name])
        ));
    }
    if json {
        let keys: Vec<String> = outputs.iter().map(|f| format!("\"{}\"", f.name)).collect();
        system.push_str(&format!(
            "\n\nInputs arrive as `[[ ## field ## ]]` sections. Answer with one JSON object with the keys {} and nothing else.",
            keys.join(", ")
        ));
    } else {
        system.push_str("\n\nAll interactions will be structured in the following way, with the appropriate values filled in.\n\n");
        for f in variable.iter().copied().chain(&outputs) {
            system.push_str(&format!("{}\n{{{}}}\n\n", marker(&f.name), f.name));
        }
        system.push_str(&marker("completed"));
    }
    system.push_str(&format!(
        "\n\nIn adhering to this structure, your objective is: {}",
        instructions(sig)
    ));
    let user = |values: &Map<String, Value>| -> String {
        let mut u: String = variable
            .iter()
            .map(|f| {
                format!(
                    "{}\n{}\n\n",
                    marker(&f.name),
                    values.get(&f.name).map(render_value).unwrap_or_default()
                )
            })
            .collect();
        if json {
            u.push_str("Respond with a JSON object.");
        } else {
            let order: Vec<String> = outputs
                .iter()
                .map(|f| format!("`{}`", marker(&f.name)))
                .collect();
            u.push_str(&format!(
                "Respond with the corresponding output fields, starting with the field {}, and then ending with the marker for `{}`.",
                order.join(", then "),
                marker("completed")
            ));
        }
        u
    };
    let kind = if json {
        AdapterKind::Json
    } else {
        AdapterKind::Chat
    };
    let assistant = |values: &Map<String, Value>| render_answer(kind, p, values);
    let mut messages = vec![ChatMessage {
        role: "system".into(),
        content: system,
    }];
    for demo in &p.demos {
        messages.push(ChatMessage {
            role: "user".into(),
            content: user(demo),
        });
        messages.push(ChatMessage {
            role: "assistant".into(),
            content: assistant(demo),
        });
    }
    messages.push(ChatMessage {
        role: "user".into(),
        content: user(inputs),
    });
    // The answer is complete at the end marker. Without a stop there, a base
    // model writes on (a new user turn, another answer) to the token limit:
    // in the chat-mode runs of bench/quality_vs_dspy.sh every call did, which
    // doubled their time. The parser ends the last field at the end of the
    // text, so the marker itself is not needed.
    Rendered {
        prompt: Prompt::Chat(messages),
        stop: if json {
            Vec::new()
        } else {
            vec![marker("completed")]
        },
    }
}

/// An answer with `values` as the model writes it under adapter `kind`
/// (a demo's answer; for the completion adapter, the text after the first
/// output's label and colon). Fields missing from `values` are left out.
pub fn render_answer(kind: AdapterKind, p: &PredictorSpec, values: &Map<String, Value>) -> String {
    let outputs = answer_fields(p);
    let present = outputs
        .iter()
        .filter_map(|f| values.get(&f.name).map(|v| (f, v)));
    match kind {
        AdapterKind::Completion => present
            .enumerate()
            .map(|(i, (f, v))| {
                if i == 0 {
                    format!(" {}\n", render_value(v))
                } else {
                    format!("{}: {}\n", f.label(), render_value(v))
                }
            })
            .collect(),
        AdapterKind::Json => {
            let obj: Map<String, Value> =
                present.map(|(f, v)| (f.name.clone(), v.clone())).collect();
            Value::Object(obj).to_string()
        }
        AdapterKind::Chat => {
            let mut a: String = present
                .map(|(f, v)| format!("{}\n{}\n\n", marker(&f.name), render_value(v)))
                .collect();
            a.push_str(&marker("completed"));
            a
        }
    }
}

fn parse_markers(p: &PredictorSpec, answer: &str) -> Result<Map<String, Value>, ParseError> {
    let outputs = answer_fields(p);
    let mut raw = Vec::new();
    let mut rest = answer;
    while let Some(start) = rest.find("[[ ## ") {
        let after = &rest[start + 6..];
        let Some(end) = after.find(" ## ]]") else {
            break;
        };
        let name = after[..end].trim().to_string();
        let body_start = &after[end + 6..];
        let next = body_start.find("[[ ## ").unwrap_or(body_start.len());
        if name != "completed" && !raw.iter().any(|(n, _): &(String, String)| *n == name) {
            raw.push((name, body_start[..next].trim().to_string()));
        }
        rest = &body_start[next..];
    }
    typed(&outputs, raw)
}

fn parse_json(p: &PredictorSpec, answer: &str) -> Result<Map<String, Value>, ParseError> {
    let outputs = answer_fields(p);
    let (Some(start), Some(end)) = (answer.find('{'), answer.rfind('}')) else {
        return Err(ParseError::NoJson(answer.chars().take(80).collect()));
    };
    if end < start {
        return Err(ParseError::NoJson(answer.chars().take(80).collect()));
    }
    let obj: Map<String, Value> = serde_json::from_str(&answer[start..=end])
        .map_err(|e| ParseError::NoJson(e.to_string()))?;
    let raw = outputs
        .iter()
        .filter_map(|f| {
            obj.get(&f.name).map(|v| {
                let text = match v {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                (f.name.clone(), text)
            })
        })
        .collect();
    typed(&outputs, raw)
}

/// Renders a demo block's values from a prediction plus its inputs (for bootstrapping).
pub fn demo_from(inputs: &Map<String, Value>, outputs: &Map<String, Value>) -> Demo {
    let mut d = inputs.clone();
    for (k, v) in outputs {
        d.insert(k.clone(), v.clone());
    }
    d
}
