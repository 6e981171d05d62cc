//! The format-neutral layout of a report: a [`Document`] of titled sections
//! holding facts, tables, code blocks and charts. A report kind builds one
//! Document (the run report in [`run_document`]; a version comparison can
//! build its own), and `markdown` and `html` each render any Document, so
//! the two formats always show the same rows in the same order.

use super::{fmt_delta, fmt_ms, fmt_score, prediction_text, Comparison, RunReport};
use serde_json::Value;

/// A whole report.
#[derive(Debug, Clone)]
pub struct Document {
    pub title: String,
    /// Label → value lines shown under the title.
    pub summary: Vec<(String, String)>,
    pub sections: Vec<Section>,
}

/// A titled part of a report.
#[derive(Debug, Clone)]
pub struct Section {
    /// Anchor id (HTML) for linking.
    pub id: String,
    pub title: String,
    pub blocks: Vec<Block>,
}

/// What a section holds.
#[derive(Debug, Clone)]
pub enum Block {
    Para(String),
    /// A sub-heading.
    Subheading(String),
    /// Label → value rows.
    Facts {
        caption: String,
        rows: Vec<(String, String)>,
    },
    Table(Table),
    /// Preformatted text; `lang` for Markdown fences (`json`, `text`).
    Code {
        lang: String,
        text: String,
    },
    /// A Chart.js configuration (HTML only; the data is also in a table).
    Chart {
        id: String,
        label: String,
        config: Value,
    },
}

/// A data table with column headers.
#[derive(Debug, Clone)]
pub struct Table {
    pub caption: String,
    pub headers: Vec<String>,
    pub rows: Vec<Row>,
}

/// One table row; `class` marks it for styling (`win`, `loss`).
#[derive(Debug, Clone)]
pub struct Row {
    pub class: Option<String>,
    pub cells: Vec<Cell>,
}

/// A table cell.
#[derive(Debug, Clone)]
pub enum Cell {
    Text(String),
    /// Right-aligned in HTML.
    Num(String),
    /// Text in a styled cell (e.g. the `outcome` column).
    Tagged(&'static str, String),
}

impl Cell {
    /// The cell's text.
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(t) | Cell::Num(t) | Cell::Tagged(_, t) => t,
        }
    }
}

impl Table {
    /// A table with these headers and no rows yet.
    pub fn new(caption: &str, headers: &[&str]) -> Self {
        Table {
            caption: caption.into(),
            headers: headers.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a plain row.
    pub fn push(&mut self, cells: Vec<Cell>) {
        self.rows.push(Row { class: None, cells });
    }
}

impl Section {
    /// An empty section.
    pub fn new(id: &str, title: &str) -> Self {
        Section {
            id: id.into(),
            title: title.into(),
            blocks: Vec::new(),
        }
    }
}

fn text(s: impl Into<String>) -> Cell {
    Cell::Text(s.into())
}

fn num(s: impl Into<String>) -> Cell {
    Cell::Num(s.into())
}

fn opt_num(x: Option<i64>) -> Cell {
    num(x.map_or("-".into(), |v| v.to_string()))
}

fn or_dash(s: Option<&str>) -> Cell {
    text(s.unwrap_or("-"))
}

/// The metric's feedback on a score, or the error that replaced the prediction.
fn feedback(feedback: &Option<String>, error: &Option<String>) -> Cell {
    text(
        feedback
            .clone()
            .or_else(|| error.clone())
            .unwrap_or_default(),
    )
}

/// The layout of a run report.
pub fn run_document(r: &RunReport) -> Document {
    let run = &r.run;
    let mut summary = vec![
        ("status".to_string(), run.status.clone()),
        ("started".into(), run.started_at.clone()),
        (
            "finished".into(),
            run.finished_at.clone().unwrap_or_else(|| "-".into()),
        ),
    ];
    if let Some(p) = &r.program {
        summary.push((
            "program".into(),
            format!(
                "{} (v{} → {})",
                p.name,
                p.base_version.map_or("-".into(), |v| v.to_string()),
                p.result_version.map_or("-".into(), |v| format!("v{v}"))
            ),
        ));
    }
    if let Some(m) = &run.metric {
        summary.push(("metric".into(), m.clone()));
    }
    if let Some(s) = run.seed {
        summary.push(("seed".into(), s.to_string()));
    }
    if let Some(e) = &run.error {
        summary.push(("error".into(), e.clone()));
    }
    let mut sections = vec![configuration(r)];
    if let Some(s) = trainset(r) {
        sections.push(s);
    }
    sections.push(scores(r));
    if !r.trials.is_empty() {
        sections.push(trials(r));
    }
    if !r.leaderboard.is_empty() {
        sections.push(leaderboard(r));
    }
    if let Some(c) = &r.comparison {
        sections.push(comparison(c));
    }
    if !r.example_scores.is_empty() {
        sections.push(example_scores(r));
    }
    sections.push(lm_usage(r));
    if let Some(s) = best_program(r) {
        sections.push(s);
    }
    Document {
        title: format!(
            "Run {} — {}{}",
            run.id,
            run.kind,
            run.optimizer
                .as_deref()
                .map(|o| format!(" ({o})"))
                .unwrap_or_default()
        ),
        summary,
        sections,
    }
}

fn configuration(r: &RunReport) -> Section {
    let mut s = Section::new("configuration", "Configuration");
    s.blocks.push(Block::Code {
        lang: "json".into(),
        text: serde_json::to_string_pretty(&r.config).unwrap_or_default(),
    });
    if !r.lm.roles.is_empty() {
        let mut t = Table::new("LM roles used", &["role", "provider", "model", "calls"]);
        for u in &r.lm.roles {
            t.push(vec![
                or_dash(u.role.as_deref()),
                text(&u.provider),
                text(&u.model),
                num(u.calls.to_string()),
            ]);
        }
        s.blocks.push(Block::Subheading("LM roles".into()));
        s.blocks.push(Block::Table(t));
    }
    s
}

fn trainset(r: &RunReport) -> Option<Section> {
    let t = r.trainset.as_ref()?;
    let mut rows = vec![
        ("name".to_string(), format!("{} (#{})", t.name, t.id)),
        ("content hash".into(), t.content_hash.clone()),
        ("examples".into(), t.n_examples.to_string()),
    ];
    if let Some(s) = &t.split {
        rows.push((
            "split".into(),
            format!(
                "#{} seed {} (fractions train {:.2}, val {:.2})",
                s.id, s.seed, s.train_frac, s.val_frac
            ),
        ));
        rows.push((
            "train / val / test".into(),
            format!("{} / {} / {}", s.train, s.val, s.test),
        ));
    }
    let mut s = Section::new("trainset", "Trainset");
    s.blocks.push(Block::Facts {
        caption: "Trainset and split".into(),
        rows,
    });
    Some(s)
}

fn scores(r: &RunReport) -> Section {
    let mut s = Section::new("scores", "Scores");
    let h = &r.scores;
    let mut t = Table::new("Baseline against best", &["split", "baseline", "best", "Δ"]);
    for (split, a, b) in [
        ("validation", h.baseline_val, h.best_val),
        ("test", h.baseline_test, h.best_test),
    ] {
        t.push(vec![
            text(split),
            num(fmt_score(a)),
            num(fmt_score(b)),
            num(fmt_delta(a, b)),
        ]);
    }
    s.blocks.push(Block::Table(t));
    if !r.evaluations.is_empty() {
        let mut t = Table::new(
            "Evaluations",
            &[
                "evaluation",
                "candidate",
                "origin",
                "split",
                "kind",
                "n",
                "mean",
                "status",
            ],
        );
        for e in &r.evaluations {
            t.push(vec![
                num(e.id.to_string()),
                opt_num(e.candidate_id),
                or_dash(e.origin.as_deref()),
                text(e.split.to_string()),
                text(&e.kind),
                num(e.n.to_string()),
                num(fmt_score(e.mean_score)),
                text(&e.status),
            ]);
        }
        s.blocks.push(Block::Subheading("Evaluations".into()));
        s.blocks.push(Block::Table(t));
    }
    s
}

fn trials(r: &RunReport) -> Section {
    let mut s = Section::new("trials", "Score over trials");
    s.blocks.push(Block::Chart {
        id: "trials-chart".into(),
        label: "Validation score of each evaluation and the best full-validation score so far"
            .into(),
        config: trials_chart(r),
    });
    let mut t = Table::new(
        "Validation evaluations in the order they ran",
        &[
            "step",
            "candidate",
            "trial",
            "origin",
            "kind",
            "val score",
            "best so far",
        ],
    );
    for p in &r.trials {
        t.push(vec![
            num(p.step.to_string()),
            opt_num(p.candidate_id),
            opt_num(p.trial),
            or_dash(p.origin.as_deref()),
            text(&p.kind),
            num(fmt_score(Some(p.score))),
            num(fmt_score(p.best_so_far)),
        ]);
    }
    s.blocks.push(Block::Table(t));
    s
}

fn leaderboard(r: &RunReport) -> Section {
    let mut s = Section::new("leaderboard", "Candidate leaderboard");
    let mut t = Table::new(
        "Candidates by best full validation score",
        &[
            "rank",
            "candidate",
            "origin",
            "trial",
            "val score",
            "scored",
        ],
    );
    for l in &r.leaderboard {
        t.push(vec![
            num(l.rank.to_string()),
            num(l.candidate_id.to_string()),
            text(&l.origin),
            opt_num(l.trial),
            num(fmt_score(l.val_score)),
            num(l.n_scored.to_string()),
        ]);
    }
    s.blocks.push(Block::Table(t));
    s
}

fn comparison(c: &Comparison) -> Section {
    let mut s = Section::new(
        "wins-losses",
        &format!("Wins and losses of best vs baseline ({})", c.split),
    );
    s.blocks.push(Block::Para(format!(
        "{} wins, {} losses, {} ties (evaluation {} vs {}). Ties are left out below.",
        c.wins, c.losses, c.ties, c.best_evaluation_id, c.baseline_evaluation_id
    )));
    let mut changed: Vec<_> = c.examples.iter().filter(|e| e.outcome != "tie").collect();
    changed.sort_by(|a, b| {
        (b.best_score - b.baseline_score)
            .abs()
            .total_cmp(&(a.best_score - a.baseline_score).abs())
            .then(a.idx.cmp(&b.idx))
    });
    if changed.is_empty() {
        return s;
    }
    let mut t = Table::new(
        "Examples whose score changed, largest change first",
        &[
            "example",
            "outcome",
            "input",
            "baseline",
            "best",
            "baseline prediction",
            "best prediction",
            "best feedback",
        ],
    );
    for e in changed {
        t.rows.push(Row {
            class: Some(e.outcome.clone()),
            cells: vec![
                num(e.idx.to_string()),
                Cell::Tagged("outcome", e.outcome.clone()),
                text(e.input.clone().unwrap_or_default()),
                num(fmt_score(Some(e.baseline_score))),
                num(fmt_score(Some(e.best_score))),
                text(prediction_text(e.baseline_prediction.as_ref())),
                text(prediction_text(e.best_prediction.as_ref())),
                feedback(&e.best_feedback, &e.best_error),
            ],
        });
    }
    s.blocks.push(Block::Table(t));
    s
}

fn example_scores(r: &RunReport) -> Section {
    let mut s = Section::new("examples", "Per-example scores");
    let mut sorted: Vec<_> = r.example_scores.iter().collect();
    sorted.sort_by(|a, b| a.score.total_cmp(&b.score).then(a.idx.cmp(&b.idx)));
    let mut t = Table::new(
        "Lowest scores first",
        &["example", "input", "score", "prediction", "feedback"],
    );
    for e in sorted {
        t.push(vec![
            num(e.idx.to_string()),
            text(e.input.clone().unwrap_or_default()),
            num(fmt_score(Some(e.score))),
            text(prediction_text(e.prediction.as_ref())),
            feedback(&e.feedback, &e.error),
        ]);
    }
    s.blocks.push(Block::Table(t));
    s
}

fn lm_usage(r: &RunReport) -> Section {
    let lm = &r.lm;
    let mut s = Section::new("lm", "LM usage");
    s.blocks.push(Block::Facts {
        caption: "Calls, tokens, cost and latency".into(),
        rows: vec![
            ("calls".into(), lm.totals.calls.to_string()),
            (
                "cache hits".into(),
                format!(
                    "{} ({})",
                    lm.totals.cache_hits,
                    lm.cache_hit_rate
                        .map_or("-".into(), |x| format!("{:.1}%", x * 100.0))
                ),
            ),
            ("errors".into(), lm.totals.errors.to_string()),
            ("prompt tokens".into(), lm.totals.prompt_tokens.to_string()),
            (
                "completion tokens".into(),
                lm.totals.completion_tokens.to_string(),
            ),
            ("cost".into(), format!("${:.4}", lm.totals.cost_usd)),
            (
                "latency p50 / p90 / p99 (provider calls)".into(),
                format!(
                    "{} / {} / {}",
                    fmt_ms(lm.latency_p50_ms),
                    fmt_ms(lm.latency_p90_ms),
                    fmt_ms(lm.latency_p99_ms)
                ),
            ),
        ],
    });
    s
}

fn best_program(r: &RunReport) -> Option<Section> {
    let b = r.best_program.as_ref()?;
    let mut s = Section::new("program", "Best program");
    if let Some(c) = b.candidate_id {
        s.blocks.push(Block::Para(format!("Candidate {c}.")));
    }
    for p in &b.predictors {
        s.blocks
            .push(Block::Subheading(format!("Predictor {}", p.name)));
        s.blocks.push(Block::Para("Instructions:".into()));
        s.blocks.push(Block::Code {
            lang: "text".into(),
            text: p.instructions.clone(),
        });
        s.blocks
            .push(Block::Para(format!("Demos: {}", p.demos.len())));
        for demo in &p.demos {
            s.blocks.push(Block::Code {
                lang: "json".into(),
                text: serde_json::to_string_pretty(demo).unwrap_or_default(),
            });
        }
    }
    Some(s)
}

/// The Chart.js configuration of the score-over-trials chart: each
/// validation evaluation as a point (minibatches hollow), and the best full
/// score so far as a stepped line.
fn trials_chart(r: &RunReport) -> Value {
    let labels: Vec<String> = r
        .trials
        .iter()
        .map(|t| match (t.trial, &t.origin) {
            (Some(n), _) => format!("{} (trial {n})", t.step),
            (None, Some(o)) => format!("{} ({o})", t.step),
            _ => t.step.to_string(),
        })
        .collect();
    let scores: Vec<f64> = r.trials.iter().map(|t| t.score).collect();
    let best: Vec<Option<f64>> = r.trials.iter().map(|t| t.best_so_far).collect();
    let full = |t: &super::TrialPoint| t.kind == "full";
    let radius: Vec<u8> = r
        .trials
        .iter()
        .map(|t| if full(t) { 4 } else { 3 })
        .collect();
    let fill: Vec<&str> = r
        .trials
        .iter()
        .map(|t| if full(t) { "#2f6fdf" } else { "#ffffff" })
        .collect();
    serde_json::json!({
        "type": "line",
        "data": {
            "labels": labels,
            "datasets": [
                {
                    "label": "validation score",
                    "data": scores,
                    "showLine": false,
                    "borderColor": "#2f6fdf",
                    "backgroundColor": fill,
                    "pointRadius": radius,
                },
                {
                    "label": "best so far (full validation)",
                    "data": best,
                    "stepped": true,
                    "borderColor": "#d9822b",
                    "backgroundColor": "#d9822b",
                    "pointRadius": 0,
                    "spanGaps": true,
                },
            ],
        },
        "options": {
            "animation": false,
            "responsive": true,
            "maintainAspectRatio": false,
            "scales": {
                "x": {"title": {"display": true, "text": "validation evaluation"}},
                "y": {"title": {"display": true, "text": "mean score"}, "suggestedMin": 0, "suggestedMax": 1},
            },
        },
    })
}
