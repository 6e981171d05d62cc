//! Issue 17: `skill-fleet serve`, the HTTP API, driven through the real
//! binary with reqwest: optimization jobs (start, status, server-sent
//! events, cancel, resume after a SIGKILL), path and token security, request
//! validation, the registry and predict routes, metrics and the OpenAPI
//! document. Models are the loopback stub LM, except one real-model test.

use crate::util::*;
use reqwest::blocking::{Client, Response};
use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running `skill-fleet serve`; killed (SIGKILL) when dropped.
pub(crate) struct Server {
    child: Child,
    pub(crate) base: String,
    pub(crate) client: Client,
    /// How long `wait_for` waits.
    pub(crate) patience: Duration,
}

impl Server {
    /// Starts the binary on `db` with `config`, `--data-dir data`, port 0,
    /// and `extra` flags; `token` goes into SKILL_FLEET_TOKEN.
    pub(crate) fn start(
        db: &Path,
        config: &Path,
        data: &Path,
        extra: &[&str],
        token: Option<&str>,
    ) -> Server {
        let mut cmd = Self::command(db, config, data, extra, token);
        let mut child = cmd.spawn().expect("the server starts");
        let mut line = String::new();
        let stdout = child.stdout.take().expect("piped stdout");
        BufReader::new(stdout)
            .read_line(&mut line)
            .expect("the server prints its address");
        let Some(addr) = line.trim().strip_prefix("listening on ") else {
            let out = child.wait_with_output().expect("the server ended");
            panic!(
                "no address printed (`{line}`): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        // 0.0.0.0 is reached through loopback.
        let base = addr.replace("0.0.0.0", "127.0.0.1");
        Server {
            child,
            base,
            client: Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .expect("a client"),
            patience: Duration::from_secs(120),
        }
    }

    fn command(
        db: &Path,
        config: &Path,
        data: &Path,
        extra: &[&str],
        token: Option<&str>,
    ) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_skill-fleet"));
        cmd.current_dir(root())
            .arg("--db")
            .arg(db)
            .arg("--config")
            .arg(config)
            .args(["serve", "--port", "0", "--data-dir"])
            .arg(data)
            .args(extra)
            .env_remove("SKILL_FLEET_TOKEN")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        if let Some(t) = token {
            cmd.env("SKILL_FLEET_TOKEN", t);
        }
        cmd
    }

    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub(crate) fn get(&self, path: &str) -> Response {
        self.client
            .get(self.url(path))
            .send()
            .expect("GET answered")
    }

    fn post(&self, path: &str, body: &Value) -> Response {
        self.client
            .post(self.url(path))
            .json(body)
            .send()
            .expect("POST answered")
    }

    /// GET, asserting 200; the JSON body.
    fn json(&self, path: &str) -> Value {
        let r = self.get(path);
        let status = r.status();
        let body: Value = r.json().expect("a JSON body");
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    /// Starts a job, asserting 202 pending; its id.
    fn start_job(&self, body: &Value) -> i64 {
        let r = self.post("/api/v1/optimization/start", body);
        let status = r.status();
        let v: Value = r.json().expect("JSON");
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["status"], "pending");
        v["job_id"].as_i64().expect("a job id")
    }

    fn status(&self, job: i64) -> Value {
        self.json(&format!("/api/v1/optimization/status/{job}"))
    }

    /// Polls the job until `done(status)`; every status seen.
    fn wait_for(&self, job: i64, what: &str, done: impl Fn(&Value) -> bool) -> Vec<Value> {
        let started = Instant::now();
        let mut seen = Vec::new();
        loop {
            let s = self.status(job);
            seen.push(s.clone());
            if done(&s) {
                return seen;
            }
            assert!(
                started.elapsed() < self.patience,
                "job {job} never got {what}; last: {s}"
            );
            std::thread::sleep(Duration::from_millis(40));
        }
    }

    fn kill(mut self) {
        self.child.kill().expect("SIGKILL");
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A temp project: a database, a stub LM answering every call after
/// `delay`, its config, and a data dir holding `small.json` (8 examples).
pub(crate) struct Project {
    pub(crate) dir: tempfile::TempDir,
    pub(crate) db: PathBuf,
    pub(crate) config: PathBuf,
    pub(crate) data: PathBuf,
    _lm: StubLmServer,
}

impl Project {
    pub(crate) fn new(delay_ms: u64) -> Project {
        let dir = tempfile::tempdir().expect("a temp dir");
        let lm = StubLmServer::start(SKILL_ANSWER, Duration::from_millis(delay_ms));
        let config = stub_config(dir.path(), &lm.url);
        let data = dir.path().join("data");
        std::fs::create_dir(&data).expect("the data dir");
        small_trainset(&data, 8);
        Project {
            db: dir.path().join("t.db"),
            dir,
            config,
            data,
            _lm: lm,
        }
    }

    /// A project whose config runs the real local model, with `n` examples
    /// in `tiny/small.json` of the data dir; the config's path and the
    /// trainset's.
    #[cfg(feature = "local")]
    pub(crate) fn local_model(n: usize) -> (Project, PathBuf, String) {
        let Some(model) = model_path() else {
            panic!("model missing: run `bash scripts/setup.sh`");
        };
        let p = Project::new(0);
        let config = local_model_config(p.dir.path(), &model);
        let tiny = p.data.join("tiny");
        std::fs::create_dir(&tiny).expect("a subdirectory");
        let trainset = small_trainset(&tiny, n);
        (p, config, trainset)
    }

    pub(crate) fn serve(&self, extra: &[&str]) -> Server {
        Server::start(&self.db, &self.config, &self.data, extra, None)
    }
}

/// A job request on the bundled program and `small.json`.
fn job(optimizer: &str) -> Value {
    json!({
        "program": "skill_understanding",
        "optimizer": optimizer,
        "trainset_file": "small.json",
        "seed": 3,
        "max_labeled_demos": 2,
    })
}

fn finished(s: &Value) -> bool {
    !matches!(s["status"].as_str(), Some("pending" | "running"))
}

#[test]
fn serve_job_progresses_to_completed_and_registers_a_version() {
    let p = Project::new(60);
    let server = p.serve(&[]);
    let id = server.start_job(&job("labeled"));
    let seen = server.wait_for(id, "finished", finished);
    let last = seen.last().expect("a status");
    assert_eq!(last["status"], "completed", "{last}");
    assert_eq!(last["progress"], 1.0);
    // Progress was reported along the way, strictly between 0 and 1.
    assert!(
        seen.iter().any(|s| s["status"] == "running"
            && s["progress"].as_f64().is_some_and(|f| f > 0.0 && f < 1.0)),
        "no partial progress seen: {seen:?}"
    );
    let result = &last["result"];
    let version = result["version"].as_i64().expect("a version registered");
    assert!(result["version_id"].as_i64().is_some());
    assert!(result["quality_score"].as_f64().is_some(), "{result}");
    let run = result["run_id"].as_i64().expect("a run");
    let programs = server.json("/api/v1/programs");
    let name = programs[0]["name"]
        .as_str()
        .expect("a program name")
        .to_string();
    let versions = server.json(&format!("/api/v1/programs/{name}/versions"));
    let stored = versions
        .as_array()
        .expect("a list")
        .iter()
        .find(|v| v["version"] == version)
        .expect("the version is listed");
    assert_eq!(stored["id"], result["version_id"]);
    let run_row = server.json(&format!("/api/v1/runs/{run}"));
    assert_eq!(run_row["run"]["status"], "completed");
    // The jobs listing and the metrics count it.
    let jobs = server.json("/api/v1/optimization/jobs");
    assert_eq!(jobs[0]["job_id"], id);
    let metrics = server.get("/metrics").text().expect("text");
    assert!(
        metrics.contains("skill_fleet_jobs{state=\"completed\"} 1"),
        "{metrics}"
    );
    let calls: f64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("skill_fleet_lm_calls "))
        .and_then(|v| v.trim().parse().ok())
        .expect("an lm_calls line");
    assert!(calls > 0.0, "{metrics}");
    assert!(metrics.contains(
        "skill_fleet_http_request_duration_seconds_count{method=\"GET\",route=\"/api/v1/optimization/status/{job_id}\"}"
    ));
}

#[test]
fn serve_events_stream_delivers_progress_and_a_final_event() {
    let p = Project::new(40);
    let server = p.serve(&[]);
    let id = server.start_job(&job("bootstrap"));
    let resp = server.get(&format!("/api/v1/optimization/status/{id}/events"));
    assert_eq!(resp.status(), 200);
    assert!(resp
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/event-stream")));
    let mut events = Vec::new();
    for line in BufReader::new(resp).lines() {
        let line = line.expect("a line of the stream");
        if let Some(data) = line.strip_prefix("data: ") {
            let e: Value = serde_json::from_str(data).expect("JSON data");
            let last = e["event"] == "job_finished";
            events.push(e);
            if last {
                break;
            }
        }
    }
    let kinds: Vec<&str> = events.iter().filter_map(|e| e["event"].as_str()).collect();
    assert_eq!(kinds.first(), Some(&"status"), "{kinds:?}");
    assert!(kinds.contains(&"run_started"), "{kinds:?}");
    assert!(
        kinds.iter().filter(|k| **k == "progress").count() >= 2,
        "{kinds:?}"
    );
    assert!(kinds.contains(&"scored"), "{kinds:?}");
    let fractions: Vec<f64> = events
        .iter()
        .filter(|e| e["event"] == "progress")
        .filter_map(|e| e["fraction"].as_f64())
        .collect();
    assert!(
        fractions.iter().all(|f| (0.0..=1.0).contains(f)),
        "{fractions:?}"
    );
    let end = events.last().expect("a final event");
    assert_eq!(end["event"], "job_finished");
    assert_eq!(end["status"], "completed", "{end}");
    assert!(end["result"]["version_id"].as_i64().is_some(), "{end}");
    // A finished job's stream is its snapshot and the final event.
    let again = server
        .get(&format!("/api/v1/optimization/status/{id}/events"))
        .text()
        .expect("the stream ends");
    assert_eq!(again.matches("data: ").count(), 2, "{again}");
    assert!(again.contains("job_finished"));
}

#[test]
fn serve_cancel_stops_a_running_job_and_a_pending_one_never_starts() {
    let p = Project::new(250);
    let server = p.serve(&["--max-jobs", "1"]);
    let running = server.start_job(&job("bootstrap"));
    let pending = server.start_job(&job("labeled"));
    server.wait_for(running, "running with a run", |s| {
        s["status"] == "running" && s["run_id"].is_i64()
    });
    assert_eq!(server.status(pending)["status"], "pending");
    // The pending one is dropped at once.
    let r = server.post(
        &format!("/api/v1/optimization/jobs/{pending}/cancel"),
        &json!({}),
    );
    assert_eq!(r.status(), 202);
    assert_eq!(server.status(pending)["status"], "cancelled");
    // The running one stops after its current step.
    let r = server.post(
        &format!("/api/v1/optimization/jobs/{running}/cancel"),
        &json!({}),
    );
    assert_eq!(r.status(), 202);
    let seen = server.wait_for(running, "finished", finished);
    let last = seen.last().expect("a status");
    assert_eq!(last["status"], "cancelled", "{last}");
    let run = last["run_id"].as_i64().expect("its run");
    assert_eq!(
        server.json(&format!("/api/v1/runs/{run}"))["run"]["status"],
        "interrupted"
    );
    // The freed slot did not start the cancelled job.
    std::thread::sleep(Duration::from_millis(500));
    let s = server.status(pending);
    assert_eq!(s["status"], "cancelled");
    assert!(s["run_id"].is_null(), "{s}");
    assert_eq!(
        server.json("/api/v1/runs").as_array().map(Vec::len),
        Some(1)
    );
    // Cancelling again is a conflict.
    let r = server.post(
        &format!("/api/v1/optimization/jobs/{running}/cancel"),
        &json!({}),
    );
    assert_eq!(r.status(), 409);
}

#[test]
fn serve_killed_mid_job_shows_it_interrupted_and_resumes_to_completed() {
    let p = Project::new(150);
    let server = p.serve(&[]);
    let id = server.start_job(&job("bootstrap"));
    server.wait_for(id, "some progress", |s| {
        s["status"] == "running" && s["progress"].as_f64().is_some_and(|f| f > 0.0)
    });
    server.kill();
    let server = p.serve(&[]);
    let s = server.status(id);
    assert_eq!(s["status"], "interrupted", "{s}");
    let run = s["run_id"].as_i64().expect("the run it started");
    let r = server.post(
        &format!("/api/v1/optimization/jobs/{id}/resume"),
        &json!({}),
    );
    assert_eq!(r.status(), 202);
    let seen = server.wait_for(id, "finished", finished);
    let last = seen.last().expect("a status");
    assert_eq!(last["status"], "completed", "{last}");
    // The same run continued; no second run was made.
    assert_eq!(last["result"]["run_id"], run);
    assert!(last["result"]["version_id"].is_i64());
    assert_eq!(
        server.json("/api/v1/runs").as_array().map(Vec::len),
        Some(1)
    );
    // A completed job does not resume.
    let r = server.post(
        &format!("/api/v1/optimization/jobs/{id}/resume"),
        &json!({}),
    );
    assert_eq!(r.status(), 409);
}

#[test]
fn serve_ctrl_c_stops_running_jobs_resumably_and_exits() {
    let p = Project::new(150);
    let mut server = p.serve(&[]);
    let id = server.start_job(&job("bootstrap"));
    server.wait_for(id, "some progress", |s| {
        s["status"] == "running" && s["progress"].as_f64().is_some_and(|f| f > 0.0)
    });
    // SAFETY: sends a signal to our own child process.
    unsafe {
        libc::kill(server.child.id() as libc::pid_t, libc::SIGINT);
    }
    let started = Instant::now();
    let status = loop {
        if let Some(s) = server.child.try_wait().expect("waitable") {
            break s;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the server did not exit"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    // The job stored how it ended before the process exited: interrupted
    // by the shutdown itself, not found orphaned by the next start.
    let rows = query(
        &p.db,
        &format!("SELECT status, message FROM jobs WHERE id = {id}"),
    );
    assert_eq!(rows[0]["status"], "interrupted", "{rows:?}");
    assert!(
        rows[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("stopped")),
        "{rows:?}"
    );
}

#[test]
fn serve_refuses_trainset_paths_outside_the_data_dir() {
    let p = Project::new(0);
    // A valid trainset outside the data dir, and a link to it inside.
    let outside = p.dir.path().join("secret.json");
    std::fs::copy(p.data.join("small.json"), &outside).expect("copied");
    std::os::unix::fs::symlink(&outside, p.data.join("link.json")).expect("a symlink");
    let server = p.serve(&[]);
    for bad in [
        "../secret.json",
        "/etc/passwd",
        "%2e%2e%2fsecret.json",
        "..%2fsecret.json",
        "link.json",
        outside.to_str().expect("utf-8"),
    ] {
        let mut body = job("labeled");
        body["trainset_file"] = json!(bad);
        let r = server.post("/api/v1/optimization/start", &body);
        let status = r.status();
        let v: Value = r.json().expect("a JSON error");
        assert_eq!(status, 400, "{bad}: {v}");
        assert!(
            v["error"]
                .as_str()
                .is_some_and(|e| e.contains("trainset_file")),
            "{v}"
        );
    }
    // Nothing was imported and no job was made.
    assert_eq!(server.json("/api/v1/optimization/jobs"), json!([]));
    let rows = query(&p.db, "SELECT COUNT(*) AS n FROM trainsets");
    assert_eq!(rows[0]["n"], 0);
    // A program path is held to the same rule.
    let mut body = job("labeled");
    body["program"] = json!("../../etc/passwd.yaml");
    let r = server.post("/api/v1/optimization/start", &body);
    assert_eq!(r.status(), 400);
    let v: Value = r.json().expect("a JSON error");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.starts_with("program")),
        "{v}"
    );
}

#[test]
fn serve_off_loopback_refuses_to_start_without_a_token_and_checks_it() {
    let p = Project::new(0);
    let out = Server::command(&p.db, &p.config, &p.data, &["--host", "0.0.0.0"], None)
        .stderr(Stdio::piped())
        .output()
        .expect("the binary runs");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("SKILL_FLEET_TOKEN"), "{err}");
    assert!(out.stdout.is_empty(), "it must not listen");

    let server = Server::start(
        &p.db,
        &p.config,
        &p.data,
        &["--host", "0.0.0.0"],
        Some("s3cret"),
    );
    let r = server.get("/api/v1/runs");
    assert_eq!(r.status(), 401);
    let v: Value = r.json().expect("a JSON error");
    assert!(
        v["error"].as_str().is_some_and(|e| e.contains("bearer")),
        "{v}"
    );
    let r = server
        .client
        .get(server.url("/api/v1/runs"))
        .bearer_auth("wrong")
        .send()
        .expect("answered");
    assert_eq!(r.status(), 401);
    let r = server
        .client
        .get(server.url("/api/v1/runs"))
        .bearer_auth("s3cret")
        .send()
        .expect("answered");
    assert_eq!(r.status(), 200);
    // The health check stays open for probes.
    assert_eq!(server.get("/health").status(), 200);
}

#[test]
fn serve_answers_422_naming_an_unknown_field_or_an_out_of_range_value() {
    let p = Project::new(0);
    let server = p.serve(&[]);
    let cases = [
        (json!({"bogus_field": 1}), "bogus_field"),
        (
            json!({"budget": {"max_minutes": 5, "max_hours": 1}}),
            "max_hours",
        ),
        (json!({"max_labeled_demos": 100000}), "max_labeled_demos"),
        (json!({"budget": {"max_minutes": -1}}), "budget.max_minutes"),
        (json!({"metric_threshold": 1.5}), "metric_threshold"),
        (json!({"auto": "extreme"}), "extreme"),
        (json!({"num_trials": 3}), "num-trials"),
    ];
    for (extra, field) in cases {
        let mut body = job("labeled");
        for (k, v) in extra.as_object().expect("an object") {
            body[k] = v.clone();
        }
        let r = server.post("/api/v1/optimization/start", &body);
        let status = r.status();
        let v: Value = r.json().expect("a JSON error");
        assert_eq!(status, 422, "{body}: {v}");
        assert!(
            v["error"].as_str().is_some_and(|e| e.contains(field)),
            "the error names `{field}`: {v}"
        );
    }
    // A stored trainset that does not exist, and two trainsets at once.
    let mut body = job("labeled");
    body.as_object_mut()
        .expect("an object")
        .remove("trainset_file");
    body["trainset_id"] = json!("nope");
    assert_eq!(
        server.post("/api/v1/optimization/start", &body).status(),
        404
    );
    body["trainset_file"] = json!("small.json");
    assert_eq!(
        server.post("/api/v1/optimization/start", &body).status(),
        422
    );
    // Not JSON at all, and too large.
    let r = server
        .client
        .post(server.url("/api/v1/optimization/start"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .expect("answered");
    assert_eq!(r.status(), 400);
    assert!(r.json::<Value>().expect("JSON")["error"].is_string());
    let big = json!({"program": "x".repeat(2 * 1024 * 1024)});
    let r = server.post("/api/v1/optimization/start", &big);
    assert_eq!(r.status(), 413);
    assert!(r.json::<Value>().expect("JSON")["error"].is_string());
    assert_eq!(server.json("/api/v1/optimization/jobs"), json!([]));
}

#[test]
fn serve_registry_routes_promote_gate_rollback_and_predict_name_the_version() {
    let p = Project::new(0);
    let project = StubProject {
        dir: tempfile::tempdir().expect("a temp dir"),
        db: p.db.clone(),
        config: p.config.clone(),
        server: StubLmServer::start(SKILL_ANSWER, Duration::ZERO),
    };
    project.register_variants(&["one", "two"]);
    let server = p.serve(&[]);
    let programs = server.json("/api/v1/programs");
    let name = programs[0]["name"].as_str().expect("a name").to_string();
    assert_eq!(programs[0]["versions"], 2);
    let promote = |v: i64, gate: bool| {
        server.post(
            &format!("/api/v1/programs/{name}/aliases/production/promote"),
            &json!({"version": v, "reason": "test", "require_better": gate}),
        )
    };
    assert_eq!(promote(1, false).status(), 200);
    // No comparison of v2 against v1 is stored: the gate refuses.
    let r = promote(2, true);
    assert_eq!(r.status(), 409);
    let v: Value = r.json().expect("JSON");
    assert!(
        v["error"]
            .as_str()
            .is_some_and(|e| e.contains("promotion refused")),
        "{v}"
    );
    assert_eq!(promote(2, false).status(), 200);
    let predict = |alias: &str| -> Value {
        let r = server.post(
            "/api/v1/predict",
            &json!({"program": name, "alias": alias,
                    "input": {"task_description": "Create a tokio cancellation skill: cancel tasks safely"}}),
        );
        let status = r.status();
        let v: Value = r.json().expect("JSON");
        assert_eq!(status, 200, "{v}");
        v
    };
    let answer = predict("production");
    assert_eq!(answer["version"], 2);
    assert_eq!(
        answer["outputs"]["name"], "tokio-task-cancellation",
        "{answer}"
    );
    let r = server.post(
        &format!("/api/v1/programs/{name}/aliases/production/rollback"),
        &json!({"reason": "regression"}),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(predict("production")["version"], 1);
    let detail = server.json(&format!("/api/v1/programs/{name}/versions/1"));
    assert_eq!(detail["aliases"], json!(["production"]));
    assert_eq!(
        server
            .get(&format!("/api/v1/programs/{name}/versions/9"))
            .status(),
        404
    );
    assert_eq!(server.get("/api/v1/programs/nope/versions").status(), 404);
}

#[test]
fn serve_ab_compare_report_and_trace_export_routes_answer_like_the_cli() {
    let p = Project::new(0);
    let project = StubProject {
        dir: tempfile::tempdir().expect("a temp dir"),
        db: p.db.clone(),
        config: p.config.clone(),
        server: StubLmServer::start(SKILL_ANSWER, Duration::ZERO),
    };
    project.register_variants(&["one", "two"]);
    let small = p.data.join("small.json");
    cli_ok(
        &p.db,
        &[
            "trainset",
            "import",
            small.to_str().unwrap(),
            "--name",
            "small",
        ],
    );
    cli_ok(&p.db, &["trainset", "split", "small"]);
    let server = p.serve(&[]);
    let name = "skill_understanding";
    let ok = |r: Response| -> Value {
        let status = r.status();
        let v: Value = r.json().expect("JSON");
        assert_eq!(status, 200, "{v}");
        v
    };

    // Compare, list, read back, render.
    let c = ok(server.post(
        &format!("/api/v1/programs/{name}/compare"),
        &json!({"v1": 1, "v2": 2, "trainset": "small", "split": "all", "seed": 5}),
    ));
    let id = c["id"].as_i64().expect("stored");
    assert_eq!(c["summary"]["n"], 8);
    let listed = server.json(&format!("/api/v1/programs/{name}/comparisons"));
    assert_eq!(listed[0]["id"], id);
    assert_eq!(
        server.json(&format!("/api/v1/comparisons/{id}"))["summary"],
        c["summary"]
    );
    let page = server.get(&format!("/api/v1/comparisons/{id}/report?format=html"));
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().unwrap().contains("Per-example differences"));
    let bad = server.post(
        &format!("/api/v1/programs/{name}/compare"),
        &json!({"v1": 1, "v2": 2, "trainset": "small", "confidence": 1.5}),
    );
    assert_eq!(bad.status(), 422);

    // The eval runs the comparison made have reports.
    let runs = server.json("/api/v1/runs");
    let run_id = runs[0]["id"].as_i64().expect("a run");
    let md = server.get(&format!("/api/v1/runs/{run_id}/report?format=md"));
    assert_eq!(md.status(), 200);
    assert!(md.text().unwrap().starts_with("# Run "));
    assert_eq!(
        server
            .get(&format!("/api/v1/runs/{run_id}/report?format=pdf"))
            .status(),
        422
    );

    // A/B: create, route, predict through it, record, status, conclude with promote.
    ok(server.post(
        "/api/v1/ab",
        &json!({"program": name, "name": "t", "variants": ["V1=50", "V2=50"]}),
    ));
    let routed = ok(server.post("/api/v1/ab/t/route", &json!({"key": "user-1"})));
    let variant = routed["variant"].as_str().expect("a variant").to_string();
    let again = ok(server.post("/api/v1/ab/t/route", &json!({"key": "user-1"})));
    assert_eq!(again["variant"], routed["variant"], "sticky");
    let predicted = ok(server.post(
        "/api/v1/predict",
        &json!({"program": name, "ab_test": "t", "key": "user-2",
                "input": {"task_description": "Create a tokio cancellation skill: cancel tasks safely"}}),
    ));
    assert!(predicted["version"].as_i64().is_some(), "{predicted}");
    ok(server.post(
        "/api/v1/ab/t/record",
        &json!({"key": "user-1", "success": true}),
    ));
    let refused = server.post(
        "/api/v1/ab/t/record",
        &json!({"key": "never-routed", "success": true}),
    );
    assert_eq!(refused.status(), 422);
    let status = server.json("/api/v1/ab/t");
    assert!(status.to_string().contains("probability"), "{status}");
    ok(server.post(
        "/api/v1/ab/t/conclude",
        &json!({"winner": variant, "promote": "production"}),
    ));
    let history = server.json(&format!("/api/v1/programs/{name}/aliases"));
    assert_eq!(history[0]["action"], "promote");
    let diff = server.json(&format!("/api/v1/programs/{name}/diff/1/2"));
    assert_eq!(diff["predictors"][0]["instructions_changed"], true);

    // Trace export streams every trace.
    let traces = query(&p.db, "SELECT COUNT(*) AS n FROM traces")[0]["n"]
        .as_i64()
        .unwrap();
    assert!(traces > 0);
    let export = server.get("/api/v1/traces/export?format=jsonl");
    assert_eq!(export.status(), 200);
    let body = export.text().unwrap();
    assert_eq!(body.lines().count() as i64, traces);
    assert_eq!(
        server.get("/api/v1/traces/export?since=yesterday").status(),
        422
    );
}

#[test]
fn serve_openapi_lists_every_route_it_serves() {
    let p = Project::new(0);
    let server = p.serve(&[]);
    let doc = server.json("/api/v1/openapi.json");
    assert!(doc["openapi"].as_str().is_some_and(|v| v.starts_with("3.")));
    let paths = doc["paths"].as_object().expect("paths");
    let mut documented = BTreeSet::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            documented.insert(format!("{} {path}", method.to_uppercase()));
        }
    }
    let served: BTreeSet<String> = [
        "GET /health",
        "GET /metrics",
        "GET /api/v1/openapi.json",
        "POST /api/v1/optimization/start",
        "GET /api/v1/optimization/status/{job_id}",
        "GET /api/v1/optimization/status/{job_id}/events",
        "GET /api/v1/optimization/optimizers",
        "GET /api/v1/optimization/jobs",
        "POST /api/v1/optimization/jobs/{job_id}/cancel",
        "POST /api/v1/optimization/jobs/{job_id}/resume",
        "GET /api/v1/programs",
        "GET /api/v1/programs/{name}/versions",
        "GET /api/v1/programs/{name}/versions/{version}",
        "POST /api/v1/programs/{name}/aliases/{alias}/promote",
        "POST /api/v1/programs/{name}/aliases/{alias}/rollback",
        "GET /api/v1/runs",
        "GET /api/v1/runs/{id}",
        "GET /api/v1/runs/{id}/traces",
        "GET /api/v1/traces/{id}",
        "POST /api/v1/predict",
        "POST /api/v1/ab",
        "GET /api/v1/ab",
        "GET /api/v1/ab/{test}",
        "POST /api/v1/ab/{test}/route",
        "POST /api/v1/ab/{test}/record",
        "POST /api/v1/ab/{test}/weights",
        "POST /api/v1/ab/{test}/conclude",
        "GET /api/v1/runs/{id}/report",
        "POST /api/v1/programs/{name}/compare",
        "GET /api/v1/programs/{name}/comparisons",
        "GET /api/v1/comparisons/{id}",
        "GET /api/v1/comparisons/{id}/report",
        "GET /api/v1/programs/{name}/aliases",
        "GET /api/v1/programs/{name}/diff/{v1}/{v2}",
        "GET /api/v1/traces/export",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(documented, served);
    // Every documented route is routed: none falls through to the
    // "no route" fallback or a 405.
    for entry in &documented {
        let (method, path) = entry.split_once(' ').expect("METHOD path");
        let concrete = path
            .replace("{job_id}", "1")
            .replace("{id}", "1")
            .replace("{version}", "1")
            .replace("{name}", "p")
            .replace("{alias}", "a")
            .replace("{test}", "t")
            .replace("{v1}", "1")
            .replace("{v2}", "2");
        let r = if method == "GET" {
            server.get(&concrete)
        } else {
            server.post(&concrete, &json!({}))
        };
        let status = r.status();
        let text = r.text().unwrap_or_default();
        assert_ne!(status, 405, "{entry}");
        assert!(!text.contains("no route for"), "{entry}: {text}");
    }
    // And the optimizer listing comes from the optimizers' own settings.
    let optimizers = server.json("/api/v1/optimization/optimizers");
    let names: Vec<&str> = optimizers
        .as_array()
        .expect("a list")
        .iter()
        .filter_map(|o| o["name"].as_str())
        .collect();
    assert_eq!(names, OPTIMIZERS);
    let labeled = &optimizers[0];
    assert_eq!(labeled["defaults"]["k"], 16);
    assert_eq!(labeled["parameters"]["properties"]["k"]["maximum"], 256);
}

/// The one test on the real model: a tiny labeled optimization through the
/// API ends completed with a version registered.
#[cfg(feature = "local")]
#[test]
fn serve_optimizes_with_the_local_model() {
    // Four examples: one or two LM calls per evaluation.
    let (p, config, _) = Project::local_model(4);
    let mut server = Server::start(&p.db, &config, &p.data, &[], None);
    server.patience = Duration::from_secs(900);
    let mut body = job("labeled");
    body["trainset_file"] = json!("tiny/small.json");
    body["max_labeled_demos"] = json!(1);
    body["threads"] = json!(2);
    body["budget"] = json!({"max_calls": 200, "max_minutes": 10});
    let id = server.start_job(&body);
    let seen = server.wait_for(id, "finished", finished);
    let last = seen.last().expect("a status");
    assert_eq!(last["status"], "completed", "{last}");
    assert!(last["result"]["version_id"].is_i64(), "{last}");
    assert!(seen.iter().any(|s| s["status"] == "running"));
}

/// Property-based run of the OpenAPI document against the real server (stub
/// LM, one registered program, a trainset file): schemathesis with every
/// check finds no 5xx and no response outside the schema. Needs
/// `SKILL_FLEET_SCHEMATHESIS`, the python of a venv holding schemathesis
/// (`scripts/test.sh` sets it); `SKILL_FLEET_SCHEMATHESIS_EXAMPLES` sets the
/// examples per operation (CI's short run: 10). Excluded: the events route,
/// a server-sent stream that stays open while its job runs; and the
/// `positive_data_acceptance` check, since bodies have cross-field rules the
/// schema cannot state (exactly one of `trainset_file` and `trainset_id`; at
/// most one of `alias`, `version`, `ab_test`) and JSON Schema counts `1.0` as
/// an integer: those requests get a documented 422.
#[test]
fn serve_openapi_schemathesis_finds_no_server_error_or_schema_violation() {
    let Some(python) = std::env::var_os("SKILL_FLEET_SCHEMATHESIS") else {
        eprintln!("skipped: set SKILL_FLEET_SCHEMATHESIS to a python with schemathesis (scripts/test.sh does)");
        return;
    };
    let examples =
        std::env::var("SKILL_FLEET_SCHEMATHESIS_EXAMPLES").unwrap_or_else(|_| "10".into());
    let p = Project::new(0);
    let project = StubProject {
        dir: tempfile::tempdir().expect("a temp dir"),
        db: p.db.clone(),
        config: p.config.clone(),
        server: StubLmServer::start(SKILL_ANSWER, Duration::ZERO),
    };
    project.register_variants(&["one"]);
    let server = p.serve(&[]);
    let out = Command::new(python)
        .args(["-m", "schemathesis.cli", "run"])
        .arg(server.url("/api/v1/openapi.json"))
        .args(["--checks", "all", "--max-examples", &examples])
        .args(["--exclude-checks", "positive_data_acceptance"])
        .args(["--exclude-path-regex", "/events$"])
        .args(["--seed", "17", "--request-timeout", "30", "--no-color"])
        // Its example database (`.schemathesis/`) goes in the temp dir.
        .current_dir(p.dir.path())
        .stdin(Stdio::null())
        .output()
        .expect("schemathesis runs");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis failed:\n{text}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Whether the OpenAPI document lists `status` for `method path`.
fn documents(doc: &Value, method: &str, path: &str, status: u16) -> bool {
    doc["paths"][path][method]["responses"]
        .get(status.to_string())
        .is_some()
}

/// Regressions from the schemathesis run: statuses the extractors and
/// handlers answered (400 unparsable path, 415 no JSON body, 404 unknown
/// trainset id on start, 422 `limit` out of range) were missing from the
/// document; each is answered and now documented.
#[test]
fn serve_openapi_documents_the_statuses_answered_to_bad_requests() {
    let p = Project::new(0);
    let server = p.serve(&[]);
    let doc = server.json("/api/v1/openapi.json");
    let status = "/api/v1/optimization/status/{job_id}";
    let r = server.get("/api/v1/optimization/status/9223372036854775808");
    assert_eq!(r.status(), 400);
    assert!(documents(&doc, "get", status, 400));
    let r = server
        .client
        .post(server.url("/api/v1/predict"))
        .body("{}")
        .send()
        .expect("answered");
    assert_eq!(r.status(), 415);
    assert!(documents(&doc, "post", "/api/v1/predict", 415));
    assert!(documents(&doc, "post", "/api/v1/predict", 413));
    let mut body = job("labeled");
    body["trainset_file"] = Value::Null;
    body["trainset_id"] = json!("missing");
    let r = server.post("/api/v1/optimization/start", &body);
    assert_eq!(r.status(), 404, "{}", r.text().unwrap_or_default());
    assert!(documents(&doc, "post", "/api/v1/optimization/start", 404));
    assert_eq!(server.get("/api/v1/runs?limit=0").status(), 422);
    assert!(documents(&doc, "get", "/api/v1/runs", 422));
    let limit = &doc["paths"]["/api/v1/runs"]["get"]["parameters"][0];
    assert_eq!(limit["name"], "limit");
    assert_eq!(limit["schema"]["minimum"], 1, "{limit}");
    assert_eq!(limit["schema"]["maximum"], 1000, "{limit}");
}

/// Regression from the schemathesis run: the listings answer JSON arrays
/// but were documented as objects.
#[test]
fn serve_openapi_documents_listings_as_arrays() {
    let p = Project::new(0);
    let server = p.serve(&[]);
    let doc = server.json("/api/v1/openapi.json");
    for path in [
        "/api/v1/programs",
        "/api/v1/programs/{name}/versions",
        "/api/v1/runs",
        "/api/v1/optimization/jobs",
    ] {
        let schema =
            &doc["paths"][path]["get"]["responses"]["200"]["content"]["application/json"]["schema"];
        assert_eq!(schema["type"], "array", "{path}: {schema}");
    }
    assert!(server.json("/api/v1/programs").is_array());
    assert!(server.json("/api/v1/runs").is_array());
}
