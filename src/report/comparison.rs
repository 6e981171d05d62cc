//! `report compare PROGRAM V1 V2`: a stored version comparison rendered
//! like a run report — the same [`Document`] layout, so Markdown and
//! self-contained HTML (with a chart of per-example differences) come from
//! the shared renderers; JSON is the stored result; CSV is the per-example
//! table.

use super::document::{Block, Cell, Document, Row, Section, Table};
use super::{fmt_score, prediction_text, Format};
use crate::compare::Comparison;
use crate::error::{Error, Result};
use crate::store::Store;
use std::io::Write;

/// The newest stored comparison of versions `v1` and `v2` of `program`
/// (made in either direction).
pub fn find_comparison(store: &Store, program: &str, v1: i64, v2: i64) -> Result<Comparison> {
    let a = store.find_version(program, Some(v1))?;
    let b = store.find_version(program, Some(v2))?;
    let row = store.latest_comparison(a.id, b.id, None)?.ok_or_else(|| {
        Error::Invalid(format!(
            "no stored comparison of {program} v{v1} and v{v2}; run \
             `skill-fleet compare {program} {v1} {v2} --trainset TRAINSET` first"
        ))
    })?;
    Comparison::from_row(&row)
}

fn num(s: String) -> Cell {
    Cell::Num(s)
}

/// The layout of a comparison report.
pub fn comparison_document(c: &Comparison) -> Document {
    let s = &c.summary;
    let (a, b) = (format!("v{}", c.a_version), format!("v{}", c.b_version));
    let summary = vec![
        ("program".to_string(), c.program.clone()),
        (
            "trainset".into(),
            format!("{} (split {})", c.trainset, c.split),
        ),
        ("metric".into(), c.metric.clone()),
        ("examples".into(), s.n.to_string()),
    ];
    let mut result = Section::new("result", "Result");
    result.blocks.push(Block::Facts {
        caption: format!("{b} (B) against {a} (A)"),
        rows: vec![
            (
                format!("{a} mean"),
                format!(
                    "{:.4}{}",
                    s.a_mean,
                    if c.a_reused { " (stored scores)" } else { "" }
                ),
            ),
            (
                format!("{b} mean"),
                format!(
                    "{:.4}{}",
                    s.b_mean,
                    if c.b_reused { " (stored scores)" } else { "" }
                ),
            ),
            ("difference B − A".into(), format!("{:+.4}", s.mean_diff)),
            (
                format!("{:.0}% paired bootstrap interval", s.confidence * 100.0),
                format!(
                    "[{:+.4}, {:+.4}] ({} resamples, seed {})",
                    s.ci_low, s.ci_high, s.resamples, s.seed
                ),
            ),
            (
                "wins / losses / ties (B vs A)".into(),
                format!("{} / {} / {}", s.wins, s.losses, s.ties),
            ),
            (
                "sign test p (two-sided)".into(),
                format!("{:.4}", s.p_value),
            ),
        ],
    });
    let mut chart = Section::new("differences", "Per-example differences");
    chart.blocks.push(Block::Chart {
        id: "diff-chart".into(),
        label: format!("{b} score minus {a} score on each example"),
        config: serde_json::json!({
            "type": "bar",
            "data": {
                "labels": c.examples.iter().map(|e| e.example_id.to_string()).collect::<Vec<_>>(),
                "datasets": [{
                    "label": "B − A",
                    "data": c.examples.iter().map(|e| e.diff).collect::<Vec<_>>(),
                    "backgroundColor": c.examples.iter().map(|e| match e.outcome.as_str() {
                        "win" => "#2e9e5b", "loss" => "#d2463c", _ => "#9aa0a6"
                    }).collect::<Vec<_>>(),
                }]
            },
            "options": {"animation": false, "plugins": {"legend": {"display": false}},
                        "scales": {"x": {"title": {"display": true, "text": "example id"}},
                                   "y": {"title": {"display": true, "text": "score difference"}}}}
        }),
    });
    let mut t = Table::new(
        "Every example",
        &[
            "example",
            &format!("{a} score"),
            &format!("{b} score"),
            "difference",
            "outcome",
        ],
    );
    for e in &c.examples {
        t.rows.push(Row {
            class: Some(e.outcome.clone()),
            cells: vec![
                num(e.example_id.to_string()),
                num(fmt_score(Some(e.a_score))),
                num(fmt_score(Some(e.b_score))),
                num(format!("{:+.4}", e.diff)),
                Cell::Tagged("outcome", e.outcome.clone()),
            ],
        });
    }
    chart.blocks.push(Block::Table(t));
    let mut changed = Section::new("most-changed", "Most changed examples");
    let mut m = Table::new(
        "Largest differences first, with both predictions and the metric's feedback",
        &[
            "example",
            "difference",
            &format!("{a} prediction"),
            &format!("{b} prediction"),
            &format!("{a} feedback"),
            &format!("{b} feedback"),
        ],
    );
    for e in &c.most_changed {
        m.rows.push(Row {
            class: Some(e.outcome.clone()),
            cells: vec![
                num(e.example_id.to_string()),
                num(format!("{:+.4}", e.diff)),
                Cell::Text(prediction_text(e.a_prediction.as_ref())),
                Cell::Text(prediction_text(e.b_prediction.as_ref())),
                Cell::Text(e.a_feedback.clone().unwrap_or_default()),
                Cell::Text(e.b_feedback.clone().unwrap_or_default()),
            ],
        });
    }
    changed.blocks.push(Block::Table(m));
    Document {
        title: format!(
            "Comparison {}: {} {b} against {a}",
            c.id.map(|i| format!("#{i}")).unwrap_or_default(),
            c.program
        ),
        summary,
        sections: vec![result, chart, changed],
    }
}

/// Writes a comparison in `format`.
pub fn render_comparison(c: &Comparison, format: Format, out: &mut dyn Write) -> Result<()> {
    let io = |e| Error::io("report output", e);
    match format {
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, c)?;
            out.write_all(b"\n").map_err(io)
        }
        Format::Markdown => out
            .write_all(super::markdown::render(&comparison_document(c)).as_bytes())
            .map_err(io),
        Format::Html => out
            .write_all(super::html::render(&comparison_document(c)).as_bytes())
            .map_err(io),
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let err = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
            w.write_record([
                "example_id",
                "a_version",
                "b_version",
                "a_score",
                "b_score",
                "diff",
                "outcome",
                "a_prediction",
                "b_prediction",
                "a_feedback",
                "b_feedback",
            ])
            .map_err(err)?;
            for e in &c.examples {
                let json = |v: &Option<serde_json::Value>| {
                    v.as_ref().map(|v| v.to_string()).unwrap_or_default()
                };
                w.write_record([
                    e.example_id.to_string(),
                    c.a_version.to_string(),
                    c.b_version.to_string(),
                    e.a_score.to_string(),
                    e.b_score.to_string(),
                    e.diff.to_string(),
                    e.outcome.clone(),
                    json(&e.a_prediction),
                    json(&e.b_prediction),
                    e.a_feedback.clone().unwrap_or_default(),
                    e.b_feedback.clone().unwrap_or_default(),
                ])
                .map_err(err)?;
            }
            w.flush().map_err(io)
        }
    }
}
