//! `/api/v1/optimization/...`: start an optimization job, watch it (status,
//! server-sent events), list jobs and optimizers, cancel and resume. The
//! handlers check the request's shape and ranges, then hand over to
//! `jobs::OptimizeParams` (shared with the CLI) and the job manager.

use super::{blocking, checked_program, AppState};
use crate::jobs::OptimizeParams;
use crate::lm::budget::BudgetLimits;
use crate::optimize::{Auto, OptimizerConfig, OptimizerInfo, Overrides};
use crate::program::ProgramRef;
use crate::server::error::{ApiError, ApiJson, ApiPath, ApiQuery, ApiResult, ErrorBody};
use crate::server::jobs::{final_event, JobStatus};
use crate::server::security::resolve_in_data_dir;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::Json;
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};

/// A stored trainset by id or name.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum TrainsetKey {
    Id(i64),
    Name(String),
}

/// Budget limits of a job; the run stops (resumably) when one is reached.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BudgetBody {
    /// LM calls at most.
    #[schema(minimum = 1)]
    pub max_calls: Option<u64>,
    /// Tokens at most.
    #[schema(minimum = 1)]
    pub max_tokens: Option<u64>,
    /// Cost in USD at most.
    #[schema(exclusive_minimum = 0.0)]
    pub max_cost: Option<f64>,
    /// Wall time in minutes at most.
    #[schema(exclusive_minimum = 0.0, maximum = 10080.0)]
    pub max_minutes: Option<f64>,
}

/// `POST /api/v1/optimization/start`. Unknown fields are refused.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct StartRequest {
    /// A registered program's name, or a spec file inside the data directory.
    pub program: String,
    /// Start from this version of the program (default: its newest).
    pub version: Option<i64>,
    /// Start from the version this alias names.
    pub alias: Option<String>,
    /// labeled | bootstrap | random-search | miprov2 | gepa (default bootstrap).
    pub optimizer: Option<String>,
    /// A trainset file, relative to the server's data directory.
    pub trainset_file: Option<String>,
    /// A stored trainset's id or name.
    pub trainset_id: Option<TrainsetKey>,
    pub auto: Option<Auto>,
    pub seed: Option<u64>,
    #[schema(minimum = 0, maximum = 64)]
    pub max_bootstrapped_demos: Option<usize>,
    #[schema(minimum = 0, maximum = 256)]
    pub max_labeled_demos: Option<usize>,
    #[schema(minimum = 0.0, maximum = 1.0)]
    pub metric_threshold: Option<f64>,
    #[schema(minimum = 0, maximum = 1000)]
    pub num_candidates: Option<usize>,
    #[schema(minimum = 1, maximum = 10000)]
    pub num_trials: Option<usize>,
    #[schema(minimum = 1, maximum = 1000000)]
    pub max_metric_calls: Option<usize>,
    /// KNN's retriever: `bm25` (default) or `embedding`.
    pub retriever: Option<crate::program::knn::Retriever>,
    /// Parallel program runs (default 4).
    #[schema(minimum = 1, maximum = 64)]
    pub threads: Option<usize>,
    pub metric: Option<String>,
    pub budget: Option<BudgetBody>,
    /// Point this alias at the optimized version.
    pub promote: Option<String>,
}

/// A range check: `field` must lie in `lo..=hi`.
fn in_range<T: PartialOrd + std::fmt::Display + Copy>(
    field: &str,
    value: Option<T>,
    lo: T,
    hi: T,
) -> ApiResult<()> {
    match value {
        Some(v) if !(lo <= v && v <= hi) => Err(ApiError::unprocessable(format!(
            "field `{field}`: {v} is out of range; expected {lo} to {hi}"
        ))),
        _ => Ok(()),
    }
}

/// A positive, finite number no larger than `hi`.
fn positive(field: &str, value: Option<f64>, hi: f64) -> ApiResult<()> {
    match value {
        Some(v) if !(v.is_finite() && v > 0.0 && v <= hi) => Err(ApiError::unprocessable(format!(
            "field `{field}`: {v} is out of range; expected more than 0 and at most {hi}"
        ))),
        _ => Ok(()),
    }
}

impl StartRequest {
    /// The ranges serde cannot check.
    fn check_ranges(&self) -> ApiResult<()> {
        in_range("max_bootstrapped_demos", self.max_bootstrapped_demos, 0, 64)?;
        in_range("max_labeled_demos", self.max_labeled_demos, 0, 256)?;
        in_range("metric_threshold", self.metric_threshold, 0.0, 1.0)?;
        in_range("num_candidates", self.num_candidates, 0, 1000)?;
        in_range("num_trials", self.num_trials, 1, 10_000)?;
        in_range("max_metric_calls", self.max_metric_calls, 1, 1_000_000)?;
        in_range("threads", self.threads, 1, 64)?;
        if let Some(b) = &self.budget {
            in_range("budget.max_calls", b.max_calls, 1, u64::MAX)?;
            in_range("budget.max_tokens", b.max_tokens, 1, u64::MAX)?;
            positive("budget.max_cost", b.max_cost, 1e9)?;
            positive("budget.max_minutes", b.max_minutes, 10_080.0)?;
        }
        Ok(())
    }
}

/// The answer to a start: the job, queued.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct StartResponse {
    pub job_id: i64,
    pub status: String,
}

#[utoipa::path(post, path = "/api/v1/optimization/start", tag = "optimization",
    request_body = StartRequest,
    responses(
        (status = 202, description = "The job is queued", body = StartResponse),
        (status = 400, description = "A path outside the data directory", body = ErrorBody),
        (status = 404, description = "No such program, trainset or trainset file", body = ErrorBody),
        (status = 422, description = "An unknown field or a value out of range", body = ErrorBody),
    ))]
pub async fn start(
    State(st): State<AppState>,
    ApiJson(body): ApiJson<StartRequest>,
) -> ApiResult<(StatusCode, Json<StartResponse>)> {
    body.check_ranges()?;
    let trainset = match (&body.trainset_file, &body.trainset_id) {
        (Some(file), None) => resolve_in_data_dir(&st.data_dir, "trainset_file", file)?
            .to_string_lossy()
            .into_owned(),
        (None, Some(key)) => {
            let key = match key {
                TrainsetKey::Id(id) => id.to_string(),
                TrainsetKey::Name(name) => name.clone(),
            };
            let st2 = st.clone();
            blocking(move || Ok(st2.ctx.reader()?.find_trainset(&key)?.id.to_string())).await?
        }
        _ => {
            return Err(ApiError::unprocessable(
                "give exactly one of `trainset_file` and `trainset_id`",
            ))
        }
    };
    let program = ProgramRef {
        program: checked_program(&st, &body.program)?,
        version: body.version,
        alias: body.alias.clone(),
    };
    let mut params = OptimizeParams::new(
        program,
        &trainset,
        body.optimizer.as_deref().unwrap_or("bootstrap"),
    );
    params.overrides = Overrides {
        auto: body.auto,
        max_bootstrapped_demos: body.max_bootstrapped_demos,
        max_labeled_demos: body.max_labeled_demos,
        metric_threshold: body.metric_threshold,
        num_candidates: body.num_candidates,
        num_trials: body.num_trials,
        max_metric_calls: body.max_metric_calls,
        retriever: body.retriever,
    };
    let budget = body.budget.unwrap_or_default();
    let req = &mut params.request;
    req.limits = BudgetLimits {
        max_calls: budget.max_calls,
        max_tokens: budget.max_tokens,
        max_cost_usd: budget.max_cost,
    };
    req.max_minutes = budget.max_minutes;
    req.seed = body.seed.unwrap_or(req.seed);
    req.threads = body.threads.unwrap_or(req.threads);
    req.metric = body.metric;
    req.promote = body.promote;
    let (req, _) = params.into_request(&st.ctx)?;
    let jobs = st.jobs.clone();
    let job_id = blocking(move || Ok(jobs.submit(&req)?)).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(StartResponse {
            job_id,
            status: "pending".into(),
        }),
    ))
}

/// The job's status as the API shows it.
async fn job_status(st: &AppState, id: i64) -> ApiResult<JobStatus> {
    let st = st.clone();
    blocking(move || {
        let reader = st.ctx.reader()?;
        let row = reader.job(id)?;
        Ok(st.jobs.status(&reader, row)?)
    })
    .await
}

#[utoipa::path(get, path = "/api/v1/optimization/status/{job_id}", tag = "optimization",
    params(("job_id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "The job's state, progress and result", body = JobStatus),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn status(
    State(st): State<AppState>,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Json<JobStatus>> {
    Ok(Json(job_status(&st, job_id).await?))
}

#[utoipa::path(get, path = "/api/v1/optimization/status/{job_id}/events", tag = "optimization",
    params(("job_id" = i64, Path, description = "The job")),
    responses(
        (status = 200, description = "Server-sent events: a `status` snapshot, every progress event \
            (`progress`, `scored`, `new_best`, `run_started`) as JSON in `data:`, and a final `job_finished`",
            content_type = "text/event-stream", body = String),
        (status = 404, description = "No such job", body = ErrorBody),
    ))]
pub async fn events(
    State(st): State<AppState>,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<Sse<impl Stream<Item = Result<SseEvent, Infallible>>>> {
    // Subscribed before the row is read: an event sent in between is kept.
    let live = st.jobs.subscribe(job_id);
    let snapshot = job_status(&st, job_id).await?;
    let (tx, rx) = tokio::sync::mpsc::channel::<String>(64);
    let first = serde_json::json!({"event": "status", "job": snapshot}).to_string();
    tokio::spawn(async move {
        if tx.send(first).await.is_err() {
            return;
        }
        let Some(mut live) = live else {
            // Not live: the stored row is final.
            let end = final_event(
                snapshot.job_id,
                snapshot.status,
                snapshot.result,
                snapshot.error,
            );
            let _ = tx.send(end).await;
            return;
        };
        loop {
            match live.recv().await {
                Ok(json) => {
                    let last = json.contains("\"event\":\"job_finished\"");
                    if tx.send(json).await.is_err() || last {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
            }
        }
    });
    let stream = ReceiverStream::new(rx).map(|json| Ok(SseEvent::default().data(json)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

#[utoipa::path(get, path = "/api/v1/optimization/optimizers", tag = "optimization",
    responses((status = 200, description = "Every optimizer with its parameters (JSON schema: types, \
        ranges) and defaults", body = Vec<OptimizerInfo>)))]
pub async fn optimizers() -> ApiResult<Json<Vec<OptimizerInfo>>> {
    Ok(Json(OptimizerConfig::describe_all()?))
}

/// `?limit=N` of a listing.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Limit {
    /// Rows at most (default 50, at most 1000).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
}

impl Limit {
    pub fn get(&self) -> ApiResult<i64> {
        let n = self.limit.unwrap_or(50);
        in_range("limit", Some(n), 1, 1000)?;
        Ok(n)
    }
}

#[utoipa::path(get, path = "/api/v1/optimization/jobs", tag = "optimization",
    params(Limit),
    responses((status = 200, description = "Jobs, newest first", body = Vec<JobStatus>)))]
pub async fn list_jobs(
    State(st): State<AppState>,
    ApiQuery(limit): ApiQuery<Limit>,
) -> ApiResult<Json<Vec<JobStatus>>> {
    let limit = limit.get()?;
    blocking(move || {
        let reader = st.ctx.reader()?;
        let rows = reader.list_jobs(limit)?;
        let all = rows
            .into_iter()
            .map(|row| st.jobs.status(&reader, row))
            .collect::<crate::Result<Vec<_>>>()?;
        Ok(Json(all))
    })
    .await
}

#[utoipa::path(post, path = "/api/v1/optimization/jobs/{job_id}/cancel", tag = "optimization",
    params(("job_id" = i64, Path, description = "The job")),
    responses(
        (status = 202, description = "Cancelled (pending) or stopping after its current step (running)", body = JobStatus),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job has already ended", body = ErrorBody),
    ))]
pub async fn cancel(
    State(st): State<AppState>,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<JobStatus>)> {
    let jobs = st.jobs.clone();
    blocking(move || Ok(jobs.cancel(job_id)?)).await?;
    Ok((StatusCode::ACCEPTED, Json(job_status(&st, job_id).await?)))
}

#[utoipa::path(post, path = "/api/v1/optimization/jobs/{job_id}/resume", tag = "optimization",
    params(("job_id" = i64, Path, description = "The job")),
    responses(
        (status = 202, description = "Queued to continue its stored run", body = JobStatus),
        (status = 404, description = "No such job", body = ErrorBody),
        (status = 409, description = "The job is not interrupted", body = ErrorBody),
    ))]
pub async fn resume(
    State(st): State<AppState>,
    ApiPath(job_id): ApiPath<i64>,
) -> ApiResult<(StatusCode, Json<JobStatus>)> {
    let jobs = st.jobs.clone();
    blocking(move || Ok(jobs.resume(job_id)?)).await?;
    Ok((StatusCode::ACCEPTED, Json(job_status(&st, job_id).await?)))
}
