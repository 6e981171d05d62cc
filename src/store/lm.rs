//! Typed queries for the LM layer: the persistent cache and trace rows.

use super::Store;
use crate::error::Result;
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// One LM call as recorded in `traces`.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct TraceRow {
    pub run_id: Option<i64>,
    pub candidate_id: Option<i64>,
    pub example_id: Option<i64>,
    pub predictor: Option<String>,
    pub role: Option<String>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: u32,
    pub completion_tokens: u32,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub cache_hit: bool,
    pub attempts: u32,
    pub error: Option<String>,
    pub request_json: String,
    pub response_text: Option<String>,
}

/// Cache statistics for `skill-fleet cache stats`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CacheStats {
    pub entries: i64,
    pub total_hits: i64,
    pub bytes: i64,
    pub by_model: Vec<(String, i64)>,
}

impl Store {
    /// Writes trace rows in one transaction (the tracer batches them).
    pub fn insert_traces(&mut self, rows: &[TraceRow]) -> Result<()> {
        let tx = self.conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO traces (run_id, candidate_id, example_id, predictor, role, provider, model, \
                 prompt_tokens, completion_tokens, cost_usd, latency_ms, cache_hit, attempts, error, \
                 request_json, response_text, at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
            )?;
            let at = now();
            for r in rows {
                stmt.execute(params![
                    r.run_id,
                    r.candidate_id,
                    r.example_id,
                    r.predictor,
                    r.role,
                    r.provider,
                    r.model,
                    r.prompt_tokens,
                    r.completion_tokens,
                    r.cost_usd,
                    r.latency_ms,
                    r.cache_hit,
                    r.attempts,
                    r.error,
                    r.request_json,
                    r.response_text,
                    at
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// A cached response by key, counting the hit.
    pub fn cache_get(&self, key: &str) -> Result<Option<String>> {
        let v: Option<String> = self
            .conn
            .query_row(
                "SELECT response_json FROM lm_cache WHERE key = ?1",
                [key],
                |r| r.get(0),
            )
            .optional()?;
        if v.is_some() {
            self.conn
                .execute("UPDATE lm_cache SET hits = hits + 1 WHERE key = ?1", [key])?;
        }
        Ok(v)
    }

    /// Stores a response under its key (first writer wins).
    pub fn cache_put(
        &self,
        key: &str,
        provider: &str,
        model: &str,
        response_json: &str,
    ) -> Result<()> {
        self.conn.execute(
            "INSERT OR IGNORE INTO lm_cache (key, provider, model, response_json, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![key, provider, model, response_json, now()],
        )?;
        Ok(())
    }

    /// Entries, hits and size of the persistent cache.
    pub fn cache_stats(&self) -> Result<CacheStats> {
        let (entries, total_hits, bytes) = self.conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(hits), 0), COALESCE(SUM(length(response_json) + length(key)), 0) FROM lm_cache",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        let mut stmt = self.conn.prepare(
            "SELECT provider || '/' || model, COUNT(*) FROM lm_cache GROUP BY 1 ORDER BY 2 DESC",
        )?;
        let by_model = stmt
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(CacheStats {
            entries,
            total_hits,
            bytes,
            by_model,
        })
    }

    /// Deletes cache entries, all or those created before `older_than` (RFC 3339).
    pub fn cache_clear(&self, older_than: Option<&str>) -> Result<usize> {
        Ok(match older_than {
            Some(t) => self
                .conn
                .execute("DELETE FROM lm_cache WHERE created_at < ?1", [t])?,
            None => self.conn.execute("DELETE FROM lm_cache", [])?,
        })
    }
}
