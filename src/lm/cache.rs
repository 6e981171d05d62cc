//! Two-tier response cache: an in-memory LRU in front of the `lm_cache` table.
//!
//! The key is the sha256 of the canonical request (provider, model, prompt,
//! parameters, rollout id). Secrets never enter it: API keys live in the
//! provider, not in the request.

use super::{LmRequest, LmResponse};
use crate::store::{Write, Writer};
use crate::util::{canonical_json, sha256_hex};
use lru::LruCache;
use std::num::NonZeroUsize;
use std::sync::Mutex;

/// Cache key of a request to `provider`/`model`.
pub fn cache_key(provider: &str, model: &str, request: &LmRequest) -> String {
    let value = serde_json::json!({
        "provider": provider,
        "model": model,
        "request": request,
    });
    sha256_hex(canonical_json(&value).as_bytes())
}

/// The cache shared by every client of a process.
pub struct LmCache {
    memory: Mutex<LruCache<String, LmResponse>>,
    db: Option<DbTier>,
}

/// The persistent tier: reads on the writer's pooled read-only connections
/// (a cache is built per job and per served prediction, so it must not open
/// a connection of its own), writes through the process's one store writer.
struct DbTier {
    writer: Writer,
}

impl std::fmt::Debug for LmCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LmCache")
            .field("persistent", &self.db.is_some())
            .finish_non_exhaustive()
    }
}

impl LmCache {
    /// A memory-only cache (tests, `--no-db` tools).
    pub fn memory_only(entries: usize) -> Self {
        LmCache {
            memory: Mutex::new(LruCache::new(
                NonZeroUsize::new(entries.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            db: None,
        }
    }

    /// A memory LRU backed by the `lm_cache` table of `writer`'s database.
    pub fn with_db(entries: usize, writer: &Writer) -> crate::Result<Self> {
        let mut c = Self::memory_only(entries);
        c.db = Some(DbTier {
            writer: writer.clone(),
        });
        Ok(c)
    }

    /// Looks a key up in memory, then in SQLite (promoting a hit to memory).
    pub fn get(&self, key: &str) -> Option<LmResponse> {
        if let Ok(mut mem) = self.memory.lock() {
            if let Some(r) = mem.get(key) {
                return Some(r.clone());
            }
        }
        let db = self.db.as_ref()?;
        let text = db.writer.readers().get().ok()?.cache_get(key).ok()??;
        let response: LmResponse = serde_json::from_str(&text).ok()?;
        db.writer.write(Write::CacheHit {
            key: key.to_string(),
        });
        if let Ok(mut mem) = self.memory.lock() {
            mem.put(key.to_string(), response.clone());
        }
        Some(response)
    }

    /// Stores a response in both tiers. A failed SQLite write only loses the
    /// persistence of this entry, never the call's result.
    pub fn put(&self, key: &str, provider: &str, model: &str, response: &LmResponse) {
        if let Ok(mut mem) = self.memory.lock() {
            mem.put(key.to_string(), response.clone());
        }
        if let (Some(db), Ok(text)) = (self.db.as_ref(), serde_json::to_string(response)) {
            db.writer.write(Write::CachePut {
                key: key.to_string(),
                provider: provider.to_string(),
                model: model.to_string(),
                response_json: text,
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_depends_on_rollout_and_params_not_on_field_order() {
        let a = LmRequest::text("hi");
        let mut b = a.clone();
        b.rollout_id = Some("1".into());
        let mut c = a.clone();
        c.params.temperature = 0.5;
        let ka = cache_key("local", "m", &a);
        // The same request read from JSON written in another field order
        // (as another client, or a stored request, might write it).
        let reordered: LmRequest = serde_json::from_str(
            r#"{"rollout_id": null, "params": {"seed": null, "n": 1, "stop": [], "max_tokens": 256, "temperature": 0.0},
                "prompt": {"value": "hi", "kind": "text"}}"#,
        )
        .unwrap();
        assert_eq!(ka, cache_key("local", "m", &reordered));
        assert_ne!(ka, cache_key("local", "m", &b));
        assert_ne!(ka, cache_key("local", "m", &c));
        assert_ne!(ka, cache_key("openai", "m", &a));
    }

    #[test]
    fn db_tier_survives_a_new_cache() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("c.db");
        let r = LmResponse {
            choices: vec!["x".into()],
            prompt_tokens: 3,
            completion_tokens: 1,
        };
        let writer = Writer::start(&db).unwrap();
        LmCache::with_db(4, &writer).unwrap().put("k", "p", "m", &r);
        writer.flush().unwrap();
        let fresh = LmCache::with_db(4, &writer).unwrap();
        assert_eq!(fresh.get("k"), Some(r));
        assert_eq!(fresh.get("other"), None);
    }
}
