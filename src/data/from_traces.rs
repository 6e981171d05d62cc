//! `trainset from-traces`: examples rebuilt from a program's traced
//! predictions (from `predict`, `eval` and A/B traffic). Each example takes
//! its inputs from the program inputs recorded with the call (or, for older
//! eval traces, from the example it ran on) and its labels from the parsed
//! answer of the program's last predictor, in the trainset's own column
//! names (the program's `field_map` reversed). It carries `source: trace` and
//! the `trace_id` it came from. Traces without a usable score (when a minimum
//! is asked), inputs or parsable answer, examples that fail validation, and
//! duplicates are each reported with the trace and the reason.

use super::{validate, Example, Schema};
use crate::config::Taxonomy;
use crate::error::{Error, Result};
use crate::program::{adapter, ProgramSpec};
use crate::store::{Store, TracedPrediction};
use serde::Serialize;
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Which traces to turn into examples.
#[derive(Debug, Clone, Default)]
pub struct FromTracesRequest {
    /// A registered program's name (or a spec file naming one).
    pub program: String,
    pub version: Option<i64>,
    pub alias: Option<String>,
    /// Keep only traces whose recorded score is at least this.
    pub min_score: Option<f64>,
    /// A SQL filter over [`crate::store::TRACED_COLUMNS`].
    pub filter: Option<String>,
}

/// A trace that did not become an example, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SkippedTrace {
    pub trace_id: i64,
    pub reason: String,
}

/// A trace whose example repeats an earlier-kept one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DuplicateTrace {
    pub trace_id: i64,
    pub duplicate_of_trace: i64,
    /// `content`, `expected_name` or `task`.
    pub by: String,
}

/// The examples and what was left out.
#[derive(Debug, Clone, Serialize)]
pub struct FromTraces {
    pub program: String,
    /// The traces the selection matched.
    pub matched: usize,
    pub examples: Vec<Map<String, Value>>,
    pub skipped: Vec<SkippedTrace>,
    pub duplicates: Vec<DuplicateTrace>,
}

/// Fields every example gets that say where it came from; left out of the
/// duplicate test.
const LINK_FIELDS: [&str; 2] = ["source", "trace_id"];

/// Reads the traced predictions `req` selects and turns them into examples.
pub fn from_traces(
    store: &Store,
    req: &FromTracesRequest,
    taxonomy: &Taxonomy,
) -> Result<FromTraces> {
    if let Some(m) = req.min_score {
        if !m.is_finite() {
            return Err(Error::Invalid(format!(
                "--min-score {m}: expected a number"
            )));
        }
    }
    let name = program_name(&req.program)?;
    let version = match (&req.alias, req.version) {
        (Some(alias), _) => Some(store.version_by_alias(&name, alias)?),
        (None, Some(v)) => Some(store.find_version(&name, Some(v))?),
        (None, None) => None,
    };
    let program_id = match &version {
        Some(v) => v.program_id,
        None => store.find_version(&name, None)?.program_id,
    };
    let rows = store.traced_predictions(
        program_id,
        version.as_ref().map(|v| v.id),
        req.filter.as_deref(),
    )?;
    let mut specs: HashMap<i64, ProgramSpec> = HashMap::new();
    for r in &rows {
        if let std::collections::hash_map::Entry::Vacant(slot) = specs.entry(r.version_id) {
            let row = store.version_by_id(r.version_id)?;
            slot.insert(serde_json::from_str(&row.spec_json)?);
        }
    }
    let mut out = build(&specs, rows, req.min_score, taxonomy);
    out.program = name;
    Ok(out)
}

/// The program name `program` stands for: a spec file's `name`, else itself.
fn program_name(program: &str) -> Result<String> {
    let path = std::path::Path::new(program);
    if path.is_file() {
        Ok(ProgramSpec::load(path)?.name)
    } else {
        Ok(program.to_string())
    }
}

/// The example of one traced prediction, or why there is none.
fn example_of(
    spec: &ProgramSpec,
    t: &TracedPrediction,
) -> std::result::Result<Map<String, Value>, String> {
    let last = spec
        .predictors
        .last()
        .ok_or("the program version has no predictor")?;
    let inputs: Map<String, Value> = match (&t.inputs_json, &t.example_fields_json) {
        (Some(json), _) => serde_json::from_str(json)
            .map_err(|e| format!("its recorded inputs are not a JSON object: {e}"))?,
        (None, Some(fields)) => {
            let fields: Map<String, Value> = serde_json::from_str(fields)
                .map_err(|e| format!("its example's fields are not a JSON object: {e}"))?;
            spec.example_io(&fields).0
        }
        (None, None) => return Err("no program inputs were recorded with it".into()),
    };
    let answer = t.response_text.split("\n<|choice|>\n").next().unwrap_or("");
    let outputs = adapter::parse(spec.adapter, last, answer)
        .map_err(|e| format!("its answer does not parse: {e}"))?;
    let column: HashMap<&str, &str> = spec
        .field_map
        .iter()
        .map(|(col, field)| (field.as_str(), col.as_str()))
        .collect();
    let wanted_inputs = spec.input_fields();
    let mut fields = Map::new();
    for (k, v) in inputs.iter().filter(|(k, _)| wanted_inputs.contains(k)) {
        fields.insert(
            column.get(k.as_str()).unwrap_or(&k.as_str()).to_string(),
            v.clone(),
        );
    }
    for (k, v) in outputs.iter().filter(|(k, _)| k.as_str() != "reasoning") {
        fields.insert(
            column.get(k.as_str()).unwrap_or(&k.as_str()).to_string(),
            v.clone(),
        );
    }
    fields.insert("source".into(), Value::String("trace".into()));
    fields.insert("trace_id".into(), Value::from(t.trace_id));
    Ok(fields)
}

/// The keys two examples from traces must not share: the content without
/// the link fields, and for the skill schema its name and normalized task.
fn dedupe_keys(schema: Schema, fields: &Map<String, Value>) -> Vec<(&'static str, String)> {
    let mut content = fields.clone();
    for f in LINK_FIELDS {
        content.remove(f);
    }
    let mut keys = vec![(
        "content",
        crate::util::content_hash(&Value::Object(content)),
    )];
    if schema == Schema::Skill {
        keys.extend(crate::tasks::skill::schema::dedupe_keys(fields));
    }
    keys
}

/// Turns traced predictions into examples: filtered by `min_score`, each
/// validated on its own, and deduplicated keeping the best-scored trace
/// (the oldest on a tie). Examples come out in trace order.
pub fn build(
    specs: &HashMap<i64, ProgramSpec>,
    mut rows: Vec<TracedPrediction>,
    min_score: Option<f64>,
    taxonomy: &Taxonomy,
) -> FromTraces {
    let mut out = FromTraces {
        program: String::new(),
        matched: rows.len(),
        examples: Vec::new(),
        skipped: Vec::new(),
        duplicates: Vec::new(),
    };
    rows.sort_by(|a, b| {
        b.score
            .unwrap_or(f64::NEG_INFINITY)
            .total_cmp(&a.score.unwrap_or(f64::NEG_INFINITY))
            .then(a.trace_id.cmp(&b.trace_id))
    });
    let mut seen: HashMap<(&'static str, String), i64> = HashMap::new();
    let mut kept: Vec<(i64, Map<String, Value>)> = Vec::new();
    for t in &rows {
        let skip = |reason: String| SkippedTrace {
            trace_id: t.trace_id,
            reason,
        };
        if let Some(min) = min_score {
            match t.score {
                None => {
                    out.skipped.push(skip(format!(
                        "no recorded score ({} trace), --min-score {min} needs one",
                        t.origin
                    )));
                    continue;
                }
                Some(s) if s < min => {
                    out.skipped
                        .push(skip(format!("score {s:.3} is below --min-score {min}")));
                    continue;
                }
                Some(_) => {}
            }
        }
        let Some(spec) = specs.get(&t.version_id) else {
            out.skipped.push(skip(format!(
                "program version #{} is unknown",
                t.version_id
            )));
            continue;
        };
        if spec.predictors.last().map(|p| &p.name) != t.predictor.as_ref() {
            // Calls of earlier predictors of a pipeline are steps, not predictions.
            continue;
        }
        let fields = match example_of(spec, t) {
            Ok(f) => f,
            Err(reason) => {
                out.skipped.push(skip(reason));
                continue;
            }
        };
        let example = Example {
            index: 0,
            line: None,
            fields,
        };
        let schema = Schema::detect(std::slice::from_ref(&example));
        let problems = validate(
            &format!("trace #{}", t.trace_id),
            std::slice::from_ref(&example),
            schema,
            taxonomy,
        );
        if !problems.is_empty() {
            out.skipped.push(skip(format!(
                "invalid example: {}",
                super::problems_inline(&problems)
            )));
            continue;
        }
        let keys = dedupe_keys(schema, &example.fields);
        if let Some((by, first)) = keys.iter().find_map(|k| seen.get(k).map(|f| (k.0, *f))) {
            out.duplicates.push(DuplicateTrace {
                trace_id: t.trace_id,
                duplicate_of_trace: first,
                by: by.to_string(),
            });
            continue;
        }
        for k in keys {
            seen.insert(k, t.trace_id);
        }
        kept.push((t.trace_id, example.fields));
    }
    kept.sort_by_key(|(id, _)| *id);
    out.examples = kept.into_iter().map(|(_, f)| f).collect();
    out.skipped.sort_by_key(|s| s.trace_id);
    out
}
