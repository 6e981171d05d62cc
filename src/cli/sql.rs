//! `skill-fleet sql "SELECT ..."`: the user's own queries on a read-only connection.

use super::{output, App};
use crate::store::Store;
use anyhow::{Context, Result};
use clap::Args;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SqlArgs {
    /// One read-only statement (SELECT, WITH, EXPLAIN, PRAGMA table_info(...)).
    pub query: String,
    /// Print CSV instead of a table.
    #[arg(long)]
    pub csv: bool,
}

pub fn run(ctx: &App, args: SqlArgs) -> Result<ExitCode> {
    // Make sure the file exists and is migrated before opening it read-only.
    if !ctx.cli_db.exists() {
        drop(ctx.store()?);
    }
    let store = Store::open_read_only(&ctx.cli_db)
        .with_context(|| format!("opening {} read-only", ctx.cli_db.display()))?;
    let out = store.query_read_only(&args.query)?;
    if ctx.json {
        let objects: Vec<serde_json::Map<String, serde_json::Value>> = out
            .rows
            .iter()
            .map(|r| out.columns.iter().cloned().zip(r.iter().cloned()).collect())
            .collect();
        output::json(&objects)?;
    } else if args.csv {
        let mut w = csv::Writer::from_writer(std::io::stdout());
        w.write_record(&out.columns)?;
        for row in &out.rows {
            w.write_record(row.iter().map(output::cell))?;
        }
        w.flush()?;
    } else {
        let headers: Vec<&str> = out.columns.iter().map(String::as_str).collect();
        let rows: Vec<Vec<String>> = out
            .rows
            .iter()
            .map(|r| r.iter().map(output::cell).collect())
            .collect();
        output::table(&headers, &rows);
        println!(
            "({} row{})",
            rows.len(),
            if rows.len() == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
