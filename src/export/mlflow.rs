//! Pushes runs to an MLflow tracking server over its REST API, so a team
//! that shares one server sees every machine's optimizations.
//!
//! Each optimize or eval run becomes an MLflow run: params (program,
//! trainset and its hash, seed, the optimizer config flattened, the LM roles
//! the run's traces used — never secrets), a metric series with one step per
//! trial (every full validation score, and the best so far), final metrics
//! (baseline, best, test, LM calls, tokens, cost, cache hit rate), tags
//! (status, version ids, lineage) and artifacts (the best program's spec and
//! a summary, the run report in HTML and JSON). Candidates become nested runs (`mlflow.parentRunId`), as
//! MLflow's own DSPy integration nests its evaluations.
//!
//! Idempotent: `mlflow_exports` records, per tracking server and object,
//! the MLflow run id and how far the export got (params sent, trial steps
//! sent, finished). It is updated after every batch MLflow accepted, so an
//! export that fails midway is completed by the next one, and a finished
//! run is not sent twice. A run created in MLflow whose mapping row was lost
//! (a crash between the two) is found again by its `skill_fleet.run_id` tag.

use crate::error::{Error, Result};
use crate::store::{epoch_ms, ExportMapping, RunRow, Status, Store};
use serde_json::{json, Value};
use std::path::Path;
use std::time::Duration;

/// MLflow's per-request limits for `runs/log-batch`.
pub const MAX_METRICS_PER_BATCH: usize = 1000;
pub const MAX_PARAMS_PER_BATCH: usize = 100;
pub const MAX_TAGS_PER_BATCH: usize = 100;
/// Longest param value MLflow accepts (6000 characters since MLflow 2.x).
pub const MAX_PARAM_LEN: usize = 6000;

/// A REST client for one tracking server, with retries on 429 and 5xx.
pub struct MlflowClient {
    http: reqwest::Client,
    base: String,
    /// Attempts per request (the first one included).
    pub attempts: u32,
    /// Delay before the first retry; doubled after each.
    pub base_delay: Duration,
}

impl MlflowClient {
    pub fn new(tracking_uri: &str) -> Result<Self> {
        let base = tracking_uri.trim_end_matches('/').to_string();
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(Error::Invalid(format!(
                "--tracking-uri `{tracking_uri}`: expected an http:// or https:// URL of an MLflow tracking server"
            )));
        }
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| Error::Mlflow(e.to_string()))?;
        Ok(MlflowClient {
            http,
            base,
            attempts: 5,
            base_delay: Duration::from_millis(250),
        })
    }

    /// Sends a request built by `make`, retrying on 429, 5xx and connection
    /// errors with exponential backoff. Returns the status and JSON body.
    async fn send(
        &self,
        what: &str,
        make: impl Fn() -> reqwest::RequestBuilder,
    ) -> Result<(u16, Value)> {
        let mut delay = self.base_delay;
        let mut last = String::new();
        for attempt in 0..self.attempts.max(1) {
            if attempt > 0 {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
            match make().send().await {
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let text = resp.text().await.unwrap_or_default();
                    if status == 429 || status >= 500 {
                        last = format!(
                            "{what}: HTTP {status}: {}",
                            text.chars().take(300).collect::<String>()
                        );
                        continue;
                    }
                    let body = if text.trim().is_empty() {
                        Value::Null
                    } else {
                        serde_json::from_str(&text).unwrap_or(Value::String(text))
                    };
                    return Ok((status, body));
                }
                Err(e) => last = format!("{what}: {e}"),
            }
        }
        Err(Error::Mlflow(format!(
            "{last} (gave up after {} attempts)",
            self.attempts.max(1)
        )))
    }

    /// POSTs JSON to a REST endpoint; an error status is an error.
    pub async fn post(&self, endpoint: &str, body: &Value) -> Result<Value> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        let (status, v) = self
            .send(endpoint, || self.http.post(&url).json(body))
            .await?;
        ok_or_error(endpoint, status, v)
    }

    /// GETs a REST endpoint; returns the status too (404 is an answer).
    pub async fn get(&self, endpoint: &str, query: &[(&str, &str)]) -> Result<(u16, Value)> {
        let url = format!("{}/api/2.0/mlflow/{endpoint}", self.base);
        self.send(endpoint, || self.http.get(&url).query(query))
            .await
    }

    /// Uploads one artifact file through the server's artifact proxy.
    pub async fn put_artifact(&self, artifact_uri: &str, name: &str, bytes: Vec<u8>) -> Result<()> {
        let Some(rest) = proxy_path(artifact_uri) else {
            return Err(Error::Mlflow(format!(
                "the run's artifact location `{artifact_uri}` is not served by the tracking server \
                 (start it with --serve-artifacts, MLflow's default)"
            )));
        };
        let url = format!(
            "{}/api/2.0/mlflow-artifacts/artifacts/{rest}/{name}",
            self.base
        );
        let (status, v) = self
            .send("artifact upload", || {
                self.http.put(&url).body(bytes.clone())
            })
            .await?;
        ok_or_error("artifact upload", status, v).map(|_| ())
    }
}

/// The path under the artifact proxy of an `mlflow-artifacts:` location
/// (`mlflow-artifacts:/1/RUN/artifacts` or `mlflow-artifacts://host:port/1/RUN/artifacts`).
fn proxy_path(artifact_uri: &str) -> Option<String> {
    let rest = artifact_uri.strip_prefix("mlflow-artifacts:")?;
    let rest = match rest.strip_prefix("//") {
        Some(with_host) => with_host.split_once('/').map(|(_, p)| p)?,
        None => rest.trim_start_matches('/'),
    };
    Some(rest.trim_end_matches('/').to_string())
}

fn ok_or_error(what: &str, status: u16, v: Value) -> Result<Value> {
    if (200..300).contains(&status) {
        Ok(v)
    } else {
        let msg = v
            .get("message")
            .and_then(Value::as_str)
            .map(str::to_string)
            .unwrap_or_else(|| v.to_string());
        Err(Error::Mlflow(format!("{what}: HTTP {status}: {msg}")))
    }
}

/// Which runs to export.
#[derive(Debug, Clone)]
pub enum Selection {
    One(i64),
    /// Every optimize and eval run, optionally started at or after a time.
    All {
        since: Option<String>,
    },
}

/// What one export did for one run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct RunExport {
    pub run_id: i64,
    pub mlflow_run_id: String,
    /// The MLflow run was created by this export (not found from before).
    pub created: bool,
    pub params_sent: usize,
    pub steps_sent: usize,
    pub candidates_created: usize,
    pub artifacts_sent: usize,
    /// The run was already exported in full: nothing was sent.
    pub up_to_date: bool,
}

/// What an export did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ExportSummary {
    pub tracking_uri: String,
    pub experiment: String,
    pub experiment_id: String,
    pub runs: Vec<RunExport>,
}

/// Exports the selected runs of the database at `db` to the tracking server.
pub async fn export(
    db: &Path,
    tracking_uri: &str,
    experiment: &str,
    selection: &Selection,
) -> Result<ExportSummary> {
    let client = MlflowClient::new(tracking_uri)?;
    export_with(&client, db, tracking_uri, experiment, selection).await
}

/// [`export`] with a given client (tests shorten its retries).
pub async fn export_with(
    client: &MlflowClient,
    db: &Path,
    tracking_uri: &str,
    experiment: &str,
    selection: &Selection,
) -> Result<ExportSummary> {
    let store = Store::open(db)?;
    let experiment_id = experiment_id(client, experiment).await?;
    let ids = match selection {
        Selection::One(id) => vec![store.run(*id)?.id],
        Selection::All { since } => store.exportable_runs(since.as_deref())?,
    };
    let mut runs = Vec::new();
    for id in ids {
        let run = store.run(id)?;
        runs.push(export_run(client, &store, tracking_uri, &experiment_id, &run).await?);
    }
    Ok(ExportSummary {
        tracking_uri: tracking_uri.to_string(),
        experiment: experiment.to_string(),
        experiment_id,
        runs,
    })
}

/// The id of experiment `name`, created if missing.
async fn experiment_id(client: &MlflowClient, name: &str) -> Result<String> {
    let (status, v) = client
        .get("experiments/get-by-name", &[("experiment_name", name)])
        .await?;
    if status == 200 {
        if let Some(id) = v["experiment"]["experiment_id"].as_str() {
            return Ok(id.to_string());
        }
    }
    let created = client
        .post("experiments/create", &json!({ "name": name }))
        .await?;
    created["experiment_id"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Mlflow(format!("experiments/create answered {created}")))
}

fn tag(key: &str, value: impl ToString) -> Value {
    json!({"key": key, "value": value.to_string()})
}

fn metric(key: &str, value: f64, at_ms: i64, step: i64) -> Value {
    json!({"key": key, "value": value, "timestamp": at_ms, "step": step})
}

/// Flattens a JSON object into dotted keys (`optimizer.fewshot.max_labeled_demos`).
fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Null => {}
        Value::String(s) => out.push((prefix.to_string(), s.clone())),
        other => out.push((prefix.to_string(), other.to_string())),
    }
}

/// The params of a run (names and values MLflow accepts; never secrets:
/// the request holds none, and LM roles are named by provider and model).
fn run_params(store: &Store, run: &RunRow) -> Result<Vec<(String, String)>> {
    let mut params = vec![("skill_fleet.kind".to_string(), run.kind.to_string())];
    let config: Value = serde_json::from_str(&run.config_json).unwrap_or(Value::Null);
    flatten("", &config, &mut params);
    if let Some(t) = run.trainset_id {
        if let Ok(ts) = store.find_trainset(&t.to_string()) {
            params.push(("trainset.name".into(), ts.name));
            params.push(("trainset.hash".into(), ts.content_hash));
        }
    }
    if let Some(seed) = run.seed {
        params.push(("seed".into(), seed.to_string()));
    }
    if let Some(o) = &run.optimizer {
        params.push(("optimizer.name".into(), o.clone()));
    }
    for r in store.run_lm_roles(run.id)? {
        let role = r.role.unwrap_or_else(|| "unnamed".into());
        params.push((format!("lm.{role}"), format!("{}:{}", r.provider, r.model)));
    }
    let mut seen = std::collections::HashSet::new();
    params.retain(|(k, _)| seen.insert(k.clone()));
    for (k, v) in params.iter_mut() {
        if k.chars()
            .any(|c| !(c.is_ascii_alphanumeric() || "_-./ ".contains(c)))
        {
            *k = k.replace(
                |c: char| !(c.is_ascii_alphanumeric() || "_-./ ".contains(c)),
                "_",
            );
        }
        if v.chars().count() > MAX_PARAM_LEN {
            *v = v.chars().take(MAX_PARAM_LEN).collect();
        }
    }
    Ok(params)
}

fn mlflow_status(s: Status) -> &'static str {
    match s {
        Status::Completed => "FINISHED",
        Status::Failed => "FAILED",
        Status::Cancelled | Status::Interrupted => "KILLED",
        Status::Pending | Status::Running => "RUNNING",
    }
}

/// Finds an MLflow run tagged with our id (its mapping row lost), or creates one.
async fn find_or_create_run(
    client: &MlflowClient,
    experiment_id: &str,
    tag_key: &str,
    local_id: i64,
    name: &str,
    start_ms: i64,
    tags: Vec<Value>,
) -> Result<(String, bool)> {
    let found = client
        .post(
            "runs/search",
            &json!({
                "experiment_ids": [experiment_id],
                "filter": format!("tags.`{tag_key}` = '{local_id}'"),
                "max_results": 1
            }),
        )
        .await?;
    if let Some(id) = found["runs"][0]["info"]["run_id"].as_str() {
        return Ok((id.to_string(), false));
    }
    let mut all_tags = vec![tag(tag_key, local_id), tag("mlflow.runName", name)];
    all_tags.extend(tags);
    let created = client
        .post(
            "runs/create",
            &json!({"experiment_id": experiment_id, "start_time": start_ms, "run_name": name, "tags": all_tags}),
        )
        .await?;
    created["run"]["info"]["run_id"]
        .as_str()
        .map(|s| (s.to_string(), true))
        .ok_or_else(|| Error::Mlflow(format!("runs/create answered {created}")))
}

async fn log_batch(
    client: &MlflowClient,
    run_id: &str,
    metrics: &[Value],
    params: &[Value],
    tags: &[Value],
) -> Result<()> {
    if metrics.is_empty() && params.is_empty() && tags.is_empty() {
        return Ok(());
    }
    client
        .post(
            "runs/log-batch",
            &json!({"run_id": run_id, "metrics": metrics, "params": params, "tags": tags}),
        )
        .await
        .map(|_| ())
}

/// The mapping of `object` `local_id`: the stored one, or a new MLflow run
/// (or the one found by its tag) recorded at once. Returns whether this
/// call created the MLflow run.
#[allow(clippy::too_many_arguments)]
async fn mapped_run(
    client: &MlflowClient,
    store: &Store,
    uri: &str,
    experiment_id: &str,
    object: &str,
    local_id: i64,
    name: String,
    start_ms: i64,
    tags: Vec<Value>,
) -> Result<(ExportMapping, bool)> {
    if let Some(m) = store.mlflow_mapping(uri, object, local_id)? {
        if m.experiment_id == experiment_id {
            return Ok((m, false));
        }
    }
    let tag_key = format!("skill_fleet.{object}_id");
    let (id, created) = find_or_create_run(
        client,
        experiment_id,
        &tag_key,
        local_id,
        &name,
        start_ms,
        tags,
    )
    .await?;
    let m = ExportMapping {
        experiment_id: experiment_id.to_string(),
        mlflow_run_id: id,
        params_logged: false,
        steps_logged: 0,
        finished: false,
    };
    store.save_mlflow_mapping(uri, object, local_id, &m)?;
    Ok((m, created))
}

/// Exports one run (and, once it has finished, its candidates).
async fn export_run(
    client: &MlflowClient,
    store: &Store,
    uri: &str,
    experiment_id: &str,
    run: &RunRow,
) -> Result<RunExport> {
    let mut report = RunExport {
        run_id: run.id,
        ..Default::default()
    };
    let name = format!(
        "{} run {}{}",
        run.kind,
        run.id,
        run.optimizer
            .as_deref()
            .map(|o| format!(" ({o})"))
            .unwrap_or_default()
    );
    let (mut m, created) = mapped_run(
        client,
        store,
        uri,
        experiment_id,
        "run",
        run.id,
        name,
        epoch_ms(&run.started_at),
        vec![],
    )
    .await?;
    report.created = created;
    report.mlflow_run_id = m.mlflow_run_id.clone();
    let terminal = matches!(
        run.status,
        Status::Completed | Status::Failed | Status::Cancelled
    );
    if m.finished && terminal {
        report.up_to_date = true;
        return Ok(report);
    }
    let rid = m.mlflow_run_id.clone();
    if !m.params_logged {
        let params: Vec<Value> = run_params(store, run)?
            .into_iter()
            .map(|(k, v)| json!({"key": k, "value": v}))
            .collect();
        for chunk in params.chunks(MAX_PARAMS_PER_BATCH) {
            log_batch(client, &rid, &[], chunk, &[]).await?;
        }
        report.params_sent = params.len();
        m.params_logged = true;
        store.save_mlflow_mapping(uri, "run", run.id, &m)?;
    }
    // The trial series: one step per full validation evaluation.
    let trials = store.trial_scores(run.id)?;
    let mut best = f64::NEG_INFINITY;
    let mut series = Vec::new();
    for (step, t) in trials.iter().enumerate() {
        best = best.max(t.mean);
        if (step as i64) < m.steps_logged {
            continue;
        }
        series.push((
            step,
            [
                metric("trial_val_score", t.mean, t.at_ms, step as i64),
                metric("best_val_score_so_far", best, t.at_ms, step as i64),
            ],
        ));
    }
    for chunk in series.chunks(MAX_METRICS_PER_BATCH / 2) {
        let metrics: Vec<Value> = chunk.iter().flat_map(|(_, m)| m.clone()).collect();
        log_batch(client, &rid, &metrics, &[], &[]).await?;
        m.steps_logged = chunk
            .last()
            .map(|(s, _)| *s as i64 + 1)
            .unwrap_or(m.steps_logged);
        report.steps_sent += chunk.len();
        store.save_mlflow_mapping(uri, "run", run.id, &m)?;
    }
    if !run.status.is_finished() {
        return Ok(report);
    }
    report.candidates_created =
        export_candidates(client, store, uri, experiment_id, run, &rid).await?;
    let end_ms = run.finished_at.as_deref().map(epoch_ms).unwrap_or(0);
    if terminal {
        let totals = store.run_lm_totals(run.id)?;
        let mut metrics = Vec::new();
        for (k, v) in [
            ("baseline_score", run.baseline_score),
            ("best_val_score", run.best_score),
            ("test_score", run.test_score),
        ] {
            if let Some(v) = v {
                metrics.push(metric(k, v, end_ms, 0));
            }
        }
        metrics.push(metric("lm_calls", totals.calls as f64, end_ms, 0));
        metrics.push(metric(
            "prompt_tokens",
            totals.prompt_tokens as f64,
            end_ms,
            0,
        ));
        metrics.push(metric(
            "completion_tokens",
            totals.completion_tokens as f64,
            end_ms,
            0,
        ));
        metrics.push(metric("cost_usd", totals.cost_usd, end_ms, 0));
        let rate = if totals.calls > 0 {
            totals.cache_hits as f64 / totals.calls as f64
        } else {
            0.0
        };
        metrics.push(metric("cache_hit_rate", rate, end_ms, 0));
        let mut tags = vec![tag("skill_fleet.status", run.status)];
        if let Some(v) = run.base_version_id {
            tags.push(tag("skill_fleet.base_version_id", v));
        }
        let produced = produced_versions(store, run)?;
        if !produced.is_empty() {
            tags.push(tag(
                "skill_fleet.version_ids",
                produced
                    .iter()
                    .map(|(id, _)| id.to_string())
                    .collect::<Vec<_>>()
                    .join(","),
            ));
            let lineage: Vec<String> = produced
                .iter()
                .map(|(_, v)| {
                    format!(
                        "{}v{} <- {}",
                        v.program,
                        v.version,
                        v.parent_id
                            .map(|p| format!("version id {p}"))
                            .unwrap_or("(root)".into())
                    )
                })
                .collect();
            tags.push(tag("skill_fleet.lineage", lineage.join("; ")));
        }
        if let Some(e) = &run.error {
            tags.push(tag(
                "skill_fleet.error",
                e.chars().take(5000).collect::<String>(),
            ));
        }
        log_batch(client, &rid, &metrics, &[], &tags).await?;
        report.artifacts_sent = upload_artifacts(client, store, run, &rid).await?;
    }
    client
        .post(
            "runs/update",
            &json!({"run_id": rid, "status": mlflow_status(run.status), "end_time": end_ms}),
        )
        .await?;
    if terminal {
        m.finished = true;
        store.save_mlflow_mapping(uri, "run", run.id, &m)?;
    }
    Ok(report)
}

/// The versions a run stored, with their rows.
fn produced_versions(store: &Store, run: &RunRow) -> Result<Vec<(i64, crate::store::VersionRow)>> {
    let Some(pid) = run.program_id else {
        return Ok(Vec::new());
    };
    let Some(name) = store.program_name(pid)? else {
        return Ok(Vec::new());
    };
    Ok(store
        .list_versions(&name)?
        .into_iter()
        .filter(|v| v.run_id == Some(run.id))
        .map(|v| (v.id, v))
        .collect())
}

async fn upload_artifacts(
    client: &MlflowClient,
    store: &Store,
    run: &RunRow,
    mlflow_run_id: &str,
) -> Result<usize> {
    let (_, info) = client.get("runs/get", &[("run_id", mlflow_run_id)]).await?;
    let Some(uri) = info["run"]["info"]["artifact_uri"].as_str() else {
        return Err(Error::Mlflow(format!("runs/get answered {info}")));
    };
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    let summary = json!({
        "run": run,
        "trace_totals": store.run_lm_totals(run.id)?,
        "trials": store.trial_scores(run.id)?.iter().map(|t| json!({"candidate_id": t.candidate_id, "val_score": t.mean})).collect::<Vec<_>>(),
    });
    files.push((
        "run_summary.json".into(),
        serde_json::to_vec_pretty(&summary)?,
    ));
    if let Some(best) = run.best_candidate_id {
        if let Some(c) = store.candidates(run.id)?.into_iter().find(|c| c.id == best) {
            let spec: Value = serde_json::from_str(&c.spec_json)?;
            files.push((
                "best_program.json".into(),
                serde_json::to_vec_pretty(&spec)?,
            ));
        }
    }
    // The run's report, as `skill-fleet report RUN` writes it.
    let report = crate::report::build_run_report(store, run.id)?;
    for (name, format) in [
        ("report.html", crate::report::Format::Html),
        ("report.json", crate::report::Format::Json),
    ] {
        let mut bytes = Vec::new();
        crate::report::render(&report, format, &mut bytes)?;
        files.push((name.into(), bytes));
    }
    let n = files.len();
    for (name, bytes) in files {
        client.put_artifact(uri, &name, bytes).await?;
    }
    Ok(n)
}

/// Exports a finished run's candidates as nested runs; returns how many were created.
async fn export_candidates(
    client: &MlflowClient,
    store: &Store,
    uri: &str,
    experiment_id: &str,
    run: &RunRow,
    parent: &str,
) -> Result<usize> {
    let mut created_count = 0;
    for c in store.candidate_summaries(run.id)? {
        let name = format!(
            "run {} candidate {}{}",
            run.id,
            c.id,
            c.trial.map(|t| format!(" (trial {t})")).unwrap_or_default()
        );
        let (mut m, created) = mapped_run(
            client,
            store,
            uri,
            experiment_id,
            "candidate",
            c.id,
            name,
            epoch_ms(&c.created_at),
            vec![
                tag("mlflow.parentRunId", parent),
                tag("skill_fleet.parent_run_id", run.id),
            ],
        )
        .await?;
        created_count += usize::from(created);
        if m.finished {
            continue;
        }
        let at = epoch_ms(&c.created_at);
        let mut params = vec![json!({"key": "origin", "value": c.origin})];
        if let Some(t) = c.trial {
            params.push(json!({"key": "trial", "value": t.to_string()}));
        }
        params.push(json!({"key": "parent_candidate_ids", "value": c.parent_ids}));
        let mut metrics = Vec::new();
        if let Some(v) = c.val_score {
            metrics.push(metric("val_score", v, at, 0));
        }
        for (i, s) in c.minibatch_scores.iter().enumerate() {
            metrics.push(metric("minibatch_score", *s, at, i as i64));
        }
        let chunks: Vec<&[Value]> = if metrics.is_empty() {
            vec![&[]]
        } else {
            metrics.chunks(MAX_METRICS_PER_BATCH).collect()
        };
        for (i, chunk) in chunks.into_iter().enumerate() {
            let p: &[Value] = if i == 0 && !m.params_logged {
                &params
            } else {
                &[]
            };
            log_batch(client, &m.mlflow_run_id, chunk, p, &[]).await?;
        }
        m.params_logged = true;
        client
            .post(
                "runs/update",
                &json!({"run_id": m.mlflow_run_id, "status": "FINISHED", "end_time": at}),
            )
            .await?;
        m.finished = true;
        store.save_mlflow_mapping(uri, "candidate", c.id, &m)?;
    }
    Ok(created_count)
}

/// Streams one run to MLflow while it runs (`optimize --mlflow URL`): a
/// background thread with its own connection and runtime exports what is new
/// every `interval` and once more when finished. The optimization never
/// waits for MLflow; a server that is down or refuses only produces warnings
/// (each distinct one printed once), and the next export catches up.
pub struct Streamer {
    run_id: std::sync::Arc<std::sync::Mutex<Option<i64>>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    done: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Streamer {
    /// Starts the thread; the run is named later with [`Streamer::set_run`].
    pub fn start(
        db: &Path,
        tracking_uri: &str,
        experiment: &str,
        interval: Duration,
    ) -> Result<Streamer> {
        use std::sync::atomic::Ordering;
        let mut client = MlflowClient::new(tracking_uri)?;
        client.attempts = 2;
        let run_id = std::sync::Arc::new(std::sync::Mutex::new(None::<i64>));
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (tx, done) = std::sync::mpsc::channel();
        let (db, uri, experiment) = (
            db.to_path_buf(),
            tracking_uri.to_string(),
            experiment.to_string(),
        );
        let (run, flag) = (run_id.clone(), stop.clone());
        std::thread::Builder::new()
            .name("mlflow-export".into())
            .spawn(move || {
                let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                else {
                    eprintln!("warning: MLflow export: could not start its runtime");
                    return;
                };
                let mut last_warning = String::new();
                let mut export_once = |rt: &tokio::runtime::Runtime| {
                    let id = run.lock().ok().and_then(|g| *g);
                    if let Some(id) = id {
                        let r = rt.block_on(export_with(
                            &client,
                            &db,
                            &uri,
                            &experiment,
                            &Selection::One(id),
                        ));
                        if let Err(e) = r {
                            let text = e.to_string();
                            if text != last_warning {
                                eprintln!("warning: {text} (the optimization goes on)");
                                last_warning = text;
                            }
                        }
                    }
                };
                loop {
                    let started = std::time::Instant::now();
                    while started.elapsed() < interval && !flag.load(Ordering::SeqCst) {
                        std::thread::sleep(Duration::from_millis(50));
                    }
                    if flag.load(Ordering::SeqCst) {
                        break;
                    }
                    export_once(&rt);
                }
                export_once(&rt);
                let _ = tx.send(());
            })
            .map_err(|e| Error::Mlflow(format!("starting the export thread: {e}")))?;
        Ok(Streamer {
            run_id,
            stop,
            done: std::sync::Mutex::new(done),
        })
    }

    /// Names the run to stream (once the run row exists).
    pub fn set_run(&self, id: i64) {
        if let Ok(mut g) = self.run_id.lock() {
            *g = Some(id);
        }
    }

    /// Makes the final export, waiting at most `wait` for it; returns
    /// whether it finished in time.
    pub fn finish(&self, wait: Duration) -> bool {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        self.done
            .lock()
            .map(|rx| rx.recv_timeout(wait).is_ok())
            .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn artifact_locations_map_to_proxy_paths() {
        assert_eq!(
            proxy_path("mlflow-artifacts:/1/abc/artifacts").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(
            proxy_path("mlflow-artifacts://127.0.0.1:5000/1/abc/artifacts/").as_deref(),
            Some("1/abc/artifacts")
        );
        assert_eq!(proxy_path("/tmp/mlruns/1/abc/artifacts"), None);
    }

    #[test]
    fn nested_config_flattens_to_dotted_params() {
        let mut out = Vec::new();
        flatten(
            "",
            &json!({"optimizer": {"kind": "miprov2", "fewshot": {"max_labeled_demos": 4}}, "seed": 7, "promote": null}),
            &mut out,
        );
        assert_eq!(
            out,
            vec![
                ("optimizer.kind".to_string(), "miprov2".to_string()),
                (
                    "optimizer.fewshot.max_labeled_demos".to_string(),
                    "4".to_string()
                ),
                ("seed".to_string(), "7".to_string()),
            ]
        );
    }
}
