//! An LLM judge: the judge role scores a prediction against a rubric.

use super::{Metric, MetricResult};
use crate::lm::client::{CallContext, LmClient};
use crate::lm::LmRequest;
use serde_json::{Map, Value};
use std::sync::Arc;

/// Scores with a model; the answer's first number (0–10) becomes the score.
pub struct JudgeMetric {
    name: String,
    rubric: String,
    client: Arc<LmClient>,
}

impl JudgeMetric {
    /// A judge named `name` applying `rubric` with `client`.
    pub fn new(name: &str, rubric: String, client: Arc<LmClient>) -> Self {
        JudgeMetric {
            name: name.to_string(),
            rubric,
            client,
        }
    }

    /// The prompt shown to the judge (a text prompt works for base and chat models).
    pub fn prompt(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> String {
        format!(
            "You grade answers.\nRubric: {}\n\nReference answer:\n{}\n\nAnswer to grade:\n{}\n\nGive a score from 0 to 10 on the first line as `Score: N`, then one sentence of feedback.\nScore:",
            self.rubric,
            serde_json::to_string_pretty(gold).unwrap_or_default(),
            serde_json::to_string_pretty(pred).unwrap_or_default()
        )
    }
}

/// First number in the text, read as a 0–10 grade (or 0–1 when it is a fraction).
pub fn parse_grade(text: &str) -> Option<f64> {
    let mut num = String::new();
    for c in text.chars() {
        if c.is_ascii_digit() || (c == '.' && !num.is_empty() && !num.contains('.')) {
            num.push(c);
        } else if !num.is_empty() {
            break;
        }
    }
    let v: f64 = num.trim_end_matches('.').parse().ok()?;
    Some(if v <= 1.0 && num.contains('.') {
        v
    } else {
        (v / 10.0).min(1.0)
    })
}

#[async_trait::async_trait]
impl Metric for JudgeMetric {
    fn name(&self) -> String {
        self.name.clone()
    }

    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let mut req = LmRequest::text(self.prompt(gold, pred));
        req.params = self.client.default_params();
        req.params.stop = vec!["\n\n".into()];
        match self
            .client
            .call(
                &req,
                &CallContext {
                    predictor: Some(format!("judge:{}", self.name)),
                    ..Default::default()
                },
            )
            .await
        {
            Ok(out) => {
                let text = out.response.text().to_string();
                match parse_grade(&text) {
                    Some(s) => MetricResult::new(s, text.trim().to_string()),
                    None => MetricResult::new(0.0, format!("judge gave no score: {}", text.trim())),
                }
            }
            Err(e) => MetricResult::new(0.0, format!("judge failed: {e}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_grade;

    #[test]
    fn grades() {
        assert_eq!(parse_grade(" 7\nGood."), Some(0.7));
        assert_eq!(parse_grade("10/10"), Some(1.0));
        assert_eq!(parse_grade("0.85 overall"), Some(0.85));
        assert_eq!(parse_grade("none"), None);
    }
}
