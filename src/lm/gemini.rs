//! Google's Gemini `generateContent` API (the original Python skill-fleet's default).

use super::openai::{http_error, transport_error};
use super::{LanguageModel, LmError, LmRequest, LmResponse, Prompt};
use serde_json::{json, Value};
use std::time::Duration;

/// Public endpoint; tests point the model at a loopback server instead.
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// A Gemini model.
pub struct GeminiModel {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
}

impl GeminiModel {
    /// A client for `model` (e.g. `gemini-2.0-flash`); the key goes in a header, never a URL.
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        timeout: Duration,
    ) -> Result<Self, LmError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| LmError::Config(format!("HTTP client: {e}")))?;
        Ok(GeminiModel {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
        })
    }

    fn body(req: &LmRequest) -> Value {
        let mut system = Vec::new();
        let contents: Vec<Value> = match &req.prompt {
            Prompt::Text(t) => vec![json!({"role": "user", "parts": [{"text": t}]})],
            Prompt::Chat(messages) => messages
                .iter()
                .filter_map(|m| {
                    if m.role == "system" {
                        system.push(json!({"text": m.content}));
                        return None;
                    }
                    let role = if m.role == "assistant" {
                        "model"
                    } else {
                        "user"
                    };
                    Some(json!({"role": role, "parts": [{"text": m.content}]}))
                })
                .collect(),
        };
        let p = &req.params;
        let mut config = json!({
            "temperature": p.temperature,
            "maxOutputTokens": p.max_tokens,
            "candidateCount": p.n,
        });
        if !p.stop.is_empty() {
            config["stopSequences"] = json!(p.stop);
        }
        if let Some(seed) = p.seed {
            config["seed"] = json!(seed);
        }
        let mut body = json!({"contents": contents, "generationConfig": config});
        if !system.is_empty() {
            body["systemInstruction"] = json!({"parts": system});
        }
        body
    }
}

#[async_trait::async_trait]
impl LanguageModel for GeminiModel {
    fn provider(&self) -> &str {
        "gemini"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn cache_scope(&self) -> String {
        format!("{}|{}", self.model, self.base_url)
    }

    async fn generate(&self, req: &LmRequest) -> Result<LmResponse, LmError> {
        let key = self.api_key.as_ref().ok_or_else(|| {
            LmError::Config(
                "no Gemini API key: set GOOGLE_API_KEY (or the role's api_key_env)".into(),
            )
        })?;
        let url = format!("{}/models/{}:generateContent", self.base_url, self.model);
        let resp = self
            .http
            .post(url)
            .header("x-goog-api-key", key)
            .json(&Self::body(req))
            .send()
            .await
            .map_err(transport_error)?;
        if !resp.status().is_success() {
            return Err(http_error(resp).await);
        }
        let text = resp.text().await.map_err(transport_error)?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            LmError::Malformed(format!(
                "{e} in {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        if let Some(reason) = blocked(&v) {
            // A refusal is an answer, not a transient fault: asking again gets
            // the same refusal, so it is not retried.
            return Err(LmError::Provider(format!(
                "Gemini blocked the request: {reason}"
            )));
        }
        let candidates = v
            .get("candidates")
            .and_then(Value::as_array)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| LmError::Malformed("no `candidates`".into()))?;
        let choices = candidates
            .iter()
            .map(|c| {
                c.pointer("/content/parts")
                    .and_then(Value::as_array)
                    .map(|parts| {
                        parts
                            .iter()
                            .filter_map(|p| p.get("text").and_then(Value::as_str))
                            .collect::<String>()
                    })
                    .ok_or_else(|| LmError::Malformed("a candidate has no content parts".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let meta = |k: &str| {
            v.pointer(&format!("/usageMetadata/{k}"))
                .and_then(Value::as_u64)
                .unwrap_or(0) as u32
        };
        Ok(LmResponse {
            choices,
            prompt_tokens: meta("promptTokenCount"),
            completion_tokens: meta("candidatesTokenCount"),
        })
    }
}

/// Why Gemini refused to answer, if it did: the prompt was blocked
/// (`promptFeedback.blockReason`, no candidates), or every candidate stopped on
/// a safety-type finish reason without any content.
fn blocked(v: &Value) -> Option<String> {
    if let Some(reason) = v
        .pointer("/promptFeedback/blockReason")
        .and_then(Value::as_str)
    {
        return Some(format!("prompt blocked ({reason})"));
    }
    const REFUSALS: [&str; 5] = [
        "SAFETY",
        "RECITATION",
        "BLOCKLIST",
        "PROHIBITED_CONTENT",
        "SPII",
    ];
    let candidates = v.get("candidates").and_then(Value::as_array)?;
    let reasons: Vec<&str> = candidates
        .iter()
        .filter(|c| c.pointer("/content/parts").is_none())
        .filter_map(|c| c.get("finishReason").and_then(Value::as_str))
        .filter(|r| REFUSALS.contains(r))
        .collect();
    (!candidates.is_empty() && reasons.len() == candidates.len())
        .then(|| format!("answer withheld ({})", reasons.join(", ")))
}

#[cfg(test)]
mod blocked_tests {
    use super::blocked;
    use serde_json::json;

    #[test]
    fn refusals_are_recognised_and_answers_are_not() {
        let prompt = json!({"promptFeedback": {"blockReason": "SAFETY"}});
        assert_eq!(blocked(&prompt).as_deref(), Some("prompt blocked (SAFETY)"));
        let withheld = json!({"candidates": [{"finishReason": "SAFETY", "index": 0}]});
        assert_eq!(
            blocked(&withheld).as_deref(),
            Some("answer withheld (SAFETY)")
        );
        let answered = json!({"candidates": [{"content": {"parts": [{"text": "hi"}]}, "finishReason": "STOP"}]});
        assert_eq!(blocked(&answered), None);
        // No content for another reason stays a malformed (retried) response.
        let empty = json!({"candidates": [{"finishReason": "OTHER"}]});
        assert_eq!(blocked(&empty), None);
    }
}
