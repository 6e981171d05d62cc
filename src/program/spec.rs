//! Program specs: YAML files under `config/programs/`, content-addressed when stored.

use super::signature::Signature;
use crate::error::{Error, Result};
use crate::util::content_hash;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::path::Path;

/// How a predictor reasons before answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum ModuleKind {
    /// Answer the output fields directly.
    #[default]
    Predict,
    /// Write a `reasoning` field first, then the outputs.
    ChainOfThought,
}

/// How a call is rendered into a prompt and parsed back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdapterKind {
    /// "Field: value" lines, demos as earlier blocks: for base models.
    #[default]
    Completion,
    /// Chat messages with `[[ ## field ## ]]` markers: for instruct models.
    Chat,
    /// Chat asking for one JSON object: for models with JSON modes.
    Json,
}

/// A demo: values for a predictor's input and output fields.
pub type Demo = Map<String, Value>;

/// One predictor of a program.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PredictorSpec {
    pub name: String,
    #[serde(default)]
    pub module: ModuleKind,
    pub signature: Signature,
    #[serde(default)]
    pub demos: Vec<Demo>,
    /// Outputs used when every attempt fails validation (the original's phase fallback).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Map<String, Value>>,
    /// What holds this predictor's answer to its signature, once a
    /// constrained run has compiled it (not part of the spec).
    #[serde(skip)]
    pub compiled_constraint: CompiledConstraint,
}

/// What a constrained call sends with its prompt: the answer's grammar (GBNF)
/// and, for the JSON adapter, its JSON schema.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Constraint {
    pub grammar: Option<String>,
    pub json_schema: Option<Value>,
}

/// A predictor's [`Constraint`], compiled on its first constrained call and
/// kept for the next ones: compiling the bundled program's grammar on every
/// call more than doubled a cached program run (docs/benchmarks.md, part B),
/// and an evaluation runs the same predictor on every example. It is kept for
/// the adapter and constants it was compiled with and compiled afresh for
/// others. A clone starts empty, since a clone's fields may then be changed;
/// two specs compare equal whatever their caches hold.
#[derive(Default)]
pub struct CompiledConstraint(std::sync::OnceLock<(AdapterKind, u64, Constraint)>);

impl CompiledConstraint {
    /// The constraint for `kind` and `constants`: the kept one when it was
    /// compiled for them, else `compile()`'s (kept if nothing is kept yet).
    pub fn get_or_compile(
        &self,
        kind: AdapterKind,
        constants: &Map<String, Value>,
        compile: impl FnOnce() -> Constraint,
    ) -> Constraint {
        let key = constants_fingerprint(constants);
        if let Some((k, c, kept)) = self.0.get() {
            if *k == kind && *c == key {
                return kept.clone();
            }
            return compile();
        }
        let compiled = compile();
        let _ = self.0.set((kind, key, compiled.clone()));
        compiled
    }
}

/// A hash of the constants' canonical JSON (a few category names for the
/// bundled program: about a microsecond).
fn constants_fingerprint(constants: &Map<String, Value>) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    serde_json::to_string(constants)
        .unwrap_or_default()
        .hash(&mut h);
    h.finish()
}

impl Clone for CompiledConstraint {
    fn clone(&self) -> Self {
        Self::default()
    }
}

impl PartialEq for CompiledConstraint {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl std::fmt::Debug for CompiledConstraint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.get().is_some() {
            "CompiledConstraint(kept)"
        } else {
            "CompiledConstraint(empty)"
        })
    }
}

impl PredictorSpec {
    /// A labeled demo for this predictor: the values `lookup` has for its
    /// input and output fields; `None` unless it has every output (a demo
    /// without its answer teaches nothing).
    pub fn demo_from<'v>(&self, lookup: impl Fn(&str) -> Option<&'v Value>) -> Option<Demo> {
        let mut d = Map::new();
        for f in self.signature.inputs.iter().chain(&self.signature.outputs) {
            if let Some(v) = lookup(&f.name) {
                d.insert(f.name.clone(), v.clone());
            }
        }
        self.signature
            .outputs
            .iter()
            .all(|f| d.contains_key(&f.name))
            .then_some(d)
    }
}

/// A whole program: predictors wired into a pipeline by field names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramSpec {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub adapter: AdapterKind,
    /// Constrained decoding: every call carries a grammar compiled from the
    /// predictor's output fields (`program::grammar`), so the model can only
    /// write an answer of the right shape. Providers that take no grammar
    /// ignore it. Part of the spec, so of its hash and of the cache key.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub constrained: bool,
    /// Demos picked per input on top of each predictor's fixed ones (KNN
    /// over a pool stored here; see `program::knn`). Absent from the JSON
    /// when unset, so specs without it keep their content hashes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub demo_selection: Option<super::knn::DemoSelection>,
    /// Trainset column -> program field (e.g. `expected_name: name`).
    #[serde(default)]
    pub field_map: BTreeMap<String, String>,
    /// Inputs fixed by the program. The string `@taxonomy` expands to the
    /// configured category list.
    #[serde(default)]
    pub constants: BTreeMap<String, Value>,
    /// Default metric for eval and optimize.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    /// Extra attempts when an answer fails validation.
    #[serde(default = "one")]
    pub validation_retries: u32,
    pub predictors: Vec<PredictorSpec>,
}

fn one() -> u32 {
    1
}

impl ProgramSpec {
    /// Parses YAML; `origin` names the file in errors.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Self> {
        let spec: ProgramSpec = serde_yaml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_string(),
            message: e.to_string(),
        })?;
        spec.validate().map_err(|message| Error::Config {
            path: origin.to_string(),
            message,
        })?;
        Ok(spec)
    }

    /// Reads a spec file.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Self::from_yaml(&path.display().to_string(), &text)
    }

    /// Structural checks: signatures valid, every predictor input available.
    pub fn validate(&self) -> std::result::Result<(), String> {
        if self.predictors.is_empty() {
            return Err("`predictors` is empty; expected at least one".into());
        }
        let mut names = std::collections::HashSet::new();
        for p in &self.predictors {
            if !names.insert(p.name.as_str()) {
                return Err(format!("predictor `{}` appears twice", p.name));
            }
            p.signature
                .validate()
                .map_err(|e| format!("predictor `{}`: {e}", p.name))?;
            let constants: Vec<&str> = self.constants.keys().map(String::as_str).collect();
            super::grammar::check_patterns(p, &constants)
                .map_err(|e| format!("predictor `{}`: {e}", p.name))?;
        }
        if let Some(super::knn::DemoSelection { knn }) = &self.demo_selection {
            let inputs = self.input_fields();
            if let Some(f) = knn.fields.iter().find(|f| !inputs.contains(f)) {
                return Err(format!(
                    "demo_selection: field `{f}` is not a program input (inputs: {})",
                    inputs.join(", ")
                ));
            }
        }
        Ok(())
    }

    /// Content hash (key order and formatting of the YAML do not matter).
    pub fn content_hash(&self) -> String {
        content_hash(&serde_json::to_value(self).unwrap_or(Value::Null))
    }

    /// Fields the caller must provide: predictor inputs that are neither
    /// constants nor produced by an earlier predictor.
    pub fn input_fields(&self) -> Vec<String> {
        let mut produced = std::collections::HashSet::new();
        let mut inputs = Vec::new();
        for p in &self.predictors {
            for f in &p.signature.inputs {
                if !produced.contains(&f.name)
                    && !self.constants.contains_key(&f.name)
                    && !inputs.contains(&f.name)
                {
                    inputs.push(f.name.clone());
                }
            }
            for f in &p.signature.outputs {
                produced.insert(f.name.clone());
            }
        }
        inputs
    }

    /// Every output field of every predictor, in pipeline order.
    pub fn output_fields(&self) -> Vec<String> {
        let mut out = Vec::new();
        for p in &self.predictors {
            for f in &p.signature.outputs {
                if !out.contains(&f.name) {
                    out.push(f.name.clone());
                }
            }
        }
        out
    }

    /// Splits a trainset example into program inputs and gold labels, renaming
    /// columns through `field_map`.
    pub fn example_io(
        &self,
        fields: &Map<String, Value>,
    ) -> (Map<String, Value>, Map<String, Value>) {
        let mut mapped = Map::new();
        for (k, v) in fields {
            let name = self.field_map.get(k).cloned().unwrap_or_else(|| k.clone());
            mapped.insert(name, v.clone());
        }
        let inputs_wanted = self.input_fields();
        let outputs_wanted = self.output_fields();
        let mut inputs = Map::new();
        let mut labels = Map::new();
        for (k, v) in mapped {
            if inputs_wanted.contains(&k) {
                inputs.insert(k, v);
            } else if outputs_wanted.contains(&k) {
                labels.insert(k, v);
            }
        }
        (inputs, labels)
    }

    /// The predictor named `name`.
    pub fn predictor(&self, name: &str) -> Option<&PredictorSpec> {
        self.predictors.iter().find(|p| p.name == name)
    }

    /// Mutable access for optimizers.
    pub fn predictor_mut(&mut self, name: &str) -> Option<&mut PredictorSpec> {
        self.predictors.iter_mut().find(|p| p.name == name)
    }

    /// Expands `@taxonomy` constants with the given category names.
    pub fn resolve_constants(&self, categories: &[String]) -> Map<String, Value> {
        self.constants
            .iter()
            .map(|(k, v)| {
                let v = match v.as_str() {
                    Some("@taxonomy") => Value::String(categories.join(", ")),
                    _ => v.clone(),
                };
                (k.clone(), v)
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn categories(names: &[&str]) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("categories".into(), serde_json::json!(names));
        m
    }

    #[test]
    fn a_compiled_constraint_is_kept_for_its_adapter_and_constants_only_and_a_clone_starts_empty() {
        let kept = CompiledConstraint::default();
        let (a, b) = (categories(&["rust"]), categories(&["python"]));
        let compiles = std::cell::Cell::new(0);
        let compile = |text: &str| {
            compiles.set(compiles.get() + 1);
            Constraint {
                grammar: Some(text.to_string()),
                json_schema: None,
            }
        };
        let grammar = |c: Constraint| c.grammar;
        let first = kept.get_or_compile(AdapterKind::Completion, &a, || compile("first"));
        assert_eq!(grammar(first).as_deref(), Some("first"));
        let again = kept.get_or_compile(AdapterKind::Completion, &a, || compile("second"));
        assert_eq!(
            grammar(again).as_deref(),
            Some("first"),
            "the kept constraint is reused"
        );
        assert_eq!(compiles.get(), 1);
        let other_constants = kept.get_or_compile(AdapterKind::Completion, &b, || compile("b"));
        assert_eq!(grammar(other_constants).as_deref(), Some("b"));
        let other_adapter = kept.get_or_compile(AdapterKind::Json, &a, || compile("json"));
        assert_eq!(grammar(other_adapter).as_deref(), Some("json"));
        let still = kept.get_or_compile(AdapterKind::Completion, &a, || compile("third"));
        assert_eq!(grammar(still).as_deref(), Some("first"));
        let clone = kept.clone();
        let fresh = clone.get_or_compile(AdapterKind::Completion, &a, || compile("clone"));
        assert_eq!(
            grammar(fresh).as_deref(),
            Some("clone"),
            "a clone compiles afresh"
        );
        assert_eq!(compiles.get(), 4);
    }
}
