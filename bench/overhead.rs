//! Benchmark B (our side): framework overhead on cache hits.
//!
//! A stub `LanguageModel` answers instantly with a valid answer for the bundled
//! program; the first call of each request fills the cache, and every timed
//! call is a cache hit. Measured:
//!
//! - `LmClient::call` on a memory-LRU hit, without and with the SQLite-backed
//!   cache + trace writer that `skill-fleet eval` uses, and on a hit that must
//!   come from the SQLite tier (a fresh process);
//! - `program::run_program` of the bundled program on a cached answer
//!   (render prompt, call, parse and type-check the answer);
//! - `Evaluator::evaluate` of 1,000 cached examples with the default metric
//!   (skill_comprehensive), alone and with per-score persistence as the eval job does (the store writer).
//!
//! Each is timed bare (memory LRU, no trace writer) and, where it applies, as
//! the product runs it (SQLite cache tier and trace writer on, scores
//! persisted), to pair with DSPy bare (`disable_history`) and as a user runs
//! it (call history on).
//!
//! Writes bench/out/overhead.json and bench/out/overhead_prompt.txt (the exact
//! prompt, so the DSPy side can time the same request).
//!
//! Run: cargo run --example overhead [-- --calls 100000 --out bench/out/overhead.json]

use serde_json::{json, Value};
use skill_fleet::config::{Config, RetryConfig};
use skill_fleet::data::Trainset;
use skill_fleet::eval::{EvalExample, Evaluator};
use skill_fleet::lm::cache::LmCache;
use skill_fleet::lm::client::{CallContext, LmClient};
use skill_fleet::lm::scripted::ScriptedModel;
use skill_fleet::lm::trace::TraceSink;
use skill_fleet::lm::LmRequest;
use skill_fleet::optimize::session::row_from_score;
use skill_fleet::program::{adapter, grammar, run_program, ProgramSpec};
use skill_fleet::store::{EvalKind, NewRun, RunKind, Split, Store, Write, Writer};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const ANSWER: &str = " rust/tokio-task-cancellation\nName: tokio-task-cancellation\nSkill Style: minimal\n\
Subdirectories: references, examples\nKeywords: tokio, cancellation, async, tasks\n\
Description: Use when you need to cancel Tokio tasks safely with abort handles, cancellation tokens and a graceful shutdown of spawned work.";

fn stats_us(mut v: Vec<f64>) -> Value {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    let mean = v.iter().sum::<f64>() / n as f64;
    json!({
        "n": n,
        "median_us": v[n / 2],
        "mean_us": mean,
        "p99_us": v[(n * 99 / 100).min(n - 1)],
    })
}

fn fresh(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        let _ = std::fs::remove_file(PathBuf::from(p));
    }
}

/// The shared scripted model answering every request with the same
/// well-formed completion.
fn stub() -> Arc<ScriptedModel> {
    Arc::new(
        ScriptedModel::fixed(ANSWER)
            .named("stub", "stub-model")
            .with_usage(400, 60),
    )
}

/// Times `n` cache-hit calls of `req` (after one warm-up call that fills the cache).
async fn time_calls(client: &LmClient, req: &LmRequest, n: usize) -> Vec<f64> {
    let ctx = CallContext::default();
    let first = client.call(req, &ctx).await.unwrap();
    let _ = first;
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let out = client.call(req, &ctx).await.unwrap();
        v.push(t.elapsed().as_secs_f64() * 1e6);
        assert!(out.cache_hit);
    }
    v
}

/// Median of 3 cached evaluations of `examples` that persist as the eval
/// job does: every score and progress update through the store writer,
/// flushed before the clock stops.
async fn persisted_eval_ms(
    evaluator: &Evaluator,
    examples: &[EvalExample],
    writer: &Writer,
    run: i64,
    metric_name: &'static str,
) -> f64 {
    let n = examples.len();
    let mut ms = Vec::new();
    for _ in 0..3 {
        let ev = writer
            .call(move |s| {
                s.create_evaluation(run, None, None, Split::All, EvalKind::Full, metric_name, n)
            })
            .unwrap();
        let t = Instant::now();
        let mut done = 0usize;
        let r = evaluator
            .evaluate(examples, &HashMap::new(), |s| {
                writer.write(Write::Score {
                    evaluation_id: ev,
                    row: row_from_score(s),
                });
                done += 1;
                writer.write(Write::RunProgress {
                    run_id: run,
                    progress: done as f64 / examples.len() as f64,
                    lm_calls: 0,
                    cache_hits: 0,
                });
            })
            .await;
        assert_eq!(r.cache_hits as usize, examples.len());
        writer.write(Write::FinishEvaluation {
            evaluation_id: ev,
            mean: r.mean,
        });
        writer.flush().unwrap();
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    ms[ms.len() / 2]
}

fn main() {
    let mut calls = 100_000usize;
    let mut out_path = PathBuf::from("bench/out/overhead.json");
    let a: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < a.len() {
        match a[i].as_str() {
            "--calls" => calls = a[i + 1].parse().unwrap(),
            "--out" => out_path = a[i + 1].clone().into(),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let dir = out_path.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(dir.join("db")).unwrap();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let config = Config::load(Path::new("config/config.yaml"), false).unwrap();
    let taxonomy = config.taxonomy().unwrap();
    let spec = ProgramSpec::load(Path::new("config/programs/skill_understanding.yaml")).unwrap();
    let constants = spec.resolve_constants(&taxonomy.names());
    let trainset =
        skill_fleet::data::load_file(Path::new("config/training/trainset.json"), &taxonomy)
            .unwrap();
    let (inputs0, _) = spec.example_io(&trainset.examples[0].fields);
    let rendered = adapter::render(spec.adapter, &spec.predictors[0], &constants, &inputs0);
    let prompt = skill_fleet::program::run::prompt_text(&rendered.prompt);
    std::fs::write(dir.join("overhead_prompt.txt"), &prompt).unwrap();
    // The request run_program sends for example 0.
    let mut req = LmRequest {
        prompt: rendered.prompt.clone(),
        params: skill_fleet::lm::LmParams {
            temperature: 0.0,
            max_tokens: 256,
            ..Default::default()
        },
        rollout_id: None,
    };
    req.params.stop = rendered.stop.clone();
    // The bundled program is `constrained: true`: its calls carry the grammar
    // compiled from the signature, which is part of the cache key. Without it
    // this request would not be the one `run_program` sends.
    req.params.grammar = spec
        .constrained
        .then(|| grammar::compile(spec.adapter, &spec.predictors[0], &constants))
        .transpose()
        .unwrap()
        .map(|g| g.to_gbnf());

    let result = rt.block_on(async {
        // 1. Memory LRU hit, no persistence.
        let mem_client = LmClient::new("task", stub(), RetryConfig::default())
            .with_cache(Arc::new(LmCache::memory_only(10_000)));
        let _ = time_calls(&mem_client, &req, calls / 10).await; // warm-up
        let call_mem = time_calls(&mem_client, &req, calls).await;

        // 2. As `skill-fleet eval` wires it: LRU + SQLite cache tier + trace writer.
        let db = dir.join("db/overhead.db");
        fresh(&db);
        let writer = Writer::start(&db).unwrap();
        let db_client = LmClient::new("task", stub(), RetryConfig::default())
            .with_cache(Arc::new(LmCache::with_db(10_000, &writer).unwrap()))
            .with_tracer(TraceSink::new(&writer));
        let t = Instant::now();
        let call_db = time_calls(&db_client, &req, calls).await;
        writer.flush().unwrap();
        let amortized_db_us = t.elapsed().as_secs_f64() * 1e6 / calls as f64;
        let traces = Store::open(&db).unwrap().count("traces").unwrap();

        // 3. Hit served by the SQLite tier (memory LRU of one entry, two keys alternating).
        let cold = LmClient::new("task", stub(), RetryConfig::default())
            .with_cache(Arc::new(LmCache::with_db(1, &writer).unwrap()));
        let mut req_b = req.clone();
        req_b.rollout_id = Some("b".into());
        let ctx = CallContext::default();
        cold.call(&req, &ctx).await.unwrap();
        cold.call(&req_b, &ctx).await.unwrap();
        // The entries are queued writes: the SQLite tier serves them once committed.
        writer.flush().unwrap();
        let mut call_sqlite = Vec::new();
        for k in 0..(calls / 20).max(100) {
            let r = if k % 2 == 0 { &req } else { &req_b };
            let t = Instant::now();
            let out = cold.call(r, &ctx).await.unwrap();
            call_sqlite.push(t.elapsed().as_secs_f64() * 1e6);
            assert!(out.cache_hit);
        }

        // Breakdown of a memory hit: the cache key (request -> JSON value,
        // canonical JSON text, sha256) that every call computes first.
        let n = (calls / 5).max(1000);
        let value = json!({"provider": "stub", "model": "stub-model", "request": &req});
        let canonical = skill_fleet::util::canonical_json(&value);
        let mut key_us = Vec::with_capacity(n);
        let mut to_value_us = Vec::with_capacity(n);
        let mut canon_us = Vec::with_capacity(n);
        let mut sha_us = Vec::with_capacity(n);
        let mut typed_us = Vec::with_capacity(n);
        for _ in 0..n {
            let t = Instant::now();
            std::hint::black_box(skill_fleet::lm::cache::cache_key(
                "stub",
                "stub-model",
                &req,
            ));
            key_us.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            std::hint::black_box(
                json!({"provider": "stub", "model": "stub-model", "request": &req}),
            );
            to_value_us.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            std::hint::black_box(skill_fleet::util::canonical_json(&value));
            canon_us.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            std::hint::black_box(skill_fleet::util::sha256_hex(canonical.as_bytes()));
            sha_us.push(t.elapsed().as_secs_f64() * 1e6);
            // What a key straight from the typed request would cost: its serde
            // field order is fixed, so no JSON tree, sorting or copy is needed.
            let t = Instant::now();
            let bytes = serde_json::to_vec(&("stub", "stub-model", &req)).unwrap();
            std::hint::black_box(skill_fleet::util::sha256_hex(&bytes));
            typed_us.push(t.elapsed().as_secs_f64() * 1e6);
        }

        // 4. A whole program run on a cached answer.
        let ctx = CallContext::default();
        let p = run_program(&spec, &constants, &mem_client, &inputs0, &ctx)
            .await
            .unwrap();
        assert!(
            p.traces
                .iter()
                .all(|t| !t.used_fallback && t.failures.is_empty()),
            "the stub answer did not parse: {:?}",
            p.traces
        );
        let mut prog = Vec::new();
        for _ in 0..(calls / 5) {
            let t = Instant::now();
            let p = run_program(&spec, &constants, &mem_client, &inputs0, &ctx)
                .await
                .unwrap();
            prog.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(p.cache_hits, 1);
        }
        // The same through the client as `skill-fleet eval` wires it (SQLite
        // cache tier + trace writer): a trace row per call.
        let mut prog_traced = Vec::new();
        for _ in 0..(calls / 5) {
            let t = Instant::now();
            let p = run_program(&spec, &constants, &db_client, &inputs0, &ctx)
                .await
                .unwrap();
            prog_traced.push(t.elapsed().as_secs_f64() * 1e6);
            assert_eq!(p.cache_hits, 1);
        }
        writer.flush().unwrap();

        // 5. Evaluation of 1,000 cached examples (distinct requests) with the default metric.
        let examples_src: Vec<_> = (0..1000)
            .map(|i| {
                let mut e = trainset.examples[i % trainset.examples.len()].clone();
                let td = e.fields["task_description"]
                    .as_str()
                    .unwrap_or("")
                    .to_string();
                e.fields.insert(
                    "task_description".into(),
                    Value::String(format!("{td} (variant {i})")),
                );
                e.index = i;
                e
            })
            .collect();
        let eval_db = dir.join("db/overhead-eval.db");
        fresh(&eval_db);
        let mut store = Store::open(&eval_db).unwrap();
        let big = Trainset {
            format: trainset.format,
            schema: trainset.schema,
            examples: examples_src,
        };
        let (ts, _) = store
            .import_trainset("bench-1000", "synthetic", &big)
            .unwrap();
        let rows = store.examples(ts.id).unwrap();
        let examples: Vec<EvalExample> = rows
            .iter()
            .map(|r| {
                let (inputs, labels) = spec.example_io(&r.fields);
                EvalExample {
                    example_id: r.id,
                    inputs,
                    labels,
                }
            })
            .collect();
        assert_eq!(examples.len(), 1000);
        let metric_name = "skill_comprehensive";
        let metric = skill_fleet::metrics::resolve(metric_name, &config.metrics, None).unwrap();
        let eval_client = Arc::new(
            LmClient::new("task", stub(), RetryConfig::default())
                .with_cache(Arc::new(LmCache::memory_only(10_000))),
        );
        let evaluator = Evaluator {
            spec: Arc::new(spec.clone()),
            constants: Arc::new(constants.clone()),
            lm: eval_client,
            metric,
            threads: 4,
            failure_score: 0.0,
            context: CallContext::default(),
            strategy: skill_fleet::program::ensemble::Strategy::Single,
            others: Vec::new(),
        };
        let t = Instant::now();
        let first = evaluator.evaluate(&examples, &HashMap::new(), |_| {}).await;
        let fill_ms = t.elapsed().as_secs_f64() * 1e3;
        assert_eq!(first.scores.len(), 1000);
        let mut eval_ms = Vec::new();
        let mut mean = 0.0;
        for _ in 0..5 {
            let t = Instant::now();
            let r = evaluator.evaluate(&examples, &HashMap::new(), |_| {}).await;
            eval_ms.push(t.elapsed().as_secs_f64() * 1e3);
            assert_eq!(r.cache_hits, 1000);
            mean = r.mean;
        }
        // The same with per-score persistence, as the eval job does it:
        // every score and progress update through the store writer.
        drop(store);
        let writer = Writer::start(&eval_db).unwrap();
        let run = writer
            .call(|s| s.create_run(&NewRun::new(RunKind::Eval, "{}".into())))
            .unwrap();
        let persist_ms = persisted_eval_ms(&evaluator, &examples, &writer, run, metric_name).await;
        // And as the eval job really runs: its client also has the SQLite
        // cache tier and the trace writer, so each example adds a trace row.
        let traced = Evaluator {
            lm: Arc::new(
                LmClient::new("task", stub(), RetryConfig::default())
                    .with_cache(Arc::new(LmCache::with_db(10_000, &writer).unwrap()))
                    .with_tracer(TraceSink::new(&writer)),
            ),
            metric: skill_fleet::metrics::resolve(metric_name, &config.metrics, None).unwrap(),
            ..evaluator
        };
        let _ = traced.evaluate(&examples, &HashMap::new(), |_| {}).await; // fills its cache
        writer.flush().unwrap();
        let traced_ms = persisted_eval_ms(&traced, &examples, &writer, run, metric_name).await;
        eval_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
        json!({
            "call_memory_hit": stats_us(call_mem),
            "call_db_cache_and_tracer_hit": stats_us(call_db),
            "call_db_cache_and_tracer_amortized_us": amortized_db_us,
            "traces_written": traces,
            "call_sqlite_tier_hit": stats_us(call_sqlite),
            "breakdown_cache_key": stats_us(key_us),
            "breakdown_request_to_json_value": stats_us(to_value_us),
            "breakdown_canonical_json": stats_us(canon_us),
            "breakdown_sha256_hex": stats_us(sha_us),
            "alternative_key_typed_serialize_sha256": stats_us(typed_us),
            "canonical_request_bytes": canonical.len(),
            "run_program_cached": stats_us(prog),
            "run_program_cached_traced": stats_us(prog_traced),
            "evaluate_1000_cached_ms": eval_ms[eval_ms.len() / 2],
            "evaluate_1000_fill_with_stub_ms": fill_ms,
            "evaluate_1000_cached_persisted_ms": persist_ms,
            "evaluate_1000_cached_traced_persisted_ms": traced_ms,
            "evaluate_threads": 4,
            "evaluate_mean_score": mean,
            "metric": metric_name,
            "prompt_chars": prompt.len(),
        })
    });
    let out = json!({
        "benchmark": "overhead",
        "profile": if cfg!(debug_assertions) { "debug-assertions on" } else { "optimized" },
        "ours": result,
    });
    eprintln!("{}", serde_json::to_string_pretty(&out).unwrap());
    std::fs::write(&out_path, serde_json::to_string_pretty(&out).unwrap()).unwrap();
    eprintln!("wrote {}", out_path.display());
}
