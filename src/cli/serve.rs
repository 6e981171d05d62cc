//! `skill-fleet serve`: flags in, `server::serve` out. The bound address is
//! printed on stdout (`listening on http://ADDR`) so scripts and tests can
//! use `--port 0`.

use super::App;
use crate::server::{security, serve, ServeOptions};
use anyhow::{Context, Result};
use clap::Args;
use std::io::Write;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; anything but loopback needs SKILL_FLEET_TOKEN.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port (0: any free one; the bound address is printed).
    #[arg(long, default_value_t = 8000)]
    pub port: u16,
    /// Trainset files named in requests must lie inside this directory.
    #[arg(long, default_value = ".")]
    pub data_dir: PathBuf,
    /// Optimization jobs running at once; the rest wait `pending`.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub max_jobs: u16,
}

pub async fn run(app: &App, a: ServeArgs) -> Result<ExitCode> {
    let host: IpAddr = match a.host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .with_context(|| format!("--host `{h}`: expected an IP address"))?,
    };
    let opts = ServeOptions {
        host,
        port: a.port,
        data_dir: a.data_dir,
        max_jobs: a.max_jobs.into(),
        token: security::token_from_env(),
    };
    // Checked before the database is opened, so a refused start changes nothing.
    security::check_bind(opts.host, opts.token.as_deref())?;
    let ctx = app.context()?;
    serve(ctx, opts, |addr| {
        println!("listening on http://{addr}");
        let _ = std::io::stdout().flush();
    })
    .await
    .context("serving")?;
    Ok(ExitCode::SUCCESS)
}
