//! A scripted language model: answers come from a fixed text, a queue or a
//! function of the request, and every request is recorded. Tests, benchmarks
//! and applications embedding skill-fleet use it where a real model would make
//! the outcome depend on sampling (like DSPy's `DummyLM`).

use super::{LanguageModel, LmError, LmRequest, LmResponse, Prompt};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

type AnswerFn = Box<dyn Fn(&LmRequest) -> String + Send + Sync>;

enum Answers {
    Fixed(String),
    Queue(Mutex<VecDeque<String>>),
    Function(AnswerFn),
}

/// A [`LanguageModel`] whose answers are scripted.
pub struct ScriptedModel {
    provider: String,
    model: String,
    answers: Answers,
    usage: (u32, u32),
    calls: AtomicUsize,
    seen: Mutex<Vec<LmRequest>>,
}

impl ScriptedModel {
    fn with(answers: Answers) -> Self {
        ScriptedModel {
            provider: "scripted".into(),
            model: "scripted".into(),
            answers,
            usage: (1, 1),
            calls: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        }
    }

    /// Answers every request with `text`.
    pub fn fixed(text: impl Into<String>) -> Self {
        Self::with(Answers::Fixed(text.into()))
    }

    /// Answers requests with `answers` in order; a request after the last
    /// answer fails with a provider error.
    pub fn queue<I, S>(answers: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self::with(Answers::Queue(Mutex::new(
            answers.into_iter().map(Into::into).collect(),
        )))
    }

    /// Answers each request with `f(request)`.
    pub fn from_fn(f: impl Fn(&LmRequest) -> String + Send + Sync + 'static) -> Self {
        Self::with(Answers::Function(Box::new(f)))
    }

    /// Answers each request with `f(prompt text)` (see [`prompt_text`]).
    pub fn from_text_fn(f: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        Self::from_fn(move |r| f(&prompt_text(r)))
    }

    /// Provider and model names as recorded in traces and cache keys.
    pub fn named(mut self, provider: &str, model: &str) -> Self {
        self.provider = provider.into();
        self.model = model.into();
        self
    }

    /// Token counts reported for every answer (default 1 and 1).
    pub fn with_usage(mut self, prompt_tokens: u32, completion_tokens: u32) -> Self {
        self.usage = (prompt_tokens, completion_tokens);
        self
    }

    /// Requests answered so far.
    pub fn calls(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }

    /// Every request received, in order.
    pub fn requests(&self) -> Vec<LmRequest> {
        self.seen.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// The text of a request's prompt: a text prompt as is, a chat's messages
/// joined by newlines.
pub fn prompt_text(request: &LmRequest) -> String {
    match &request.prompt {
        Prompt::Text(t) => t.clone(),
        Prompt::Chat(messages) => messages
            .iter()
            .map(|m| m.content.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
    }
}

#[async_trait::async_trait]
impl LanguageModel for ScriptedModel {
    fn provider(&self) -> &str {
        &self.provider
    }

    fn model(&self) -> &str {
        &self.model
    }

    async fn generate(&self, request: &LmRequest) -> Result<LmResponse, LmError> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        if let Ok(mut seen) = self.seen.lock() {
            seen.push(request.clone());
        }
        let n = request.params.n.max(1) as usize;
        let choices = match &self.answers {
            Answers::Fixed(t) => vec![t.clone(); n],
            Answers::Function(f) => vec![f(request); n],
            Answers::Queue(q) => {
                let next = q.lock().ok().and_then(|mut q| q.pop_front());
                vec![next.ok_or_else(|| {
                    LmError::Provider("the scripted model has no answer left".into())
                })?]
            }
        };
        Ok(LmResponse {
            choices,
            prompt_tokens: self.usage.0,
            completion_tokens: self.usage.1,
        })
    }

    /// A bag of lowercase words hashed into [`SCRIPTED_EMBEDDING_DIMS`]
    /// dimensions: texts sharing words are near, so retrieval through a
    /// scripted model picks meaningful neighbours without a real model.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        Ok(texts.iter().map(|t| bag_of_words(t)).collect())
    }
}

/// Dimensions of a scripted model's embeddings.
pub const SCRIPTED_EMBEDDING_DIMS: usize = 64;

/// The scripted model's embedding of `text`.
pub fn bag_of_words(text: &str) -> Vec<f32> {
    let mut v = vec![0.0f32; SCRIPTED_EMBEDDING_DIMS];
    for w in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
    {
        // FNV-1a: stable across runs and platforms, unlike std's hasher.
        let h = w
            .to_lowercase()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
                (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
            });
        v[(h % SCRIPTED_EMBEDDING_DIMS as u64) as usize] += 1.0;
    }
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_queue_answers_in_order_then_fails() {
        let m = ScriptedModel::queue(["a", "b"]);
        let r = LmRequest::text("x");
        assert_eq!(m.generate(&r).await.unwrap().text(), "a");
        assert_eq!(m.generate(&r).await.unwrap().text(), "b");
        assert!(matches!(m.generate(&r).await, Err(LmError::Provider(_))));
        assert_eq!(m.calls(), 3);
        assert_eq!(m.requests().len(), 3);
    }

    #[tokio::test]
    async fn a_function_sees_the_prompt_and_answers_every_choice() {
        let m = ScriptedModel::from_text_fn(|p| format!("echo {p}"));
        let mut r = LmRequest::text("hi");
        r.params.n = 3;
        let out = m.generate(&r).await.unwrap();
        assert_eq!(out.choices, vec!["echo hi"; 3]);
    }
}
