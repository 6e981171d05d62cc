//! [`LmClient`]: one config role's model with cache, retries, concurrency
//! limit, fallback, budget and tracing; [`Lms`] builds and shares them.

use super::budget::Budget;
use super::cache::{cache_key, LmCache};
use super::retry::backoff_delay;
use super::trace::TraceSink;
use super::{LanguageModel, LmError, LmRequest, LmResponse};
use crate::config::{Config, Price, RetryConfig, RoleConfig};
use crate::store::{TraceRow, Writer};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// Where a call belongs, for its trace row.
#[derive(Debug, Clone, Default)]
pub struct CallContext {
    pub run_id: Option<i64>,
    pub candidate_id: Option<i64>,
    pub example_id: Option<i64>,
    pub predictor: Option<String>,
    /// The program version being run, for `traces.version_id`.
    pub version_id: Option<i64>,
    /// The program inputs of a run without a stored example (JSON, constants
    /// left out), for `traces.inputs_json`: what `trainset from-traces`
    /// rebuilds examples from when there is no `example_id`.
    pub inputs_json: Option<String>,
    /// The A/B assignment that routed the request, for `traces.assignment_id`.
    pub assignment_id: Option<i64>,
    /// The demos picked for this input by the version's demo selection
    /// (JSON array, nearest first), for `traces.selected_demos`.
    pub selected_demos: Option<String>,
}

/// A finished call.
#[derive(Debug, Clone)]
pub struct LmOutput {
    pub response: LmResponse,
    pub cache_hit: bool,
    /// Provider attempts made (0 for a cache hit).
    pub attempts: u32,
    pub latency: Duration,
}

/// A role's model with everything a call goes through.
pub struct LmClient {
    role: String,
    model: Arc<dyn LanguageModel>,
    defaults: RoleConfig,
    retry: RetryConfig,
    limiter: Arc<Semaphore>,
    cache: Option<Arc<LmCache>>,
    budget: Arc<Budget>,
    tracer: Option<TraceSink>,
    price: Price,
    fallback: Option<Arc<LmClient>>,
}

impl LmClient {
    /// Wraps a provider model directly (tests and library users); see [`Lms`]
    /// for building clients from the config.
    pub fn new(role: &str, model: Arc<dyn LanguageModel>, retry: RetryConfig) -> Self {
        LmClient {
            role: role.to_string(),
            defaults: RoleConfig {
                provider: model.provider().to_string(),
                model: model.model().to_string(),
                base_url: None,
                api_key_env: None,
                mode: None,
                temperature: None,
                max_tokens: None,
                fallback: None,
                max_concurrency: None,
            },
            model,
            retry,
            limiter: Arc::new(Semaphore::new(8)),
            cache: None,
            budget: Arc::new(Budget::unlimited()),
            tracer: None,
            price: Price::default(),
            fallback: None,
        }
    }

    /// Adds a cache.
    pub fn with_cache(mut self, cache: Arc<LmCache>) -> Self {
        self.cache = Some(cache);
        self
    }

    /// Adds trace recording.
    pub fn with_tracer(mut self, tracer: TraceSink) -> Self {
        self.tracer = Some(tracer);
        self
    }

    /// Shares a run budget.
    pub fn with_budget(mut self, budget: Arc<Budget>) -> Self {
        self.budget = budget;
        self
    }

    /// Sets the fallback used when retries are exhausted.
    pub fn with_fallback(mut self, fallback: Arc<LmClient>) -> Self {
        self.fallback = Some(fallback);
        self
    }

    /// Limits requests in flight.
    pub fn with_limiter(mut self, limiter: Arc<Semaphore>) -> Self {
        self.limiter = limiter;
        self
    }

    /// Sets the price used for cost estimates.
    pub fn with_price(mut self, price: Price) -> Self {
        self.price = price;
        self
    }

    /// The role name.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The underlying model.
    pub fn model(&self) -> &Arc<dyn LanguageModel> {
        &self.model
    }

    /// The run budget this client charges.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Role defaults for temperature and max tokens.
    pub fn default_params(&self) -> super::LmParams {
        let mut p = super::LmParams::default();
        if let Some(t) = self.defaults.temperature {
            p.temperature = t;
        }
        if let Some(m) = self.defaults.max_tokens {
            p.max_tokens = m;
        }
        p
    }

    fn cost(&self, r: &LmResponse) -> f64 {
        (r.prompt_tokens as f64 * self.price.prompt_per_mtok
            + r.completion_tokens as f64 * self.price.completion_per_mtok)
            / 1e6
    }

    fn trace(
        &self,
        ctx: &CallContext,
        req: &LmRequest,
        out: Result<&LmOutput, (&LmError, u32, Duration)>,
    ) {
        let Some(sink) = &self.tracer else { return };
        let request_json = serde_json::to_string(req).unwrap_or_default();
        let mut row = TraceRow {
            run_id: ctx.run_id,
            candidate_id: ctx.candidate_id,
            example_id: ctx.example_id,
            predictor: ctx.predictor.clone(),
            version_id: ctx.version_id,
            inputs_json: ctx.inputs_json.clone(),
            assignment_id: ctx.assignment_id,
            selected_demos: ctx.selected_demos.clone(),
            role: Some(self.role.clone()),
            provider: self.model.provider().to_string(),
            model: self.model.model().to_string(),
            request_json,
            ..Default::default()
        };
        match out {
            Ok(o) => {
                row.prompt_tokens = o.response.prompt_tokens;
                row.completion_tokens = o.response.completion_tokens;
                row.cost_usd = if o.cache_hit {
                    0.0
                } else {
                    self.cost(&o.response)
                };
                row.latency_ms = o.latency.as_secs_f64() * 1e3;
                row.cache_hit = o.cache_hit;
                row.attempts = o.attempts;
                row.response_text = Some(o.response.choices.join("\n<|choice|>\n"));
            }
            Err((e, attempts, latency)) => {
                row.error = Some(e.to_string());
                row.attempts = attempts;
                row.latency_ms = latency.as_secs_f64() * 1e3;
            }
        }
        sink.record(row);
    }

    /// Answers a request: from the cache, else from the provider with retries,
    /// else from the fallback role. Every outcome is traced.
    pub async fn call(&self, req: &LmRequest, ctx: &CallContext) -> Result<LmOutput, LmError> {
        let start = Instant::now();
        let key = self
            .cache
            .as_ref()
            .map(|_| cache_key(self.model.provider(), &self.model.cache_scope(), req));
        if let (Some(cache), Some(key)) = (&self.cache, &key) {
            if let Some(response) = cache.get(key) {
                let out = LmOutput {
                    response,
                    cache_hit: true,
                    attempts: 0,
                    latency: start.elapsed(),
                };
                self.trace(ctx, req, Ok(&out));
                return Ok(out);
            }
        }
        if let Err(reason) = self.budget.try_start_call() {
            let e = LmError::Budget(reason);
            self.trace(ctx, req, Err((&e, 0, start.elapsed())));
            return Err(e);
        }
        let _permit = self
            .limiter
            .acquire()
            .await
            .map_err(|_| LmError::Provider("client shut down".into()))?;
        let (result, attempts) = self.with_retries(|| self.model.generate(req)).await;
        let err = match result {
            Ok(response) => {
                self.budget.record(
                    (response.prompt_tokens + response.completion_tokens) as u64,
                    self.cost(&response),
                );
                if let (Some(cache), Some(key)) = (&self.cache, &key) {
                    cache.put(key, self.model.provider(), self.model.model(), &response);
                }
                let out = LmOutput {
                    response,
                    cache_hit: false,
                    attempts,
                    latency: start.elapsed(),
                };
                self.trace(ctx, req, Ok(&out));
                return Ok(out);
            }
            Err(e) => e,
        };
        self.trace(ctx, req, Err((&err, attempts, start.elapsed())));
        match &self.fallback {
            Some(fb) if err.is_retryable() => Box::pin(fb.call(req, ctx)).await,
            _ => Err(err),
        }
    }
}

impl LmClient {
    /// Embeds `texts` with this role's model (see [`LanguageModel::embed`]),
    /// within its concurrency limit and timeout, retrying what is worth
    /// retrying. Not cached or traced: retrieval caches the pool's vectors
    /// itself, and an embedding is not an answer anyone reads back.
    pub async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .map_err(|_| LmError::Provider("client shut down".into()))?;
        self.with_retries(|| self.model.embed(texts)).await.0
    }

    /// Runs `op` with the role's timeout, again after a backoff while it
    /// fails in a way worth retrying and retries remain. Returns the last
    /// outcome and the attempts made.
    async fn with_retries<T, F>(&self, mut op: impl FnMut() -> F) -> (Result<T, LmError>, u32)
    where
        F: std::future::Future<Output = Result<T, LmError>>,
    {
        let timeout = Duration::from_secs(self.retry.timeout_secs.max(1));
        let mut attempts = 0;
        loop {
            attempts += 1;
            let result = match tokio::time::timeout(timeout, op()).await {
                Ok(r) => r,
                Err(_) => Err(LmError::Timeout(timeout)),
            };
            match result {
                Err(e) if e.is_retryable() && attempts <= self.retry.max_retries => {
                    tokio::time::sleep(backoff_delay(&self.retry, attempts, e.retry_after())).await;
                }
                other => return (other, attempts),
            }
        }
    }

    /// What distinguishes this role's embeddings from another model's: the
    /// provider and its cache scope (model, server, mode).
    pub fn embedding_scope(&self) -> String {
        format!("{}|{}", self.model.provider(), self.model.cache_scope())
    }
}

/// Options that commands pass when building clients.
#[derive(Debug, Clone, Default)]
pub struct LmOptions {
    /// The tracker's writer, for the persistent cache and traces (None: memory
    /// only, no traces).
    pub writer: Option<Writer>,
    /// Bypass the cache entirely (`--no-cache`).
    pub no_cache: bool,
    /// The process's cache, shared with other `Lms` (the server builds one
    /// per prediction; a fresh cache each time would start with an empty
    /// memory tier and allocate its table per request). None: these clients
    /// get a cache of their own.
    pub shared_cache: Option<Arc<LmCache>>,
}

/// A provider instance with its concurrency limit, shared by the roles using it.
type SharedProvider = (Arc<dyn LanguageModel>, Arc<Semaphore>);

/// The clients of one process, built lazily per role and sharing providers
/// (a local model is loaded once), the cache, the tracer and the budget.
pub struct Lms {
    config: Config,
    cache: Option<Arc<LmCache>>,
    writer: Option<Writer>,
    budget: Arc<Budget>,
    providers: Mutex<HashMap<String, SharedProvider>>,
    clients: Mutex<HashMap<String, Arc<LmClient>>>,
}

impl Lms {
    /// Prepares clients for `config`'s roles.
    pub fn new(config: Config, options: LmOptions, budget: Arc<Budget>) -> crate::Result<Self> {
        let cache = if options.no_cache || !config.lm.cache.enabled {
            None
        } else if let Some(shared) = options.shared_cache {
            Some(shared)
        } else {
            Some(Arc::new(match &options.writer {
                Some(w) => LmCache::with_db(config.lm.cache.memory_entries, w)?,
                None => LmCache::memory_only(config.lm.cache.memory_entries),
            }))
        };
        Ok(Lms {
            config,
            cache,
            writer: options.writer,
            budget,
            providers: Mutex::new(HashMap::new()),
            clients: Mutex::new(HashMap::new()),
        })
    }

    /// The shared run budget.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Waits until every trace and cache entry so far is written.
    pub fn flush_traces(&self) -> crate::Result<()> {
        match &self.writer {
            Some(w) => w.flush(),
            None => Ok(()),
        }
    }

    /// The client of a role, built on first use.
    pub fn role(&self, name: &str) -> Result<Arc<LmClient>, LmError> {
        self.role_inner(name, 0)
    }

    /// Serves a role with a client built elsewhere instead of from the
    /// configuration: a model the configuration cannot describe (an embedding
    /// application's own, or a scripted one in tests).
    pub fn set_role(&self, name: &str, client: Arc<LmClient>) {
        if let Ok(mut m) = self.clients.lock() {
            m.insert(name.to_string(), client);
        }
    }

    fn role_inner(&self, name: &str, depth: usize) -> Result<Arc<LmClient>, LmError> {
        if let Some(c) = self.clients.lock().ok().and_then(|m| m.get(name).cloned()) {
            return Ok(c);
        }
        let rc = self
            .config
            .role(name)
            .map_err(|e| LmError::Config(e.to_string()))?
            .clone();
        let (model, limiter) = self.provider(&rc)?;
        let price = self
            .config
            .lm
            .prices
            .get(&rc.model)
            .cloned()
            .unwrap_or_default();
        let mut client = LmClient::new(name, model, self.config.lm.retry.clone())
            .with_budget(self.budget.clone())
            .with_limiter(limiter)
            .with_price(price);
        client.defaults = rc.clone();
        if let Some(c) = &self.cache {
            client = client.with_cache(c.clone());
        }
        if let Some(w) = &self.writer {
            client = client.with_tracer(TraceSink::new(w));
        }
        if let Some(fb) = &rc.fallback {
            if depth > 4 || fb == name {
                return Err(LmError::Config(format!(
                    "role `{name}`: fallback chain loops at `{fb}`"
                )));
            }
            client = client.with_fallback(self.role_inner(fb, depth + 1)?);
        }
        let client = Arc::new(client);
        if let Ok(mut m) = self.clients.lock() {
            m.insert(name.to_string(), client.clone());
        }
        Ok(client)
    }

    fn provider(
        &self,
        rc: &RoleConfig,
    ) -> Result<(Arc<dyn LanguageModel>, Arc<Semaphore>), LmError> {
        let key = format!(
            "{}|{}|{}|{:?}",
            rc.provider,
            rc.model,
            rc.base_url.as_deref().unwrap_or(""),
            rc.mode
        );
        if let Some(p) = self
            .providers
            .lock()
            .ok()
            .and_then(|m| m.get(&key).cloned())
        {
            return Ok(p);
        }
        let api_key = |default_env: &str| -> Option<String> {
            let var = rc.api_key_env.as_deref().unwrap_or(default_env);
            std::env::var(var).ok().filter(|k| !k.is_empty())
        };
        let timeout = Duration::from_secs(self.config.lm.retry.timeout_secs.max(1));
        let (model, concurrency): (Arc<dyn LanguageModel>, usize) =
            match rc.provider.as_str() {
                #[cfg(feature = "local")]
                "local" => {
                    let m = super::local::LocalModel::load(
                        std::path::Path::new(&rc.model),
                        &self.config.lm.local,
                    )?;
                    (Arc::new(m), self.config.lm.local.max_sequences.max(1))
                }
                #[cfg(not(feature = "local"))]
                "local" => return Err(LmError::Config(
                    "this build has no `local` provider; rebuild with the default `local` feature"
                        .into(),
                )),
                "openai" => {
                    let base = rc
                        .base_url
                        .clone()
                        .unwrap_or_else(|| "https://api.openai.com/v1".into());
                    let mode = super::openai::Mode::parse(rc.mode.as_deref().unwrap_or("chat"))?;
                    let m = super::openai::OpenAiModel::new(
                        &base,
                        &rc.model,
                        api_key("OPENAI_API_KEY"),
                        mode,
                        timeout,
                    )?;
                    (Arc::new(m), 8)
                }
                "gemini" => {
                    let base = rc
                        .base_url
                        .clone()
                        .unwrap_or_else(|| super::gemini::DEFAULT_BASE_URL.into());
                    let m = super::gemini::GeminiModel::new(
                        &base,
                        &rc.model,
                        api_key("GOOGLE_API_KEY"),
                        timeout,
                    )?;
                    (Arc::new(m), 8)
                }
                other => {
                    return Err(LmError::Config(format!(
                        "unknown provider `{other}`; expected local, openai or gemini"
                    )))
                }
            };
        let limiter = Arc::new(Semaphore::new(
            rc.max_concurrency.unwrap_or(concurrency).max(1),
        ));
        if let Ok(mut m) = self.providers.lock() {
            m.insert(key, (model.clone(), limiter.clone()));
        }
        Ok((model, limiter))
    }
}
