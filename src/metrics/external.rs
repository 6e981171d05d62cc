//! External-command metrics: a user's own scorer in any language.

use super::{Metric, MetricResult};
use serde_json::{json, Map, Value};
use std::io::Write;
use std::process::{Command, Stdio};

/// Runs `argv` per example with `{"gold", "prediction"}` JSON on stdin and reads
/// `{"score": f, "feedback": "..."}` from stdout. A failing command scores 0
/// with the failure as feedback, so one bad example never aborts a run.
pub struct CommandMetric {
    name: String,
    argv: Vec<String>,
}

impl CommandMetric {
    /// A metric running `argv` (program and arguments).
    pub fn new(name: &str, argv: Vec<String>) -> crate::Result<Self> {
        if argv.is_empty() {
            return Err(crate::Error::Invalid(format!(
                "metric `{name}`: `command` is empty; expected [program, args...]"
            )));
        }
        Ok(CommandMetric {
            name: name.to_string(),
            argv,
        })
    }

    fn run(&self, input: String) -> Result<MetricResult, String> {
        let mut child = Command::new(&self.argv[0])
            .args(&self.argv[1..])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot start `{}`: {e}", self.argv[0]))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A command that does not read its input closes the pipe early;
            // that is its choice, not a failure.
            match stdin.write_all(input.as_bytes()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(format!("writing stdin: {e}"))
                }
                _ => {}
            }
        }
        let out = child.wait_with_output().map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(format!(
                "`{}` exited with {}: {}",
                self.argv[0],
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
        let v: Value = serde_json::from_slice(&out.stdout).map_err(|e| {
            format!("stdout is not JSON ({e}); expected {{\"score\": number, \"feedback\": text}}")
        })?;
        let score = v
            .get("score")
            .and_then(Value::as_f64)
            .ok_or("stdout JSON has no numeric `score`")?;
        let feedback = v
            .get("feedback")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        Ok(MetricResult::new(score, feedback))
    }
}

#[async_trait::async_trait]
impl Metric for CommandMetric {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let input = json!({"gold": gold, "prediction": pred}).to_string();
        let this = CommandMetric {
            name: self.name.clone(),
            argv: self.argv.clone(),
        };
        match tokio::task::spawn_blocking(move || this.run(input)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => MetricResult::new(0.0, format!("metric command failed: {e}")),
            Err(e) => MetricResult::new(0.0, format!("metric command panicked: {e}")),
        }
    }
}
