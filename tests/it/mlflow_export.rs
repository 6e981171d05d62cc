//! `export mlflow` and `optimize --mlflow` against a real MLflow tracking
//! server (started here from the venv `scripts/test.sh` makes, with a SQLite
//! backend and the artifact proxy), on runs made against the stub LM.
//! Skipped, saying so, only when that venv is absent
//! (`SKILL_FLEET_MLFLOW_PYTHON` unset).

use crate::util::*;
use serde_json::{json, Value};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A running `mlflow server`, stopped (with its worker processes) on drop.
struct MlflowServer {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for MlflowServer {
    fn drop(&mut self) {
        // The server runs in its own process group: end the workers too.
        unsafe {
            libc::killpg(self.child.id() as i32, libc::SIGKILL);
        }
        let _ = self.child.wait();
    }
}

fn start_mlflow() -> Option<MlflowServer> {
    let Some(python) = std::env::var_os("SKILL_FLEET_MLFLOW_PYTHON") else {
        eprintln!("skipped: SKILL_FLEET_MLFLOW_PYTHON is not set (scripts/test.sh installs MLflow and sets it)");
        return None;
    };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    use std::os::unix::process::CommandExt;
    let child = Command::new(python)
        .args(["-m", "mlflow", "server", "--host", "127.0.0.1", "--port"])
        .arg(port.to_string())
        .arg("--backend-store-uri")
        .arg(format!("sqlite:///{}/mlflow.db", dir.path().display()))
        .arg("--artifacts-destination")
        .arg(dir.path().join("artifacts"))
        .arg("--workers")
        .arg("1")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .expect("mlflow server starts");
    let server = MlflowServer {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(120) {
        if get(&server.url, "/health", &[]).is_some() {
            return Some(server);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    panic!("mlflow server did not answer /health within 120 s");
}

fn block_on<T>(f: impl std::future::Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
        .block_on(f)
}

/// GET `path`; None when the server cannot be reached or answers an error.
fn get(base: &str, path: &str, query: &[(&str, &str)]) -> Option<Value> {
    block_on(async {
        let r = reqwest::Client::new()
            .get(format!("{base}{path}"))
            .query(query)
            .send()
            .await
            .ok()?;
        if !r.status().is_success() {
            return None;
        }
        let text = r.text().await.ok()?;
        Some(serde_json::from_str(&text).unwrap_or(Value::String(text)))
    })
}

fn post(base: &str, endpoint: &str, body: Value) -> Value {
    block_on(async {
        let r = reqwest::Client::new()
            .post(format!("{base}/api/2.0/mlflow/{endpoint}"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "{endpoint}: {}", r.status());
        r.json().await.unwrap()
    })
}

fn search(base: &str, experiment_id: &str, filter: &str) -> Vec<Value> {
    let v = post(
        base,
        "runs/search",
        json!({"experiment_ids": [experiment_id], "filter": filter, "max_results": 1000}),
    );
    v["runs"].as_array().cloned().unwrap_or_default()
}

fn optimize(f: &StubProject, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "--json",
        "optimize",
        "--trainset",
        "small",
        "--optimizer",
        "random-search",
        "--num-candidates",
        "2",
        "--max-bootstrapped-demos",
        "1",
    ];
    args.extend_from_slice(extra);
    f.cli(&args)
}

#[test]
fn an_exported_optimization_reads_back_from_mlflow_and_exporting_again_adds_nothing() {
    let Some(mlflow) = start_mlflow() else {
        return;
    };
    let f = StubProject::new(Arc::new(|_: &str| SKILL_ANSWER.to_string()), 16);
    let out = optimize(&f, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = report["run_id"].as_i64().unwrap().to_string();

    let export = |args: &[&str]| -> Value {
        let mut all = vec!["export", "mlflow", "--tracking-uri", &mlflow.url];
        all.extend_from_slice(args);
        f.json(&all)
    };
    let first = export(&["--run", &run_id]);
    let exp = first["experiment_id"].as_str().unwrap().to_string();
    let mlflow_run = first["runs"][0]["mlflow_run_id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(first["runs"][0]["created"], true);

    let info = get(
        &mlflow.url,
        "/api/2.0/mlflow/runs/get",
        &[("run_id", &mlflow_run)],
    )
    .unwrap();
    let run = &info["run"];
    assert_eq!(run["info"]["status"], "FINISHED");
    let params: Vec<(String, String)> = run["data"]["params"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["key"].as_str().unwrap().into(),
                p["value"].as_str().unwrap().into(),
            )
        })
        .collect();
    let param = |k: &str| {
        params
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(
        param("optimizer.kind").as_deref(),
        Some("random-search"),
        "{params:?}"
    );
    assert_eq!(param("seed").as_deref(), Some("42"));
    assert!(param("trainset.hash").is_some_and(|h| h.len() >= 16));
    assert!(
        param("lm.task").is_some_and(|m| m.starts_with("openai:")),
        "{params:?}"
    );
    assert!(
        !params
            .iter()
            .any(|(k, v)| k.contains("key") || v.contains("sk-")),
        "{params:?}"
    );

    let trials = query(
        &f.db,
        &format!("SELECT COUNT(*) AS n FROM evaluations WHERE run_id = {run_id} AND kind = 'full' AND split = 'val' AND status = 'done'"),
    )[0]["n"]
        .as_i64()
        .unwrap();
    assert!(trials >= 3, "baseline plus candidates: {trials}");
    let history = |key: &str| -> usize {
        get(
            &mlflow.url,
            "/api/2.0/mlflow/metrics/get-history",
            &[("run_id", &mlflow_run), ("metric_key", key)],
        )
        .unwrap()["metrics"]
            .as_array()
            .map(|a| a.len())
            .unwrap_or(0)
    };
    assert_eq!(history("trial_val_score") as i64, trials);
    assert_eq!(history("test_score"), 1);

    let artifacts = get(
        &mlflow.url,
        "/api/2.0/mlflow/artifacts/list",
        &[("run_id", &mlflow_run)],
    )
    .unwrap();
    let names: Vec<&str> = artifacts["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    for artifact in [
        "best_program.json",
        "run_summary.json",
        "report.html",
        "report.json",
    ] {
        assert!(names.contains(&artifact), "{artifact} missing: {names:?}");
    }

    let candidates = query(
        &f.db,
        &format!("SELECT id FROM candidates WHERE run_id = {run_id}"),
    )
    .len();
    let nested = search(
        &mlflow.url,
        &exp,
        &format!("tags.mlflow.parentRunId = '{mlflow_run}'"),
    );
    assert_eq!(nested.len(), candidates);
    let all_runs = search(&mlflow.url, &exp, "").len();

    // Again: nothing new is sent.
    let again = export(&["--all"]);
    assert_eq!(again["runs"][0]["up_to_date"], true, "{again}");
    assert_eq!(search(&mlflow.url, &exp, "").len(), all_runs);
    assert_eq!(history("trial_val_score") as i64, trials);

    // The mapping row lost after MLflow created the run (a crash between the
    // two): the run is found again by its tag, not created twice.
    let raw = rusqlite::Connection::open(&f.db).unwrap();
    raw.execute("DELETE FROM mlflow_exports WHERE object = 'run'", [])
        .unwrap();
    drop(raw);
    let third = export(&["--run", &run_id]);
    assert_eq!(third["runs"][0]["created"], false, "{third}");
    assert_eq!(
        third["runs"][0]["mlflow_run_id"].as_str(),
        Some(mlflow_run.as_str())
    );
    assert_eq!(search(&mlflow.url, &exp, "").len(), all_runs);
}

#[test]
fn optimize_with_mlflow_streams_the_run_and_a_dead_server_only_warns() {
    let Some(mlflow) = start_mlflow() else {
        return;
    };
    let f = StubProject::new(Arc::new(|_: &str| SKILL_ANSWER.to_string()), 16);
    let out = optimize(
        &f,
        &["--mlflow", &mlflow.url, "--mlflow-experiment", "streamed"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let run_id = report["run_id"].as_i64().unwrap();
    let exp = get(
        &mlflow.url,
        "/api/2.0/mlflow/experiments/get-by-name",
        &[("experiment_name", "streamed")],
    )
    .unwrap()["experiment"]["experiment_id"]
        .as_str()
        .unwrap()
        .to_string();
    let runs = search(
        &mlflow.url,
        &exp,
        &format!("tags.`skill_fleet.run_id` = '{run_id}'"),
    );
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["info"]["status"], "FINISHED");

    // Nothing listens on port 9: the optimization completes, with a warning.
    let out = optimize(&f, &["--mlflow", "http://127.0.0.1:9", "--seed", "7"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("warning: MLflow export"), "{err}");
}
