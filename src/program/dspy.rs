//! DSPy saved-program JSON (`program.save("x.json")`): per predictor its
//! signature instructions and fields, and its demos. Import lets a program
//! optimized with DSPy be tracked, compared and served here; export lets ours
//! be loaded in DSPy.

use super::signature::{Field, FieldType, Signature};
use super::spec::{AdapterKind, Demo, ModuleKind, PredictorSpec, ProgramSpec};
use crate::error::{Error, Result};
use serde_json::{json, Map, Value};

fn config_err(origin: &str, message: String) -> Error {
    Error::Config {
        path: origin.to_string(),
        message,
    }
}

fn field_from(origin: &str, v: &Value) -> Result<Field> {
    let name = v
        .get("name")
        .or_else(|| v.get("prefix"))
        .and_then(Value::as_str)
        .ok_or_else(|| {
            config_err(
                origin,
                format!(
                    "signature field {v} has no `name`; expected {{\"name\", \"description\"}}"
                ),
            )
        })?;
    let ty = match v.get("type").and_then(Value::as_str) {
        Some(t) => FieldType::parse(t).map_err(|e| config_err(origin, e))?,
        None => FieldType::Str,
    };
    let description = v
        .get("description")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let description = if description.starts_with("${") {
        String::new()
    } else {
        description
    };
    Ok(Field {
        name: name.to_string(),
        ty,
        description,
        constraints: vec![],
        pattern: None,
    })
}

/// A predictor's demos without DSPy's `augmented` flag (DSPy marks the demos
/// it bootstrapped; our export marks every demo; a spec's demos carry none).
fn demos_from(predictor: &Map<String, Value>) -> Vec<Demo> {
    predictor
        .get("demos")
        .and_then(Value::as_array)
        .map(|d| {
            d.iter()
                .filter_map(Value::as_object)
                .map(|m| {
                    m.iter()
                        .filter(|(k, _)| k.as_str() != "augmented")
                        .map(|(k, v)| (k.clone(), v.clone()))
                        .collect()
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Parses DSPy JSON: an object whose keys are predictor names (e.g.
/// `understand.predict`) mapping to `{"demos": [...], "signature":
/// {"instructions", "fields": [{"prefix", "description"}]}}`. Which fields are
/// inputs, and the module, come from our `x-skill-fleet` metadata when
/// present. Without it, a `NAME.predict` key with a `reasoning` field is a
/// ChainOfThought whose inputs are the fields before `reasoning`; otherwise the
/// last field is the only output.
pub fn import_dspy_json(origin: &str, text: &str) -> Result<ProgramSpec> {
    let root: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| config_err(origin, format!("invalid JSON: {e}")))?;
    let meta = root.get("x-skill-fleet").cloned().unwrap_or(Value::Null);
    let mut predictors = Vec::new();
    for (key, value) in &root {
        if key == "metadata" || key == "x-skill-fleet" {
            continue;
        }
        let Some(obj) = value.as_object() else {
            continue;
        };
        let Some(sig) = obj.get("signature") else {
            continue;
        };
        let name = key.trim_end_matches(".predict").to_string();
        let instructions = sig
            .get("instructions")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let fields_v = sig.get("fields").and_then(Value::as_array).ok_or_else(|| {
            config_err(
                origin,
                format!("predictor `{key}`: signature has no `fields` list"),
            )
        })?;
        let mut fields = fields_v
            .iter()
            .map(|f| field_from(origin, f))
            .collect::<Result<Vec<_>>>()?;
        for f in &mut fields {
            // DSPy prefixes are "Task Description:" (DSPy 2.5's reasoning
            // prefix goes on after the colon); names are snake_case.
            f.name = f
                .name
                .split(':')
                .next()
                .unwrap_or_default()
                .trim()
                .to_lowercase()
                .replace(' ', "_");
        }
        let pm = meta.get("predictors").and_then(|p| p.get(&name));
        let reasoning_at = fields.iter().position(|f| f.name == "reasoning");
        let module = match pm.and_then(|m| m.get("module")).and_then(Value::as_str) {
            Some("chain_of_thought") => ModuleKind::ChainOfThought,
            Some(_) => ModuleKind::Predict,
            // DSPy's ChainOfThought holds its Predict as `.predict`, whose
            // signature has `reasoning` inserted right after the inputs.
            None if key.ends_with(".predict") && reasoning_at.is_some() => {
                ModuleKind::ChainOfThought
            }
            None => ModuleKind::Predict,
        };
        if module == ModuleKind::ChainOfThought {
            fields.retain(|f| f.name != "reasoning");
        }
        let n_inputs = pm
            .and_then(|m| m.get("inputs"))
            .and_then(Value::as_array)
            .map(|a| a.len())
            .or(reasoning_at.filter(|_| module == ModuleKind::ChainOfThought))
            .unwrap_or(fields.len().saturating_sub(1));
        if let Some(types) = pm.and_then(|m| m.get("types")).and_then(Value::as_object) {
            for f in &mut fields {
                if let Some(t) = types.get(&f.name).and_then(Value::as_str) {
                    f.ty = FieldType::parse(t).map_err(|e| config_err(origin, e))?;
                }
            }
        }
        let outputs = fields.split_off(n_inputs.min(fields.len()));
        let demos = demos_from(obj);
        predictors.push(PredictorSpec {
            name,
            module,
            signature: Signature {
                instructions,
                inputs: fields,
                outputs,
            },
            demos,
            fallback: None,
            compiled_constraint: Default::default(),
        });
    }
    if predictors.is_empty() {
        return Err(config_err(
            origin,
            "no predictors: expected keys mapping to {\"demos\", \"signature\"}".into(),
        ));
    }
    let mut spec = ProgramSpec {
        name: meta
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("dspy_program")
            .to_string(),
        description: meta
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string(),
        adapter: AdapterKind::Completion,
        constrained: false,
        demo_selection: None,
        field_map: Default::default(),
        constants: Default::default(),
        metric: None,
        validation_retries: 1,
        predictors,
    };
    if let Some(m) = meta.get("spec_extras").and_then(Value::as_object) {
        if let Some(v) = m.get("adapter") {
            spec.adapter = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("constrained") {
            spec.constrained = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("demo_selection") {
            spec.demo_selection = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("field_map") {
            spec.field_map = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("constants") {
            spec.constants = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("metric") {
            spec.metric = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("validation_retries") {
            spec.validation_retries = serde_json::from_value(v.clone())?;
        }
        if let Some(v) = m.get("fallbacks").and_then(Value::as_object) {
            for p in &mut spec.predictors {
                if let Some(fb) = v.get(&p.name) {
                    p.fallback = serde_json::from_value(fb.clone())?;
                }
            }
        }
    }
    restore_field_metadata(&mut spec, &Value::Object(root));
    spec.validate().map_err(|e| config_err(origin, e))?;
    Ok(spec)
}

/// Imports a DSPy-saved program onto `base`, the version it was exported
/// from (`program register --dspy FILE --base P`).
///
/// Why a base: DSPy's `Module.save` writes only each predictor's own state
/// (instructions, each field's `prefix` and `description`, demos, plus
/// `traces`, `train`, `lm`) and its own `metadata`. It drops our
/// `x-skill-fleet` block and the `name` we add to each field, so field names,
/// roles and types, constraints, adapter, field map, constants, metric,
/// retries, fallbacks and the program name are no longer in the file. They
/// come from `base`; what DSPy's optimizers change, the instructions and the
/// demos, comes from the file. DSPy keeps the `augmented` flag our export puts
/// on every demo; it is dropped here as on every import, so a program that
/// went through DSPy unchanged has the content hash of `base`.
///
/// Field prefixes and descriptions must still be what `export_dspy_json(base)`
/// writes (DSPy's `${name}` placeholder counts as an empty description; the
/// reasoning field of a ChainOfThought is DSPy's own and not compared): a spec
/// renders them from field names, types and constraints, so a prefix or
/// description edited in DSPy cannot be represented and is an error rather
/// than silently lost. The file's predictors must be exactly `base`'s.
pub fn import_dspy_json_onto(origin: &str, text: &str, base: &ProgramSpec) -> Result<ProgramSpec> {
    let root: Map<String, Value> =
        serde_json::from_str(text).map_err(|e| config_err(origin, format!("invalid JSON: {e}")))?;
    let expected = export_dspy_json(base);
    let mut spec = base.clone();
    let mut keys = Vec::new();
    for p in &mut spec.predictors {
        let key = predictor_key(p);
        let obj = root.get(&key).and_then(Value::as_object).ok_or_else(|| {
            config_err(
                origin,
                format!(
                    "no predictor `{key}`; program `{}` has {}",
                    base.name,
                    predictor_keys(base).join(", ")
                ),
            )
        })?;
        let sig = obj
            .get("signature")
            .ok_or_else(|| config_err(origin, format!("predictor `{key}` has no `signature`")))?;
        let fields = sig.get("fields").and_then(Value::as_array);
        let want = expected
            .get(&key)
            .and_then(|v| v.pointer("/signature/fields"))
            .and_then(Value::as_array);
        let (Some(fields), Some(want)) = (fields, want) else {
            return Err(config_err(
                origin,
                format!("predictor `{key}`: signature has no `fields` list"),
            ));
        };
        if fields.len() != want.len() {
            return Err(config_err(
                origin,
                format!(
                    "predictor `{key}` has {} fields; `{}` has {}",
                    fields.len(),
                    base.name,
                    want.len()
                ),
            ));
        }
        for (got, want) in fields.iter().zip(want) {
            let name = want.get("name").and_then(Value::as_str).unwrap_or("");
            if p.module == ModuleKind::ChainOfThought && name == "reasoning" {
                continue;
            }
            for part in ["prefix", "description"] {
                let text = |v: &Value| {
                    let t = v.get(part).and_then(Value::as_str).unwrap_or("");
                    if part == "description" && t.starts_with("${") {
                        String::new()
                    } else {
                        t.to_string()
                    }
                };
                if text(got) != text(want) {
                    return Err(config_err(
                        origin,
                        format!(
                            "predictor `{key}`, field `{name}`: {part} {:?} differs from the exported {:?}; \
                             only instructions and demos are imported onto `{}`, so change the field in its YAML spec",
                            text(got),
                            text(want),
                            base.name
                        ),
                    ));
                }
            }
        }
        p.signature.instructions = sig
            .get("instructions")
            .and_then(Value::as_str)
            .ok_or_else(|| {
                config_err(
                    origin,
                    format!("predictor `{key}`: signature has no `instructions`"),
                )
            })?
            .to_string();
        p.demos = demos_from(obj);
        keys.push(key);
    }
    let extra: Vec<&String> = root
        .iter()
        .filter(|(k, v)| !keys.contains(k) && v.get("signature").is_some())
        .map(|(k, _)| k)
        .collect();
    if !extra.is_empty() {
        return Err(config_err(
            origin,
            format!(
                "predictor(s) {extra:?} are not in program `{}` ({})",
                base.name,
                predictor_keys(base).join(", ")
            ),
        ));
    }
    spec.validate().map_err(|e| config_err(origin, e))?;
    Ok(spec)
}

/// The key DSPy names a predictor by (`named_predictors`): a ChainOfThought
/// holds its Predict as `.predict`.
fn predictor_key(p: &PredictorSpec) -> String {
    match p.module {
        ModuleKind::ChainOfThought => format!("{}.predict", p.name),
        ModuleKind::Predict => p.name.clone(),
    }
}

fn predictor_keys(spec: &ProgramSpec) -> Vec<String> {
    spec.predictors.iter().map(predictor_key).collect()
}

/// Writes DSPy's saved-program layout, plus an `x-skill-fleet` block with
/// what DSPy does not store (field roles and types, adapter, mappings), so a
/// re-import of this file reproduces the same spec (same content hash).
/// DSPy's own `save` drops that block: import a DSPy-saved file with
/// [`import_dspy_json_onto`].
pub fn export_dspy_json(spec: &ProgramSpec) -> Value {
    let mut root = Map::new();
    let mut meta_preds = Map::new();
    let mut fallbacks = Map::new();
    for p in &spec.predictors {
        let mut fields: Vec<Value> = Vec::new();
        for f in p.signature.inputs.iter().chain(&p.signature.outputs) {
            fields.push(json!({"prefix": format!("{}:", f.label()), "description": f.describe(), "name": f.name}));
        }
        if p.module == ModuleKind::ChainOfThought {
            // What `dspy.ChainOfThought` (3.x) writes for its reasoning field.
            fields.insert(
                p.signature.inputs.len(),
                json!({"prefix": "Reasoning:", "description": "${reasoning}", "name": "reasoning"}),
            );
        }
        let demos: Vec<Value> = p
            .demos
            .iter()
            .map(|d| {
                let mut m = d.clone();
                m.insert("augmented".into(), Value::Bool(true));
                Value::Object(m)
            })
            .collect();
        let key = predictor_key(p);
        root.insert(
            key,
            json!({
                "traces": [], "train": [], "demos": demos,
                "signature": {"instructions": p.signature.instructions, "fields": fields},
                "lm": null,
            }),
        );
        let types: Map<String, Value> = p
            .signature
            .inputs
            .iter()
            .chain(&p.signature.outputs)
            .map(|f| (f.name.clone(), Value::String(f.ty.to_string())))
            .collect();
        let descs: Map<String, Value> = p
            .signature
            .inputs
            .iter()
            .chain(&p.signature.outputs)
            .map(|f| {
                let mut m = json!({"description": f.description, "constraints": f.constraints});
                if let Some(pattern) = &f.pattern {
                    m["pattern"] = json!(pattern);
                }
                (f.name.clone(), m)
            })
            .collect();
        meta_preds.insert(p.name.clone(), json!({
            "inputs": p.signature.inputs.iter().map(|f| f.name.clone()).collect::<Vec<_>>(),
            "module": match p.module { ModuleKind::ChainOfThought => "chain_of_thought", ModuleKind::Predict => "predict" },
            "types": types,
            "fields": descs,
        }));
        if let Some(fb) = &p.fallback {
            fallbacks.insert(p.name.clone(), Value::Object(fb.clone()));
        }
    }
    // DSPy's `Module.load` looks every `dependency_versions` key up in its own
    // table (python, dspy, cloudpickle: what its `save` writes), so any other
    // key is a `KeyError`; a version that differs only logs a warning. We
    // claim none of those versions: the map is empty, which DSPy accepts
    // silently, and our own version goes under `x-skill-fleet`.
    root.insert("metadata".into(), json!({"dependency_versions": {}}));
    root.insert("x-skill-fleet".into(), json!({
        "exported_by": {"skill_fleet": env!("CARGO_PKG_VERSION")},
        "name": spec.name,
        "description": spec.description,
        "predictors": meta_preds,
        "spec_extras": {
            "adapter": spec.adapter, "constrained": spec.constrained, "field_map": spec.field_map, "constants": spec.constants,
            "metric": spec.metric, "validation_retries": spec.validation_retries, "fallbacks": fallbacks,
        },
    }));
    // DSPy has no per-input demo selection in a saved program (its
    // KNNFewShot re-retrieves at call time): the selection, with its pool,
    // travels in our block only, so a round trip keeps the version.
    if let (Some(sel), Some(extras)) = (
        &spec.demo_selection,
        root.get_mut("x-skill-fleet")
            .and_then(|x| x.get_mut("spec_extras"))
            .and_then(Value::as_object_mut),
    ) {
        extras.insert("demo_selection".into(), json!(sel));
    }
    Value::Object(root)
}

/// Restores field descriptions, constraints and patterns from our metadata on import
/// (DSPy's own descriptions include rendered type hints we do not keep).
fn restore_field_metadata(spec: &mut ProgramSpec, exported: &Value) {
    let Some(preds) = exported
        .pointer("/x-skill-fleet/predictors")
        .and_then(Value::as_object)
    else {
        return;
    };
    for p in &mut spec.predictors {
        let Some(fields) = preds
            .get(&p.name)
            .and_then(|m| m.get("fields"))
            .and_then(Value::as_object)
        else {
            continue;
        };
        for f in p
            .signature
            .inputs
            .iter_mut()
            .chain(p.signature.outputs.iter_mut())
        {
            if let Some(m) = fields.get(&f.name) {
                f.description = m
                    .get("description")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                f.constraints = m
                    .get("constraints")
                    .and_then(Value::as_array)
                    .map(|a| {
                        a.iter()
                            .filter_map(|c| c.as_str().map(str::to_string))
                            .collect()
                    })
                    .unwrap_or_default();
                f.pattern = m.get("pattern").and_then(Value::as_str).map(str::to_string);
            }
        }
    }
}
