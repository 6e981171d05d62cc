//! Language models: one async trait, several providers, and the machinery every
//! call goes through (cache, retries, concurrency limits, budget, traces).
//!
//! Providers implement [`LanguageModel`] and know nothing about caching or
//! tracing; [`client::LmClient`] wraps a provider for one config role and adds
//! those concerns, so optimizers and evaluation only ever see an `LmClient`.

pub mod budget;
pub mod cache;
pub mod client;
pub mod gemini;
#[cfg(feature = "local")]
pub mod local;
pub mod openai;
pub mod retry;
pub mod scripted;
pub mod trace;

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A chat turn.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    /// `system`, `user` or `assistant`.
    pub role: String,
    pub content: String,
}

/// What the model is asked: plain text to continue (base models) or a chat.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "lowercase")]
pub enum Prompt {
    Text(String),
    Chat(Vec<ChatMessage>),
}

/// Sampling parameters of one request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmParams {
    pub temperature: f32,
    pub max_tokens: u32,
    /// Generation stops before any of these strings.
    #[serde(default)]
    pub stop: Vec<String>,
    /// Number of completions to sample.
    #[serde(default = "one")]
    pub n: u32,
    #[serde(default)]
    pub seed: Option<u64>,
    /// A GBNF grammar the answer must follow (constrained decoding, see
    /// `program::grammar`). Left out of the JSON when absent, so requests
    /// without one keep their cache keys.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grammar: Option<String>,
    /// The same constraint as a JSON Schema, set for the JSON adapter (see
    /// `program::json_schema`): servers that constrain by schema (OpenAI's
    /// `response_format`, llama-server's `json_schema`) get this instead of
    /// the grammar. Left out of the JSON when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub json_schema: Option<serde_json::Value>,
}

fn one() -> u32 {
    1
}

impl Default for LmParams {
    fn default() -> Self {
        LmParams {
            temperature: 0.0,
            max_tokens: 256,
            stop: Vec::new(),
            n: 1,
            seed: None,
            grammar: None,
            json_schema: None,
        }
    }
}

/// One request to a language model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmRequest {
    pub prompt: Prompt,
    pub params: LmParams,
    /// Distinguishes deliberate re-samples of the same prompt: a different
    /// rollout id is a different cache key (DSPy's `rollout_id`).
    #[serde(default)]
    pub rollout_id: Option<String>,
}

impl LmRequest {
    /// A text-completion request with default parameters.
    pub fn text(prompt: impl Into<String>) -> Self {
        LmRequest {
            prompt: Prompt::Text(prompt.into()),
            params: LmParams::default(),
            rollout_id: None,
        }
    }

    /// A chat request with default parameters.
    pub fn chat(messages: Vec<ChatMessage>) -> Self {
        LmRequest {
            prompt: Prompt::Chat(messages),
            params: LmParams::default(),
            rollout_id: None,
        }
    }
}

/// What a provider returned.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LmResponse {
    /// One text per requested completion (`n`).
    pub choices: Vec<String>,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
}

impl LmResponse {
    /// The first completion, or an empty string.
    pub fn text(&self) -> &str {
        self.choices.first().map(String::as_str).unwrap_or("")
    }
}

/// Why a provider call failed. [`LmError::is_retryable`] decides what the
/// retry loop tries again.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
pub enum LmError {
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    #[error("connection failed: {0}")]
    Connection(String),
    #[error("HTTP {status}: {body}")]
    Http {
        status: u16,
        /// Server-requested wait (Retry-After), honoured by the retry loop.
        retry_after: Option<Duration>,
        body: String,
    },
    #[error("malformed response: {0}")]
    Malformed(String),
    #[error("budget exhausted: {0}")]
    Budget(String),
    #[error("{0}")]
    Config(String),
    #[error("provider error: {0}")]
    Provider(String),
}

impl LmError {
    /// Timeouts, connection errors, 429, 5xx and malformed/truncated bodies are
    /// worth another try; client errors, config errors and budgets are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            LmError::Timeout(_) | LmError::Connection(_) | LmError::Malformed(_) => true,
            LmError::Http { status, .. } => *status == 429 || *status >= 500,
            LmError::Budget(_) | LmError::Config(_) | LmError::Provider(_) => false,
        }
    }

    /// The wait the server asked for, if any.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LmError::Http { retry_after, .. } => *retry_after,
            _ => None,
        }
    }
}

/// A model behind some provider. Implementations do one attempt per call;
/// retries, caching and tracing live in [`client::LmClient`].
#[async_trait::async_trait]
pub trait LanguageModel: Send + Sync {
    /// Provider name as recorded in traces (`local`, `openai`, `gemini`, ...).
    fn provider(&self) -> &str;
    /// Model name as recorded in traces.
    fn model(&self) -> &str;
    /// What distinguishes this model's answers in cache keys beyond provider
    /// and model name (e.g. server URL and endpoint mode); never a secret.
    fn cache_scope(&self) -> String {
        self.model().to_string()
    }
    /// Performs one request.
    async fn generate(&self, request: &LmRequest) -> Result<LmResponse, LmError>;
    /// One vector per text (the model's hidden states pooled over the
    /// text's tokens), for retrieval: KNN demo selection compares an input
    /// with the pool's examples by the cosine of these. A provider that
    /// cannot embed says so rather than guessing.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        let _ = texts;
        Err(LmError::Config(format!(
            "provider `{}` cannot embed texts; use the bm25 retriever",
            self.provider()
        )))
    }
}
