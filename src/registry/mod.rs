//! The program registry: aliases that name versions (`production`,
//! `staging`...), moved by promote and rollback, every move kept in
//! alias_history with its reason and the comparison behind it; an evidence
//! gate that refuses a promotion the stored comparisons do not support;
//! version details (lineage, aliases, scores) and diffs (`diff.rs`).
//!
//! Everything here is a plain function over a [`Store`], so the CLI and the
//! HTTP server call the same code.

pub mod diff;

pub use diff::{diff_versions, VersionDiff};

use crate::error::{Error, Result};
use crate::program::ProgramSpec;
use crate::store::{AliasMove, ComparisonRow, Split, Store, VersionEvaluation, VersionRow};
use serde::Serialize;

/// The longest alias accepted.
pub const MAX_ALIAS_LEN: usize = 64;

/// Checks an alias name: 1 to 64 ASCII letters, digits, `-` and `_`. Aliases
/// appear in URLs (`/programs/P/aliases/A`) and shell commands, so nothing
/// that needs quoting or escaping there.
pub fn validate_alias(alias: &str) -> Result<()> {
    let ok = !alias.is_empty()
        && alias.len() <= MAX_ALIAS_LEN
        && alias
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(Error::Invalid(format!(
            "alias `{alias}` is not valid: expected 1 to {MAX_ALIAS_LEN} letters, digits, `-` or `_`"
        )))
    }
}

/// What decides whether a comparison supports a promotion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum GateRule {
    /// The mean difference (new minus current) is at least `-margin`.
    #[default]
    Mean,
    /// Non-inferiority: the lower end of the comparison's confidence interval
    /// is at least `-margin` (stricter; needs enough examples).
    Interval,
}

/// The evidence a promotion must have (`--require-better`).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct EvidenceGate {
    /// The split the comparison must have been made on.
    pub split: Split,
    /// How much worse than the current version the new one may be.
    pub margin: f64,
    #[serde(default)]
    pub rule: GateRule,
}

/// A promotion of `version` of `program` to `alias`.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct PromoteRequest {
    pub program: String,
    pub version: i64,
    pub alias: String,
    pub reason: Option<String>,
    pub gate: Option<EvidenceGate>,
}

/// An alias move that was made.
#[derive(Debug, Clone, Serialize)]
pub struct MoveReport {
    pub program: String,
    pub alias: String,
    /// The version number the alias pointed to before (None: it was new).
    pub from_version: Option<i64>,
    pub to_version: i64,
    pub to_version_id: i64,
    pub action: String,
    pub reason: Option<String>,
    /// The comparison that justified the move (promotions through the gate).
    pub comparison_id: Option<i64>,
}

/// The comparison's verdict of `new` against `current`, seen from `new`:
/// (mean difference, interval low, interval high).
fn oriented(c: &ComparisonRow, new_version_id: i64) -> (f64, f64, f64) {
    if c.b_version_id == new_version_id {
        (c.mean_diff, c.ci_low, c.ci_high)
    } else {
        (-c.mean_diff, -c.ci_high, -c.ci_low)
    }
}

/// Checks the gate for moving `alias` from `current` to `new`; returns the
/// comparison that supports the move, or the refusal.
fn check_gate(
    store: &Store,
    program: &str,
    alias: &str,
    current: &VersionRow,
    new: &VersionRow,
    gate: &EvidenceGate,
) -> Result<ComparisonRow> {
    let Some(c) = store.latest_comparison(current.id, new.id, Some(gate.split))? else {
        return Err(Error::PromotionRefused(format!(
            "no stored comparison of {program} v{} against v{} (the current `{alias}`) on split {}; \
             run `skill-fleet compare {program} {} {} --trainset TRAINSET --split {}` first",
            new.version, current.version, gate.split, current.version, new.version, gate.split
        )));
    };
    let (diff, low, high) = oriented(&c, new.id);
    let (value, what) = match gate.rule {
        GateRule::Mean => (diff, "mean difference"),
        GateRule::Interval => (low, "lower end of the interval"),
    };
    if value < -gate.margin {
        let (new_mean, cur_mean) = if c.b_version_id == new.id {
            (c.b_mean, c.a_mean)
        } else {
            (c.a_mean, c.b_mean)
        };
        return Err(Error::PromotionRefused(format!(
            "comparison #{} on split {} ({} examples, metric {}) shows {program} v{} worse than v{} (the current \
             `{alias}`): mean {new_mean:.4} vs {cur_mean:.4}, difference {diff:+.4}, {:.0}% interval \
             [{low:+.4}, {high:+.4}]; the {what} {value:+.4} is below the allowed -{:.4}",
            c.id,
            c.split,
            c.n,
            c.metric,
            new.version,
            current.version,
            c.confidence * 100.0,
            gate.margin
        )));
    }
    Ok(c)
}

/// Points `alias` at a version, through the evidence gate when one is given.
/// The move, its reason and the comparison that justified it are recorded.
pub fn promote(store: &mut Store, req: &PromoteRequest) -> Result<MoveReport> {
    validate_alias(&req.alias)?;
    let new = store.find_version(&req.program, Some(req.version))?;
    let current = match store.version_by_alias(&req.program, &req.alias) {
        Ok(v) => Some(v),
        Err(Error::NotFound { .. }) => None,
        Err(e) => return Err(e),
    };
    if current.as_ref().is_some_and(|c| c.id == new.id) {
        return Err(Error::Invalid(format!(
            "{}@{} already points to version {}",
            req.program, req.alias, new.version
        )));
    }
    let comparison_id = match (&req.gate, &current) {
        (Some(gate), Some(current)) => {
            Some(check_gate(store, &req.program, &req.alias, current, &new, gate)?.id)
        }
        // A new alias has no version to regress from.
        _ => None,
    };
    store.move_alias(
        &req.program,
        &req.alias,
        new.id,
        "promote",
        req.reason.as_deref(),
        comparison_id,
    )?;
    Ok(MoveReport {
        program: req.program.clone(),
        alias: req.alias.clone(),
        from_version: current.map(|c| c.version),
        to_version: new.version,
        to_version_id: new.id,
        action: "promote".into(),
        reason: req.reason.clone(),
        comparison_id,
    })
}

/// Points `alias` back: at version `to`, or (by default) at the version it
/// pointed to before its latest move. A rollback is itself a move, so
/// rolling back a rollback restores the version rolled away from.
pub fn rollback(
    store: &mut Store,
    program: &str,
    alias: &str,
    to: Option<i64>,
    reason: Option<&str>,
) -> Result<MoveReport> {
    validate_alias(alias)?;
    let current = store.version_by_alias(program, alias)?;
    let target = match to {
        Some(v) => store.find_version(program, Some(v))?,
        None => {
            let history = store.alias_history(program, Some(alias))?;
            let previous = history.first().and_then(|m| m.from_version_id);
            let Some(id) = previous else {
                return Err(Error::Invalid(format!(
                    "{program}@{alias} has no earlier version to roll back to (it was first set to version {}); \
                     name one with --to",
                    current.version
                )));
            };
            store.version_by_id(id)?
        }
    };
    if target.id == current.id {
        return Err(Error::Invalid(format!(
            "{program}@{alias} already points to version {}",
            target.version
        )));
    }
    store.move_alias(program, alias, target.id, "rollback", reason, None)?;
    Ok(MoveReport {
        program: program.to_string(),
        alias: alias.to_string(),
        from_version: Some(current.version),
        to_version: target.version,
        to_version_id: target.id,
        action: "rollback".into(),
        reason: reason.map(str::to_string),
        comparison_id: None,
    })
}

/// A version with what the registry knows about it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionDetail {
    pub version: VersionRow,
    /// Aliases pointing at it now.
    pub aliases: Vec<String>,
    /// Its ancestors, parent first (version numbers).
    pub lineage: Vec<i64>,
    /// Finished evaluations that scored it, newest first.
    pub evaluations: Vec<VersionEvaluation>,
    /// Per predictor: name, instructions and number of demos.
    pub predictors: Vec<PredictorSummary>,
}

/// A predictor's instructions and demo count.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorSummary {
    pub name: String,
    pub instructions: String,
    pub demos: usize,
}

/// The chain of ancestors of a version, parent first (a cycle, which the
/// schema cannot rule out, ends the walk).
pub fn lineage(store: &Store, version: &VersionRow) -> Result<Vec<VersionRow>> {
    let mut chain = Vec::new();
    let mut seen = std::collections::HashSet::from([version.id]);
    let mut next = version.parent_id;
    while let Some(id) = next {
        if !seen.insert(id) {
            break;
        }
        let v = store.version_by_id(id)?;
        next = v.parent_id;
        chain.push(v);
    }
    Ok(chain)
}

/// The detail of version `version` of `program`.
pub fn version_detail(store: &Store, program: &str, version: i64) -> Result<VersionDetail> {
    let row = store.find_version(program, Some(version))?;
    let spec: ProgramSpec = serde_json::from_str(&row.spec_json)?;
    let aliases = store
        .aliases(program)?
        .into_iter()
        .filter(|(_, v)| *v == row.version)
        .map(|(a, _)| a)
        .collect();
    Ok(VersionDetail {
        aliases,
        lineage: lineage(store, &row)?.iter().map(|v| v.version).collect(),
        evaluations: store.version_evaluations(row.id)?,
        predictors: spec
            .predictors
            .iter()
            .map(|p| PredictorSummary {
                name: p.name.clone(),
                instructions: p.signature.instructions.clone(),
                demos: p.demos.len(),
            })
            .collect(),
        version: row,
    })
}

/// A version in a listing: the row and the aliases pointing at it.
#[derive(Debug, Clone, Serialize)]
pub struct VersionListing {
    #[serde(flatten)]
    pub version: VersionRow,
    pub aliases: Vec<String>,
}

/// The versions of `program`, newest first, with their aliases.
pub fn list_versions(store: &Store, program: &str) -> Result<Vec<VersionListing>> {
    let rows = store.list_versions(program)?;
    if rows.is_empty() {
        return Err(Error::NotFound {
            kind: "program",
            name: program.to_string(),
        });
    }
    let aliases = store.aliases(program)?;
    Ok(rows
        .into_iter()
        .map(|v| VersionListing {
            aliases: aliases
                .iter()
                .filter(|(_, n)| *n == v.version)
                .map(|(a, _)| a.clone())
                .collect(),
            version: v,
        })
        .collect())
}

/// The moves of `program`'s aliases, newest first.
pub fn history(store: &Store, program: &str, alias: Option<&str>) -> Result<Vec<AliasMove>> {
    store.alias_history(program, alias)
}
