//! `skill-fleet versions list|show|diff|promote|rollback|history` and
//! `skill-fleet compare`: flags in, calls to `crate::registry` and
//! `crate::jobs::compare`, tables or JSON out.

use super::{output, App};
use crate::compare::{Comparison, StatSettings};
use crate::data::Part;
use crate::jobs::{self, CompareRequest};
use crate::registry::{self, diff::side_by_side, EvidenceGate, GateRule, PromoteRequest};
use crate::store::Split;
use anyhow::{anyhow, Result};
use clap::{Args, Subcommand};
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum VersionsCommand {
    /// Versions of a program, newest first, with their aliases.
    List { program: String },
    /// One version: lineage, aliases, scores, instructions and demo counts.
    Show { program: String, version: i64 },
    /// Version V2 against V1: instructions side by side and demos per
    /// predictor, other spec changes, scores, the newest comparison, lineage.
    Diff { program: String, v1: i64, v2: i64 },
    /// Point an alias at a version (recorded with the reason and evidence).
    Promote {
        program: String,
        version: i64,
        #[arg(long, default_value = "production")]
        alias: String,
        #[arg(long)]
        reason: Option<String>,
        /// Refuse unless a stored comparison (`skill-fleet compare`) of this
        /// version against the alias's current one on --split shows it not
        /// worse by more than --margin.
        #[arg(long)]
        require_better: bool,
        /// Split the comparison must be on (train, val, test, all).
        #[arg(long, default_value = "test", requires = "require_better")]
        split: String,
        /// How much lower the new version's score may be.
        #[arg(long, default_value_t = 0.0, requires = "require_better")]
        margin: f64,
        /// `mean`: the mean difference decides; `interval`: the lower end of
        /// the comparison's confidence interval must clear -margin.
        #[arg(long, default_value = "mean", requires = "require_better")]
        rule: String,
    },
    /// Point an alias back at its previous version (or --to a version).
    Rollback {
        program: String,
        #[arg(long, default_value = "production")]
        alias: String,
        #[arg(long)]
        to: Option<i64>,
        #[arg(long)]
        reason: Option<String>,
    },
    /// Every move of the program's aliases, newest first.
    History {
        program: String,
        #[arg(long)]
        alias: Option<String>,
    },
}

/// Parses `train|val|test|all` (`all`: every example, no split part).
fn parse_part(s: &str) -> Result<Option<Part>> {
    Part::parse_or_all(s).map_err(|()| anyhow!("--split `{s}`: expected train, val, test or all"))
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map(|x| x.to_string()).unwrap_or_default()
}

pub fn run(app: &App, cmd: VersionsCommand) -> Result<ExitCode> {
    match cmd {
        VersionsCommand::List { program } => {
            let rows = registry::list_versions(&app.reader()?, &program)?;
            if app.json {
                return output::json(&rows).map(|_| ExitCode::SUCCESS);
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|l| {
                    let v = &l.version;
                    vec![
                        v.version.to_string(),
                        l.aliases.join(","),
                        v.content_hash[..12].to_string(),
                        opt(v.parent_id.map(|p| format!("#{p}"))),
                        opt(v.run_id),
                        opt(v.score.map(|s| format!("{s:.4}"))),
                        v.note.clone().unwrap_or_default(),
                        v.created_at.clone(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "version", "aliases", "hash", "parent", "run", "score", "note", "created",
                ],
                &cells,
            );
        }
        VersionsCommand::Show { program, version } => {
            let d = registry::version_detail(&app.reader()?, &program, version)?;
            if app.json {
                return output::json(&d).map(|_| ExitCode::SUCCESS);
            }
            let v = &d.version;
            println!("{program} version {} (id {})", v.version, v.id);
            println!("  hash:     {}", v.content_hash);
            println!("  created:  {}", v.created_at);
            println!("  note:     {}", v.note.as_deref().unwrap_or("-"));
            println!(
                "  lineage:  {}",
                if d.lineage.is_empty() {
                    "(root)".to_string()
                } else {
                    d.lineage
                        .iter()
                        .map(|n| format!("v{n}"))
                        .collect::<Vec<_>>()
                        .join(" <- ")
                }
            );
            println!("  aliases:  {}", d.aliases.join(", "));
            println!("  run:      {}", opt(v.run_id));
            println!("  score:    {}", opt(v.score.map(|s| format!("{s:.4}"))));
            println!("scores:");
            for e in &d.evaluations {
                println!(
                    "  {:<5} {:>4} examples  {:<24} {}  (run {}, evaluation {})",
                    e.split.as_str(),
                    e.n,
                    e.metric,
                    opt(e.mean_score.map(|s| format!("{s:.4}"))),
                    e.run_id,
                    e.evaluation_id
                );
            }
            println!("predictors:");
            for p in &d.predictors {
                println!("  {} ({} demos)", p.name, p.demos);
                for line in p.instructions.lines() {
                    println!("    {line}");
                }
            }
        }
        VersionsCommand::Diff { program, v1, v2 } => {
            let d = registry::diff_versions(&app.reader()?, &program, v1, v2)?;
            if app.json {
                return output::json(&d).map(|_| ExitCode::SUCCESS);
            }
            println!("{program}: v{v2} against v{v1}");
            let anc = |a: &[i64]| a.iter().map(|n| format!("v{n}")).collect::<Vec<_>>();
            println!(
                "lineage: v{v1} <- {:?}; v{v2} <- {:?}; nearest common: {}",
                anc(&d.lineage.a_ancestors),
                anc(&d.lineage.b_ancestors),
                opt(d.lineage.common_ancestor.map(|v| format!("v{v}")))
            );
            println!(
                "stored score: v{v1} {} | v{v2} {}",
                opt(d.a.score.map(|s| format!("{s:.4}"))),
                opt(d.b.score.map(|s| format!("{s:.4}")))
            );
            match &d.comparison {
                Some(c) => println!(
                    "comparison #{} on {} ({} examples, {}): v{} {:.4} vs v{} {:.4}, {:.0}% interval [{:+.4}, {:+.4}]",
                    c.id, c.split, c.n, c.metric,
                    if c.a_version_id == d.a.id { v1 } else { v2 }, c.a_mean,
                    if c.b_version_id == d.b.id { v2 } else { v1 }, c.b_mean,
                    c.confidence * 100.0, c.ci_low, c.ci_high
                ),
                None => println!("comparison: none stored (skill-fleet compare {program} {v1} {v2} --trainset T)"),
            }
            for change in &d.other_changes {
                println!("changed {change}");
            }
            for p in &d.predictors {
                println!();
                let only = match p.only_in {
                    Some(side) => format!(" (only in v{})", if side == "a" { v1 } else { v2 }),
                    None => String::new(),
                };
                println!("== predictor {}{only}", p.name);
                if p.instructions_changed {
                    println!("instructions (v{v1} | v{v2}, * marks lines that differ):");
                    print!("{}", side_by_side(&p.a_instructions, &p.b_instructions, 56));
                } else {
                    println!("instructions: unchanged");
                }
                println!(
                    "demos: {} kept, {} added, {} removed",
                    p.demos_kept,
                    p.demos_added.len(),
                    p.demos_removed.len()
                );
                for (sign, demos) in [("+", &p.demos_added), ("-", &p.demos_removed)] {
                    for demo in demos.iter() {
                        let text = serde_json::to_string(demo)?;
                        let short: String = text.chars().take(150).collect();
                        println!("  {sign} {short}");
                    }
                }
            }
        }
        VersionsCommand::Promote {
            program,
            version,
            alias,
            reason,
            require_better,
            split,
            margin,
            rule,
        } => {
            let gate = if require_better {
                let split = Split::parse(&split).ok_or_else(|| {
                    anyhow!("--split `{split}`: expected train, val, test or all")
                })?;
                let rule = match rule.as_str() {
                    "mean" => GateRule::Mean,
                    "interval" => GateRule::Interval,
                    other => return Err(anyhow!("--rule `{other}`: expected mean or interval")),
                };
                if margin.is_nan() || margin < 0.0 {
                    return Err(anyhow!("--margin {margin}: expected a number >= 0"));
                }
                Some(EvidenceGate {
                    split,
                    margin,
                    rule,
                })
            } else {
                None
            };
            let m = registry::promote(
                &mut app.store()?,
                &PromoteRequest {
                    program,
                    version,
                    alias,
                    reason,
                    gate,
                },
            )?;
            print_move(app, &m)?;
        }
        VersionsCommand::Rollback {
            program,
            alias,
            to,
            reason,
        } => {
            let m = registry::rollback(&mut app.store()?, &program, &alias, to, reason.as_deref())?;
            print_move(app, &m)?;
        }
        VersionsCommand::History { program, alias } => {
            let rows = registry::history(&app.reader()?, &program, alias.as_deref())?;
            if app.json {
                return output::json(&rows).map(|_| ExitCode::SUCCESS);
            }
            let cells: Vec<Vec<String>> = rows
                .iter()
                .map(|m| {
                    vec![
                        m.at.clone(),
                        m.alias.clone(),
                        m.action.clone(),
                        opt(m.from_version),
                        m.to_version.to_string(),
                        opt(m.comparison_id.map(|c| format!("#{c}"))),
                        m.reason.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            output::table(
                &[
                    "at",
                    "alias",
                    "action",
                    "from",
                    "to",
                    "comparison",
                    "reason",
                ],
                &cells,
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_move(app: &App, m: &registry::MoveReport) -> Result<()> {
    if app.json {
        return output::json(m);
    }
    println!(
        "{}@{}: {} -> version {} ({}{})",
        m.program,
        m.alias,
        m.from_version
            .map(|v| format!("version {v}"))
            .unwrap_or_else(|| "(new)".into()),
        m.to_version,
        m.action,
        m.comparison_id
            .map(|c| format!(", evidence: comparison #{c}"))
            .unwrap_or_default()
    );
    Ok(())
}

/// `skill-fleet compare PROGRAM V1 V2 --trainset T`.
#[derive(Debug, Args)]
pub struct CompareArgs {
    /// A registered program.
    pub program: String,
    /// Reference version.
    pub v1: i64,
    /// Challenger version (differences are V2 minus V1).
    pub v2: i64,
    #[arg(long)]
    pub trainset: String,
    /// Part of the trainset's newest split (train, val, test) or all.
    #[arg(long, default_value = "test")]
    pub split: String,
    /// Metric (default: V2's own, else the task's default).
    #[arg(long)]
    pub metric: Option<String>,
    /// Seed of the bootstrap resampling.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    #[arg(long, default_value_t = 10_000)]
    pub resamples: usize,
    /// Confidence level of the interval.
    #[arg(long, default_value_t = 0.95)]
    pub confidence: f64,
    #[arg(long, default_value_t = 4)]
    pub threads: usize,
    #[arg(long)]
    pub no_cache: bool,
}

pub async fn compare(app: &App, a: CompareArgs) -> Result<ExitCode> {
    if !(a.confidence > 0.0 && a.confidence < 1.0) {
        return Err(anyhow!(
            "--confidence {}: expected a number between 0 and 1",
            a.confidence
        ));
    }
    if a.resamples == 0 {
        return Err(anyhow!("--resamples 0: expected at least 1"));
    }
    let ctx = app.context()?;
    let c = jobs::run_compare(
        &ctx,
        CompareRequest {
            program: a.program,
            a: a.v1,
            b: a.v2,
            trainset: a.trainset,
            split: parse_part(&a.split)?,
            metric: a.metric,
            stats: StatSettings {
                confidence: a.confidence,
                resamples: a.resamples,
                seed: a.seed,
            },
            threads: a.threads,
            no_cache: a.no_cache,
        },
        None,
    )
    .await?;
    if app.json {
        output::json(&c)?;
    } else {
        print!("{}", render_comparison(&c));
    }
    Ok(ExitCode::SUCCESS)
}

/// The plain-text summary of a comparison.
pub fn render_comparison(c: &Comparison) -> String {
    let s = &c.summary;
    let mut out = format!(
        "comparison #{}: {} v{} (B) against v{} (A) on {} split {} ({} examples, metric {})\n",
        opt(c.id),
        c.program,
        c.b_version,
        c.a_version,
        c.trainset,
        c.split,
        s.n,
        c.metric
    );
    out.push_str(&format!(
        "  A mean {:.4}{}  B mean {:.4}{}\n",
        s.a_mean,
        if c.a_reused { " (stored scores)" } else { "" },
        s.b_mean,
        if c.b_reused { " (stored scores)" } else { "" }
    ));
    out.push_str(&format!(
        "  difference B-A {:+.4}, {:.0}% paired bootstrap interval [{:+.4}, {:+.4}] ({} resamples, seed {})\n",
        s.mean_diff,
        s.confidence * 100.0,
        s.ci_low,
        s.ci_high,
        s.resamples,
        s.seed
    ));
    out.push_str(&format!(
        "  per example: {} wins, {} losses, {} ties; sign test p = {:.4}\n",
        s.wins, s.losses, s.ties, s.p_value
    ));
    if !c.most_changed.is_empty() {
        out.push_str("  most changed examples:\n");
        for e in &c.most_changed {
            out.push_str(&format!(
                "    example {}: {:.3} -> {:.3} ({:+.3})\n",
                e.example_id, e.a_score, e.b_score, e.diff
            ));
        }
    }
    out
}
