//! The prompts optimizers send to a language model to get new instructions,
//! kept in one place (as DSPy keeps `grounded_proposer.py`): MIPROv2's
//! dataset summary and grounded instruction proposals, and GEPA's reflection.
//!
//! Nothing here knows the bundled program: examples are shown with the
//! program's own field names, and fields fixed by the spec's `constants`
//! (e.g. a long category list) are left out, since every example repeats them.

use crate::eval::{EvalExample, ExampleScore};
use crate::lm::client::{CallContext, LmClient};
use crate::lm::LmRequest;
use crate::program::signature::render_value;
use crate::program::{Demo, PredictorSpec, ProgramSpec};
use serde_json::{Map, Value};

/// Tips mixed into instruction proposals for diversity (as in DSPy's proposer).
pub const TIPS: [&str; 6] = [
    "",
    "Don't be afraid to be creative when writing the new instruction.",
    "Keep the instruction clear and concise.",
    "Make the instruction informative and descriptive.",
    "Mention what is at stake if the answer is wrong.",
    "Begin the instruction with a persona relevant to the task (\"You are a ...\").",
];

/// `field: value` lines of `values`, without the program's constants.
pub fn field_lines(spec: &ProgramSpec, values: &Map<String, Value>) -> String {
    values
        .iter()
        .filter(|(k, _)| !spec.constants.contains_key(k.as_str()))
        .map(|(k, v)| format!("{k}: {}", render_value(v)))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The prompt asking for a one-sentence summary of a dataset.
pub fn dataset_summary_prompt(spec: &ProgramSpec, examples: &[EvalExample]) -> String {
    let sample: String = examples
        .iter()
        .take(5)
        .map(|e| {
            let ins: Vec<String> = e
                .inputs
                .iter()
                .filter(|(k, _)| !spec.constants.contains_key(k.as_str()))
                .map(|(_, v)| render_value(v))
                .collect();
            let outs: Vec<String> = e
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={}", render_value(v)))
                .collect();
            format!("- {} -> {}\n", ins.join(" | "), outs.join("; "))
        })
        .collect();
    format!(
        "Here are examples from a dataset:\n{sample}\nA one-sentence summary of what this dataset is about:"
    )
}

/// MIPROv2's grounded proposal: the dataset summary, the program, one demo
/// and the current instruction, with a tip.
pub fn instruction_prompt(
    spec: &ProgramSpec,
    predictor: &PredictorSpec,
    summary: &str,
    demo: Option<&Demo>,
    tip: &str,
) -> String {
    let names = |fields: &[crate::program::signature::Field]| {
        fields
            .iter()
            .map(|f| f.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "Dataset: {summary}\nProgram: {}\nInputs: {}\nOutputs: {}\nExample:\n{}\n\nCurrent instruction: {}\n{}Write a better instruction for this task.\nNew instruction:",
        spec.description,
        names(&predictor.signature.inputs),
        names(&predictor.signature.outputs),
        demo.map(|d| field_lines(spec, d)).unwrap_or_default(),
        predictor.signature.instructions.trim(),
        if tip.is_empty() {
            String::new()
        } else {
            format!("Tip: {tip}\n")
        },
    )
}

/// One example as GEPA's reflection sees it: inputs, answer, feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct ReflectionRecord {
    pub inputs: String,
    pub outputs: String,
    pub feedback: String,
}

/// The records of `predictor`'s calls in `scores` (an example whose run
/// failed shows its error as the answer).
pub fn reflection_records(
    spec: &ProgramSpec,
    predictor: &str,
    scores: &[ExampleScore],
) -> Vec<ReflectionRecord> {
    scores
        .iter()
        .map(|s| {
            let trace = s
                .prediction
                .as_ref()
                .and_then(|p| p.traces.iter().find(|t| t.predictor == predictor));
            let (inputs, outputs) = match trace {
                Some(t) => (field_lines(spec, &t.inputs), field_lines(spec, &t.outputs)),
                None => (String::new(), s.error.clone().unwrap_or_default()),
            };
            ReflectionRecord {
                inputs,
                outputs,
                feedback: s.feedback.clone(),
            }
        })
        .collect()
}

/// GEPA's reflection prompt: the current instruction plus examples with
/// feedback; the answer is read up to the closing fence.
pub fn reflection_prompt(instruction: &str, records: &[ReflectionRecord]) -> String {
    let mut s = format!(
        "An assistant was given this instruction for a task:\n```\n{}\n```\n\nHere are inputs it received, what it answered, and feedback on each answer:\n",
        instruction.trim()
    );
    for (i, r) in records.iter().enumerate() {
        s.push_str(&format!(
            "\n# Example {}\nInputs:\n{}\nAnswer:\n{}\nFeedback:\n{}\n",
            i + 1,
            r.inputs,
            r.outputs,
            r.feedback
        ));
    }
    s.push_str(
        "\nWrite a new instruction for the assistant that fixes the problems the feedback points out. \
         Keep what works, state the rules the examples reveal, and be specific.\nNew instruction:\n```\n",
    );
    s
}

/// Trims a proposed instruction; rejects empty or runaway text.
pub fn clean_instruction(text: &str) -> Option<String> {
    let t = text
        .trim()
        .trim_matches('`')
        .trim()
        .trim_matches('"')
        .trim();
    let t = t
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    (t.len() >= 15 && t.len() <= 1500).then_some(t)
}

/// Asks `lm` for an instruction: `prompt` as a text request with the role's
/// defaults, `stop`, `max_tokens` (when given), a rollout id and a seed so
/// re-asks are not cache hits of each other; traced under `predictor`.
/// `None` when the call fails or the answer is unusable.
pub async fn ask(
    lm: &LmClient,
    prompt: String,
    stop: &str,
    max_tokens: Option<u32>,
    rollout: Option<(String, u64)>,
    run_id: i64,
    predictor: String,
) -> Option<String> {
    let mut req = LmRequest::text(prompt);
    req.params = lm.default_params();
    req.params.stop = vec![stop.to_string()];
    if let Some(m) = max_tokens {
        req.params.max_tokens = m;
    }
    if let Some((id, seed)) = rollout {
        req.rollout_id = Some(id);
        req.params.seed = Some(seed);
    }
    let ctx = CallContext {
        run_id: Some(run_id),
        predictor: Some(predictor),
        ..Default::default()
    };
    let out = lm.call(&req, &ctx).await.ok()?;
    clean_instruction(out.response.text())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec() -> ProgramSpec {
        ProgramSpec::from_yaml(
            "t",
            "name: t\nconstants: {labels: \"a, b, c\"}\npredictors:\n  - name: p\n    signature:\n      instructions: Classify.\n      inputs: [{name: text}, {name: labels}]\n      outputs: [{name: label}]\n",
        )
        .unwrap()
    }

    /// Constants are left out of every prompt by the spec's own field names.
    #[test]
    fn prompts_leave_out_the_specs_constants() {
        let spec = spec();
        let demo = json!({"text": "hello", "labels": "a, b, c", "label": "a"})
            .as_object()
            .cloned()
            .unwrap();
        let p = instruction_prompt(&spec, &spec.predictors[0], "greetings", Some(&demo), "");
        assert!(p.contains("text: hello\nlabel: a"), "{p}");
        assert!(!p.contains("labels: a, b, c"), "{p}");
        assert!(p.contains("Inputs: text, labels"), "{p}");
    }

    #[test]
    fn clean_instruction_rejects_short_and_unwraps_fences() {
        assert_eq!(clean_instruction("ok"), None);
        assert_eq!(
            clean_instruction("```\nAnswer with one label.\n```").as_deref(),
            Some("Answer with one label.")
        );
    }
}
