//! Reports, comparisons, alias history, diffs and trace export over HTTP:
//! `GET /api/v1/runs/{id}/report`, `POST /api/v1/programs/{name}/compare`,
//! `GET /api/v1/programs/{name}/comparisons`, `GET /api/v1/comparisons/{id}`
//! and its report, `GET /api/v1/programs/{name}/aliases`,
//! `GET /api/v1/programs/{name}/diff/{v1}/{v2}`, and
//! `GET /api/v1/traces/export` (streamed: rows go from the SQLite cursor to
//! the socket through a bounded channel, in constant memory).

use super::{blocking, AppState};
use crate::compare::{Comparison, StatSettings};
use crate::data::Part;
use crate::jobs::{run_compare, CompareRequest};
use crate::report::comparison::render_comparison;
use crate::report::redact::Redactor;
use crate::report::traces::{export_traces, parse_since, TraceFormat};
use crate::report::{build_run_report, render, Format};
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::store::TraceFilter;
use axum::body::Body;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

/// `?format=md|html|json|csv` (default json).
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct FormatParam {
    /// md | html | json | csv
    pub format: Option<String>,
}

impl FormatParam {
    fn get(&self) -> ApiResult<Format> {
        Format::parse(self.format.as_deref().unwrap_or("json"))
            .map_err(|e| ApiError::unprocessable(format!("parameter `format`: {e}")))
    }
}

fn content_type(f: Format) -> &'static str {
    match f {
        Format::Json => "application/json",
        Format::Markdown => "text/markdown; charset=utf-8",
        Format::Html => "text/html; charset=utf-8",
        Format::Csv => "text/csv; charset=utf-8",
    }
}

fn document(f: Format, bytes: Vec<u8>) -> Response {
    ([(header::CONTENT_TYPE, content_type(f))], bytes).into_response()
}

#[utoipa::path(get, path = "/api/v1/runs/{id}/report", tag = "reports",
    params(("id" = i64, Path, description = "The run"), FormatParam),
    responses(
        (status = 200, description = "The run report in the asked format", content((String = "text/markdown"), (String = "text/html"), (Object = "application/json"), (String = "text/csv"))),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 422, description = "Unknown format", body = ErrorBody),
    ))]
pub async fn run_report(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<FormatParam>,
) -> ApiResult<Response> {
    let format = q.get()?;
    blocking(move || {
        let report = build_run_report(&*st.ctx.reader()?, id)?;
        let mut out = Vec::new();
        render(&report, format, &mut out)?;
        Ok(document(format, out))
    })
    .await
}

/// `POST /api/v1/programs/{name}/compare`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareBody {
    /// Reference version (A).
    pub v1: i64,
    /// Challenger version (B); differences are B − A.
    pub v2: i64,
    /// A stored trainset (id, name or hash prefix).
    pub trainset: String,
    /// train | val | test (default) | all
    pub split: Option<String>,
    pub metric: Option<String>,
    /// Seed of the bootstrap (default 0).
    pub seed: Option<u64>,
    /// Bootstrap resamples (default 10000).
    #[schema(minimum = 1, maximum = 1000000)]
    pub resamples: Option<usize>,
    /// Confidence level of the interval (default 0.95).
    #[schema(exclusive_minimum = 0.0, exclusive_maximum = 1.0)]
    pub confidence: Option<f64>,
}

#[utoipa::path(post, path = "/api/v1/programs/{name}/compare", tag = "reports",
    params(("name" = String, Path, description = "The program")),
    request_body = CompareBody,
    responses(
        (status = 200, description = "The stored comparison", body = Object),
        (status = 404, description = "No such program, version or trainset", body = ErrorBody),
        (status = 422, description = "Bad split, seed settings or versions", body = ErrorBody),
    ))]
pub async fn compare(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<CompareBody>,
) -> ApiResult<Json<Value>> {
    let s = body.split.as_deref().unwrap_or("test");
    let split = Part::parse_or_all(s).map_err(|()| {
        ApiError::unprocessable(format!(
            "field `split`: `{s}` is not a split; expected train, val, test or all"
        ))
    })?;
    let defaults = StatSettings::default();
    let confidence = body.confidence.unwrap_or(defaults.confidence);
    if !(confidence > 0.0 && confidence < 1.0) {
        return Err(ApiError::unprocessable(format!(
            "field `confidence`: {confidence} is out of range; expected between 0 and 1"
        )));
    }
    let resamples = body.resamples.unwrap_or(defaults.resamples);
    if !(1..=1_000_000).contains(&resamples) {
        return Err(ApiError::unprocessable(format!(
            "field `resamples`: {resamples} is out of range; expected 1 to 1000000"
        )));
    }
    let req = CompareRequest {
        program: name,
        a: body.v1,
        b: body.v2,
        trainset: body.trainset,
        split,
        metric: body.metric,
        stats: StatSettings {
            confidence,
            resamples,
            seed: body.seed.unwrap_or(defaults.seed),
        },
        threads: 4,
        no_cache: false,
    };
    // A comparison may have to evaluate a version (LM calls): it runs on its
    // own runtime on a blocking thread, never on the handlers' workers.
    let ctx = st.ctx.clone();
    blocking(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                ApiError::new(axum::http::StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
            })?;
        let c = rt.block_on(run_compare(&ctx, req, None))?;
        Ok(Json(serde_json::to_value(c)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/programs/{name}/comparisons", tag = "reports",
    params(("name" = String, Path, description = "The program")),
    responses(
        (status = 200, description = "Stored comparisons of the program, newest first (headline numbers)", body = Vec<Object>),
        (status = 404, description = "No such program", body = ErrorBody),
    ))]
pub async fn comparisons(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let reader = st.ctx.reader()?;
        let program_id = reader.find_version(&name, None)?.program_id;
        let mut rows = reader.comparisons(program_id)?;
        for r in &mut rows {
            r.result_json.clear();
        }
        Ok(Json(serde_json::to_value(rows)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/comparisons/{id}", tag = "reports",
    params(("id" = i64, Path, description = "The comparison")),
    responses(
        (status = 200, description = "The comparison with every example", body = Object),
        (status = 404, description = "No such comparison", body = ErrorBody),
    ))]
pub async fn comparison(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let c = Comparison::from_row(&st.ctx.reader()?.comparison(id)?)?;
        Ok(Json(serde_json::to_value(c)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/comparisons/{id}/report", tag = "reports",
    params(("id" = i64, Path, description = "The comparison"), FormatParam),
    responses(
        (status = 200, description = "The comparison report in the asked format", content((String = "text/markdown"), (String = "text/html"), (Object = "application/json"), (String = "text/csv"))),
        (status = 404, description = "No such comparison", body = ErrorBody),
    ))]
pub async fn comparison_report(
    State(st): State<AppState>,
    ApiPath(id): ApiPath<i64>,
    ApiQuery(q): ApiQuery<FormatParam>,
) -> ApiResult<Response> {
    let format = q.get()?;
    blocking(move || {
        let c = Comparison::from_row(&st.ctx.reader()?.comparison(id)?)?;
        let mut out = Vec::new();
        render_comparison(&c, format, &mut out)?;
        Ok(document(format, out))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/programs/{name}/aliases", tag = "registry",
    params(("name" = String, Path, description = "The program")),
    responses((status = 200, description = "Every alias move, newest first, with reason and evidence", body = Vec<Object>)))]
pub async fn alias_history(
    State(st): State<AppState>,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let rows = crate::registry::history(&*st.ctx.reader()?, &name, None)?;
        Ok(Json(serde_json::to_value(rows)?))
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/programs/{name}/diff/{v1}/{v2}", tag = "registry",
    params(("name" = String, Path, description = "The program"),
           ("v1" = i64, Path, description = "Reference version"),
           ("v2" = i64, Path, description = "The other version")),
    responses(
        (status = 200, description = "Instructions, demos, other changes, scores and lineage of v2 against v1", body = Object),
        (status = 404, description = "No such program or version", body = ErrorBody),
    ))]
pub async fn diff(
    State(st): State<AppState>,
    ApiPath((name, v1, v2)): ApiPath<(String, i64, i64)>,
) -> ApiResult<Json<Value>> {
    blocking(move || {
        let d = crate::registry::diff_versions(&*st.ctx.reader()?, &name, v1, v2)?;
        Ok(Json(serde_json::to_value(d)?))
    })
    .await
}

/// `?run=&since=&format=` of the trace export.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct TraceParams {
    /// Only this run's traces.
    #[param(minimum = 1, maximum = 9007199254740991_i64)]
    pub run: Option<i64>,
    /// Only traces at or after this time (RFC 3339, or a date).
    pub since: Option<String>,
    /// jsonl (default) | csv
    pub format: Option<String>,
}

/// The largest id a JSON client can hold exactly (2^53 - 1).
const MAX_SAFE_ID: i64 = 9_007_199_254_740_991;

/// Bytes written by the export, sent on as body chunks.
struct ChannelWriter {
    tx: tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
    buf: Vec<u8>,
}

impl std::io::Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= 64 * 1024 {
            self.flush()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::take(&mut self.buf);
        // The client went away: stop reading the database.
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "client gone"))
    }
}

#[utoipa::path(get, path = "/api/v1/traces/export", tag = "reports",
    params(TraceParams),
    responses(
        (status = 200, description = "Traces as JSONL or CSV, secrets scrubbed, streamed", content((String = "application/x-ndjson"), (String = "text/csv"))),
        (status = 404, description = "No such run", body = ErrorBody),
        (status = 422, description = "Bad format or time", body = ErrorBody),
    ))]
pub async fn export(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<TraceParams>,
) -> ApiResult<Response> {
    let format = TraceFormat::parse(q.format.as_deref().unwrap_or("jsonl"))
        .map_err(|e| ApiError::unprocessable(format!("parameter `format`: {e}")))?;
    let since = q
        .since
        .as_deref()
        .map(parse_since)
        .transpose()
        .map_err(|e| ApiError::unprocessable(format!("parameter `since`: {e}")))?;
    if let Some(id) = q.run {
        if !(1..=MAX_SAFE_ID).contains(&id) {
            return Err(ApiError::unprocessable(format!(
                "parameter `run`: {id} is out of range; expected 1 to {MAX_SAFE_ID}"
            )));
        }
    }
    let reader = st.ctx.reader()?;
    if let Some(id) = q.run {
        reader.run(id)?;
    }
    let filter = TraceFilter {
        run_id: q.run,
        since,
    };
    let (tx, rx) = tokio::sync::mpsc::channel(8);
    tokio::task::spawn_blocking(move || {
        let out = ChannelWriter {
            tx: tx.clone(),
            buf: Vec::new(),
        };
        if let Err(e) = export_traces(&reader, &filter, format, &Redactor::from_env(), out) {
            let _ = tx.blocking_send(Err(std::io::Error::other(e.to_string())));
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(rx);
    let ct = match format {
        TraceFormat::Jsonl => "application/x-ndjson",
        TraceFormat::Csv => "text/csv; charset=utf-8",
    };
    Ok(([(header::CONTENT_TYPE, ct)], Body::from_stream(stream)).into_response())
}
