//! Typed queries for the LM layer: the persistent cache and trace rows
//! (streamed for export, one page of a run's for the dashboard, one by id).

use super::bulk::insert_chunked;
use super::Store;
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{OptionalExtension, ToSql};

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
    /// The program version whose call this is (predictions by alias,
    /// version or A/B test), when the caller knows it.
    pub version_id: Option<i64>,
    /// The program inputs (JSON object, constants left out) of a call made
    /// without a stored example (predict, A/B), so the traced prediction can
    /// become an example again; a call on an example has its `example_id`.
    pub inputs_json: Option<String>,
    /// The A/B assignment that routed the call, so outcomes join to it.
    pub assignment_id: Option<i64>,
    /// The demos a KNN version picked for the call's input: a JSON array of
    /// `{"pool", "example_id", "score"}`, nearest first.
    pub selected_demos: Option<String>,
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
    /// Writes trace rows in one transaction.
    pub fn insert_traces(&mut self, rows: &[TraceRow]) -> Result<()> {
        let tx = self.write_transaction()?;
        let refs: Vec<&TraceRow> = rows.iter().collect();
        insert_trace_rows(&tx, &refs, &now())?;
        tx.commit()?;
        Ok(())
    }

    /// A cached response by key (a read: the hit is counted by the writer,
    /// see [`super::Write::CacheHit`]).
    pub fn cache_get(&self, key: &str) -> Result<Option<String>> {
        Ok(self
            .conn
            .prepare_cached("SELECT response_json FROM lm_cache WHERE key = ?1")?
            .query_row([key], |r| r.get(0))
            .optional()?)
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

/// One stored trace row, as `skill-fleet traces export` writes it.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct StoredTrace {
    pub id: i64,
    pub at: String,
    pub run_id: Option<i64>,
    pub candidate_id: Option<i64>,
    pub example_id: Option<i64>,
    pub version_id: Option<i64>,
    pub predictor: Option<String>,
    pub role: Option<String>,
    pub provider: String,
    pub model: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub cost_usd: f64,
    pub latency_ms: f64,
    pub cache_hit: bool,
    pub attempts: i64,
    pub error: Option<String>,
    pub request_json: String,
    pub response_text: Option<String>,
    /// The demos a KNN version picked for the call (see [`TraceRow`]).
    pub selected_demos: Option<String>,
}

/// Which traces to read: a run's, and/or those at or after a time.
#[derive(Debug, Clone, Default)]
pub struct TraceFilter {
    pub run_id: Option<i64>,
    /// RFC 3339 UTC in the stored format (`util::now`), compared as text.
    pub since: Option<String>,
}

/// The columns [`trace_from_row`] reads, in [`StoredTrace`] field order.
const TRACE_COLS: &str =
    "id, at, run_id, candidate_id, example_id, version_id, predictor, role, provider, model, \
     prompt_tokens, completion_tokens, cost_usd, latency_ms, cache_hit, attempts, error, \
     request_json, response_text, selected_demos";

/// [`TRACE_COLS`] with the request and response left out (empty), for
/// listings: those two are most of a trace's bytes.
const TRACE_BRIEF_COLS: &str =
    "id, at, run_id, candidate_id, example_id, version_id, predictor, role, provider, model, \
     prompt_tokens, completion_tokens, cost_usd, latency_ms, cache_hit, attempts, error, \
     '' AS request_json, NULL AS response_text, selected_demos";

fn trace_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<StoredTrace> {
    Ok(StoredTrace {
        id: r.get(0)?,
        at: r.get(1)?,
        run_id: r.get(2)?,
        candidate_id: r.get(3)?,
        example_id: r.get(4)?,
        version_id: r.get(5)?,
        predictor: r.get(6)?,
        role: r.get(7)?,
        provider: r.get(8)?,
        model: r.get(9)?,
        prompt_tokens: r.get(10)?,
        completion_tokens: r.get(11)?,
        cost_usd: r.get(12)?,
        latency_ms: r.get(13)?,
        cache_hit: r.get(14)?,
        attempts: r.get(15)?,
        error: r.get(16)?,
        request_json: r.get(17)?,
        response_text: r.get(18)?,
        selected_demos: r.get(19)?,
    })
}

impl Store {
    /// One page of a run's traces in id order, without their request and
    /// response (`request_json` empty, `response_text` None): the
    /// dashboard lists them and opens one with [`Store::trace`].
    pub fn run_traces(&self, run_id: i64, limit: i64, offset: i64) -> Result<Vec<StoredTrace>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TRACE_BRIEF_COLS} FROM traces WHERE run_id = ?1 ORDER BY id LIMIT ?2 OFFSET ?3"
        ))?;
        let rows = stmt
            .query_map(rusqlite::params![run_id, limit, offset], trace_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// One trace with its request and response.
    pub fn trace(&self, id: i64) -> Result<StoredTrace> {
        self.conn
            .query_row(
                &format!("SELECT {TRACE_COLS} FROM traces WHERE id = ?1"),
                [id],
                trace_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "trace",
                name: id.to_string(),
            })
    }

    /// Hands every trace matching `filter` to `f`, in id order, one row at a
    /// time straight from the SQLite cursor: memory stays constant however
    /// many rows there are. Stops at the first error `f` returns. Returns the
    /// number of rows handed over.
    pub fn for_each_trace(
        &self,
        filter: &TraceFilter,
        mut f: impl FnMut(&StoredTrace) -> Result<()>,
    ) -> Result<u64> {
        // Only the conditions given, so that `--run` uses the traces_run index.
        let mut sql = format!("SELECT {TRACE_COLS} FROM traces WHERE 1");
        let mut values: Vec<&dyn rusqlite::ToSql> = Vec::new();
        if let Some(run) = &filter.run_id {
            sql.push_str(" AND run_id = ?");
            values.push(run);
        }
        if let Some(since) = &filter.since {
            sql.push_str(" AND at >= ?");
            values.push(since);
        }
        sql.push_str(" ORDER BY id");
        let mut stmt = self.conn.prepare(&sql)?;
        let mut rows = stmt.query(values.as_slice())?;
        let mut n = 0u64;
        while let Some(r) = rows.next()? {
            f(&trace_from_row(r)?)?;
            n += 1;
        }
        Ok(n)
    }
}

/// Inserts trace rows inside the caller's transaction, all stamped `at`
/// (a `&String`, not a `&str`: the bound values are `&dyn ToSql`, which
/// needs a sized value).
#[allow(clippy::ptr_arg)]
pub(crate) fn insert_trace_rows(
    tx: &rusqlite::Connection,
    rows: &[&TraceRow],
    at: &String,
) -> Result<()> {
    const HEAD: &str =
        "INSERT INTO traces (run_id, candidate_id, example_id, predictor, role, provider, model, \
         prompt_tokens, completion_tokens, cost_usd, latency_ms, cache_hit, attempts, error, \
         request_json, response_text, version_id, inputs_json, assignment_id, selected_demos, at) VALUES ";
    const COLUMNS: usize = 21;
    insert_chunked(tx, HEAD, COLUMNS, rows, |r, v| {
        trace_values(r, v);
        v.push(at);
    })
}

/// The bound values of one trace row, in `insert_traces` column order (`at` last, added by the caller).
fn trace_values<'a>(r: &'a TraceRow, out: &mut Vec<&'a dyn ToSql>) {
    out.extend([
        &r.run_id as &dyn ToSql,
        &r.candidate_id,
        &r.example_id,
        &r.predictor,
        &r.role,
        &r.provider,
        &r.model,
        &r.prompt_tokens,
        &r.completion_tokens,
        &r.cost_usd,
        &r.latency_ms,
        &r.cache_hit,
        &r.attempts,
        &r.error,
        &r.request_json,
        &r.response_text,
        &r.version_id,
        &r.inputs_json,
        &r.assignment_id,
        &r.selected_demos,
    ]);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::bulk::ROWS_PER_STATEMENT;

    /// More traces than one multi-row statement holds (plus a remainder) are
    /// all stored, each with its own values.
    #[test]
    fn trace_batches_span_several_statements() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("t.db")).unwrap();
        let n = 2 * ROWS_PER_STATEMENT + 5;
        let rows: Vec<TraceRow> = (0..n)
            .map(|i| TraceRow {
                run_id: None,
                candidate_id: None,
                example_id: Some(i as i64),
                predictor: Some("p".into()),
                role: Some("task".into()),
                provider: "local".into(),
                model: "m".into(),
                prompt_tokens: i as u32,
                completion_tokens: 2 * i as u32,
                cost_usd: 0.0,
                latency_ms: 1.5,
                cache_hit: i % 2 == 0,
                attempts: 1,
                error: None,
                version_id: None,
                inputs_json: None,
                assignment_id: None,
                selected_demos: None,
                request_json: format!("{{\"i\":{i}}}"),
                response_text: Some(format!("r{i}")),
            })
            .collect();
        s.insert_traces(&rows).unwrap();
        let got: Vec<(i64, u32, u32, bool, String, String)> = s
            .conn()
            .prepare("SELECT example_id, prompt_tokens, completion_tokens, cache_hit, request_json, response_text FROM traces ORDER BY id")
            .unwrap()
            .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?)))
            .unwrap()
            .collect::<std::result::Result<_, _>>()
            .unwrap();
        assert_eq!(got.len(), n);
        for (i, g) in got.iter().enumerate() {
            assert_eq!(
                g,
                &(
                    i as i64,
                    i as u32,
                    2 * i as u32,
                    i % 2 == 0,
                    format!("{{\"i\":{i}}}"),
                    format!("r{i}")
                )
            );
        }
    }
}
