//! What changed between two versions of a program: per predictor the
//! instructions (side by side) and the demos added, removed and kept; other
//! spec changes; the stored scores and the newest comparison of the two; and
//! how their lineages meet.

use crate::error::Result;
use crate::program::spec::Demo;
use crate::program::ProgramSpec;
use crate::store::{ComparisonRow, Store, VersionRow};
use serde::Serialize;

/// A predictor's changes from version A to B.
#[derive(Debug, Clone, Serialize)]
pub struct PredictorDiff {
    pub name: String,
    /// `None` when the predictor exists in both versions; else `a` or `b`.
    pub only_in: Option<&'static str>,
    pub a_instructions: String,
    pub b_instructions: String,
    pub instructions_changed: bool,
    /// Demos of B that A lacks, and of A that B lacks (compared by content).
    pub demos_added: Vec<Demo>,
    pub demos_removed: Vec<Demo>,
    pub demos_kept: usize,
}

/// How two versions relate in the lineage tree.
#[derive(Debug, Clone, Serialize)]
pub struct LineageRelation {
    /// Ancestors of each, parent first (version numbers).
    pub a_ancestors: Vec<i64>,
    pub b_ancestors: Vec<i64>,
    /// The nearest version both descend from (or are).
    pub common_ancestor: Option<i64>,
}

/// Version B against version A.
#[derive(Debug, Clone, Serialize)]
pub struct VersionDiff {
    pub program: String,
    pub a: VersionRow,
    pub b: VersionRow,
    pub predictors: Vec<PredictorDiff>,
    /// Spec-level changes other than instructions and demos (adapter,
    /// constants, metric, field maps, signatures), one line each.
    pub other_changes: Vec<String>,
    pub lineage: LineageRelation,
    /// The newest stored comparison of the two, in either direction.
    pub comparison: Option<ComparisonRow>,
}

fn demo_key(d: &Demo) -> String {
    serde_json::to_string(d).unwrap_or_default()
}

fn diff_demos(a: &[Demo], b: &[Demo]) -> (Vec<Demo>, Vec<Demo>, usize) {
    let a_keys: Vec<String> = a.iter().map(demo_key).collect();
    let b_keys: Vec<String> = b.iter().map(demo_key).collect();
    let added = b
        .iter()
        .zip(&b_keys)
        .filter(|(_, k)| !a_keys.contains(k))
        .map(|(d, _)| d.clone())
        .collect();
    let removed: Vec<Demo> = a
        .iter()
        .zip(&a_keys)
        .filter(|(_, k)| !b_keys.contains(k))
        .map(|(d, _)| d.clone())
        .collect();
    let kept = a_keys.iter().filter(|k| b_keys.contains(k)).count();
    (added, removed, kept)
}

fn other_changes(a: &ProgramSpec, b: &ProgramSpec) -> Vec<String> {
    let mut out = Vec::new();
    let mut note = |what: &str, x: String, y: String| {
        if x != y {
            out.push(format!("{what}: {x} -> {y}"));
        }
    };
    note("adapter", j(&a.adapter), j(&b.adapter));
    note("metric", j(&a.metric), j(&b.metric));
    note("constants", j(&a.constants), j(&b.constants));
    note("field_map", j(&a.field_map), j(&b.field_map));
    note(
        "validation_retries",
        a.validation_retries.to_string(),
        b.validation_retries.to_string(),
    );
    for pa in &a.predictors {
        if let Some(pb) = b.predictor(&pa.name) {
            note(&format!("{}.module", pa.name), j(&pa.module), j(&pb.module));
            note(
                &format!("{}.inputs", pa.name),
                j(&pa.signature.inputs),
                j(&pb.signature.inputs),
            );
            note(
                &format!("{}.outputs", pa.name),
                j(&pa.signature.outputs),
                j(&pb.signature.outputs),
            );
        }
    }
    out
}

/// JSON text of a spec part, for one-line change notes.
fn j<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Diffs version `b` of `program` against version `a`.
pub fn diff_versions(store: &Store, program: &str, a: i64, b: i64) -> Result<VersionDiff> {
    let (ra, rb) = (
        store.find_version(program, Some(a))?,
        store.find_version(program, Some(b))?,
    );
    let sa: ProgramSpec = serde_json::from_str(&ra.spec_json)?;
    let sb: ProgramSpec = serde_json::from_str(&rb.spec_json)?;
    let mut predictors = Vec::new();
    for pa in &sa.predictors {
        let pb = sb.predictor(&pa.name);
        let empty = Vec::new();
        let (added, removed, kept) = diff_demos(&pa.demos, pb.map(|p| &p.demos).unwrap_or(&empty));
        let b_instructions = pb
            .map(|p| p.signature.instructions.clone())
            .unwrap_or_default();
        predictors.push(PredictorDiff {
            name: pa.name.clone(),
            only_in: pb.is_none().then_some("a"),
            instructions_changed: pa.signature.instructions != b_instructions,
            a_instructions: pa.signature.instructions.clone(),
            b_instructions,
            demos_added: added,
            demos_removed: removed,
            demos_kept: kept,
        });
    }
    for pb in sb
        .predictors
        .iter()
        .filter(|p| sa.predictor(&p.name).is_none())
    {
        predictors.push(PredictorDiff {
            name: pb.name.clone(),
            only_in: Some("b"),
            a_instructions: String::new(),
            b_instructions: pb.signature.instructions.clone(),
            instructions_changed: true,
            demos_added: pb.demos.clone(),
            demos_removed: Vec::new(),
            demos_kept: 0,
        });
    }
    let a_anc: Vec<i64> = super::lineage(store, &ra)?
        .iter()
        .map(|v| v.version)
        .collect();
    let b_anc: Vec<i64> = super::lineage(store, &rb)?
        .iter()
        .map(|v| v.version)
        .collect();
    let a_line: Vec<i64> = std::iter::once(ra.version)
        .chain(a_anc.iter().copied())
        .collect();
    let common_ancestor = std::iter::once(rb.version)
        .chain(b_anc.iter().copied())
        .find(|v| a_line.contains(v));
    Ok(VersionDiff {
        program: program.to_string(),
        other_changes: other_changes(&sa, &sb),
        predictors,
        lineage: LineageRelation {
            a_ancestors: a_anc,
            b_ancestors: b_anc,
            common_ancestor,
        },
        comparison: store.latest_comparison(ra.id, rb.id, None)?,
        a: ra,
        b: rb,
    })
}

/// Lays two texts side by side in columns of `width` characters, wrapping
/// at word boundaries, with a `|` between them; lines that differ are
/// marked with `*` in front.
pub fn side_by_side(a: &str, b: &str, width: usize) -> String {
    let wrap = |text: &str| -> Vec<String> {
        let mut lines = Vec::new();
        for para in text.lines() {
            let mut line = String::new();
            for word in para.split_whitespace() {
                if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
                    lines.push(std::mem::take(&mut line));
                }
                if !line.is_empty() {
                    line.push(' ');
                }
                line.push_str(word);
            }
            lines.push(line);
        }
        lines
    };
    let (la, lb) = (wrap(a), wrap(b));
    let mut out = String::new();
    for i in 0..la.len().max(lb.len()) {
        let x = la.get(i).map(String::as_str).unwrap_or("");
        let y = lb.get(i).map(String::as_str).unwrap_or("");
        let mark = if x == y { ' ' } else { '*' };
        // Columns count characters, not bytes: pad by hand.
        let pad = width.saturating_sub(x.chars().count());
        out.push_str(&format!("{mark} {x}{} | {y}\n", " ".repeat(pad)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demos_are_compared_by_content() {
        let d = |s: &str| {
            let mut m = Demo::new();
            m.insert("q".into(), serde_json::json!(s));
            m
        };
        let (added, removed, kept) = diff_demos(&[d("x"), d("y")], &[d("y"), d("z")]);
        assert_eq!(added, vec![d("z")]);
        assert_eq!(removed, vec![d("x")]);
        assert_eq!(kept, 1);
    }

    #[test]
    fn side_by_side_marks_only_lines_that_differ() {
        let out = side_by_side("same line\nold words", "same line\nnew words", 12);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[0], "  same line    | same line");
        assert_eq!(lines[1], "* old words    | new words");
    }
}
