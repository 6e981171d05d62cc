//! Helpers shared by integration tests: running the real binary on a temp database.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// Repository root (where `config/` and `tests/data/` live).
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A test file under `tests/data`.
pub fn data(rel: &str) -> PathBuf {
    root().join("tests/data").join(rel)
}

/// The bundled trainset.
pub fn bundled_trainset() -> PathBuf {
    root().join("config/training/trainset.json")
}

/// The binary under test: `SKILL_FLEET_BIN` when set, else the one cargo
/// built. Worktrees that share one target directory share its uplifted
/// `target/debug/skill-fleet` too, and every cargo run there re-links its own
/// build to that path; the override points at a worktree's own
/// `target/debug/deps/skill_fleet-HASH` instead.
pub fn binary() -> PathBuf {
    std::env::var_os("SKILL_FLEET_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_skill-fleet")))
}

/// Runs `skill-fleet --db DB args...` from the repository root.
pub fn cli(db: &Path, args: &[&str]) -> Output {
    Command::new(binary())
        .current_dir(root())
        .arg("--db")
        .arg(db)
        .args(args)
        .output()
        .expect("the skill-fleet binary runs")
}

/// Runs the binary and asserts success, returning stdout.
pub fn cli_ok(db: &Path, args: &[&str]) -> String {
    let out = cli(db, args);
    assert!(
        out.status.success(),
        "skill-fleet {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Path of the local model, if it has been assembled (scripts/setup.sh).
#[cfg(feature = "local")]
pub fn model_path() -> Option<PathBuf> {
    let p = std::env::var_os("SKILL_FLEET_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("models/gemma-3-270m-q4_k_m.gguf"));
    p.exists().then_some(p)
}

/// The bundled config with its local model pointed at `model`, written as
/// `local.yaml` in `dir`.
#[cfg(feature = "local")]
pub fn local_model_config(dir: &Path, model: &Path) -> PathBuf {
    let text = std::fs::read_to_string(root().join("config/config.yaml"))
        .expect("the bundled config")
        .replace(
            "models/gemma-3-270m-q4_k_m.gguf",
            model.to_str().expect("utf-8 path"),
        );
    let config = dir.join("local.yaml");
    std::fs::write(&config, text).expect("written");
    config
}

/// A valid answer of the bundled skill program in completion mode.
pub const SKILL_ANSWER: &str = " rust/tokio-task-cancellation\nName: tokio-task-cancellation\nSkill Style: minimal\n\
Subdirectories: references, examples\nKeywords: tokio, cancellation, async, tasks\n\
Description: Use when you need to cancel Tokio tasks safely with abort handles, cancellation tokens and a graceful shutdown of spawned work.";

/// An OpenAI-compatible text-completion server on 127.0.0.1 (its own thread
/// and runtime, so synchronous tests can drive the binary against it): every
/// `POST /v1/completions` gets `answer(prompt)` after `delay`. Requests are
/// counted, and those `is_task(prompt)` calls a program run (not an
/// optimizer's proposal) are counted apart.
pub struct StubLmServer {
    pub url: String,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task_hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

/// What a stub server answers a prompt with.
pub type StubAnswer = std::sync::Arc<dyn Fn(&str) -> String + Send + Sync>;

/// Whether a prompt is a program run rather than an optimizer's request for
/// an instruction or a dataset summary.
pub fn is_task(prompt: &str) -> bool {
    !prompt.contains("New instruction:") && !prompt.contains("summary of what this dataset")
}

impl StubLmServer {
    /// Answers every request with `answer`.
    pub fn start(answer: &'static str, delay: std::time::Duration) -> Self {
        Self::start_with(std::sync::Arc::new(move |_| answer.to_string()), delay)
    }

    pub fn start_with(answer: StubAnswer, delay: std::time::Duration) -> Self {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let hits = Arc::new(AtomicUsize::new(0));
        let task_hits = Arc::new(AtomicUsize::new(0));
        let (counter, task_counter) = (hits.clone(), task_hits.clone());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime for the stub server");
            rt.block_on(async move {
                let app = axum::Router::new().route(
                    "/v1/completions",
                    axum::routing::post(move |axum::Json(body): axum::Json<serde_json::Value>| {
                        let (counter, task_counter) = (counter.clone(), task_counter.clone());
                        let answer = answer.clone();
                        async move {
                            let prompt = body["prompt"].as_str().unwrap_or("").to_string();
                            counter.fetch_add(1, Ordering::SeqCst);
                            if is_task(&prompt) {
                                task_counter.fetch_add(1, Ordering::SeqCst);
                            }
                            tokio::time::sleep(delay).await;
                            axum::Json(serde_json::json!({
                                "choices": [{"text": answer(&prompt), "index": 0}],
                                "usage": {"prompt_tokens": 100, "completion_tokens": 40}
                            }))
                        }
                    }),
                );
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("a loopback port");
                let addr = listener.local_addr().expect("the bound address");
                tx.send(format!("http://{addr}/v1"))
                    .expect("the test waits");
                axum::serve(listener, app).await.expect("the stub serves");
            });
        });
        let url = rx.recv().expect("the stub server starts");
        StubLmServer {
            url,
            hits,
            task_hits,
        }
    }

    /// Requests answered so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Program runs answered so far (see [`is_task`]).
    pub fn task_hits(&self) -> usize {
        self.task_hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// A config file in `dir` whose every role is the model at `url` in
/// completion mode, with one quick retry.
pub fn stub_config(dir: &Path, url: &str) -> PathBuf {
    let role = |max_tokens: u32| {
        format!(
            "{{provider: openai, model: stub, base_url: \"{url}\", mode: completion, temperature: 0.0, max_tokens: {max_tokens}}}"
        )
    };
    let text = format!(
        "taxonomy: config/taxonomy.yaml\nlm:\n  roles:\n    task: {}\n    prompt: {}\n    reflection: {}\n    judge: {}\n  retry: {{max_retries: 1, base_delay_ms: 10, max_delay_ms: 50, timeout_secs: 10}}\n",
        role(160),
        role(160),
        role(200),
        role(16)
    );
    let path = dir.join("stub-config.yaml");
    std::fs::write(&path, text).expect("the config is written");
    path
}

/// The first `n` bundled examples spread over the file (every style
/// appears), written as a trainset file in `dir`.
pub fn small_trainset(dir: &Path, n: usize) -> String {
    let all: Vec<serde_json::Value> = serde_json::from_str(
        &std::fs::read_to_string(bundled_trainset()).expect("the bundled trainset"),
    )
    .expect("the bundled trainset is JSON");
    let step = all.len() / n;
    let pick: Vec<&serde_json::Value> = all.iter().step_by(step.max(1)).take(n).collect();
    let path = dir.join("small.json");
    std::fs::write(&path, serde_json::to_string_pretty(&pick).expect("JSON")).expect("written");
    path.display().to_string()
}

/// Rows of a read-only SQL query through the binary.
pub fn query(db: &Path, sql: &str) -> Vec<serde_json::Value> {
    serde_json::from_str(&cli_ok(db, &["--json", "sql", sql])).expect("sql prints JSON")
}

/// Writes a copy of the bundled program whose instructions end with
/// `marker` (so a stub LM can answer versions differently).
pub fn program_variant(dir: &Path, marker: &str) -> PathBuf {
    let text = std::fs::read_to_string(root().join("config/programs/skill_understanding.yaml"))
        .expect("the bundled program");
    let anchor = "Turn a request to create an agent skill into the skill's metadata.";
    assert!(
        text.contains(anchor),
        "the bundled program's instructions changed"
    );
    let path = dir.join(format!("program_{marker}.yaml"));
    std::fs::write(&path, text.replace(anchor, &format!("{anchor} {marker}."))).expect("written");
    path
}

/// A temporary database with a trainset `small` imported, and a stub LM
/// server answering `answer(prompt)`, configured for every role.
pub struct StubProject {
    pub dir: tempfile::TempDir,
    pub db: PathBuf,
    pub config: PathBuf,
    pub server: StubLmServer,
}

impl StubProject {
    pub fn new(answer: StubAnswer, trainset_size: usize) -> StubProject {
        let dir = tempfile::tempdir().expect("a temp dir");
        let db = dir.path().join("t.db");
        let server = StubLmServer::start_with(answer, std::time::Duration::ZERO);
        let config = stub_config(dir.path(), &server.url);
        let ts = small_trainset(dir.path(), trainset_size);
        cli_ok(&db, &["trainset", "import", &ts, "--name", "small"]);
        StubProject {
            dir,
            db,
            config,
            server,
        }
    }

    /// Registers one version of the bundled program per marker, in order
    /// (versions 1, 2, ...).
    pub fn register_variants(&self, markers: &[&str]) {
        for marker in markers {
            let p = program_variant(self.dir.path(), marker);
            cli_ok(
                &self.db,
                &["program", "register", p.to_str().expect("utf-8 path")],
            );
        }
    }

    /// Runs the binary with this project's config.
    pub fn cli(&self, args: &[&str]) -> Output {
        let mut all = vec!["--config", self.config.to_str().expect("utf-8 path")];
        all.extend_from_slice(args);
        cli(&self.db, &all)
    }

    /// Runs the binary, asserting success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.cli(args);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs the binary with `--json`, asserting success; parses stdout.
    pub fn json(&self, args: &[&str]) -> serde_json::Value {
        let mut all = vec!["--json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(&all)).expect("JSON output")
    }

    /// The version number an alias of any program points to.
    pub fn alias_version(&self, alias: &str) -> i64 {
        let rows = query(
            &self.db,
            &format!(
                "SELECT v.version FROM aliases a JOIN program_versions v ON v.id = a.version_id WHERE a.alias = '{alias}'"
            ),
        );
        rows[0]["version"].as_i64().expect("the alias exists")
    }
}

/// Opens a page (an HTML file or a URL) in headless Chromium through the
/// browser check (`tests/browser/check_page.mjs`, or `SKILL_FLEET_BROWSER_CHECK`;
/// `bash scripts/setup.sh` installs Chromium and playwright-core), writing a
/// screenshot to `screenshot`, and returns its JSON verdict: `console_errors`,
/// `page_errors`, `failed_requests`, `canvases` (each with `drawn_pixels`),
/// `screenshot_blank`.
pub fn browser_check(page: &Path, screenshot: &Path) -> serde_json::Value {
    let script = std::env::var_os("SKILL_FLEET_BROWSER_CHECK")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("tests/browser/check_page.mjs"));
    assert!(
        script
            .parent()
            .is_some_and(|d| d.join("node_modules/playwright-core").exists()),
        "the browser check is not installed: run `bash scripts/setup.sh` (npm ci in tests/browser)"
    );
    let out = Command::new("node")
        .arg(&script)
        .arg(page)
        .arg(screenshot)
        .output()
        .expect("node runs (bash scripts/setup.sh installs it)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "the browser check failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(stdout.trim()).expect("the browser check prints JSON")
}

/// Asserts a browser check verdict: no console or page errors, no failed
/// requests, every canvas drew something, and the screenshot is not blank.
pub fn assert_page_renders_cleanly(verdict: &serde_json::Value) {
    for k in ["console_errors", "page_errors", "failed_requests"] {
        assert_eq!(verdict[k], serde_json::json!([]), "{k}: {verdict}");
    }
    assert_eq!(verdict["screenshot_blank"], false, "{verdict}");
    let canvases = verdict["canvases"].as_array().expect("a canvas list");
    for c in canvases {
        assert!(
            c["drawn_pixels"].as_u64().unwrap_or(0) > 0,
            "empty canvas: {verdict}"
        );
    }
}

/// Every optimizer's name, in the order the API lists them.
pub const OPTIMIZERS: [&str; 6] = [
    "labeled",
    "bootstrap",
    "random-search",
    "knn",
    "miprov2",
    "gepa",
];
