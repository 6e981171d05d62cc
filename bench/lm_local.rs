//! Benchmark C (our side): generation throughput of the embedded `local`
//! provider (llama.cpp in-process, `skill_fleet::lm::local::LocalModel`).
//!
//! Workloads (greedy, temperature 0, max_tokens 128, each repeated --trials
//! times with prompts that differ from their first words, so no trial reuses
//! an earlier trial's KV cache):
//! - `single`: one request;
//! - `concurrent4`: four different requests at once;
//! - `shared_prefix4`: four requests at once sharing a long few-shot prefix
//!   (the bundled program's instructions + 12 demos, ~1,100 tokens) and
//!   differing only in the last input.
//!
//! Writes the prompts to bench/out/lm_prompts.json (the llama-server side sends
//! the same ones) and the results to bench/out/lm_local.json.
//!
//! Run: cargo run --example lm_local [-- --model models/gemma-3-270m-q4_k_m.gguf
//!      --max-tokens 128 --trials 3 --threads 0]
//!
//! bench/lm_compare.py drives it one trial at a time, alternating with
//! llama-server: `--write-prompts FILE` only writes the prompts, and
//! `--prompts FILE --workload W --trial T` runs one trial of FILE's prompts.

use serde_json::{json, Value};
use skill_fleet::config::{Config, LocalConfig};
use skill_fleet::lm::local::LocalModel;
use skill_fleet::lm::{LanguageModel, LmParams, LmRequest, Prompt};
use skill_fleet::program::{adapter, ProgramSpec};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

const TOPICS: [&str; 8] = [
    "a lighthouse keeper who finds a message in a bottle",
    "a robot learning to bake bread in a small village",
    "two rival chess players stranded on a mountain",
    "a botanist cataloguing plants on a distant island",
    "a train conductor on the last night before retirement",
    "a young cartographer mapping an underground river",
    "a beekeeper whose hives start building strange shapes",
    "an astronomer who hears music from a comet",
];

fn story(trial: usize, k: usize) -> String {
    format!(
        "Story {trial}-{k}. Write a long, detailed story about {}. Describe the setting, the characters and what happens to them, in many paragraphs.\n\nOnce upon a time,",
        TOPICS[(trial * 4 + k) % TOPICS.len()]
    )
}

/// The workloads' prompts: [workload][trial][request].
fn prompts(trials: usize) -> Value {
    let config = Config::load(Path::new("config/config.yaml"), false).unwrap();
    let taxonomy = config.taxonomy().unwrap();
    let mut spec =
        ProgramSpec::load(Path::new("config/programs/skill_understanding.yaml")).unwrap();
    let constants = spec.resolve_constants(&taxonomy.names());
    let trainset =
        skill_fleet::data::load_file(Path::new("config/training/trainset.json"), &taxonomy)
            .unwrap();
    // A 12-demo few-shot program: the long prefix every example shares.
    let demos: Vec<_> = trainset.examples[20..32]
        .iter()
        .map(|e| {
            let (i, o) = spec.example_io(&e.fields);
            adapter::demo_from(&i, &o)
        })
        .collect();
    spec.predictors[0].demos = demos;
    let mut single = Vec::new();
    let mut conc = Vec::new();
    let mut shared = Vec::new();
    for t in 0..trials {
        single.push(vec![story(t, 0)]);
        conc.push((0..4).map(|k| story(t + 100, k)).collect::<Vec<_>>());
        let mut s = spec.clone();
        // Make the prefix unique to the trial from its first words.
        s.predictors[0].signature.instructions =
            format!("Session {t}. {}", s.predictors[0].signature.instructions);
        let reqs: Vec<String> = (0..4)
            .map(|k| {
                let (inputs, _) = s.example_io(&trainset.examples[40 + t * 4 + k].fields);
                let r = adapter::render(s.adapter, &s.predictors[0], &constants, &inputs);
                skill_fleet::program::run::prompt_text(&r.prompt)
            })
            .collect();
        shared.push(reqs);
    }
    json!({"single": single, "concurrent4": conc, "shared_prefix4": shared})
}

fn main() {
    let mut model = PathBuf::from("models/gemma-3-270m-q4_k_m.gguf");
    let mut max_tokens = 128u32;
    let mut trials = 3usize;
    let mut threads = 0usize;
    let mut out = PathBuf::from("bench/out/lm_local.json");
    let mut write_prompts: Option<PathBuf> = None;
    let mut prompts_file: Option<PathBuf> = None;
    let mut only_workload: Option<String> = None;
    let mut only_trial: Option<usize> = None;
    let a: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < a.len() {
        let v = a.get(i + 1).cloned().unwrap_or_default();
        match a[i].as_str() {
            "--model" => model = v.into(),
            "--max-tokens" => max_tokens = v.parse().unwrap(),
            "--trials" => trials = v.parse().unwrap(),
            "--threads" => threads = v.parse().unwrap(),
            "--out" => out = v.into(),
            "--write-prompts" => write_prompts = Some(v.into()),
            "--prompts" => prompts_file = Some(v.into()),
            "--workload" => only_workload = Some(v),
            "--trial" => only_trial = Some(v.parse().unwrap()),
            other => panic!("unknown argument {other}"),
        }
        i += 2;
    }
    let dir = out.parent().unwrap_or(Path::new(".")).to_path_buf();
    std::fs::create_dir_all(&dir).unwrap();
    let prompts = match &prompts_file {
        Some(f) => {
            let v: Value = serde_json::from_str(&std::fs::read_to_string(f).unwrap()).unwrap();
            max_tokens = v["max_tokens"].as_u64().unwrap() as u32;
            v["workloads"].clone()
        }
        None => {
            let p = prompts(trials);
            let file = write_prompts
                .clone()
                .unwrap_or_else(|| dir.join("lm_prompts.json"));
            std::fs::write(
                &file,
                serde_json::to_string_pretty(&json!({"max_tokens": max_tokens, "workloads": p}))
                    .unwrap(),
            )
            .unwrap();
            if write_prompts.is_some() {
                eprintln!("wrote {}", file.display());
                return;
            }
            p
        }
    };

    let cfg = LocalConfig {
        threads,
        context_tokens: 4096,
        max_sequences: 4,
    };
    let t = Instant::now();
    let lm = Arc::new(LocalModel::load(&model, &cfg).unwrap());
    let load_secs = t.elapsed().as_secs_f64();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let request = |text: &str| LmRequest {
        prompt: Prompt::Text(text.to_string()),
        params: LmParams {
            temperature: 0.0,
            max_tokens,
            ..Default::default()
        },
        rollout_id: None,
    };
    let results = rt.block_on(async {
        // Warm-up: first decode allocates buffers.
        lm.generate(&request("Hello")).await.unwrap();
        let mut results = serde_json::Map::new();
        for name in ["single", "concurrent4", "shared_prefix4"] {
            if only_workload.as_deref().is_some_and(|w| w != name) {
                continue;
            }
            let mut rows = Vec::new();
            for (t, reqs) in prompts[name].as_array().unwrap().iter().enumerate() {
                if only_trial.is_some_and(|x| x != t) {
                    continue;
                }
                let reqs: Vec<LmRequest> = reqs
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| request(p.as_str().unwrap()))
                    .collect();
                let start = Instant::now();
                let mut set = tokio::task::JoinSet::new();
                for r in reqs {
                    let lm = lm.clone();
                    set.spawn(async move { lm.generate(&r).await });
                }
                let mut completion = 0u64;
                let mut prompt_toks = 0u64;
                while let Some(r) = set.join_next().await {
                    let r = r.unwrap().unwrap();
                    completion += r.completion_tokens as u64;
                    prompt_toks += r.prompt_tokens as u64;
                }
                let secs = start.elapsed().as_secs_f64();
                eprintln!(
                    "{name} trial {t}: {completion} tokens in {secs:.2}s = {:.1} tok/s",
                    completion as f64 / secs
                );
                rows.push(json!({
                    "trial": t, "wall_secs": secs, "completion_tokens": completion,
                    "prompt_tokens": prompt_toks, "tokens_per_sec": completion as f64 / secs,
                }));
            }
            results.insert(name.into(), Value::Array(rows));
        }
        results
    });
    let v = json!({
        "benchmark": "lm_local",
        "side": "ours",
        "model": model.display().to_string(),
        "max_tokens": max_tokens,
        "threads": if threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2) } else { threads },
        "max_sequences": 4,
        "load_secs": load_secs,
        "loadavg": std::fs::read_to_string("/proc/loadavg").unwrap_or_default().trim(),
        "workloads": results,
    });
    std::fs::write(&out, serde_json::to_string_pretty(&v).unwrap()).unwrap();
    eprintln!("wrote {}", out.display());
}
