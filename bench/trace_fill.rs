//! Fills a tracker database with trace rows for the trace export benchmark
//! (`bench/trace_export.sh`, docs/benchmarks.md).
//!
//! Rows go through the product's write path (the store writer, as an
//! optimization's LM client sends them) and look like real ones: the request
//! is a serialized `LmRequest` with a completion prompt shaped like the
//! bundled skill program's (instructions, the field list, the taxonomy's
//! categories, a task description; about 1.3 KB), the response a full skill
//! answer, spread over RUNS runs, with a third of the calls cache hits, varied
//! latencies and token counts, and an error every 500th call.
//!
//! Run: cargo run --example trace_fill -- --rows 1000000 --db bench/out/traces.db [--runs 100]

use skill_fleet::lm::LmRequest;
use skill_fleet::store::{NewRun, RunKind, TraceRow, Write, Writer};
use std::path::PathBuf;
use std::time::Instant;

const CATEGORIES: &str = "python, rust, javascript, web, api, database, devops, cloud, testing, security, data, ml, llm, architecture, practices, tooling";

const ANSWER: &str = " rust/tokio-task-cancellation\nName: tokio-task-cancellation\nSkill Style: minimal\n\
Subdirectories: references, examples\nKeywords: tokio, cancellation, async, tasks\n\
Description: Use when you need to cancel Tokio tasks safely with abort handles, cancellation tokens and a graceful shutdown of spawned work.";

const TOPICS: [&str; 6] = [
    "Tokio Task Cancellation skill: aborting spawned tasks and graceful shutdown",
    "Python Asyncio Patterns skill: an in-depth guide to event loops, tasks, gather and timeouts",
    "Kubernetes Operators skill: writing reconcilers with controller-runtime",
    "SQL Query Tuning skill: reading EXPLAIN plans and choosing indexes",
    "React Server Components skill: data fetching and streaming on the server",
    "LLM Prompt Caching skill: reusing prefixes across calls to cut latency and cost",
];

fn prompt(i: usize) -> String {
    format!(
        "Turn a request to create an agent skill into the skill's taxonomy placement and metadata.\n\n\
         Follow the following format.\n\n\
         Categories: the taxonomy's categories\n\
         Task Description: the request, in the form \"Create a {{skill name}} skill - {{what it teaches}}\"\n\
         Taxonomy Path: {{category}}/{{name}}, the category one of the categories\n\
         Name: kebab-case of the skill name words\n\
         Skill Style: one of: comprehensive, navigation_hub, minimal\n\
         Subdirectories: a list of: references, guides, templates, scripts, examples\n\
         Keywords: 3 to 6 lowercase keywords\n\
         Description: \"Use when ...\", 15 to 35 words\n\n---\n\n\
         Categories: {CATEGORIES}\n\
         Task Description: Create a {} (request {i})\n\
         Taxonomy Path:",
        TOPICS[i % TOPICS.len()]
    )
}

fn main() {
    let mut rows = 1_000_000usize;
    let mut runs = 100usize;
    let mut db = PathBuf::from("bench/out/traces.db");
    let v: Vec<String> = std::env::args().skip(1).collect();
    let mut k = 0;
    while k < v.len() {
        let val = v.get(k + 1).cloned().unwrap_or_default();
        match v[k].as_str() {
            "--rows" => rows = val.parse().expect("--rows N"),
            "--runs" => runs = val.parse().expect("--runs N"),
            "--db" => db = val.into(),
            other => panic!("unknown argument {other}"),
        }
        k += 2;
    }
    for suffix in ["", "-wal", "-shm"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
    let started = Instant::now();
    let writer = Writer::start(&db).expect("the database opens");
    let mut run_ids = Vec::with_capacity(runs);
    for _ in 0..runs {
        let run = NewRun::new(RunKind::Optimize, "{}".into());
        run_ids.push(writer.call(move |s| s.create_run(&run)).expect("a run"));
    }
    let per_run = rows.div_ceil(runs.max(1));
    for i in 0..rows {
        let mut req = LmRequest::text(prompt(i));
        req.params.max_tokens = 160;
        let hit = i % 3 == 0;
        // A deterministic spread of latencies: 300 ms to ~2.3 s, cache hits ~0.1 ms.
        let latency = if hit {
            0.05 + (i % 7) as f64 * 0.01
        } else {
            300.0 + ((i * 7919) % 2000) as f64
        };
        let error = (i % 500 == 499).then(|| "timeout after 10 s".to_string());
        writer.write(Write::Trace(Box::new(TraceRow {
            run_id: Some(run_ids[(i / per_run).min(runs - 1)]),
            candidate_id: Some((i / 40) as i64 + 1),
            example_id: Some((i % 40) as i64 + 1),
            version_id: None,
            inputs_json: None,
            assignment_id: None,
            selected_demos: None,
            predictor: Some("understand".into()),
            role: Some("task".into()),
            provider: "local".into(),
            model: "gemma-3-270m-q4_k_m".into(),
            prompt_tokens: 380 + (i % 60) as u32,
            completion_tokens: if error.is_some() {
                0
            } else {
                50 + (i % 20) as u32
            },
            cost_usd: 0.0,
            latency_ms: latency,
            cache_hit: hit,
            attempts: if error.is_some() { 2 } else { 1 },
            response_text: error.is_none().then(|| ANSWER.to_string()),
            error,
            request_json: serde_json::to_string(&req).expect("a request serializes"),
        })));
        // The writer's queue is unbounded: wait for it now and then so the
        // fill's memory stays bounded.
        if (i + 1) % 50_000 == 0 {
            writer.flush().expect("the rows so far are committed");
        }
        if (i + 1) % 100_000 == 0 {
            eprintln!(
                "{} rows queued ({:.1} s)",
                i + 1,
                started.elapsed().as_secs_f64()
            );
        }
    }
    writer.flush().expect("every row is committed");
    let size = std::fs::metadata(&db).map(|m| m.len()).unwrap_or(0);
    println!(
        "{{\"rows\": {rows}, \"runs\": {runs}, \"seconds\": {:.1}, \"db_bytes\": {size}}}",
        started.elapsed().as_secs_f64()
    );
}
