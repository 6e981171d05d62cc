//! LM providers over real HTTP: the OpenAI and Gemini wire formats served by an
//! in-test axum server on 127.0.0.1 (plus a raw TCP server for truncated
//! bodies) that injects faults scripted per test, driven through `LmClient`
//! with retries, timeouts, fallback, cache, budget and tracing.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};
use skill_fleet::config::RetryConfig;
use skill_fleet::lm::budget::{Budget, BudgetLimits};
use skill_fleet::lm::cache::LmCache;
use skill_fleet::lm::client::{CallContext, LmClient, LmOutput};
use skill_fleet::lm::gemini::GeminiModel;
use skill_fleet::lm::openai::{Mode, OpenAiModel};
use skill_fleet::lm::retry::parse_retry_after;
use skill_fleet::lm::trace::TraceSink;
use skill_fleet::lm::{ChatMessage, LmError, LmRequest};
use skill_fleet::store::{Store, Writer};
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// The API key every client is given; it must never reach the database.
const KEY: &str = "sk-test-SECRET";
/// Upper bound on any single client call in these tests.
const CALL_BOUND: Duration = Duration::from_secs(20);

// ---------------------------------------------------------------------------
// The fake provider server
// ---------------------------------------------------------------------------

/// What the server does with one request.
#[derive(Debug, Clone)]
enum Fault {
    /// A well-formed success in the wire format of the requested path.
    Ok,
    /// An error status, optionally with a `Retry-After` header value.
    Status(u16, Option<&'static str>),
    /// Sleeps this long, then answers (the client should have given up).
    Hang(Duration),
    /// 200 with a body that is not JSON.
    Malformed,
    /// 200 with Gemini's answer to a blocked prompt: no candidates, a block reason.
    Blocked,
    /// 200 whose Content-Length promises more bytes than are sent (raw server only).
    Truncated,
    /// 400 whose message names a request field the server does not take.
    Refuses(&'static str),
}

/// One request as the server received it.
#[derive(Debug, Clone)]
struct Seen {
    /// Path and query.
    path: String,
    authorization: Option<String>,
    goog_key: Option<String>,
    body: Value,
}

struct Shared {
    label: &'static str,
    script: Mutex<VecDeque<Fault>>,
    /// What happens once the script is used up.
    then: Fault,
    hits: AtomicUsize,
    seen: Mutex<Vec<Seen>>,
}

impl Shared {
    /// Records a request and returns its 1-based number and its fault.
    fn arrive(
        &self,
        path: String,
        authorization: Option<String>,
        goog_key: Option<String>,
        body: &[u8],
    ) -> (usize, Fault) {
        let n = self.hits.fetch_add(1, Ordering::SeqCst) + 1;
        self.seen.lock().unwrap().push(Seen {
            path,
            authorization,
            goog_key,
            body: serde_json::from_slice(body).unwrap_or(Value::Null),
        });
        let fault = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or_else(|| self.then.clone());
        (n, fault)
    }
}

#[derive(Clone)]
struct FakeServer {
    shared: Arc<Shared>,
    /// `http://127.0.0.1:PORT`
    base: String,
}

impl FakeServer {
    fn shared(label: &'static str, script: Vec<Fault>, then: Fault) -> Arc<Shared> {
        Arc::new(Shared {
            label,
            script: Mutex::new(script.into()),
            then,
            hits: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
        })
    }

    /// An axum server speaking both wire formats.
    async fn start(label: &'static str, script: Vec<Fault>, then: Fault) -> Self {
        let shared = Self::shared(label, script, then);
        let app = Router::new()
            .route("/v1/chat/completions", post(handle))
            .route("/v1/completions", post(handle))
            .route("/v1beta/models/{*rest}", post(handle))
            .with_state(shared.clone());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FakeServer {
            shared,
            base: format!("http://{addr}"),
        }
    }

    /// A hand-written HTTP/1.1 server, one request per connection, that can
    /// send a body shorter than its Content-Length.
    async fn start_raw(label: &'static str, script: Vec<Fault>, then: Fault) -> Self {
        let shared = Self::shared(label, script, then);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let s = shared.clone();
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                let s = s.clone();
                tokio::spawn(async move {
                    let _ = raw_connection(sock, s).await;
                });
            }
        });
        FakeServer {
            shared,
            base: format!("http://{addr}"),
        }
    }

    fn hits(&self) -> usize {
        self.shared.hits.load(Ordering::SeqCst)
    }

    fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    fn openai_base(&self) -> String {
        format!("{}/v1", self.base)
    }

    fn gemini_base(&self) -> String {
        format!("{}/v1beta", self.base)
    }
}

/// The text of the server's `n`-th answer (non-ASCII on purpose).
fn answer(label: &str, n: usize) -> String {
    format!("{label} answer #{n} — naïve ✓")
}

/// A success body in the wire format of `path`. Token counts differ per format
/// so that parsing the right fields is checked.
fn success_body(path: &str, label: &str, n: usize) -> String {
    let text = answer(label, n);
    if path.contains(":generateContent") {
        // Two parts: the provider must concatenate them.
        let mid = text.char_indices().nth(5).map(|(i, _)| i).unwrap();
        json!({
            "candidates": [{
                "content": {"role": "model", "parts": [{"text": &text[..mid]}, {"text": &text[mid..]}]},
                "finishReason": "STOP",
            }],
            "usageMetadata": {"promptTokenCount": 13, "candidatesTokenCount": 5, "totalTokenCount": 18},
        })
    } else if path.ends_with("/chat/completions") {
        json!({
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18},
        })
    } else {
        json!({
            "id": "cmpl-1",
            "object": "text_completion",
            "choices": [{"index": 0, "text": text, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 17, "completion_tokens": 3, "total_tokens": 20},
        })
    }
    .to_string()
}

fn json_response(status: StatusCode, body: String) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn handle(
    State(s): State<Arc<Shared>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri
        .path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_default();
    let h = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    };
    let (n, fault) = s.arrive(path.clone(), h("authorization"), h("x-goog-api-key"), &body);
    match fault {
        Fault::Ok => json_response(StatusCode::OK, success_body(&path, s.label, n)),
        Fault::Status(code, retry_after) => {
            let mut r = json_response(
                StatusCode::from_u16(code).unwrap(),
                format!("{{\"error\":{{\"message\":\"injected {code}\"}}}}"),
            );
            if let Some(ra) = retry_after {
                r.headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from_static(ra));
            }
            r
        }
        Fault::Hang(d) => {
            tokio::time::sleep(d).await;
            json_response(StatusCode::OK, success_body(&path, s.label, n))
        }
        Fault::Malformed => json_response(StatusCode::OK, "{not json".into()),
        Fault::Refuses(field) => json_response(
            StatusCode::BAD_REQUEST,
            json!({"error": {"message": format!("Unrecognized request argument supplied: {field}")}})
                .to_string(),
        ),
        Fault::Blocked => json_response(
            StatusCode::OK,
            json!({"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 9}})
                .to_string(),
        ),
        // Not expressible through axum; a non-retryable status makes misuse obvious.
        Fault::Truncated => json_response(
            StatusCode::IM_A_TEAPOT,
            "Truncated needs FakeServer::start_raw".into(),
        ),
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Serves one request on a raw connection, then closes it.
async fn raw_connection(mut sock: TcpStream, s: Arc<Shared>) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = find(&buf, b"\r\n\r\n") {
            break i + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    };
    let content_length: usize = header("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    // Read the whole request body so that closing the socket is a clean FIN, not a reset.
    while buf.len() < head_end + content_length {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let path = head
        .lines()
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .unwrap_or("/")
        .to_string();
    let body_end = buf.len().min(head_end + content_length);
    let (n, fault) = s.arrive(
        path.clone(),
        header("authorization"),
        header("x-goog-api-key"),
        &buf[head_end..body_end],
    );
    let full = success_body(&path, s.label, n);
    let response = match fault {
        Fault::Ok => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{full}",
            full.len()
        ),
        Fault::Truncated => format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{}",
            full.len(),
            &full[..full.len() / 2]
        ),
        other => {
            let msg = format!("{other:?} is not supported by the raw server");
            format!(
                "HTTP/1.1 418 I'm a teapot\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{msg}",
                msg.len()
            )
        }
    };
    sock.write_all(response.as_bytes()).await?;
    sock.flush().await?;
    sock.shutdown().await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// Clients, traces and helpers
// ---------------------------------------------------------------------------

/// Fast retries; `timeout_secs` 5 except in the hang tests.
fn retry(max_retries: u32, timeout_secs: u64) -> RetryConfig {
    RetryConfig {
        max_retries,
        base_delay_ms: 10,
        max_delay_ms: 50,
        timeout_secs,
    }
}

fn openai(server: &FakeServer, role: &str, mode: Mode, retry: RetryConfig) -> LmClient {
    let model = OpenAiModel::new(
        &server.openai_base(),
        "gpt-test",
        Some(KEY.to_string()),
        mode,
        Duration::from_secs(retry.timeout_secs),
    )
    .unwrap();
    LmClient::new(role, Arc::new(model), retry)
}

fn gemini(server: &FakeServer, role: &str, retry: RetryConfig) -> LmClient {
    let model = GeminiModel::new(
        &server.gemini_base(),
        "gemini-test",
        Some(KEY.to_string()),
        Duration::from_secs(retry.timeout_secs),
    )
    .unwrap();
    LmClient::new(role, Arc::new(model), retry)
}

/// One client call, bounded in time.
async fn call(client: &LmClient, req: &LmRequest) -> Result<LmOutput, LmError> {
    let ctx = CallContext {
        predictor: Some("qa".into()),
        ..Default::default()
    };
    tokio::time::timeout(CALL_BOUND, client.call(req, &ctx))
        .await
        .expect("the call finished within its time bound")
}

fn user(text: &str) -> LmRequest {
    LmRequest::chat(vec![ChatMessage {
        role: "user".into(),
        content: text.into(),
    }])
}

/// A trace database with a running store writer.
struct Traced {
    _dir: tempfile::TempDir,
    db: PathBuf,
    writer: Writer,
}

/// The columns of a `traces` row that these tests check.
#[derive(Debug)]
struct Row {
    role: Option<String>,
    provider: String,
    model: String,
    predictor: Option<String>,
    attempts: i64,
    cache_hit: i64,
    error: Option<String>,
    request_json: String,
    response_text: Option<String>,
    prompt_tokens: i64,
    completion_tokens: i64,
}

impl Traced {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("lm.db");
        let writer = Writer::start(&db).unwrap();
        Traced {
            _dir: dir,
            db,
            writer,
        }
    }

    /// A trace sink writing to this database.
    fn sink(&self) -> TraceSink {
        TraceSink::new(&self.writer)
    }

    /// Flushes the tracer and reads every row in insertion order.
    fn rows(&self) -> Vec<Row> {
        self.writer.flush().unwrap();
        let store = Store::open_read_only(&self.db).unwrap();
        let mut stmt = store
            .conn()
            .prepare(
                "SELECT role, provider, model, predictor, attempts, cache_hit, error, \
                 request_json, response_text, prompt_tokens, completion_tokens \
                 FROM traces ORDER BY id",
            )
            .unwrap();
        let rows = stmt
            .query_map([], |r| {
                Ok(Row {
                    role: r.get(0)?,
                    provider: r.get(1)?,
                    model: r.get(2)?,
                    predictor: r.get(3)?,
                    attempts: r.get(4)?,
                    cache_hit: r.get(5)?,
                    error: r.get(6)?,
                    request_json: r.get(7)?,
                    response_text: r.get(8)?,
                    prompt_tokens: r.get(9)?,
                    completion_tokens: r.get(10)?,
                })
            })
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        assert_eq!(rows.len() as i64, store.count("traces").unwrap());
        rows
    }

    /// Checks the traces against `(attempts, error substring)` per call, in
    /// order, and that the API key is nowhere in the database.
    fn expect(&self, expected: &[(i64, Option<&str>)]) -> Vec<Row> {
        let rows = self.rows();
        assert_eq!(
            rows.len(),
            expected.len(),
            "one trace row per call: {rows:#?}"
        );
        for (row, (attempts, error)) in rows.iter().zip(expected) {
            assert_eq!(row.attempts, *attempts, "{row:#?}");
            match error {
                Some(e) => {
                    let got = row.error.as_deref().unwrap_or_else(|| panic!("{row:#?}"));
                    assert!(got.contains(e), "error `{got}` lacks `{e}`");
                    assert_eq!(row.response_text, None, "{row:#?}");
                }
                None => {
                    assert_eq!(row.error, None, "{row:#?}");
                    assert!(row.response_text.is_some(), "{row:#?}");
                }
            }
            assert_eq!(row.predictor.as_deref(), Some("qa"));
            let req: LmRequest = serde_json::from_str(&row.request_json).unwrap();
            assert!(!row.request_json.is_empty(), "{req:?}");
        }
        assert_no_secret(&self.db);
        rows
    }
}

/// The API key appears in no trace or cache column, nor anywhere in the
/// database files' bytes.
fn assert_no_secret(db: &Path) {
    let store = Store::open(db).unwrap();
    let mut texts: Vec<String> = Vec::new();
    for sql in [
        "SELECT COALESCE(request_json, '') || COALESCE(response_text, '') || COALESCE(error, '') \
         || COALESCE(role, '') || provider || model FROM traces",
        "SELECT key || provider || model || response_json FROM lm_cache",
    ] {
        let mut stmt = store.conn().prepare(sql).unwrap();
        texts.extend(
            stmt.query_map([], |r| r.get::<_, String>(0))
                .unwrap()
                .map(Result::unwrap),
        );
    }
    for t in &texts {
        assert!(
            !t.contains(KEY),
            "the API key leaked into the database: {t}"
        );
        assert!(!t.contains("SECRET"), "part of the API key leaked: {t}");
    }
    for suffix in ["", "-wal"] {
        let mut p = db.as_os_str().to_owned();
        p.push(suffix);
        if let Ok(bytes) = std::fs::read(PathBuf::from(p)) {
            assert!(
                find(&bytes, KEY.as_bytes()).is_none(),
                "the API key is in the database file{suffix}"
            );
        }
    }
}

fn approx(v: &Value, expected: f64) -> bool {
    v.as_f64().is_some_and(|x| (x - expected).abs() < 1e-6)
}

// ---------------------------------------------------------------------------
// Faults and retries
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_429_is_honoured() {
    let server = FakeServer::start("openai", vec![Fault::Status(429, Some("1"))], Fault::Ok).await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(3, 5)).with_tracer(traced.sink());

    let start = Instant::now();
    let out = call(&client, &user("rate limited")).await.unwrap();
    let elapsed = start.elapsed();

    assert_eq!(out.attempts, 2);
    assert!(!out.cache_hit);
    assert_eq!(out.response.text(), answer("openai", 2));
    // base_delay_ms is 10: only the server's Retry-After explains a 1 s wait.
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");
    assert_eq!(server.hits(), 2);
    let rows = traced.expect(&[(2, None)]);
    assert_eq!(rows[0].cache_hit, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_500_and_503_are_retried() {
    let server = FakeServer::start(
        "openai",
        vec![Fault::Status(500, None), Fault::Status(503, None)],
        Fault::Ok,
    )
    .await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(3, 5)).with_tracer(traced.sink());

    let out = call(&client, &user("flaky")).await.unwrap();
    assert_eq!(out.attempts, 3);
    assert_eq!(out.response.text(), answer("openai", 3));
    assert_eq!(
        (out.response.prompt_tokens, out.response.completion_tokens),
        (11, 7)
    );
    assert_eq!(server.hits(), 3);
    let rows = traced.expect(&[(3, None)]);
    assert_eq!(rows[0].cache_hit, 0);
    assert_eq!((rows[0].prompt_tokens, rows[0].completion_tokens), (11, 7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hang_past_the_timeout_is_retried() {
    let server = FakeServer::start(
        "openai",
        vec![Fault::Hang(Duration::from_secs(8))],
        Fault::Ok,
    )
    .await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(2, 1)).with_tracer(traced.sink());

    let start = Instant::now();
    let out = call(&client, &user("slow")).await.unwrap();
    let elapsed = start.elapsed();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.response.text(), answer("openai", 2));
    assert!(elapsed >= Duration::from_millis(990), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(6), "{elapsed:?}");
    assert_eq!(server.hits(), 2);
    traced.expect(&[(2, None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hanging_every_time_ends_in_a_timeout_error() {
    let server = FakeServer::start("openai", vec![], Fault::Hang(Duration::from_secs(15))).await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(1, 1)).with_tracer(traced.sink());

    let start = Instant::now();
    let err = call(&client, &user("never answers")).await.unwrap_err();
    assert!(matches!(err, LmError::Timeout(_)), "{err:?}");
    assert!(
        start.elapsed() < Duration::from_secs(8),
        "{:?}",
        start.elapsed()
    );
    assert_eq!(server.hits(), 2);
    let rows = traced.expect(&[(2, Some("timed out"))]);
    assert_eq!(rows[0].cache_hit, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_is_retried_then_reported() {
    let server = FakeServer::start(
        "openai",
        vec![
            Fault::Malformed,
            Fault::Ok,
            Fault::Malformed,
            Fault::Malformed,
            Fault::Malformed,
        ],
        Fault::Ok,
    )
    .await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(2, 5)).with_tracer(traced.sink());

    let out = call(&client, &user("once malformed")).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.response.text(), answer("openai", 2));
    assert_eq!(server.hits(), 2);

    let err = call(&client, &user("always malformed")).await.unwrap_err();
    assert!(matches!(err, LmError::Malformed(_)), "{err:?}");
    assert_eq!(server.hits(), 5);
    let rows = traced.expect(&[(2, None), (3, Some("malformed response"))]);
    assert!(rows.iter().all(|r| r.cache_hit == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_body_is_retried_and_never_panics() {
    let server = FakeServer::start_raw(
        "raw",
        vec![
            Fault::Truncated,
            Fault::Ok,
            Fault::Truncated,
            Fault::Truncated,
        ],
        Fault::Ok,
    )
    .await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(1, 5)).with_tracer(traced.sink());

    let out = call(&client, &user("cut once")).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.response.text(), answer("raw", 2));
    assert_eq!(server.hits(), 2);

    let err = call(&client, &user("cut every time")).await.unwrap_err();
    assert!(
        matches!(err, LmError::Malformed(_) | LmError::Connection(_)),
        "{err:?}"
    );
    assert_eq!(server.hits(), 4);
    let rows = traced.expect(&[(2, None), (2, Some(""))]);
    assert!(rows[1].error.is_some());

    // The same fault through the Gemini provider.
    let gserver = FakeServer::start_raw("graw", vec![Fault::Truncated], Fault::Ok).await;
    let gclient = gemini(&gserver, "task", retry(1, 5));
    let out = call(&gclient, &user("cut once")).await.unwrap();
    assert_eq!(out.attempts, 2);
    assert_eq!(out.response.text(), answer("graw", 2));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gemini_refusal_is_not_retried() {
    // A blocked prompt gets the same refusal every time; retrying it only
    // spends quota (it used to be taken for a malformed body and retried).
    let server = FakeServer::start("gemini", vec![Fault::Blocked], Fault::Ok).await;
    let traced = Traced::new();
    let client = gemini(&server, "task", retry(3, 5)).with_tracer(traced.sink());
    let err = call(&client, &user("something unsafe")).await.unwrap_err();
    match &err {
        LmError::Provider(msg) => assert!(msg.contains("prompt blocked (SAFETY)"), "{msg}"),
        other => panic!("expected a provider refusal, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.hits(), 1);
    traced.expect(&[(1, Some("prompt blocked (SAFETY)"))]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_is_not_retried() {
    let server = FakeServer::start("openai", vec![], Fault::Status(400, None)).await;
    let traced = Traced::new();
    let client = openai(&server, "task", Mode::Chat, retry(4, 5)).with_tracer(traced.sink());

    let err = call(&client, &user("bad request")).await.unwrap_err();
    match &err {
        LmError::Http {
            status,
            retry_after,
            body,
        } => {
            assert_eq!(*status, 400);
            assert_eq!(*retry_after, None);
            assert!(body.contains("injected 400"), "{body}");
        }
        other => panic!("expected HTTP 400, got {other:?}"),
    }
    assert!(!err.is_retryable());
    assert_eq!(server.hits(), 1);
    let rows = traced.expect(&[(1, Some("HTTP 400"))]);
    assert_eq!(rows[0].cache_hit, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fallback_answers_when_the_primary_exhausts_its_retries() {
    let primary_server = FakeServer::start("primary", vec![], Fault::Status(500, None)).await;
    let fallback_server = FakeServer::start("fallback", vec![], Fault::Ok).await;
    let traced = Traced::new();
    let fallback =
        Arc::new(gemini(&fallback_server, "backup", retry(1, 5)).with_tracer(traced.sink()));
    let primary = openai(&primary_server, "task", Mode::Chat, retry(1, 5))
        .with_tracer(traced.sink())
        .with_fallback(fallback.clone());

    let out = call(&primary, &user("primary is down")).await.unwrap();
    assert_eq!(out.response.text(), answer("fallback", 1));
    assert_eq!(out.attempts, 1);
    assert_eq!(primary_server.hits(), 2);
    assert_eq!(fallback_server.hits(), 1);

    // A client error is the request's fault: the fallback is not asked.
    let bad_server = FakeServer::start("bad", vec![], Fault::Status(400, None)).await;
    let bad = openai(&bad_server, "task", Mode::Chat, retry(1, 5))
        .with_tracer(traced.sink())
        .with_fallback(fallback);
    let err = call(&bad, &user("bad request")).await.unwrap_err();
    assert!(matches!(err, LmError::Http { status: 400, .. }), "{err:?}");
    assert_eq!(bad_server.hits(), 1);
    assert_eq!(fallback_server.hits(), 1);

    let rows = traced.expect(&[(2, Some("HTTP 500")), (1, None), (1, Some("HTTP 400"))]);
    assert_eq!(rows[0].role.as_deref(), Some("task"));
    assert_eq!(rows[0].provider, "openai");
    assert_eq!(rows[1].role.as_deref(), Some("backup"));
    assert_eq!(rows[1].provider, "gemini");
    assert_eq!(rows[1].model, "gemini-test");
    assert_eq!(
        rows[1].response_text.as_deref(),
        Some(answer("fallback", 1).as_str())
    );
    assert!(rows.iter().all(|r| r.cache_hit == 0));
}

/// A server's Retry-After is untrusted input: absurd values must not panic.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn absurd_retry_after_values_do_not_panic() {
    let server = FakeServer::start(
        "openai",
        vec![
            Fault::Status(503, Some("1e30")),
            Fault::Status(429, Some("NaN")),
        ],
        Fault::Ok,
    )
    .await;
    let client = openai(&server, "task", Mode::Chat, retry(3, 5));
    let start = Instant::now();
    let out = call(&client, &user("weird headers")).await.unwrap();
    assert_eq!(out.attempts, 3);
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(server.hits(), 3);

    for v in ["1e30", "-1", "NaN", "inf", "soon", ""] {
        assert_eq!(parse_retry_after(v), None, "{v:?}");
    }
    assert_eq!(parse_retry_after("2"), Some(Duration::from_secs(2)));
}

// ---------------------------------------------------------------------------
// Auth, wire formats
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_go_in_the_right_header_and_nowhere_else() {
    let server = FakeServer::start("srv", vec![Fault::Status(503, None)], Fault::Ok).await;
    let traced = Traced::new();
    let oa = openai(&server, "task", Mode::Chat, retry(2, 5)).with_tracer(traced.sink());
    let gm = gemini(&server, "judge", retry(2, 5)).with_tracer(traced.sink());

    call(&oa, &user("hello openai")).await.unwrap();
    let openai_seen = server.seen();
    assert_eq!(openai_seen.len(), 2, "the 503 was retried");
    for s in &openai_seen {
        assert_eq!(s.path, "/v1/chat/completions");
        assert_eq!(
            s.authorization.as_deref(),
            Some("Bearer sk-test-SECRET"),
            "every attempt is authenticated"
        );
        assert_eq!(s.goog_key, None);
    }

    call(&gm, &user("hello gemini")).await.unwrap();
    let gemini_seen = &server.seen()[2..];
    assert_eq!(gemini_seen.len(), 1);
    let g = &gemini_seen[0];
    assert_eq!(g.path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(g.goog_key.as_deref(), Some(KEY));
    assert_eq!(g.authorization, None);
    assert!(!g.path.contains("key="), "the key is never in the URL");

    // A Gemini model without a key fails fast, before any request.
    let keyless = GeminiModel::new(
        &server.gemini_base(),
        "gemini-test",
        None,
        Duration::from_secs(5),
    )
    .unwrap();
    let keyless = LmClient::new("nokey", Arc::new(keyless), retry(2, 5));
    let err = call(&keyless, &user("no key")).await.unwrap_err();
    assert!(matches!(err, LmError::Config(_)), "{err:?}");
    assert_eq!(server.hits(), 3);

    traced.expect(&[(2, None), (1, None)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_sends_system_instruction_and_parses_parts_and_usage() {
    let server = FakeServer::start(
        "gemini",
        vec![Fault::Status(503, Some("0")), Fault::Malformed],
        Fault::Ok,
    )
    .await;
    let traced = Traced::new();
    let client = gemini(&server, "task", retry(3, 5)).with_tracer(traced.sink());
    let mut req = LmRequest::chat(vec![
        ChatMessage {
            role: "system".into(),
            content: "You are terse.".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "2+2?".into(),
        },
        ChatMessage {
            role: "assistant".into(),
            content: "4".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "3+3?".into(),
        },
    ]);
    req.params.temperature = 0.25;
    req.params.max_tokens = 42;
    req.params.stop = vec!["END".into()];
    req.params.seed = Some(7);

    let out = call(&client, &req).await.unwrap();
    assert_eq!(out.attempts, 3, "503 and malformed JSON are both retried");
    assert_eq!(out.response.text(), answer("gemini", 3), "parts are joined");
    assert_eq!(out.response.choices.len(), 1);
    assert_eq!(
        (out.response.prompt_tokens, out.response.completion_tokens),
        (13, 5)
    );

    let seen = server.seen();
    assert_eq!(seen.len(), 3);
    let body = &seen[2].body;
    assert_eq!(seen[2].path, "/v1beta/models/gemini-test:generateContent");
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "You are terse."}]})
    );
    assert_eq!(
        body["contents"],
        json!([
            {"role": "user", "parts": [{"text": "2+2?"}]},
            {"role": "model", "parts": [{"text": "4"}]},
            {"role": "user", "parts": [{"text": "3+3?"}]},
        ])
    );
    let config = &body["generationConfig"];
    assert!(approx(&config["temperature"], 0.25), "{config}");
    assert_eq!(config["maxOutputTokens"], json!(42));
    assert_eq!(config["stopSequences"], json!(["END"]));
    assert_eq!(config["candidateCount"], json!(1));
    assert_eq!(config["seed"], json!(7));
    assert!(body.get("model").is_none() && body.get("messages").is_none());

    // A plain-text prompt has no systemInstruction.
    call(&client, &LmRequest::text("just text")).await.unwrap();
    let body = &server.seen()[3].body;
    assert!(body.get("systemInstruction").is_none(), "{body}");
    assert_eq!(
        body["contents"],
        json!([{"role": "user", "parts": [{"text": "just text"}]}])
    );
    assert!(body["generationConfig"].get("stopSequences").is_none());

    // A client error is not retried through Gemini either.
    let bad = FakeServer::start("gemini", vec![], Fault::Status(403, None)).await;
    let bad_client = gemini(&bad, "task", retry(3, 5)).with_tracer(traced.sink());
    let err = call(&bad_client, &user("forbidden")).await.unwrap_err();
    assert!(matches!(err, LmError::Http { status: 403, .. }), "{err:?}");
    assert_eq!(bad.hits(), 1);

    let rows = traced.expect(&[(3, None), (1, None), (1, Some("HTTP 403"))]);
    assert_eq!((rows[0].prompt_tokens, rows[0].completion_tokens), (13, 5));
    assert!(rows.iter().all(|r| r.provider == "gemini"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_completion_mode_sends_prompt_and_chat_mode_sends_messages() {
    let server = FakeServer::start("openai", vec![], Fault::Ok).await;
    let traced = Traced::new();
    let chat = openai(&server, "task", Mode::Chat, retry(1, 5)).with_tracer(traced.sink());
    let completion =
        openai(&server, "base", Mode::Completion, retry(1, 5)).with_tracer(traced.sink());

    let messages = vec![
        ChatMessage {
            role: "system".into(),
            content: "Be brief.".into(),
        },
        ChatMessage {
            role: "user".into(),
            content: "Name a colour.".into(),
        },
    ];
    let mut req = LmRequest::chat(messages.clone());
    req.params.temperature = 0.7;
    req.params.max_tokens = 64;
    req.params.stop = vec!["\n\n".into(), "###".into()];
    let out = call(&chat, &req).await.unwrap();
    assert_eq!(out.response.text(), answer("openai", 1));
    assert_eq!(
        (out.response.prompt_tokens, out.response.completion_tokens),
        (11, 7)
    );
    let seen = &server.seen()[0];
    assert_eq!(seen.path, "/v1/chat/completions");
    let b = &seen.body;
    assert_eq!(b["model"], json!("gpt-test"));
    assert_eq!(b["messages"], json!(messages));
    assert!(b.get("prompt").is_none(), "{b}");
    assert_eq!(b["stop"], json!(["\n\n", "###"]));
    assert_eq!(b["max_tokens"], json!(64));
    assert!(approx(&b["temperature"], 0.7), "{b}");
    assert_eq!(b["n"], json!(1));
    assert!(b.get("seed").is_none());

    let mut req = LmRequest::text("Once upon a time");
    req.params.max_tokens = 16;
    req.params.seed = Some(3);
    let out = call(&completion, &req).await.unwrap();
    assert_eq!(out.response.text(), answer("openai", 2));
    assert_eq!(
        (out.response.prompt_tokens, out.response.completion_tokens),
        (17, 3)
    );
    let seen = &server.seen()[1];
    assert_eq!(seen.path, "/v1/completions");
    let b = &seen.body;
    assert_eq!(b["prompt"], json!("Once upon a time"));
    assert!(b.get("messages").is_none(), "{b}");
    assert!(
        b.get("stop").is_none(),
        "no stop key when there are no stops"
    );
    assert_eq!(b["max_tokens"], json!(16));
    assert!(approx(&b["temperature"], 0.0), "{b}");
    assert_eq!(b["seed"], json!(3));

    // Chat prompts are flattened for completion mode; text prompts become one user message in chat mode.
    call(&completion, &LmRequest::chat(messages)).await.unwrap();
    assert_eq!(
        server.seen()[2].body["prompt"],
        json!("system: Be brief.\nuser: Name a colour.\nassistant:")
    );
    call(&chat, &LmRequest::text("plain")).await.unwrap();
    assert_eq!(
        server.seen()[3].body["messages"],
        json!([{"role": "user", "content": "plain"}])
    );

    let rows = traced.expect(&[(1, None), (1, None), (1, None), (1, None)]);
    assert_eq!(rows[0].role.as_deref(), Some("task"));
    assert_eq!(rows[1].role.as_deref(), Some("base"));
    assert_eq!((rows[1].prompt_tokens, rows[1].completion_tokens), (17, 3));
}

// ---------------------------------------------------------------------------
// Cache and budget
// ---------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_cache_hits_are_identical_and_skip_the_server() {
    let server = FakeServer::start("openai", vec![], Fault::Ok).await;
    let traced = Traced::new();
    let cache = Arc::new(LmCache::memory_only(100));
    let client = openai(&server, "task", Mode::Chat, retry(1, 5))
        .with_cache(cache)
        .with_tracer(traced.sink());
    let req = user("cache me");

    let first = call(&client, &req).await.unwrap();
    assert!(!first.cache_hit);
    assert_eq!(first.attempts, 1);
    assert_eq!(server.hits(), 1);

    let second = call(&client, &req).await.unwrap();
    assert!(second.cache_hit);
    assert_eq!(second.attempts, 0);
    assert_eq!(
        second.response.text().as_bytes(),
        first.response.text().as_bytes()
    );
    assert_eq!(second.response, first.response);
    assert_eq!(server.hits(), 1, "a hit never reaches the server");

    let mut resample = req.clone();
    resample.rollout_id = Some("rollout-2".into());
    let third = call(&client, &resample).await.unwrap();
    assert!(!third.cache_hit);
    assert_eq!(server.hits(), 2, "another rollout id is another key");
    assert_eq!(third.response.text(), answer("openai", 2));

    let rows = traced.expect(&[(1, None), (0, None), (1, None)]);
    assert_eq!(
        rows.iter().map(|r| r.cache_hit).collect::<Vec<_>>(),
        vec![0, 1, 0]
    );
    assert_eq!(rows[0].response_text, rows[1].response_text);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_persistent_cache_tier_survives_a_new_cache() {
    let server = FakeServer::start("gemini", vec![], Fault::Ok).await;
    let traced = Traced::new();
    let req = user("persist me");

    let first = {
        let cache = Arc::new(LmCache::with_db(100, &traced.writer).unwrap());
        let client = gemini(&server, "task", retry(1, 5))
            .with_cache(cache)
            .with_tracer(traced.sink());
        call(&client, &req).await.unwrap()
    };
    assert!(!first.cache_hit);
    assert_eq!(server.hits(), 1);

    // A new cache (empty memory tier) over the same file, and a new client.
    traced.writer.flush().unwrap();
    let cache = Arc::new(LmCache::with_db(100, &traced.writer).unwrap());
    let client = gemini(&server, "task", retry(1, 5))
        .with_cache(cache)
        .with_tracer(traced.sink());
    let again = call(&client, &req).await.unwrap();
    assert!(again.cache_hit);
    assert_eq!(again.attempts, 0);
    assert_eq!(
        again.response.text().as_bytes(),
        first.response.text().as_bytes()
    );
    assert_eq!(again.response, first.response);
    assert_eq!(server.hits(), 1);

    // The hit count is a queued write: committed by the next group commit.
    traced.writer.flush().unwrap();
    let store = Store::open(&traced.db).unwrap();
    assert_eq!(store.count("lm_cache").unwrap(), 1);
    let hits: i64 = store
        .conn()
        .query_row("SELECT hits FROM lm_cache", [], |r| r.get(0))
        .unwrap();
    assert_eq!(hits, 1, "the persistent tier answered the second call");
    let rows = traced.expect(&[(1, None), (0, None)]);
    assert_eq!(rows[1].cache_hit, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_budget_refuses_the_third_uncached_call_before_the_server() {
    let server = FakeServer::start("openai", vec![], Fault::Ok).await;
    let traced = Traced::new();
    let budget = Arc::new(Budget::new(BudgetLimits {
        max_calls: Some(2),
        ..Default::default()
    }));
    let client = openai(&server, "task", Mode::Chat, retry(1, 5))
        .with_cache(Arc::new(LmCache::memory_only(100)))
        .with_budget(budget.clone())
        .with_tracer(traced.sink());

    call(&client, &user("one")).await.unwrap();
    call(&client, &user("two")).await.unwrap();
    // Cache hits are free even when the budget is spent.
    let hit = call(&client, &user("one")).await.unwrap();
    assert!(hit.cache_hit);
    let err = call(&client, &user("three")).await.unwrap_err();
    assert!(matches!(err, LmError::Budget(_)), "{err:?}");
    assert!(!err.is_retryable());
    assert_eq!(
        server.hits(),
        2,
        "the refused call never reached the server"
    );
    let (calls, tokens, _) = budget.used();
    assert_eq!(calls, 2);
    assert_eq!(tokens, 2 * (11 + 7));

    let rows = traced.expect(&[
        (1, None),
        (1, None),
        (0, None),
        (0, Some("budget exhausted")),
    ]);
    assert_eq!(
        rows.iter().map(|r| r.cache_hit).collect::<Vec<_>>(),
        vec![0, 0, 1, 0]
    );
}

/// A request carrying both constraints, as the JSON adapter's do.
fn constrained(text: &str) -> LmRequest {
    let mut r = user(text);
    r.params.grammar = Some("root ::= \"{}\"\n".into());
    r.params.json_schema = Some(
        json!({"type": "object", "properties": {}, "required": [], "additionalProperties": false}),
    );
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_json_schema_goes_as_response_format_in_chat_and_as_json_schema_in_completion() {
    for (mode, key) in [
        (Mode::Chat, "response_format"),
        (Mode::Completion, "json_schema"),
    ] {
        let server = FakeServer::start("openai", vec![], Fault::Ok).await;
        let client = openai(&server, "task", mode, retry(0, 5));
        call(&client, &constrained("q")).await.expect("answered");
        let body = &server.seen()[0].body;
        assert!(body.get(key).is_some(), "{mode:?}: no `{key}` in {body}");
        assert!(
            body.get("grammar").is_none(),
            "{mode:?}: llama-server refuses a request with both"
        );
        if mode == Mode::Chat {
            assert_eq!(body["response_format"]["type"], "json_schema");
            assert_eq!(body["response_format"]["json_schema"]["strict"], true);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_constraint_falls_back_to_the_next_kind_and_is_not_sent_again() {
    // Refuses the schema, then the grammar: the same call ends unconstrained,
    // and the next call goes unconstrained at once.
    let server = FakeServer::start(
        "openai",
        vec![Fault::Refuses("response_format"), Fault::Refuses("grammar")],
        Fault::Ok,
    )
    .await;
    let client = openai(&server, "task", Mode::Chat, retry(0, 5));
    call(&client, &constrained("first"))
        .await
        .expect("answered after two refusals");
    call(&client, &constrained("second"))
        .await
        .expect("answered");
    let seen = server.seen();
    let sent = |i: usize| -> (bool, bool) {
        (
            seen[i].body.get("response_format").is_some(),
            seen[i].body.get("grammar").is_some(),
        )
    };
    assert_eq!(
        seen.len(),
        4,
        "3 tries for the first call, 1 for the second"
    );
    assert_eq!(sent(0), (true, false), "schema first");
    assert_eq!(sent(1), (false, true), "then the grammar");
    assert_eq!(sent(2), (false, false), "then neither");
    assert_eq!(sent(3), (false, false), "refused kinds are not sent again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_that_names_no_constraint_is_an_error_not_a_fallback() {
    let server = FakeServer::start("openai", vec![], Fault::Status(400, None)).await;
    let client = openai(&server, "task", Mode::Chat, retry(0, 5));
    assert!(call(&client, &constrained("q")).await.is_err());
    assert_eq!(server.hits(), 1);
}
