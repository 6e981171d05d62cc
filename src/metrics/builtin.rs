//! Field-level built-in metrics.

use super::{list_of, set_f1, text_of, Metric, MetricResult};
use serde_json::{Map, Value};

fn norm(s: &str) -> String {
    s.trim()
        .trim_matches(|c| c == '"' || c == '\'')
        .to_lowercase()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// 1 when the field equals the gold value after trimming, case and whitespace folding.
pub struct ExactMatch(pub String);

#[async_trait::async_trait]
impl Metric for ExactMatch {
    fn name(&self) -> String {
        format!("exact_match:{}", self.0)
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let (g, p) = (text_of(gold, &self.0), text_of(pred, &self.0));
        if norm(&g) == norm(&p) {
            MetricResult::new(1.0, format!("`{}` matches", self.0))
        } else {
            MetricResult::new(0.0, format!("`{}` is `{p}`; expected `{g}`", self.0))
        }
    }
}

/// Like exact match, but `-`, `_` and spaces are the same (Literal values).
pub struct LiteralMatch(pub String);

#[async_trait::async_trait]
impl Metric for LiteralMatch {
    fn name(&self) -> String {
        format!("literal_match:{}", self.0)
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let key = |s: &str| norm(s).replace(['-', ' '], "_");
        let (g, p) = (text_of(gold, &self.0), text_of(pred, &self.0));
        if key(&g) == key(&p) {
            MetricResult::new(1.0, format!("`{}` is `{g}` as expected", self.0))
        } else {
            MetricResult::new(0.0, format!("`{}` is `{p}`; expected `{g}`", self.0))
        }
    }
}

fn tokens(s: &str) -> Vec<String> {
    s.to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|t| !t.is_empty())
        .map(str::to_string)
        .collect()
}

/// SQuAD-style token F1 between the field and the gold text.
pub struct TokenF1(pub String);

/// Token F1 with multiplicity (bag of words), as in SQuAD.
pub fn token_f1(gold: &str, pred: &str) -> f64 {
    let g = tokens(gold);
    let p = tokens(pred);
    if g.is_empty() && p.is_empty() {
        return 1.0;
    }
    if g.is_empty() || p.is_empty() {
        return 0.0;
    }
    let mut counts = std::collections::HashMap::new();
    for t in &g {
        *counts.entry(t.as_str()).or_insert(0i32) += 1;
    }
    let mut common = 0;
    for t in &p {
        if let Some(c) = counts.get_mut(t.as_str()) {
            if *c > 0 {
                *c -= 1;
                common += 1;
            }
        }
    }
    if common == 0 {
        return 0.0;
    }
    let precision = common as f64 / p.len() as f64;
    let recall = common as f64 / g.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

#[async_trait::async_trait]
impl Metric for TokenF1 {
    fn name(&self) -> String {
        format!("token_f1:{}", self.0)
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let s = token_f1(&text_of(gold, &self.0), &text_of(pred, &self.0));
        MetricResult::new(s, format!("token F1 of `{}` is {s:.2}", self.0))
    }
}

/// F1 between list items (case-insensitive, duplicates ignored).
pub struct ListF1(pub String);

#[async_trait::async_trait]
impl Metric for ListF1 {
    fn name(&self) -> String {
        format!("list_f1:{}", self.0)
    }
    async fn score(&self, gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let (g, p) = (list_of(gold, &self.0), list_of(pred, &self.0));
        let s = set_f1(&g, &p);
        let missing: Vec<&String> = g.iter().filter(|x| !p.contains(x)).collect();
        let extra: Vec<&String> = p.iter().filter(|x| !g.contains(x)).collect();
        MetricResult::new(
            s,
            format!(
                "`{}` F1 {s:.2}; missing {missing:?}; unexpected {extra:?}",
                self.0
            ),
        )
    }
}

/// 1 when the field matches a regular expression (gold is not consulted).
pub struct RegexMatch {
    field: String,
    re: regex::Regex,
}

impl RegexMatch {
    /// Compiles the pattern; a bad pattern is a clear error.
    pub fn new(field: &str, pattern: &str) -> crate::Result<Self> {
        let re = regex::Regex::new(pattern)
            .map_err(|e| crate::Error::Invalid(format!("metric regex `{pattern}`: {e}")))?;
        Ok(RegexMatch {
            field: field.to_string(),
            re,
        })
    }
}

#[async_trait::async_trait]
impl Metric for RegexMatch {
    fn name(&self) -> String {
        format!("regex:{}:{}", self.field, self.re.as_str())
    }
    async fn score(&self, _gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let p = text_of(pred, &self.field);
        if self.re.is_match(&p) {
            MetricResult::new(
                1.0,
                format!("`{}` matches /{}/", self.field, self.re.as_str()),
            )
        } else {
            MetricResult::new(
                0.0,
                format!(
                    "`{}` = `{p}` does not match /{}/",
                    self.field,
                    self.re.as_str()
                ),
            )
        }
    }
}

/// 1 when the field's word count is within bounds, decaying linearly outside.
pub struct LengthBounds {
    pub field: String,
    pub min_words: usize,
    pub max_words: usize,
}

#[async_trait::async_trait]
impl Metric for LengthBounds {
    fn name(&self) -> String {
        format!(
            "length:{}:{}:{}",
            self.field, self.min_words, self.max_words
        )
    }
    async fn score(&self, _gold: &Map<String, Value>, pred: &Map<String, Value>) -> MetricResult {
        let n = text_of(pred, &self.field).split_whitespace().count();
        let (lo, hi) = (self.min_words, self.max_words);
        let s = if n < lo {
            n as f64 / lo.max(1) as f64
        } else if n > hi {
            (hi as f64 / n as f64).max(0.0)
        } else {
            1.0
        };
        MetricResult::new(
            s,
            format!("`{}` has {n} words; expected {lo} to {hi}", self.field),
        )
    }
}
