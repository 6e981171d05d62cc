//! Trace export (`skill-fleet traces export`): every stored LM call of a run
//! or since a time, as JSONL (one object a line) or CSV, streamed row by row
//! from the SQLite cursor to the writer, so a million traces take as little
//! memory as ten. Every text column passes through [`Redactor`] on the way.
//! [`trace_page`] and [`trace_detail`] are the same rows, scrubbed the same
//! way, for the dashboard's trace list and the one trace it opens.

use super::redact::Redactor;
use crate::error::{Error, Result};
use crate::store::{Store, StoredTrace, TraceFilter};
use std::borrow::Cow;
use std::io::Write;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TraceFormat {
    Jsonl,
    Csv,
}

impl TraceFormat {
    /// Parses `jsonl` or `csv`.
    pub fn parse(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "jsonl" | "ndjson" => Ok(TraceFormat::Jsonl),
            "csv" => Ok(TraceFormat::Csv),
            other => Err(Error::Invalid(format!(
                "trace export format `{other}`: expected jsonl or csv"
            ))),
        }
    }
}

/// The CSV columns: [`StoredTrace`]'s fields, `selected_demos` last (added
/// after the others, so existing column positions hold). It is the JSON
/// array of the demos a KNN version picked for the call, empty otherwise.
pub const CSV_HEADER: [&str; 20] = [
    "id",
    "at",
    "run_id",
    "candidate_id",
    "example_id",
    "version_id",
    "predictor",
    "role",
    "provider",
    "model",
    "prompt_tokens",
    "completion_tokens",
    "cost_usd",
    "latency_ms",
    "cache_hit",
    "attempts",
    "error",
    "request_json",
    "response_text",
    "selected_demos",
];

/// Turns `--since` into the stored timestamp format (RFC 3339 UTC with
/// milliseconds, compared as text): an RFC 3339 time in any offset, or a
/// date (`YYYY-MM-DD`, midnight UTC).
pub fn parse_since(s: &str) -> Result<String> {
    use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
    let s = s.trim();
    let t: DateTime<Utc> = if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        t.with_timezone(&Utc)
    } else if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(|| Error::Invalid(format!("--since `{s}`: not a valid date")))?
    } else {
        return Err(Error::Invalid(format!(
            "--since `{s}`: expected an RFC 3339 time (2026-11-29T12:00:00Z) or a date (2026-11-29)"
        )));
    };
    Ok(t.to_rfc3339_opts(SecondsFormat::Millis, true))
}

/// The row with its text columns scrubbed (borrowed when nothing changed).
struct Clean<'a> {
    row: &'a StoredTrace,
    /// Leaves the request and response out (a listing).
    brief: bool,
    error: Option<Cow<'a, str>>,
    request_json: Cow<'a, str>,
    response_text: Option<Cow<'a, str>>,
}

fn scrub<'a>(r: &Redactor, row: &'a StoredTrace) -> Clean<'a> {
    let keep = |orig: &'a str, new: String| -> Cow<'a, str> {
        if new == orig {
            Cow::Borrowed(orig)
        } else {
            Cow::Owned(new)
        }
    };
    Clean {
        row,
        brief: false,
        error: row.error.as_deref().map(|e| keep(e, r.text(e))),
        request_json: keep(&row.request_json, r.json_text(&row.request_json)),
        response_text: row.response_text.as_deref().map(|t| keep(t, r.text(t))),
    }
}

impl serde::Serialize for Clean<'_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let r = self.row;
        let mut m = s.serialize_struct("Trace", if self.brief { 17 } else { 19 })?;
        m.serialize_field("id", &r.id)?;
        m.serialize_field("at", &r.at)?;
        m.serialize_field("run_id", &r.run_id)?;
        m.serialize_field("candidate_id", &r.candidate_id)?;
        m.serialize_field("example_id", &r.example_id)?;
        m.serialize_field("version_id", &r.version_id)?;
        m.serialize_field("predictor", &r.predictor)?;
        m.serialize_field("role", &r.role)?;
        m.serialize_field("provider", &r.provider)?;
        m.serialize_field("model", &r.model)?;
        m.serialize_field("prompt_tokens", &r.prompt_tokens)?;
        m.serialize_field("completion_tokens", &r.completion_tokens)?;
        m.serialize_field("cost_usd", &r.cost_usd)?;
        m.serialize_field("latency_ms", &r.latency_ms)?;
        m.serialize_field("cache_hit", &r.cache_hit)?;
        m.serialize_field("attempts", &r.attempts)?;
        m.serialize_field("error", &self.error)?;
        // Only a KNN version's calls have picked demos; other traces read
        // as before.
        match r
            .selected_demos
            .as_deref()
            .and_then(|j| serde_json::from_str::<serde_json::Value>(j).ok())
        {
            Some(v) => m.serialize_field("selected_demos", &v)?,
            None => m.skip_field("selected_demos")?,
        }
        if !self.brief {
            m.serialize_field("request_json", &self.request_json)?;
            m.serialize_field("response_text", &self.response_text)?;
        }
        m.end()
    }
}

/// One page of run `run_id`'s traces (`limit` from `offset`, in id order)
/// without request and response, errors scrubbed. A run that does not exist
/// is an error, not an empty page.
pub fn trace_page(
    store: &Store,
    run_id: i64,
    limit: i64,
    offset: i64,
    redactor: &Redactor,
) -> Result<Vec<serde_json::Value>> {
    store.run(run_id)?;
    store
        .run_traces(run_id, limit, offset)?
        .iter()
        .map(|row| {
            let mut c = scrub(redactor, row);
            c.brief = true;
            Ok(serde_json::to_value(&c)?)
        })
        .collect()
}

/// Trace `id` with its request and response, scrubbed as the export is.
pub fn trace_detail(store: &Store, id: i64, redactor: &Redactor) -> Result<serde_json::Value> {
    let row = store.trace(id)?;
    Ok(serde_json::to_value(scrub(redactor, &row))?)
}

/// Writes every trace matching `filter` to `out` (give it a buffered
/// writer) and returns how many were written. Secrets are scrubbed with
/// `redactor` (see [`Redactor::from_env`]).
pub fn export_traces<W: Write>(
    store: &Store,
    filter: &TraceFilter,
    format: TraceFormat,
    redactor: &Redactor,
    out: W,
) -> Result<u64> {
    let io = |e| Error::io("trace export output", e);
    match format {
        TraceFormat::Jsonl => {
            let mut out = out;
            let n = store.for_each_trace(filter, |row| {
                serde_json::to_writer(&mut out, &scrub(redactor, row))?;
                out.write_all(b"\n").map_err(io)
            })?;
            out.flush().map_err(io)?;
            Ok(n)
        }
        TraceFormat::Csv => {
            let mut w = csv::Writer::from_writer(out);
            let e = |e: csv::Error| Error::Invalid(format!("writing CSV: {e}"));
            w.write_record(CSV_HEADER).map_err(e)?;
            let opt = |v: Option<i64>| v.map(|v| v.to_string()).unwrap_or_default();
            let n = store.for_each_trace(filter, |row| {
                let c = scrub(redactor, row);
                w.write_record([
                    row.id.to_string().as_str(),
                    &row.at,
                    &opt(row.run_id),
                    &opt(row.candidate_id),
                    &opt(row.example_id),
                    &opt(row.version_id),
                    row.predictor.as_deref().unwrap_or(""),
                    row.role.as_deref().unwrap_or(""),
                    &row.provider,
                    &row.model,
                    &row.prompt_tokens.to_string(),
                    &row.completion_tokens.to_string(),
                    &row.cost_usd.to_string(),
                    &row.latency_ms.to_string(),
                    if row.cache_hit { "1" } else { "0" },
                    &row.attempts.to_string(),
                    c.error.as_deref().unwrap_or(""),
                    &c.request_json,
                    c.response_text.as_deref().unwrap_or(""),
                    row.selected_demos.as_deref().unwrap_or(""),
                ])
                .map_err(e)
            })?;
            w.flush().map_err(io)?;
            Ok(n)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::TraceRow;

    #[test]
    fn since_accepts_rfc3339_in_any_offset_and_dates() {
        assert_eq!(
            parse_since("2026-11-29T14:00:00+02:00").unwrap(),
            "2026-11-29T12:00:00.000Z"
        );
        assert_eq!(
            parse_since("2026-11-29").unwrap(),
            "2026-11-29T00:00:00.000Z"
        );
        let e = parse_since("yesterday").unwrap_err().to_string();
        assert!(e.contains("--since `yesterday`"), "{e}");
        assert!(parse_since("2026-13-01").is_err());
    }

    fn store_with_traces() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("t.db")).unwrap();
        let rows: Vec<TraceRow> = (0..3)
            .map(|i| TraceRow {
                run_id: Some(1 + i % 2),
                provider: "openai".into(),
                model: "m".into(),
                prompt_tokens: 10,
                request_json: format!(
                    r#"{{"prompt":{{"Text":"q{i}, a \"quote\", a comma"}},"headers":{{"Authorization":"Bearer sk-live-abcdefghijklmnop"}}}}"#
                ),
                response_text: Some(format!("line1\nline2 {i}")),
                error: (i == 2).then(|| "401 at https://h/v1?key=AIzaSecretSecretSecret".into()),
                selected_demos: (i == 0)
                    .then(|| r#"[{"pool":3,"example_id":17,"score":2.5}]"#.into()),
                ..Default::default()
            })
            .collect();
        s.insert_traces(&rows).unwrap();
        (dir, s)
    }

    #[test]
    fn jsonl_has_one_object_per_trace_with_secrets_scrubbed() {
        let (_d, s) = store_with_traces();
        let mut out = Vec::new();
        let n = export_traces(
            &s,
            &TraceFilter::default(),
            TraceFormat::Jsonl,
            &Redactor::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 3);
        let text = String::from_utf8(out).unwrap();
        assert!(!text.contains("sk-live"), "{text}");
        assert!(!text.contains("AIzaSecret"), "{text}");
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[1]["response_text"], "line1\nline2 1");
        let req: serde_json::Value =
            serde_json::from_str(lines[0]["request_json"].as_str().unwrap()).unwrap();
        assert_eq!(req["prompt"]["Text"], "q0, a \"quote\", a comma");
    }

    #[test]
    fn csv_quotes_text_and_filters_by_run() {
        let (_d, s) = store_with_traces();
        let mut out = Vec::new();
        let filter = TraceFilter {
            run_id: Some(1),
            since: None,
        };
        let n = export_traces(
            &s,
            &filter,
            TraceFormat::Csv,
            &Redactor::default(),
            &mut out,
        )
        .unwrap();
        assert_eq!(n, 2);
        let mut r = csv::Reader::from_reader(out.as_slice());
        assert_eq!(r.headers().unwrap().len(), CSV_HEADER.len());
        let recs: Vec<csv::StringRecord> = r.records().map(|x| x.unwrap()).collect();
        assert_eq!(recs.len(), 2);
        assert!(recs.iter().all(|x| &x[2] == "1"));
        assert_eq!(&recs[0][18], "line1\nline2 0");
        assert!(!recs[0][17].contains("sk-live"));
        // The KNN demos the first call got, as JSON; none on the other.
        assert_eq!(&r.headers().unwrap()[19], "selected_demos");
        let demos: serde_json::Value = serde_json::from_str(&recs[0][19]).unwrap();
        assert_eq!(demos[0]["example_id"], 17);
        assert_eq!(&recs[1][19], "");
    }
}
