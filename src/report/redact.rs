//! Keeping secrets out of what reports and trace exports write.
//!
//! Nothing skill-fleet stores should hold a secret: API keys live in
//! environment variables and travel in HTTP headers, and a trace's
//! `request_json` is the `LmRequest` (prompt, sampling parameters, rollout id).
//! Exports still scrub defensively, because a file written for sharing must
//! stay safe even if a future provider, a user's config or an error message
//! puts one there: JSON values under secret-looking keys, `Bearer` tokens,
//! `key=`/`api_key=` query parameters, and the literal values of the
//! process's own secret environment variables are replaced by [`REDACTED`].

use regex::Regex;
use serde_json::Value;
use std::sync::OnceLock;

/// What a removed secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Environment variables whose values are secrets, by name suffix
/// (`OPENAI_API_KEY`, `GOOGLE_API_KEY`, `HF_TOKEN`, a role's `api_key_env`
/// named like them).
const SECRET_ENV_SUFFIXES: &[&str] = &["API_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "APIKEY"];

/// Values shorter than this are not treated as secrets (replacing "1" or
/// "true" everywhere would corrupt the export without protecting anything).
const MIN_SECRET_LEN: usize = 8;

/// Scrubs secrets from JSON documents and free text.
#[derive(Debug, Clone, Default)]
pub struct Redactor {
    /// Literal secret values to remove wherever they appear.
    values: Vec<String>,
}

impl Redactor {
    /// A redactor that also removes the values of this process's secret
    /// environment variables.
    pub fn from_env() -> Self {
        Self::with_values(
            std::env::vars()
                .filter(|(k, _)| {
                    let k = k.to_ascii_uppercase();
                    SECRET_ENV_SUFFIXES.iter().any(|s| k.ends_with(s))
                })
                .map(|(_, v)| v),
        )
    }

    /// A redactor removing these literal values (and the patterns).
    pub fn with_values(values: impl IntoIterator<Item = String>) -> Self {
        let mut values: Vec<String> = values
            .into_iter()
            .filter(|v| v.len() >= MIN_SECRET_LEN)
            .collect();
        // Longest first, so a secret containing another is removed whole.
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        Redactor { values }
    }

    /// Free text with secrets replaced.
    pub fn text(&self, text: &str) -> String {
        let mut out = text.to_string();
        for v in &self.values {
            if out.contains(v.as_str()) {
                out = out.replace(v.as_str(), REDACTED);
            }
        }
        for (re, replacement) in patterns() {
            if re.is_match(&out) {
                out = re.replace_all(&out, *replacement).into_owned();
            }
        }
        out
    }

    /// A JSON value with secret-keyed members replaced and every string scrubbed.
    pub fn json(&self, value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    if is_secret_key(k) && !v.is_null() {
                        *v = Value::String(REDACTED.into());
                    } else {
                        self.json(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| self.json(v)),
            Value::String(s) => {
                let clean = self.text(s);
                if clean != *s {
                    *s = clean;
                }
            }
            _ => {}
        }
    }

    /// A JSON document (text) scrubbed; text that is not JSON is scrubbed as text.
    /// A document with no secret-looking key in it (the usual trace request)
    /// is scrubbed as text without being parsed: the text patterns never
    /// add or remove a quote or a backslash, so it stays valid JSON.
    pub fn json_text(&self, text: &str) -> String {
        if !may_hold_secret_key(text) {
            return self.text(text);
        }
        match serde_json::from_str::<Value>(text) {
            Ok(mut v) => {
                let before = v.clone();
                self.json(&mut v);
                if v == before {
                    text.to_string()
                } else {
                    v.to_string()
                }
            }
            Err(_) => self.text(text),
        }
    }
}

/// Whether JSON text may hold a member [`is_secret_key`] matches: each
/// such key ends in `key`, `token` or `cookie` before its closing quote, or
/// contains `authorization`, `password`, `secret` or `bearer`.
fn may_hold_secret_key(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    [
        "key\"",
        "token\"",
        "cookie\"",
        "authorization",
        "password",
        "secret",
        "bearer",
    ]
    .iter()
    .any(|w| t.contains(w))
}

/// Whether an object key names a secret (`api_key`, `Authorization`,
/// `x-goog-api-key`, `access_token`, `password`, ...). `max_tokens` and
/// `prompt_tokens` are not: only a key that *is* a token is.
pub fn is_secret_key(key: &str) -> bool {
    let k: String = key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect::<String>()
        .to_ascii_lowercase();
    k.contains("apikey")
        || k.contains("authorization")
        || k.contains("password")
        || k.contains("secret")
        || k.contains("bearer")
        || k == "token"
        || k.ends_with("accesstoken")
        || k.ends_with("authtoken")
        || k.ends_with("refreshtoken")
        || k.ends_with("idtoken")
        || k == "key"
        || k == "cookie"
}

fn patterns() -> &'static [(Regex, &'static str)] {
    static P: OnceLock<Vec<(Regex, &'static str)>> = OnceLock::new();
    P.get_or_init(|| {
        [
            // Authorization: Bearer <token>
            (r"(?i)\b(bearer)\s+[A-Za-z0-9._~+/=-]{8,}", "$1 [redacted]"),
            // ?key=... / &api_key=... in URLs
            (
                r"(?i)([?&](?:key|api_key|apikey|access_token|token)=)[^&\s\x22'\\]+",
                "${1}[redacted]",
            ),
            // OpenAI-style keys
            (r"\bsk-[A-Za-z0-9_-]{16,}", "[redacted]"),
            // Google API keys
            (r"\bAIza[0-9A-Za-z_-]{30,}", "[redacted]"),
        ]
        .into_iter()
        .filter_map(|(re, rep)| Regex::new(re).ok().map(|re| (re, rep)))
        .collect()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secret_keys_are_replaced_at_any_depth_and_token_counts_are_kept() {
        let mut v = json!({
            "prompt": {"Text": "hi"},
            "params": {"max_tokens": 16, "temperature": 0.0},
            "headers": {"Authorization": "Bearer abcdefghijkl", "x-goog-api-key": "AIzaXYZ"},
            "roles": [{"api_key": "sk-123", "api_key_env": "OPENAI_API_KEY2"}],
            "prompt_tokens": 3,
        });
        Redactor::default().json(&mut v);
        assert_eq!(v["headers"]["Authorization"], REDACTED);
        assert_eq!(v["headers"]["x-goog-api-key"], REDACTED);
        assert_eq!(v["roles"][0]["api_key"], REDACTED);
        assert_eq!(v["params"]["max_tokens"], 16);
        assert_eq!(v["prompt_tokens"], 3);
        assert_eq!(v["prompt"]["Text"], "hi");
    }

    #[test]
    fn bearer_tokens_url_keys_and_env_values_are_removed_from_text() {
        let r = Redactor::with_values(["s3cr3t-value-xyz".to_string(), "short".to_string()]);
        let t = r.text(
            "401 from https://x/v1?key=AIzaSyA-123&alt=json: Authorization: Bearer sk-abcdefghijklmnopqrstu; \
             echo s3cr3t-value-xyz; a short word",
        );
        assert!(!t.contains("AIzaSyA-123"), "{t}");
        assert!(!t.contains("sk-abcdefghijklmnopqrstu"), "{t}");
        assert!(!t.contains("s3cr3t-value-xyz"), "{t}");
        assert!(t.contains("alt=json"), "{t}");
        assert!(t.contains("a short word"), "{t}");
    }

    #[test]
    fn json_text_without_secret_keys_is_scrubbed_as_text_and_stays_json() {
        let r = Redactor::default();
        let text =
            r#"{"prompt":{"Text":"see https://h/v1?key=AIzaSecretSecretSecret\"x\" Keywords: a"}}"#;
        let out = r.json_text(text);
        assert!(!out.contains("AIzaSecret"), "{out}");
        let v: Value = serde_json::from_str(&out).unwrap();
        assert!(v["prompt"]["Text"]
            .as_str()
            .unwrap()
            .ends_with("\"x\" Keywords: a"));
        // A secret-looking key is still found by parsing.
        let out = r.json_text(r#"{"headers":{"X-Api-Key":"abc"}}"#);
        assert_eq!(out, r#"{"headers":{"X-Api-Key":"[redacted]"}}"#);
    }

    #[test]
    fn clean_json_text_is_returned_unchanged() {
        let text = r#"{"prompt":{"Text":"Create a skill"},"params":{"max_tokens":160}}"#;
        assert_eq!(Redactor::default().json_text(text), text);
    }
}
