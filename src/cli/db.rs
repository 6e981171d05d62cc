//! `skill-fleet db ...`

use super::{output, App};
use anyhow::Result;
use clap::Subcommand;
use std::process::ExitCode;

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Schema version, file size and row counts per table.
    Info,
}

pub fn run(ctx: &App, cmd: DbCommand) -> Result<ExitCode> {
    match cmd {
        DbCommand::Info => {
            let info = ctx.store()?.info()?;
            if ctx.json {
                output::json(&info)?;
            } else {
                println!("database:       {}", info.path);
                println!("schema version: {}", info.schema_version);
                println!("file size:      {} bytes", info.file_size_bytes);
                let rows: Vec<Vec<String>> = info
                    .tables
                    .iter()
                    .map(|(t, n)| vec![t.clone(), n.to_string()])
                    .collect();
                output::table(&["table", "rows"], &rows);
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}
