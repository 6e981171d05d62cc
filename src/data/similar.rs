//! Near-duplicate detection for generated examples: a normalized name must be
//! new, and a task text must not share too many of its words with a known one
//! (token-set Jaccard similarity at or above a threshold).
//!
//! Exact dedupe (content hash, `expected_name`, normalized task) is what
//! validation and `trainset merge` enforce; a language model asked for "a new
//! devops skill" more often returns a rewording of one it was shown than an
//! exact copy, so synthesis needs the looser test. Jaccard over word sets is
//! used rather than an edit distance because rewordings reorder and swap
//! words: "a checklist for Docker image size" and "Docker image size: a
//! checklist" are far apart by characters and identical by word set.

use serde::Serialize;
use std::collections::BTreeSet;

/// Words too common in skill requests to say anything about the topic:
/// the request boilerplate ("Create a ... skill") and English glue words.
const STOP_WORDS: &[&str] = &[
    "a", "an", "the", "and", "or", "of", "to", "in", "on", "for", "with", "by", "at", "from",
    "into", "how", "when", "what", "your", "you", "is", "are", "be", "it", "its", "as", "that",
    "this", "create", "skill", "guide", "using", "use",
];

/// The topic words of a text: lowercase alphanumeric runs, stop words left out.
pub fn tokens(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
        .collect()
}

/// Jaccard similarity of two word sets: shared words over all words, 0 when
/// both are empty (two texts without topic words say nothing about each other).
pub fn jaccard(a: &BTreeSet<String>, b: &BTreeSet<String>) -> f64 {
    let union = a.union(b).count();
    if union == 0 {
        return 0.0;
    }
    a.intersection(b).count() as f64 / union as f64
}

/// A name compared without case, separators or surrounding space:
/// `Docker-Slim`, `docker slim` and `docker_slim` are one name.
pub fn normalized_name(name: &str) -> String {
    name.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .collect::<Vec<_>>()
        .join("-")
}

/// Why a candidate is a near-duplicate, naming the example it duplicates.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NearDuplicate {
    /// The known example's label (e.g. `trainset #4` or `synthetic #2`).
    pub duplicate_of: String,
    /// The known example's name.
    pub duplicate_name: String,
    /// `name` (same normalized name) or `task` (task words too similar).
    pub by: &'static str,
    /// The task similarity (1 for a same-name match).
    pub similarity: f64,
    /// One sentence: which example, and why.
    pub reason: String,
}

struct Known {
    label: String,
    name: String,
    normalized: String,
    tokens: BTreeSet<String>,
}

/// The examples a candidate must differ from: those of the trainset and those
/// already accepted in this generation.
pub struct SimilarityIndex {
    threshold: f64,
    known: Vec<Known>,
}

impl SimilarityIndex {
    /// An empty index; task texts at or above `threshold` Jaccard similarity
    /// are near-duplicates.
    pub fn new(threshold: f64) -> Self {
        SimilarityIndex {
            threshold,
            known: Vec::new(),
        }
    }

    /// Adds a known example.
    pub fn add(&mut self, label: impl Into<String>, name: &str, task: &str) {
        self.known.push(Known {
            label: label.into(),
            name: name.to_string(),
            normalized: normalized_name(name),
            tokens: tokens(task),
        });
    }

    /// The known example `name`/`task` duplicates, if any: a same-name match
    /// first, else the most similar task at or above the threshold.
    pub fn find(&self, name: &str, task: &str) -> Option<NearDuplicate> {
        let normalized = normalized_name(name);
        if !normalized.is_empty() {
            if let Some(k) = self.known.iter().find(|k| k.normalized == normalized) {
                return Some(NearDuplicate {
                    duplicate_of: k.label.clone(),
                    duplicate_name: k.name.clone(),
                    by: "name",
                    similarity: 1.0,
                    reason: format!(
                        "same name as {} `{}` (normalized `{normalized}`)",
                        k.label, k.name
                    ),
                });
            }
        }
        let words = tokens(task);
        let (best, sim) = self
            .known
            .iter()
            .map(|k| (k, jaccard(&words, &k.tokens)))
            .max_by(|a, b| a.1.partial_cmp(&b.1).unwrap_or(std::cmp::Ordering::Equal))?;
        (sim >= self.threshold).then(|| NearDuplicate {
            duplicate_of: best.label.clone(),
            duplicate_name: best.name.clone(),
            by: "task",
            similarity: sim,
            reason: format!(
                "task shares {:.0}% of its words with {} `{}` (near-duplicate at {:.0}% or more)",
                100.0 * sim,
                best.label,
                best.name,
                100.0 * self.threshold
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reordered_and_reworded_boilerplate_has_the_same_topic_words() {
        let a = tokens("Create a Docker Image Size skill: a checklist for small images");
        let b = tokens("Docker image size - checklist for small images");
        assert_eq!(jaccard(&a, &b), 1.0);
        assert!(!a.contains("create") && !a.contains("skill") && !a.contains("a"));
    }

    #[test]
    fn jaccard_is_shared_over_all_words_and_zero_for_two_empty_sets() {
        let a = tokens("tokio tasks cancellation");
        let b = tokens("tokio tasks shutdown signals");
        // shared {tokio, tasks} = 2 of {tokio, tasks, cancellation, shutdown, signals} = 5
        assert!((jaccard(&a, &b) - 0.4).abs() < 1e-9);
        assert_eq!(jaccard(&tokens("the a"), &tokens("of to")), 0.0);
    }

    #[test]
    fn names_differing_only_in_case_and_separators_are_one_name() {
        assert_eq!(normalized_name(" Docker_Slim "), "docker-slim");
        assert_eq!(
            normalized_name("docker slim"),
            normalized_name("docker-slim")
        );
    }

    #[test]
    fn a_same_name_or_a_similar_task_is_reported_with_the_example_it_duplicates() {
        let mut idx = SimilarityIndex::new(0.6);
        idx.add(
            "trainset #3",
            "tokio-task-cancellation",
            "Create a Tokio Task Cancellation skill: graceful shutdown of spawned tasks",
        );
        let by_name = idx
            .find("Tokio Task Cancellation", "something else entirely")
            .expect("same name");
        assert_eq!(
            (by_name.by, by_name.duplicate_of.as_str()),
            ("name", "trainset #3")
        );
        let by_task = idx
            .find(
                "tokio-shutdown",
                "Create a Tokio Shutdown skill: graceful shutdown of spawned tasks",
            )
            .expect("similar task");
        assert_eq!(by_task.by, "task");
        assert!(by_task.similarity >= 0.6, "{by_task:?}");
        assert!(by_task
            .reason
            .contains("trainset #3 `tokio-task-cancellation`"));
        assert_eq!(
            idx.find(
                "sql-index-tuning",
                "Create a SQL Index Tuning skill: B-tree indexes"
            ),
            None
        );
    }
}
