//! `skill-fleet trainset import|expand|synthesize|from-traces|merge|list|show|stats|validate|split`

use super::{output, App};
use crate::data::{self, Part, SplitFractions};
use crate::Error;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum TrainsetCommand {
    /// Validate and store a trainset (JSON array, JSONL or CSV). Same content, same trainset.
    Import {
        file: PathBuf,
        /// Name to find it by (default: the file stem).
        #[arg(long)]
        name: Option<String>,
    },
    /// Derive examples from existing skills: every SKILL.md with YAML
    /// frontmatter below --skills-dir (style thresholds under `expand:` in the
    /// config). Skipped files and dropped duplicates are listed with reasons.
    Expand {
        #[arg(long)]
        skills_dir: PathBuf,
        /// Write the examples to this JSON file.
        #[arg(short = 'o', long = "out", required_unless_present = "import")]
        out: Option<PathBuf>,
        /// Store the examples as a trainset with this name.
        #[arg(long)]
        import: Option<String>,
    },
    /// Ask an LM for new examples aimed at the trainset's coverage gaps (the
    /// thinnest categories and styles of `trainset stats`, spread over the
    /// requests). Each answer is validated like an import and compared with the
    /// trainset and the examples already generated; invalid answers and
    /// near-duplicates (same name, or a task sharing too many words: see
    /// `synthesize:` in the config) are rejected with the reason, never
    /// written. Missing examples are asked for again, up to `max_rounds`.
    /// Accepted examples carry `source: synthetic`. The generation is a run
    /// (kind `synthesize`) with a trace per LM call.
    Synthesize {
        /// A stored trainset (id, name, hash prefix) or a file.
        #[arg(long)]
        trainset: String,
        /// Examples wanted.
        #[arg(long, default_value_t = 20)]
        n: usize,
        /// The LM role to ask (from the config's `lm.roles`).
        #[arg(long, default_value = "prompt")]
        role: String,
        /// Stop after this many LM calls (cache hits are free).
        #[arg(long)]
        max_calls: Option<u64>,
        /// Stop after this many prompt + completion tokens.
        #[arg(long)]
        max_tokens: Option<u64>,
        /// Ask the model even when the cache has an answer.
        #[arg(long)]
        no_cache: bool,
        /// Write the examples to this JSON file.
        #[arg(short = 'o', long = "out", required_unless_present = "import")]
        out: Option<PathBuf>,
        /// Store the examples as a trainset with this name.
        #[arg(long)]
        import: Option<String>,
    },
    /// Turn a program's traced predictions (from `predict`, `eval` and A/B
    /// traffic) into examples: inputs from the program inputs recorded with
    /// each call, labels from its parsed answer, each with `source: trace` and
    /// its `trace_id`. Duplicates keep the best-scored trace; traces without
    /// inputs, with an unparsable answer or an invalid example are listed with
    /// the reason.
    FromTraces {
        /// A registered program's name (or its spec file).
        #[arg(long)]
        program: String,
        /// Only the version an alias points to.
        #[arg(long, conflicts_with = "version")]
        alias: Option<String>,
        /// Only this version.
        #[arg(long)]
        version: Option<i64>,
        /// Only traces whose recorded score (eval score, or mean A/B outcome)
        /// is at least this; traces without a score are left out.
        #[arg(long)]
        min_score: Option<f64>,
        #[arg(long = "where", value_name = "SQL-FILTER", long_help = where_help())]
        filter: Option<String>,
        /// Write the examples to this JSON file.
        #[arg(short = 'o', long = "out", required_unless_present = "import")]
        out: Option<PathBuf>,
        /// Store the examples as a trainset with this name.
        #[arg(long)]
        import: Option<String>,
    },
    /// Merge two trainsets (stored: id, name, hash prefix; or files) into one:
    /// A's examples, then B's; duplicates (same content, and for the skill
    /// schema the same `expected_name` or task text) are dropped and listed
    /// with the example they duplicate. The result is validated like an import.
    Merge {
        a: String,
        b: String,
        /// Write the merged examples to this JSON file.
        #[arg(short = 'o', long = "out", required_unless_present = "import")]
        out: Option<PathBuf>,
        /// Store the merged examples as a trainset with this name.
        #[arg(long)]
        import: Option<String>,
    },
    /// List stored trainsets.
    List,
    /// Show a trainset's examples.
    Show {
        /// Id, name or content-hash prefix.
        trainset: String,
        /// Show at most this many examples.
        #[arg(long, default_value_t = 10)]
        limit: usize,
    },
    /// Counts per style, category and source; readiness and diversity
    /// warnings; coverage gaps with how many examples of which category or
    /// style to add (`gaps` under --json).
    Stats {
        /// A stored trainset (id, name, hash prefix) or a file path.
        trainset: String,
    },
    /// Check a file and report every problem with its location; writes nothing.
    Validate { file: PathBuf },
    /// Make (or show) a seeded, stratified train/val/test split.
    Split {
        trainset: String,
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 0.4)]
        train: f64,
        #[arg(long, default_value_t = 0.3)]
        val: f64,
    },
}

/// The help of `from-traces --where`: what it is, and every column of
/// [`crate::store::TRACED_COLUMNS`] with what it holds.
fn where_help() -> String {
    let columns: Vec<String> = crate::store::TRACED_COLUMNS
        .iter()
        .map(|(c, what)| format!("  {c}: {what}"))
        .collect();
    format!(
        "A SQL boolean expression over the traced predictions, applied read-only \
         (like `skill-fleet sql`, it cannot write). Columns:\n{}\n\
         Example: --where \"origin = 'ab' AND at >= '2026-01-01'\"",
        columns.join("\n")
    )
}

pub fn run(app: &App, cmd: TrainsetCommand) -> Result<ExitCode> {
    let taxonomy = app.config()?.taxonomy()?;
    match cmd {
        TrainsetCommand::Validate { file } => match data::load_file(&file, &taxonomy) {
            Ok(ts) => {
                if app.json {
                    output::json(
                        &serde_json::json!({"valid": true, "problems": [], "n_examples": ts.examples.len(), "schema": ts.schema}),
                    )?;
                } else {
                    println!(
                        "{}: valid ({} examples, {} schema, content hash {})",
                        file.display(),
                        ts.examples.len(),
                        if ts.schema == data::Schema::Skill {
                            "skill"
                        } else {
                            "generic"
                        },
                        &ts.content_hash()[..12]
                    );
                }
                Ok(ExitCode::SUCCESS)
            }
            Err(Error::InvalidTrainset(problems)) => {
                if app.json {
                    output::json(&serde_json::json!({"valid": false, "problems": problems}))?;
                } else {
                    eprintln!("{}: {} problem(s)", file.display(), problems.len());
                    for p in &problems {
                        eprintln!("  {p}");
                    }
                }
                Ok(ExitCode::from(1))
            }
            Err(e) => Err(e.into()),
        },
        TrainsetCommand::Import { file, name } => {
            let ts = data::load_file(&file, &taxonomy)?;
            let name = name.unwrap_or_else(|| {
                file.file_stem()
                    .map(|s| s.to_string_lossy().into_owned())
                    .unwrap_or_else(|| "trainset".into())
            });
            import_and_report(app, &name, &file.display().to_string(), &ts)
        }
        TrainsetCommand::Expand {
            skills_dir,
            out,
            import,
        } => {
            let config = app.config()?;
            let found =
                crate::tasks::skill::expand::expand(&skills_dir, &config.expand, &taxonomy)?;
            let text = serde_json::to_string_pretty(&found.examples)?;
            if !write_examples(app, out.as_deref(), &text, import.is_some(), &found)? {
                eprintln!(
                    "{} example(s) from {}; {} file(s) skipped, {} duplicate(s) dropped",
                    found.examples.len(),
                    skills_dir.display(),
                    found.skipped.len(),
                    found.duplicates.len()
                );
                for s in &found.skipped {
                    eprintln!("  skipped {}: {}", s.path, s.reason);
                }
                for d in &found.duplicates {
                    eprintln!(
                        "  duplicate {} (same {} as {})",
                        d.path, d.by, d.duplicate_of
                    );
                }
            }
            match import {
                Some(name) => {
                    let origin = format!("skills-dir:{}", skills_dir.display());
                    let ts = data::load_text(&origin, &text, data::Format::Json, &taxonomy)?;
                    import_and_report(app, &name, &origin, &ts)
                }
                None => Ok(ExitCode::SUCCESS),
            }
        }
        TrainsetCommand::Synthesize {
            trainset,
            n,
            role,
            max_calls,
            max_tokens,
            no_cache,
            out,
            import,
        } => {
            let (examples, trainset_id) = resolve_examples(app, &trainset, &taxonomy)?;
            let req = crate::jobs::SynthesizeRequest {
                trainset: trainset.clone(),
                n,
                role,
                budget: crate::lm::budget::BudgetLimits {
                    max_calls,
                    max_tokens,
                    max_cost_usd: None,
                },
                no_cache,
            };
            let ctx = app.context()?;
            let report = super::runtime()?.block_on(crate::jobs::run_synthesize(
                &ctx,
                req,
                &examples,
                trainset_id,
            ))?;
            let text = serde_json::to_string_pretty(&report.examples)?;
            if !write_examples(app, out.as_deref(), &text, import.is_some(), &report)? {
                eprintln!(
                    "synthesized {} of {} example(s) for `{}` in {} round(s): run #{}, {} LM call(s), {} token(s)",
                    report.produced,
                    report.asked,
                    trainset,
                    report.rounds,
                    report.run_id,
                    report.lm_calls,
                    report.tokens
                );
                for r in &report.rejections {
                    eprintln!(
                        "  rejected ({}/{}, round {}) {}{}: {}",
                        r.category,
                        r.style,
                        r.round,
                        r.name
                            .as_deref()
                            .map(|n| format!("`{n}` "))
                            .unwrap_or_default(),
                        r.kind.as_str(),
                        r.reason
                    );
                }
                if let Some(note) = &report.note {
                    eprintln!("  {note}");
                }
            }
            match import {
                Some(name) if !report.examples.is_empty() => {
                    let origin = format!("synthesize:{trainset}");
                    let ts = data::load_text(&origin, &text, data::Format::Json, &taxonomy)?;
                    import_and_report(app, &name, &origin, &ts)
                }
                Some(_) => Err(anyhow::anyhow!(
                    "no example was produced; nothing to import"
                )),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        TrainsetCommand::FromTraces {
            program,
            alias,
            version,
            min_score,
            filter,
            out,
            import,
        } => {
            let req = data::from_traces::FromTracesRequest {
                program,
                version,
                alias,
                min_score,
                filter,
            };
            let found = data::from_traces::from_traces(&app.reader()?, &req, &taxonomy)?;
            let text = serde_json::to_string_pretty(&found.examples)?;
            let origin = format!("traces:{}", found.program);
            // The whole set must pass the same validation as an import.
            let ts = (!found.examples.is_empty())
                .then(|| data::load_text(&origin, &text, data::Format::Json, &taxonomy))
                .transpose()?;
            if !write_examples(app, out.as_deref(), &text, import.is_some(), &found)? {
                eprintln!(
                    "{} example(s) from {} traced prediction(s) of `{}`; {} skipped, {} duplicate(s) dropped",
                    found.examples.len(),
                    found.matched,
                    found.program,
                    found.skipped.len(),
                    found.duplicates.len()
                );
                for s in &found.skipped {
                    eprintln!("  skipped trace #{}: {}", s.trace_id, s.reason);
                }
                for d in &found.duplicates {
                    eprintln!(
                        "  duplicate trace #{} (same {} as trace #{})",
                        d.trace_id, d.by, d.duplicate_of_trace
                    );
                }
            }
            match (import, ts) {
                (Some(name), Some(ts)) => import_and_report(app, &name, &origin, &ts),
                (Some(_), None) => Err(anyhow::anyhow!("no example was made; nothing to import")),
                (None, _) => Ok(ExitCode::SUCCESS),
            }
        }
        TrainsetCommand::Merge { a, b, out, import } => {
            let inputs = [
                load_examples(app, &a, &taxonomy)?,
                load_examples(app, &b, &taxonomy)?,
            ];
            let merged = data::merge::merge(&inputs);
            let text = serde_json::to_string_pretty(&merged.examples)?;
            let origin = format!("merge:{a}+{b}");
            // The merged set must pass the same validation as an import.
            let ts = data::load_text(&origin, &text, data::Format::Json, &taxonomy)?;
            if !write_examples(app, out.as_deref(), &text, import.is_some(), &merged)? {
                eprintln!(
                    "{} example(s) merged from {} ({}) and {} ({}); {} duplicate(s) dropped",
                    merged.examples.len(),
                    a,
                    inputs[0].examples.len(),
                    b,
                    inputs[1].examples.len(),
                    merged.dropped.len()
                );
                for d in &merged.dropped {
                    eprintln!(
                        "  dropped {} #{}: same {} as {} #{} ({})",
                        d.example.input,
                        d.example.index,
                        d.by,
                        d.duplicate_of.input,
                        d.duplicate_of.index,
                        d.value
                    );
                }
            }
            match import {
                Some(name) => import_and_report(app, &name, &origin, &ts),
                None => Ok(ExitCode::SUCCESS),
            }
        }
        TrainsetCommand::List => {
            let rows = app.store()?.list_trainsets()?;
            if app.json {
                output::json(&rows)?;
            } else {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|r| {
                        vec![
                            r.id.to_string(),
                            r.name.clone(),
                            r.n_examples.to_string(),
                            r.format.clone(),
                            r.content_hash[..12].to_string(),
                            r.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &["id", "name", "examples", "format", "hash", "created"],
                    &cells,
                );
            }
            Ok(ExitCode::SUCCESS)
        }
        TrainsetCommand::Show { trainset, limit } => {
            let store = app.store()?;
            let row = store.find_trainset(&trainset)?;
            let examples = store.examples(row.id)?;
            let split = store.latest_split(row.id)?;
            let parts = match &split {
                Some(s) => split_parts(&store, s.id)?,
                None => Default::default(),
            };
            if app.json {
                let list: Vec<_> = examples.iter().take(limit).map(|e| serde_json::json!({"id": e.id, "idx": e.idx, "split": parts.get(&e.id).map(|p| p.as_str()), "fields": e.fields})).collect();
                output::json(
                    &serde_json::json!({"trainset": row, "split": split, "examples": list}),
                )?;
            } else {
                println!(
                    "trainset #{} `{}`: {} examples from {} ({})",
                    row.id, row.name, row.n_examples, row.source, row.format
                );
                if let Some(s) = &split {
                    println!(
                        "split #{} (seed {}): train {}, val {}, test {}",
                        s.id, s.seed, s.counts[0], s.counts[1], s.counts[2]
                    );
                }
                for e in examples.iter().take(limit) {
                    let text = e
                        .fields
                        .get("task_description")
                        .map(output::cell)
                        .unwrap_or_else(|| serde_json::Value::Object(e.fields.clone()).to_string());
                    let part = parts.get(&e.id).map(|p| p.as_str()).unwrap_or("-");
                    println!("  #{:<3} [{:<5}] {}", e.idx, part, text);
                }
                if examples.len() > limit {
                    println!("  ... {} more (use --limit)", examples.len() - limit);
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TrainsetCommand::Stats { trainset } => {
            let examples = load_examples(app, &trainset, &taxonomy)?.examples;
            let s = data::stats(&examples, &taxonomy.names());
            if app.json {
                output::json(&s)?;
            } else {
                println!("examples:  {}", s.n_examples);
                println!("readiness: {}", s.readiness);
                for (title, map) in [
                    ("style", &s.by_style),
                    ("category", &s.by_category),
                    ("source", &s.by_source),
                ] {
                    println!();
                    let rows: Vec<Vec<String>> = map
                        .iter()
                        .map(|(k, v)| {
                            vec![
                                k.clone(),
                                v.to_string(),
                                format!("{:.0}%", 100.0 * *v as f64 / s.n_examples.max(1) as f64),
                            ]
                        })
                        .collect();
                    output::table(&[title, "count", "share"], &rows);
                }
                if !s.warnings.is_empty() {
                    println!("\nwarnings:");
                    for w in &s.warnings {
                        println!("  - {w}");
                    }
                }
                if !s.gaps.is_empty() {
                    println!("\nto add:");
                    for g in &s.gaps {
                        println!("  - {}", g.suggestion);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        TrainsetCommand::Split {
            trainset,
            seed,
            train,
            val,
        } => {
            let fractions = SplitFractions { train, val };
            fractions.validate()?;
            let mut store = app.store()?;
            let id = store.find_trainset(&trainset)?.id;
            let split = store.split_trainset(id, seed, fractions)?;
            if app.json {
                output::json(&split)?;
            } else {
                println!(
                    "split #{} of trainset #{} (seed {}): train {}, val {}, test {}",
                    split.id,
                    split.trainset_id,
                    split.seed,
                    split.counts[0],
                    split.counts[1],
                    split.counts[2]
                );
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// Writes generated examples to `out` when given, and prints `report` as
/// JSON under `--json` unless the examples are also being imported (the
/// import's JSON is printed then). True when it printed the report.
fn write_examples<T: serde::Serialize>(
    app: &App,
    out: Option<&std::path::Path>,
    text: &str,
    importing: bool,
    report: &T,
) -> Result<bool> {
    if let Some(path) = out {
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    }
    if app.json && !importing {
        output::json(report)?;
        return Ok(true);
    }
    Ok(false)
}

/// A file's examples (validated) when `key` is a file, else a stored
/// trainset's, with the stored trainset's id.
fn resolve_examples(
    app: &App,
    key: &str,
    taxonomy: &crate::config::Taxonomy,
) -> Result<(Vec<data::Example>, Option<i64>)> {
    let path = PathBuf::from(key);
    if path.is_file() {
        return Ok((data::load_file(&path, taxonomy)?.examples, None));
    }
    let store = app.store()?;
    let row = store.find_trainset(key)?;
    let examples = store
        .examples(row.id)?
        .iter()
        .map(|e| e.to_example())
        .collect();
    Ok((examples, Some(row.id)))
}

/// [`resolve_examples`] labelled for a merge or stats.
fn load_examples(
    app: &App,
    key: &str,
    taxonomy: &crate::config::Taxonomy,
) -> Result<data::merge::MergeInput> {
    Ok(data::merge::MergeInput {
        label: key.to_string(),
        examples: resolve_examples(app, key, taxonomy)?.0,
    })
}

fn split_parts(
    store: &crate::store::Store,
    split_id: i64,
) -> Result<std::collections::HashMap<i64, Part>> {
    let mut map = std::collections::HashMap::new();
    for part in [Part::Train, Part::Val, Part::Test] {
        for id in store.split_part(split_id, part)? {
            map.insert(id, part);
        }
    }
    Ok(map)
}

/// Stores a validated trainset and says what happened.
fn import_and_report(app: &App, name: &str, source: &str, ts: &data::Trainset) -> Result<ExitCode> {
    let mut store = app.store()?;
    let (row, created) = store
        .import_trainset(name, source, ts)
        .context("importing trainset")?;
    if app.json {
        output::json(&serde_json::json!({"trainset": row, "created": created}))?;
    } else if created {
        println!(
            "imported trainset #{} `{}`: {} examples, hash {}",
            row.id,
            row.name,
            row.n_examples,
            &row.content_hash[..12]
        );
    } else {
        println!(
            "already stored as trainset #{} `{}` (same content hash {}); nothing written",
            row.id,
            row.name,
            &row.content_hash[..12]
        );
    }
    Ok(ExitCode::SUCCESS)
}
