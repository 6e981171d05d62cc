//! OpenAI-compatible servers (llama.cpp server, Ollama, vLLM, OpenAI):
//! `/v1/chat/completions` and `/v1/completions`.
//!
//! Constrained decoding: a request with a JSON Schema (the JSON adapter's)
//! sends it as `response_format` (`json_schema`, strict) in chat mode, as
//! OpenAI and llama-server take it, and as llama-server's `json_schema`
//! field in completion mode; any other request's grammar goes as
//! llama-server's `grammar` field. A server that refuses the field it got
//! (a 400 naming it, as OpenAI's API does for `grammar`) gets the request
//! again with the next kind it may take, or none, and is not sent the
//! refused kind again; the answer is then parsed as an unconstrained one.

use super::retry::parse_retry_after;
use super::{LanguageModel, LmError, LmRequest, LmResponse, Prompt};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Which endpoint requests go to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `/chat/completions`: messages in, message out.
    Chat,
    /// `/completions`: raw text continuation, for base models.
    Completion,
}

impl Mode {
    /// Parses a config `mode` value.
    pub fn parse(s: &str) -> Result<Mode, LmError> {
        match s {
            "chat" => Ok(Mode::Chat),
            "completion" | "text" => Ok(Mode::Completion),
            other => Err(LmError::Config(format!(
                "mode `{other}`; expected `chat` or `completion`"
            ))),
        }
    }
}

/// A model served over the OpenAI wire format.
pub struct OpenAiModel {
    http: reqwest::Client,
    base_url: String,
    model: String,
    api_key: Option<String>,
    mode: Mode,
    /// Cleared when the server refuses a `grammar` field.
    takes_grammar: AtomicBool,
    /// Cleared when the server refuses a JSON Schema.
    takes_schema: AtomicBool,
}

/// Which constraint a request carries to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Constraint {
    None,
    Grammar,
    Schema,
}

impl Constraint {
    /// Words of a refusal that names this constraint's field.
    fn named_in(self, body: &str) -> bool {
        let body = body.to_lowercase();
        match self {
            Constraint::None => false,
            Constraint::Grammar => body.contains("grammar"),
            Constraint::Schema => ["response_format", "json_schema", "schema"]
                .iter()
                .any(|w| body.contains(w)),
        }
    }

    fn field(self) -> &'static str {
        match self {
            Constraint::None => "",
            Constraint::Grammar => "grammar",
            Constraint::Schema => "JSON schema",
        }
    }
}

impl OpenAiModel {
    /// `base_url` ends before `/chat/completions` (e.g. `http://127.0.0.1:8080/v1`).
    pub fn new(
        base_url: &str,
        model: &str,
        api_key: Option<String>,
        mode: Mode,
        timeout: Duration,
    ) -> Result<Self, LmError> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .build()
            .map_err(|e| LmError::Config(format!("HTTP client: {e}")))?;
        Ok(OpenAiModel {
            http,
            base_url: base_url.trim_end_matches('/').to_string(),
            model: model.to_string(),
            api_key,
            mode,
            takes_grammar: AtomicBool::new(true),
            takes_schema: AtomicBool::new(true),
        })
    }

    /// The constraint to send `req` with: its schema, else its grammar, of
    /// those this server has not refused.
    fn constraint(&self, req: &LmRequest) -> Constraint {
        let p = &req.params;
        if p.json_schema.is_some() && self.takes_schema.load(Ordering::Relaxed) {
            Constraint::Schema
        } else if p.grammar.is_some() && self.takes_grammar.load(Ordering::Relaxed) {
            Constraint::Grammar
        } else {
            Constraint::None
        }
    }

    fn body(&self, req: &LmRequest, constraint: Constraint) -> Value {
        let p = &req.params;
        let mut body = json!({
            "model": self.model,
            "temperature": p.temperature,
            "max_tokens": p.max_tokens,
            "n": p.n,
        });
        match (constraint, &p.grammar, &p.json_schema) {
            (Constraint::Grammar, Some(g), _) => body["grammar"] = json!(g),
            (Constraint::Schema, _, Some(schema)) => match self.mode {
                Mode::Chat => {
                    body["response_format"] = json!({
                        "type": "json_schema",
                        "json_schema": {"name": "answer", "strict": true, "schema": schema},
                    })
                }
                Mode::Completion => body["json_schema"] = schema.clone(),
            },
            _ => {}
        }
        if !p.stop.is_empty() {
            body["stop"] = json!(p.stop);
        }
        if let Some(seed) = p.seed {
            body["seed"] = json!(seed);
        }
        match (&req.prompt, self.mode) {
            (Prompt::Chat(messages), Mode::Chat) => body["messages"] = json!(messages),
            (Prompt::Text(t), Mode::Chat) => {
                body["messages"] = json!([{"role": "user", "content": t}])
            }
            (Prompt::Text(t), Mode::Completion) => body["prompt"] = json!(t),
            (Prompt::Chat(messages), Mode::Completion) => {
                let text: String = messages
                    .iter()
                    .map(|m| format!("{}: {}\n", m.role, m.content))
                    .collect();
                body["prompt"] = json!(format!("{text}assistant:"));
            }
        }
        body
    }
}

/// Maps a reqwest failure to a retry class.
pub(crate) fn transport_error(e: reqwest::Error) -> LmError {
    if e.is_timeout() {
        LmError::Timeout(Duration::ZERO)
    } else if e.is_connect() || e.is_request() {
        LmError::Connection(e.to_string())
    } else if e.is_body() || e.is_decode() {
        LmError::Malformed(format!("truncated or unreadable body: {e}"))
    } else {
        LmError::Connection(e.to_string())
    }
}

/// Turns a non-2xx response into [`LmError::Http`] with its Retry-After.
pub(crate) async fn http_error(resp: reqwest::Response) -> LmError {
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_retry_after);
    let body: String = resp
        .text()
        .await
        .unwrap_or_default()
        .chars()
        .take(500)
        .collect();
    LmError::Http {
        status,
        retry_after,
        body,
    }
}

/// The vectors of an embeddings response, in input order.
fn parse_embeddings(text: &str, n: usize) -> Result<Vec<Vec<f32>>, LmError> {
    let bad = |what: &str| {
        LmError::Malformed(format!(
            "embeddings: {what} in {}",
            text.chars().take(200).collect::<String>()
        ))
    };
    let v: Value = serde_json::from_str(text).map_err(|e| bad(&e.to_string()))?;
    let data = v
        .get("data")
        .and_then(Value::as_array)
        .ok_or_else(|| bad("no `data` array"))?;
    let mut out: Vec<Option<Vec<f32>>> = vec![None; n];
    for (pos, d) in data.iter().enumerate() {
        let i = d
            .get("index")
            .and_then(Value::as_u64)
            .map(|i| i as usize)
            .unwrap_or(pos);
        let vector = d
            .get("embedding")
            .and_then(Value::as_array)
            .ok_or_else(|| bad("an item has no `embedding` array"))?
            .iter()
            .map(|x| x.as_f64().map(|x| x as f32))
            .collect::<Option<Vec<f32>>>()
            .ok_or_else(|| bad("a non-number in an embedding"))?;
        match out.get_mut(i) {
            Some(slot) => *slot = Some(vector),
            None => return Err(bad(&format!("index {i} for {n} inputs"))),
        }
    }
    out.into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| bad(&format!("{} vectors for {n} inputs", data.len())))
}

fn usage(v: &Value, key: &str) -> u32 {
    v.get("usage")
        .and_then(|u| u.get(key))
        .and_then(Value::as_u64)
        .unwrap_or(0) as u32
}

#[async_trait::async_trait]
impl LanguageModel for OpenAiModel {
    fn provider(&self) -> &str {
        "openai"
    }

    fn model(&self) -> &str {
        &self.model
    }

    fn cache_scope(&self) -> String {
        format!("{}|{}|{:?}", self.model, self.base_url, self.mode)
    }

    async fn generate(&self, req: &LmRequest) -> Result<LmResponse, LmError> {
        let path = match self.mode {
            Mode::Chat => "chat/completions",
            Mode::Completion => "completions",
        };
        let send = |constraint: Constraint| {
            let mut http = self
                .http
                .post(format!("{}/{path}", self.base_url))
                .json(&self.body(req, constraint));
            if let Some(key) = &self.api_key {
                http = http.bearer_auth(key);
            }
            http.send()
        };
        let mut constraint = self.constraint(req);
        let resp = loop {
            let resp = send(constraint).await.map_err(transport_error)?;
            if resp.status().is_success() {
                break resp;
            }
            let err = http_error(resp).await;
            match &err {
                LmError::Http {
                    status: 400, body, ..
                } if constraint.named_in(body) => {
                    let flag = match constraint {
                        Constraint::Schema => &self.takes_schema,
                        _ => &self.takes_grammar,
                    };
                    if flag.swap(false, Ordering::Relaxed) {
                        eprintln!(
                            "warning: {} refuses the {}; not sending it from now on ({})",
                            self.base_url,
                            constraint.field(),
                            body.chars().take(120).collect::<String>()
                        );
                    }
                    // The flag is now off, so this picks the next kind or none.
                    constraint = self.constraint(req);
                }
                _ => return Err(err),
            }
        };
        let text = resp.text().await.map_err(transport_error)?;
        let v: Value = serde_json::from_str(&text).map_err(|e| {
            LmError::Malformed(format!(
                "{e} in {}",
                text.chars().take(200).collect::<String>()
            ))
        })?;
        let choices = v
            .get("choices")
            .and_then(Value::as_array)
            .ok_or_else(|| LmError::Malformed("no `choices` array".into()))?;
        let texts = choices
            .iter()
            .map(|c| {
                c.pointer("/message/content")
                    .or_else(|| c.get("text"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
                    .ok_or_else(|| LmError::Malformed("a choice has no text".into()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if texts.is_empty() {
            return Err(LmError::Malformed("empty `choices`".into()));
        }
        Ok(LmResponse {
            choices: texts,
            prompt_tokens: usage(&v, "prompt_tokens"),
            completion_tokens: usage(&v, "completion_tokens"),
        })
    }

    /// `POST {base}/embeddings` (OpenAI, llama-server with `--embeddings`,
    /// Ollama, vLLM), vectors put back in input order by their `index`.
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        let mut http = self
            .http
            .post(format!("{}/embeddings", self.base_url))
            .json(&json!({"model": self.model, "input": texts}));
        if let Some(key) = &self.api_key {
            http = http.bearer_auth(key);
        }
        let resp = http.send().await.map_err(transport_error)?;
        if !resp.status().is_success() {
            return Err(http_error(resp).await);
        }
        let text = resp.text().await.map_err(transport_error)?;
        parse_embeddings(&text, texts.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Vectors come back in input order whatever order the server lists
    /// them in; a missing one is an error, not a shorter list.
    #[test]
    fn embeddings_are_read_in_input_order() {
        let body =
            r#"{"data":[{"index":1,"embedding":[0.0,1.0]},{"index":0,"embedding":[1.0,0.5]}]}"#;
        assert_eq!(
            parse_embeddings(body, 2).unwrap(),
            vec![vec![1.0, 0.5], vec![0.0, 1.0]]
        );
        assert!(matches!(
            parse_embeddings(r#"{"data":[{"index":0,"embedding":[1.0]}]}"#, 2),
            Err(LmError::Malformed(_))
        ));
        assert!(parse_embeddings(r#"{"error":"no"}"#, 1).is_err());
    }
}
