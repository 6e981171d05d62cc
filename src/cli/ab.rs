//! `skill-fleet ab create|route|weights|record|status|conclude|list`: flags
//! in, a call into `crate::ab`, a table or JSON out.

use super::{output, App};
use crate::ab::{self, stats::StatusReport, AbTest, Outcome, StatusOptions, VariantWeight};
use crate::store::AbStrategy;
use anyhow::{Context, Result};
use clap::{ArgGroup, Subcommand};
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum AbCommand {
    /// Start an A/B test between versions of a program.
    Create {
        /// Registered program whose versions are compared.
        program: String,
        /// A variant: VERSION=WEIGHT, e.g. V3=90 (at least two).
        #[arg(long = "variant", value_name = "VERSION=WEIGHT", required = true, value_parser = parse_variant)]
        variants: Vec<VariantWeight>,
        /// sticky: a key always gets the same variant; random: a fresh draw per request.
        #[arg(long, default_value = "sticky", value_parser = parse_strategy)]
        strategy: AbStrategy,
        /// Name of the test (default: PROGRAM-V3-vs-V4).
        #[arg(long)]
        name: Option<String>,
    },
    /// Route a key (or every line of a file) to a variant; each routing is stored.
    #[command(group(ArgGroup::new("keys").required(true).args(["key", "keys_file"])))]
    Route {
        test: String,
        /// The unit being routed (a user, a session).
        #[arg(long)]
        key: Option<String>,
        /// A file of keys, one per line; prints `key<TAB>variant` per line.
        #[arg(long)]
        keys_file: Option<PathBuf>,
    },
    /// Change the weights of variants (recorded in the weight history).
    Weights {
        test: String,
        /// A new weight: VERSION=WEIGHT, e.g. V3=80.
        #[arg(long = "variant", value_name = "VERSION=WEIGHT", required = true, value_parser = parse_variant)]
        variants: Vec<VariantWeight>,
    },
    /// Record the outcome of a key's latest routed request.
    #[command(group(ArgGroup::new("outcome").required(true).args(["score", "success", "failure"])))]
    Record {
        test: String,
        #[arg(long)]
        key: String,
        /// A numeric score.
        #[arg(long, allow_hyphen_values = true)]
        score: Option<f64>,
        /// A binary success.
        #[arg(long)]
        success: bool,
        /// A binary failure.
        #[arg(long)]
        failure: bool,
    },
    /// Per-variant requests, outcomes, means with intervals, P(best), and the stop rule.
    Status {
        test: String,
        /// Outcomes every variant needs before the stop rule may say stop.
        #[arg(long, default_value_t = StatusOptions::default().min_outcomes)]
        min_outcomes: u64,
        /// P(best) one variant must reach for the stop rule.
        #[arg(long, default_value_t = StatusOptions::default().threshold)]
        threshold: f64,
        /// Monte Carlo draws for P(best).
        #[arg(long, default_value_t = StatusOptions::default().draws)]
        draws: usize,
        /// Seed of the Monte Carlo draws.
        #[arg(long, default_value_t = StatusOptions::default().seed)]
        seed: u64,
    },
    /// End a test with a winner; --promote moves an alias to the winner's version.
    Conclude {
        test: String,
        /// The winning variant, e.g. V4.
        #[arg(long)]
        winner: String,
        /// Alias of the program to point at the winner's version.
        #[arg(long)]
        promote: Option<String>,
    },
    /// Every A/B test, newest first.
    List,
}

fn parse_variant(s: &str) -> Result<VariantWeight, String> {
    s.parse().map_err(|e: crate::error::Error| e.to_string())
}

fn parse_strategy(s: &str) -> Result<AbStrategy, String> {
    AbStrategy::parse(s)
        .ok_or_else(|| format!("`{s}` is not a strategy; expected sticky or random"))
}

pub fn run(app: &App, cmd: AbCommand) -> Result<ExitCode> {
    match cmd {
        AbCommand::Create {
            program,
            variants,
            strategy,
            name,
        } => {
            let req = ab::CreateRequest {
                program: program.clone(),
                name,
                strategy,
                variants,
            };
            let t = ab::create(&mut app.store()?, &req)
                .with_context(|| format!("creating an A/B test of program `{program}`"))?;
            print_test(app, &t)
        }
        AbCommand::Route {
            test,
            key,
            keys_file,
        } => {
            let keys = match (key, &keys_file) {
                (Some(k), _) => vec![k],
                (None, Some(f)) => read_keys(f)?,
                (None, None) => anyhow::bail!("give --key or --keys-file"),
            };
            let routed = ab::route(&mut app.store()?, &test, &keys)
                .with_context(|| format!("routing in A/B test `{test}`"))?;
            if app.json {
                output::json(&routed)?;
            } else {
                let mut out = std::io::BufWriter::new(std::io::stdout().lock());
                for r in &routed {
                    writeln!(out, "{}\t{}", r.key, r.variant)?;
                }
                out.flush()?;
            }
            Ok(ExitCode::SUCCESS)
        }
        AbCommand::Weights { test, variants } => {
            let t = ab::set_weights(&mut app.store()?, &test, &variants)
                .with_context(|| format!("changing the weights of A/B test `{test}`"))?;
            print_test(app, &t)
        }
        AbCommand::Record {
            test,
            key,
            score,
            success,
            failure,
        } => {
            let outcome = match (score, success, failure) {
                (Some(x), _, _) => Outcome::Score(x),
                (None, true, _) => Outcome::Success,
                (None, false, true) => Outcome::Failure,
                _ => anyhow::bail!("give one of --score X, --success, --failure"),
            };
            let r = ab::record(&mut app.store()?, &test, &key, outcome)
                .with_context(|| format!("recording an outcome in A/B test `{test}`"))?;
            if app.json {
                output::json(&r)?;
            } else {
                println!(
                    "recorded {} {} for key {} (variant {}, version {})",
                    r.kind, r.value, r.key, r.variant, r.version
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        AbCommand::Status {
            test,
            min_outcomes,
            threshold,
            draws,
            seed,
        } => {
            let opts = StatusOptions {
                min_outcomes,
                threshold,
                draws,
                seed,
                ..StatusOptions::default()
            };
            let r = ab::status(&app.reader()?, &test, &opts)
                .with_context(|| format!("the status of A/B test `{test}`"))?;
            if app.json {
                output::json(&r)?;
            } else {
                print_status(&r);
            }
            Ok(ExitCode::SUCCESS)
        }
        AbCommand::Conclude {
            test,
            winner,
            promote,
        } => {
            let t = ab::conclude(&mut app.store()?, &test, &winner, promote.as_deref())
                .with_context(|| format!("concluding A/B test `{test}`"))?;
            print_test(app, &t)
        }
        AbCommand::List => {
            let tests = ab::list(&app.reader()?).context("listing A/B tests")?;
            if app.json {
                output::json(&tests)?;
            } else {
                let rows: Vec<Vec<String>> = tests
                    .iter()
                    .map(|t| {
                        vec![
                            t.test.name.clone(),
                            t.test.program.clone(),
                            t.test.strategy.to_string(),
                            t.test.status.to_string(),
                            weights_text(t),
                            t.test.winner.clone().unwrap_or_default(),
                            t.test.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "name", "program", "strategy", "status", "variants", "winner", "created",
                    ],
                    &rows,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Non-empty, trimmed lines of a keys file.
fn read_keys(path: &PathBuf) -> Result<Vec<String>> {
    let file = std::fs::File::open(path)
        .with_context(|| format!("--keys-file: opening {}", path.display()))?;
    let mut keys = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("--keys-file: reading {}", path.display()))?;
        let key = line.trim();
        if !key.is_empty() {
            keys.push(key.to_string());
        }
    }
    Ok(keys)
}

fn weights_text(t: &AbTest) -> String {
    t.variants
        .iter()
        .map(|v| format!("{}={}", v.name, v.weight))
        .collect::<Vec<_>>()
        .join(" ")
}

fn print_test(app: &App, t: &AbTest) -> Result<ExitCode> {
    if app.json {
        output::json(t)?;
    } else {
        println!(
            "A/B test `{}` of program `{}` ({}, {}): {}",
            t.test.name,
            t.test.program,
            t.test.strategy,
            t.test.status,
            weights_text(t)
        );
        if let Some(w) = &t.test.winner {
            println!(
                "winner: {w}{}",
                t.test
                    .promoted_alias
                    .as_ref()
                    .map(|a| format!(" (alias `{a}` now points to it)"))
                    .unwrap_or_default()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn print_status(r: &StatusReport) {
    let num = |x: Option<f64>| x.map(|x| format!("{x:.4}")).unwrap_or_else(|| "-".into());
    println!(
        "A/B test `{}` of program `{}` ({}, {}); outcomes: {}, interval: {} {}",
        r.test.test.name,
        r.test.test.program,
        r.test.test.strategy,
        r.test.test.status,
        r.measure.as_str(),
        r.confidence,
        r.interval.unwrap_or("-")
    );
    let rows: Vec<Vec<String>> = r
        .variants
        .iter()
        .map(|v| {
            vec![
                v.variant.clone(),
                v.version.to_string(),
                format!("{:.1}%", v.share * 100.0),
                v.requests.to_string(),
                v.outcomes.to_string(),
                num(v.mean),
                format!("[{}, {}]", num(v.ci_low), num(v.ci_high)),
                num(v.p_best),
            ]
        })
        .collect();
    output::table(
        &[
            "variant", "version", "share", "requests", "outcomes", "mean", "ci", "p_best",
        ],
        &rows,
    );
    println!(
        "{}: {}\nrule: {}",
        if r.decision.stop {
            "enough data"
        } else {
            "keep running"
        },
        r.decision.reason,
        r.decision.rule
    );
}
