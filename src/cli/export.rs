//! `skill-fleet export mlflow`: flags in, `crate::export::mlflow` out.

use super::{output, App};
use crate::export::mlflow::{self, Selection};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum ExportCommand {
    /// Push runs to an MLflow tracking server (params, a metric step per
    /// trial, final metrics, tags, artifacts, candidates as nested runs).
    /// Exporting again sends only what is new.
    Mlflow {
        /// Tracking server URL, e.g. http://127.0.0.1:5000.
        #[arg(long)]
        tracking_uri: String,
        #[arg(long, default_value = "skill-fleet")]
        experiment: String,
        /// One run.
        #[arg(long, conflicts_with = "all", required_unless_present = "all")]
        run: Option<i64>,
        /// Every optimize and eval run.
        #[arg(long)]
        all: bool,
        /// With --all: runs started at or after this time (RFC 3339 or YYYY-MM-DD, UTC).
        #[arg(long, requires = "all")]
        since: Option<String>,
    },
}

pub async fn run(app: &App, cmd: ExportCommand) -> Result<ExitCode> {
    match cmd {
        ExportCommand::Mlflow {
            tracking_uri,
            experiment,
            run,
            all,
            since,
        } => {
            let selection = match (run, all) {
                (Some(id), _) => Selection::One(id),
                (None, true) => Selection::All {
                    since: since
                        .as_deref()
                        .map(crate::report::traces::parse_since)
                        .transpose()?,
                },
                (None, false) => return Err(anyhow!("name a run with --run R, or use --all")),
            };
            drop(app.store()?);
            let summary =
                mlflow::export(&app.cli_db, &tracking_uri, &experiment, &selection).await?;
            if app.json {
                output::json(&summary)?;
            } else {
                println!(
                    "exported to {} (experiment `{}`, id {})",
                    summary.tracking_uri, summary.experiment, summary.experiment_id
                );
                for r in &summary.runs {
                    if r.up_to_date {
                        println!(
                            "  run {} -> {}: already up to date",
                            r.run_id, r.mlflow_run_id
                        );
                    } else {
                        println!(
                            "  run {} -> {}{}: {} params, {} trial steps, {} candidate runs, {} artifacts",
                            r.run_id,
                            r.mlflow_run_id,
                            if r.created { " (new)" } else { "" },
                            r.params_sent,
                            r.steps_sent,
                            r.candidates_created,
                            r.artifacts_sent
                        );
                    }
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
