//! `skill-fleet program list|versions|show|export|import|alias`.

use super::{output, App};
use crate::program::dspy::{export_dspy_json, import_dspy_json, import_dspy_json_onto};
use crate::program::{load_program, ProgramRef, ProgramSpec};
use crate::store::NewVersion;
use anyhow::{Context, Result};
use clap::Subcommand;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ProgramCommand {
    /// Register a spec file (YAML, or DSPy JSON with --dspy) as a version.
    Register {
        file: PathBuf,
        /// The file is DSPy's saved-program JSON.
        #[arg(long)]
        dspy: bool,
        /// Program the DSPy file was exported from: take its instructions and
        /// demos from the file and everything DSPy's `save` drops (field types,
        /// adapter, mappings, name...) from this program's version. Needed for
        /// a file saved by DSPy itself; the result is a version of this program.
        #[arg(long, requires = "dspy")]
        base: Option<String>,
        /// Version of --base (default: the newest).
        #[arg(long, requires = "base", conflicts_with = "base_alias")]
        base_version: Option<i64>,
        /// Alias of --base.
        #[arg(long, requires = "base")]
        base_alias: Option<String>,
    },
    /// Versions of a program, newest first.
    Versions { program: String },
    /// A version's spec as YAML (or JSON with --json).
    Show {
        program: String,
        #[arg(long, conflicts_with = "alias")]
        version: Option<i64>,
        #[arg(long)]
        alias: Option<String>,
    },
    /// Write a version as DSPy saved-program JSON.
    Export {
        program: String,
        #[arg(long, conflicts_with = "alias")]
        version: Option<i64>,
        #[arg(long)]
        alias: Option<String>,
        /// Output file (stdout when absent).
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Point an alias at a version.
    Alias {
        program: String,
        alias: String,
        #[arg(long)]
        version: i64,
    },
}

pub fn run(app: &App, cmd: ProgramCommand) -> Result<ExitCode> {
    let mut store = app.store()?;
    match cmd {
        ProgramCommand::Register {
            file,
            dspy,
            base,
            base_version,
            base_alias,
        } => {
            let mut parent_id = None;
            let spec = if dspy {
                let text = std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?;
                let origin = file.display().to_string();
                match base {
                    Some(program) => {
                        let (base_spec, base_row) = load_program(
                            &mut store,
                            &ProgramRef {
                                program,
                                version: base_version,
                                alias: base_alias,
                            },
                        )?;
                        parent_id = Some(base_row.id);
                        import_dspy_json_onto(&origin, &text, &base_spec)?
                    }
                    None => import_dspy_json(&origin, &text)?,
                }
            } else {
                ProgramSpec::load(&file)?
            };
            let (row, created) = store.save_version(
                &spec.name,
                &serde_json::to_string(&spec)?,
                &spec.content_hash(),
                NewVersion {
                    note: Some("registered"),
                    parent_id,
                    ..Default::default()
                },
            )?;
            if app.json {
                output::json(&serde_json::json!({"version": row, "created": created}))?;
            } else {
                println!(
                    "{} `{}` version {} (hash {})",
                    if created {
                        "registered"
                    } else {
                        "already stored:"
                    },
                    row.program,
                    row.version,
                    &row.content_hash[..12]
                );
            }
        }
        ProgramCommand::Versions { program } => {
            let rows = store.list_versions(&program)?;
            if app.json {
                output::json(&rows)?;
            } else {
                let cells: Vec<Vec<String>> = rows
                    .iter()
                    .map(|v| {
                        vec![
                            v.version.to_string(),
                            v.content_hash[..12].to_string(),
                            v.parent_id.map(|p| p.to_string()).unwrap_or_default(),
                            v.run_id.map(|r| r.to_string()).unwrap_or_default(),
                            v.score.map(|s| format!("{s:.4}")).unwrap_or_default(),
                            v.note.clone().unwrap_or_default(),
                            v.created_at.clone(),
                        ]
                    })
                    .collect();
                output::table(
                    &[
                        "version", "hash", "parent", "run", "score", "note", "created",
                    ],
                    &cells,
                );
            }
        }
        ProgramCommand::Show {
            program,
            version,
            alias,
        } => {
            let (spec, _) = load_program(
                &mut store,
                &ProgramRef {
                    program,
                    version,
                    alias,
                },
            )?;
            if app.json {
                output::json(&spec)?;
            } else {
                print!("{}", serde_yaml::to_string(&spec)?);
            }
        }
        ProgramCommand::Export {
            program,
            version,
            alias,
            out,
        } => {
            let (spec, _) = load_program(
                &mut store,
                &ProgramRef {
                    program,
                    version,
                    alias,
                },
            )?;
            let text = serde_json::to_string_pretty(&export_dspy_json(&spec))?;
            match out {
                Some(p) => {
                    std::fs::write(&p, text).with_context(|| format!("writing {}", p.display()))?
                }
                None => println!("{text}"),
            }
        }
        ProgramCommand::Alias {
            program,
            alias,
            version,
        } => {
            crate::registry::validate_alias(&alias)?;
            let v = store.find_version(&program, Some(version))?;
            store.set_alias(&program, &alias, v.id, "set", None)?;
            println!("{program}@{alias} -> version {version}");
        }
    }
    Ok(ExitCode::SUCCESS)
}
