//! `skill-fleet lm complete|chat` and `skill-fleet cache stats|clear`.

use super::{output, App};
use crate::lm::budget::Budget;
use crate::lm::client::CallContext;
use crate::lm::{ChatMessage, LmRequest};
use anyhow::{anyhow, Result};
use clap::Subcommand;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum LmCommand {
    /// Text completion with a role's model.
    Complete {
        prompt: String,
        #[arg(long, default_value = "task")]
        role: String,
        #[arg(long)]
        max_tokens: Option<u32>,
        #[arg(long)]
        temperature: Option<f32>,
        /// Stop sequences (repeatable).
        #[arg(long)]
        stop: Vec<String>,
        #[arg(long)]
        no_cache: bool,
    },
    /// A chat turn with a role's model (`--system` optional).
    Chat {
        message: String,
        #[arg(long)]
        system: Option<String>,
        #[arg(long, default_value = "task")]
        role: String,
        #[arg(long)]
        max_tokens: Option<u32>,
        #[arg(long)]
        no_cache: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum CacheCommand {
    /// Entries, hits and size of the persistent LM cache.
    Stats,
    /// Delete cache entries (all, or older than a duration like 7d, 12h, 30m).
    Clear {
        #[arg(long)]
        older_than: Option<String>,
    },
}

/// Parses `7d`, `12h`, `30m`, `45s` into a cutoff timestamp.
fn cutoff(spec: &str) -> Result<String> {
    let (num, unit) = spec.split_at(spec.len().saturating_sub(1));
    let n: i64 = num.parse().map_err(|_| {
        anyhow!("--older-than `{spec}`: expected a number and a unit (d, h, m, s), e.g. 7d")
    })?;
    let secs = match unit {
        "d" => n * 86_400,
        "h" => n * 3_600,
        "m" => n * 60,
        "s" => n,
        _ => return Err(anyhow!("--older-than `{spec}`: unit must be d, h, m or s")),
    };
    let t = chrono::Utc::now() - chrono::Duration::seconds(secs);
    Ok(t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

pub fn run_cache(app: &App, cmd: CacheCommand) -> Result<ExitCode> {
    match cmd {
        CacheCommand::Stats => {
            let s = app.reader()?.cache_stats()?;
            if app.json {
                output::json(&s)?;
            } else {
                println!(
                    "entries: {}\nhits:    {}\nbytes:   {}",
                    s.entries, s.total_hits, s.bytes
                );
                let rows: Vec<Vec<String>> = s
                    .by_model
                    .iter()
                    .map(|(m, n)| vec![m.clone(), n.to_string()])
                    .collect();
                output::table(&["model", "entries"], &rows);
            }
        }
        CacheCommand::Clear { older_than } => {
            let cut = older_than.as_deref().map(cutoff).transpose()?;
            let n = app.store()?.cache_clear(cut.as_deref())?;
            if app.json {
                output::json(&serde_json::json!({"deleted": n}))?;
            } else {
                println!("deleted {n} cache entries");
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn run(app: &App, cmd: LmCommand) -> Result<ExitCode> {
    let ctx = app.context()?;
    let (role, no_cache) = match &cmd {
        LmCommand::Complete { role, no_cache, .. } | LmCommand::Chat { role, no_cache, .. } => {
            (role.clone(), *no_cache)
        }
    };
    let lms = ctx.lms(no_cache, Arc::new(Budget::unlimited()))?;
    let client = lms.role(&role)?;
    let mut req = match &cmd {
        LmCommand::Complete { prompt, .. } => LmRequest::text(prompt.clone()),
        LmCommand::Chat {
            message, system, ..
        } => {
            let mut m = Vec::new();
            if let Some(s) = system {
                m.push(ChatMessage {
                    role: "system".into(),
                    content: s.clone(),
                });
            }
            m.push(ChatMessage {
                role: "user".into(),
                content: message.clone(),
            });
            LmRequest::chat(m)
        }
    };
    req.params = client.default_params();
    match &cmd {
        LmCommand::Complete {
            max_tokens,
            temperature,
            stop,
            ..
        } => {
            if let Some(m) = max_tokens {
                req.params.max_tokens = *m;
            }
            if let Some(t) = temperature {
                req.params.temperature = *t;
            }
            req.params.stop = stop.clone();
        }
        LmCommand::Chat { max_tokens, .. } => {
            if let Some(m) = max_tokens {
                req.params.max_tokens = *m;
            }
        }
    }
    let out = client
        .call(
            &req,
            &CallContext {
                predictor: Some("cli".into()),
                ..Default::default()
            },
        )
        .await?;
    lms.flush_traces()?;
    if app.json {
        output::json(&serde_json::json!({
            "text": out.response.text(), "choices": out.response.choices,
            "prompt_tokens": out.response.prompt_tokens, "completion_tokens": out.response.completion_tokens,
            "cache_hit": out.cache_hit, "attempts": out.attempts, "latency_ms": out.latency.as_secs_f64() * 1e3,
        }))?;
    } else {
        println!("{}", out.response.text());
        eprintln!(
            "[{} tokens in, {} out, {:.0} ms{}]",
            out.response.prompt_tokens,
            out.response.completion_tokens,
            out.latency.as_secs_f64() * 1e3,
            if out.cache_hit { ", cache hit" } else { "" }
        );
    }
    Ok(ExitCode::SUCCESS)
}
