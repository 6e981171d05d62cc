//! `/metrics` in the Prometheus (OpenMetrics) text format: jobs by state and
//! LM calls / cache hits, read from the database at scrape time so they
//! count every process's work, and a request-latency histogram per route
//! and method, recorded by the [`track`] middleware.

use crate::error::Result;
use crate::store::Store;
use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use std::sync::Arc;
use std::time::Instant;

/// The content type of the exposition.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    method: String,
    /// The route pattern (`/api/v1/runs/{id}`), never the raw path, so the
    /// number of series stays bounded.
    route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    state: String,
}

type HistogramFamily = Family<RouteLabels, Histogram, fn() -> Histogram>;

/// The server's metrics registry.
pub struct Metrics {
    registry: Registry,
    latency: HistogramFamily,
    jobs: Family<StateLabels, Gauge>,
    lm_calls: Gauge,
    cache_hits: Gauge,
}

fn latency_histogram() -> Histogram {
    // 1 ms .. ~33 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 16))
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::with_prefix("skill_fleet");
        let latency: HistogramFamily = Family::new_with_constructor(latency_histogram);
        let jobs = Family::<StateLabels, Gauge>::default();
        let (lm_calls, cache_hits) = (Gauge::default(), Gauge::default());
        registry.register(
            "http_request_duration_seconds",
            "HTTP request latency by route",
            latency.clone(),
        );
        registry.register("jobs", "Jobs by state", jobs.clone());
        registry.register(
            "lm_calls",
            "LM calls traced in the database",
            lm_calls.clone(),
        );
        registry.register(
            "lm_cache_hits",
            "LM calls answered from the cache",
            cache_hits.clone(),
        );
        Arc::new(Metrics {
            registry,
            latency,
            jobs,
            lm_calls,
            cache_hits,
        })
    }

    /// The exposition text, with the stored counts read now.
    pub fn render(&self, reader: &Store) -> Result<String> {
        for (status, n) in reader.job_counts()? {
            self.jobs
                .get_or_create(&StateLabels {
                    state: status.to_string(),
                })
                .set(n);
        }
        let (calls, hits) = reader.trace_totals()?;
        self.lm_calls.set(calls);
        self.cache_hits.set(hits);
        let mut out = String::new();
        prometheus_client::encoding::text::encode(&mut out, &self.registry)
            .map_err(|e| crate::error::Error::Invalid(format!("encoding metrics: {e}")))?;
        Ok(out)
    }
}

/// Middleware recording each request's latency under its route pattern.
pub async fn track(State(metrics): State<Arc<Metrics>>, req: Request, next: Next) -> Response {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let method = req.method().to_string();
    let started = Instant::now();
    let resp = next.run(req).await;
    metrics
        .latency
        .get_or_create(&RouteLabels { method, route })
        .observe(started.elapsed().as_secs_f64());
    resp
}
