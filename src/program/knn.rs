//! KNN demo selection (DSPy's KNNFewShot as a runtime mode of a version):
//! the spec's `demo_selection: {knn: {k, retriever, pool}}` and the
//! retrieval that picks, for each input, the `k` pool examples nearest to
//! it, by BM25 over the input text or by the cosine of the task model's
//! embeddings.
//!
//! The pool is stored in the spec itself (each example's fields, with its
//! trainset example id), so a registered version is self-contained: it runs
//! the same wherever it is loaded, without the trainset it came from. What
//! is derived from the pool (the BM25 index, the pool's embeddings) is built
//! once per process and pool, and kept in an in-memory cache.

use crate::lm::client::LmClient;
use crate::lm::LmError;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, OnceLock};

/// How a version picks its demos per input, besides its fixed demos:
/// `{knn: {...}}`. A struct rather than an enum so that YAML reads it as the
/// plain map it looks like (serde_yaml wants `!tags` for enums).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DemoSelection {
    /// The `k` pool examples nearest to the input.
    pub knn: KnnSelection,
}

/// How nearness is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Retriever {
    /// Okapi BM25 over the input text (English stemming and stop words):
    /// cheap, no model calls, good when requests share topic words.
    #[default]
    Bm25,
    /// Cosine of the task model's embeddings (mean-pooled hidden states for
    /// the local model, `/v1/embeddings` for an OpenAI-compatible server):
    /// one embedding call per input, the pool's once per process.
    Embedding,
}

impl Retriever {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Retriever::Bm25 => "bm25",
            Retriever::Embedding => "embedding",
        }
    }

    /// Reads `bm25` or `embedding`.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "bm25" => Some(Retriever::Bm25),
            "embedding" | "embeddings" => Some(Retriever::Embedding),
            _ => None,
        }
    }
}

/// One example the demos are drawn from: the program's fields (inputs and
/// gold outputs, named as the program names them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PoolExample {
    /// The trainset example it came from, recorded in traces with each
    /// selection (absent for a hand-written pool).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example_id: Option<i64>,
    pub fields: Map<String, Value>,
}

/// `demo_selection: {knn: ...}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KnnSelection {
    /// Demos picked per input.
    pub k: usize,
    #[serde(default)]
    pub retriever: Retriever,
    /// Input fields whose text is compared; empty: every program input
    /// (the spec's constants are the same for every input and left out).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fields: Vec<String>,
    pub pool: Vec<PoolExample>,
}

/// One pool example chosen for an input, as traced (`traces.selected_demos`
/// holds a JSON array of these, nearest first).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Chosen {
    /// Position in the spec's pool.
    pub pool: usize,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example_id: Option<i64>,
    /// BM25 score or cosine similarity (higher is nearer).
    pub score: f64,
}

/// Why demos could not be selected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetrieveError {
    #[error("embedding for KNN demo selection: {0}")]
    Embed(LmError),
    #[error("the embedder returned {got} vectors for {want} texts")]
    Count { got: usize, want: usize },
    #[error("the input's embedding has {got} dimensions, the pool's {want}")]
    Dimensions { got: usize, want: usize },
}

/// Something that turns texts into vectors: the task model's client, or a
/// fixture in tests.
#[async_trait::async_trait]
pub trait Embedder: Send + Sync {
    /// What distinguishes its vectors from another embedder's (cache key).
    fn scope(&self) -> String;
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError>;
}

#[async_trait::async_trait]
impl Embedder for LmClient {
    fn scope(&self) -> String {
        self.embedding_scope()
    }

    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
        LmClient::embed(self, texts).await
    }
}

impl KnnSelection {
    /// The fields compared: the configured ones, else `program_inputs`.
    pub fn compared_fields<'a>(&'a self, program_inputs: &'a [String]) -> &'a [String] {
        if self.fields.is_empty() {
            program_inputs
        } else {
            &self.fields
        }
    }

    /// The `k` pool examples nearest to `inputs` over `fields`, nearest
    /// first; ties go to the earlier pool example, so a selection is the
    /// same on every run. The pool example `exclude` (the example being
    /// run, when it is in the pool: bootstrapping over train) is never
    /// chosen, so a program never sees its own gold answer.
    pub async fn select(
        &self,
        fields: &[String],
        inputs: &Map<String, Value>,
        embedder: &dyn Embedder,
        exclude: Option<i64>,
    ) -> Result<Vec<Chosen>, RetrieveError> {
        if self.k == 0 || self.pool.is_empty() {
            return Ok(Vec::new());
        }
        let texts: Vec<String> = self
            .pool
            .iter()
            .map(|p| text_of(fields, &p.fields))
            .collect();
        let query = text_of(fields, inputs);
        let index = self.index(&texts, embedder).await?;
        let scores: Vec<f64> = match index.as_ref() {
            Index::Bm25 { embedder, scorer } => {
                let q = embedder.embed(&query);
                (0..texts.len())
                    .map(|i| scorer.score(&i, &q).unwrap_or(0.0) as f64)
                    .collect()
            }
            Index::Vectors(pool) => {
                let q = one_vector(embedder.embed(std::slice::from_ref(&query)).await)?;
                let q = normalized(q);
                if let Some(first) = pool.first() {
                    if first.len() != q.len() {
                        return Err(RetrieveError::Dimensions {
                            got: q.len(),
                            want: first.len(),
                        });
                    }
                }
                pool.iter().map(|v| dot(v, &q)).collect()
            }
        };
        let excluded = |i: usize| exclude.is_some() && self.pool[i].example_id == exclude;
        Ok(nearest(&scores, self.k, excluded)
            .into_iter()
            .map(|(i, score)| Chosen {
                pool: i,
                example_id: self.pool[i].example_id,
                score,
            })
            .collect())
    }

    /// The pool's index, from the process cache or built now (once, however
    /// many inputs ask for it at the same time).
    async fn index(
        &self,
        texts: &[String],
        embedder: &dyn Embedder,
    ) -> Result<Arc<Index>, RetrieveError> {
        let scope = match self.retriever {
            Retriever::Bm25 => String::new(),
            Retriever::Embedding => embedder.scope(),
        };
        let key = format!(
            "{}|{scope}|{}",
            self.retriever.as_str(),
            crate::util::content_hash(&serde_json::json!(texts))
        );
        let cell = {
            let cache = INDEXES.get_or_init(|| {
                Mutex::new(lru::LruCache::new(
                    NonZeroUsize::new(INDEX_CACHE_ENTRIES).unwrap_or(NonZeroUsize::MIN),
                ))
            });
            let mut cache = cache.lock().unwrap_or_else(|e| e.into_inner());
            cache.get_or_insert(key, Default::default).clone()
        };
        cell.get_or_try_init(|| async {
            Ok(Arc::new(match self.retriever {
                Retriever::Bm25 => Index::bm25(texts),
                Retriever::Embedding => {
                    let vectors = embedder.embed(texts).await.map_err(RetrieveError::Embed)?;
                    if vectors.len() != texts.len() {
                        return Err(RetrieveError::Count {
                            got: vectors.len(),
                            want: texts.len(),
                        });
                    }
                    Index::Vectors(vectors.into_iter().map(normalized).collect())
                }
            }))
        })
        .await
        .cloned()
    }
}

/// Pools whose index a process keeps (a server holds several versions).
const INDEX_CACHE_ENTRIES: usize = 32;

type IndexCell = Arc<tokio::sync::OnceCell<Arc<Index>>>;

static INDEXES: OnceLock<Mutex<lru::LruCache<String, IndexCell>>> = OnceLock::new();

/// What retrieval compares an input with.
enum Index {
    Bm25 {
        embedder: bm25::Embedder<u32>,
        scorer: bm25::Scorer<usize, u32>,
    },
    /// Unit-length pool vectors, in pool order.
    Vectors(Vec<Vec<f32>>),
}

impl Index {
    fn bm25(texts: &[String]) -> Index {
        let corpus: Vec<&str> = texts.iter().map(String::as_str).collect();
        let embedder =
            bm25::EmbedderBuilder::<u32>::with_fit_to_corpus(bm25::Language::English, &corpus)
                .build();
        let mut scorer = bm25::Scorer::<usize, u32>::new();
        for (i, t) in texts.iter().enumerate() {
            scorer.upsert(&i, embedder.embed(t));
        }
        Index::Bm25 { embedder, scorer }
    }
}

/// The text compared for `values`: the fields' values in order, one per
/// line (a list as its items joined by commas). Field names are left out:
/// shared by every example, they would only add noise.
pub fn text_of(fields: &[String], values: &Map<String, Value>) -> String {
    fields
        .iter()
        .filter_map(|f| values.get(f))
        .map(|v| match v {
            Value::String(s) => s.clone(),
            Value::Array(items) => items
                .iter()
                .map(|i| {
                    i.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| i.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            other => other.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// The indices of the `k` highest scores with their scores, highest first;
/// equal scores keep index order. Indices `excluded` are skipped.
fn nearest(scores: &[f64], k: usize, excluded: impl Fn(usize) -> bool) -> Vec<(usize, f64)> {
    let mut ranked: Vec<(usize, f64)> = scores
        .iter()
        .copied()
        .enumerate()
        .filter(|(i, _)| !excluded(*i))
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(k);
    ranked
}

fn one_vector(r: Result<Vec<Vec<f32>>, LmError>) -> Result<Vec<f32>, RetrieveError> {
    let mut v = r.map_err(RetrieveError::Embed)?;
    if v.len() != 1 {
        return Err(RetrieveError::Count {
            got: v.len(),
            want: 1,
        });
    }
    Ok(v.remove(0))
}

/// `v` scaled to unit length (a zero vector stays zero: similar to nothing).
fn normalized(mut v: Vec<f32>) -> Vec<f32> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

fn dot(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (*x as f64) * (*y as f64))
        .sum()
}

/// Cosine similarity of two vectors (0 when either is zero).
pub fn cosine(a: &[f32], b: &[f32]) -> f64 {
    dot(&normalized(a.to_vec()), &normalized(b.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Skill requests on four topics; the inputs below each belong to one.
    fn pool() -> Vec<PoolExample> {
        [
            "Create a Tokio Task Cancellation skill: cancelling async tasks in Rust with tokio",
            "Create a Docker Image Size skill: a checklist for shrinking Docker images",
            "Create a React Hooks skill: state and effects in React function components",
            "Create a Rust Error Handling skill: Result, the question mark operator and thiserror in Rust",
            "Create a Kubernetes Deployments skill: rolling out containers on Kubernetes clusters",
            "Create a SQL Indexes skill: speeding up PostgreSQL queries with indexes",
        ]
        .iter()
        .enumerate()
        .map(|(i, t)| PoolExample {
            example_id: Some(100 + i as i64),
            fields: json!({"task_description": t, "name": format!("n{i}")})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        })
        .collect()
    }

    fn input(text: &str) -> Map<String, Value> {
        json!({ "task_description": text })
            .as_object()
            .cloned()
            .unwrap_or_default()
    }

    /// A fixture embedder: a function of each text.
    struct FnEmbedder(fn(&str) -> Vec<f32>);

    #[async_trait::async_trait]
    impl Embedder for FnEmbedder {
        fn scope(&self) -> String {
            format!("test-{:p}", self.0 as *const ())
        }
        async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, LmError> {
            Ok(texts.iter().map(|t| (self.0)(t)).collect())
        }
    }

    /// BM25 needs no embedder; the scripted model's stands in.
    const WORDS: FnEmbedder = FnEmbedder(crate::lm::scripted::bag_of_words);

    /// Each text is a point given by the topic words it contains, so the
    /// expected neighbours are known exactly.
    const TOPICS: FnEmbedder = FnEmbedder(|t| {
        let t = t.to_lowercase();
        ["rust", "docker", "react", "kubernetes", "sql"]
            .iter()
            .map(|a| t.matches(a).count() as f32)
            .collect()
    });

    fn ids(chosen: &[Chosen]) -> Vec<i64> {
        chosen.iter().filter_map(|c| c.example_id).collect()
    }

    fn selection(k: usize, retriever: Retriever) -> KnnSelection {
        KnnSelection {
            k,
            retriever,
            fields: Vec::new(),
            pool: pool(),
        }
    }

    /// What `sel` picks for a request `text` over `task_description`.
    async fn pick(
        sel: &KnnSelection,
        text: &str,
        embedder: &FnEmbedder,
        exclude: Option<i64>,
    ) -> Vec<Chosen> {
        sel.select(
            &["task_description".to_string()],
            &input(text),
            embedder,
            exclude,
        )
        .await
        .unwrap()
    }

    #[tokio::test]
    async fn bm25_picks_the_examples_sharing_the_inputs_words() {
        let sel = selection(2, Retriever::Bm25);
        let got = pick(
            &sel,
            "Create a Rust Async skill: spawning and cancelling tokio tasks in Rust",
            &WORDS,
            None,
        )
        .await;
        // Tokio/cancelling first, then the other Rust example.
        assert_eq!(ids(&got), vec![100, 103]);
        assert!(got[0].score > got[1].score, "{got:?}");
        let got = pick(
            &sel,
            "Create a Docker Compose skill: running Docker containers locally",
            &WORDS,
            None,
        )
        .await;
        assert_eq!(ids(&got)[0], 101);
    }

    #[tokio::test]
    async fn embeddings_pick_the_nearest_by_cosine() {
        let sel = selection(3, Retriever::Embedding);
        let got = pick(
            &sel,
            "Kubernetes operators in Rust: watching Kubernetes cluster events",
            &TOPICS,
            None,
        )
        .await;
        // (rust 1, kubernetes 2): the Kubernetes example is nearest
        // (cosine 0.89), then the two Rust ones, tied at 0.45, in pool order.
        assert_eq!(ids(&got), vec![104, 100, 103]);
        assert!((got[1].score - got[2].score).abs() < 1e-9, "{got:?}");
        // Same input, same pool: the same selection and scores.
        let again = pick(
            &sel,
            "Kubernetes operators in Rust: watching Kubernetes cluster events",
            &TOPICS,
            None,
        )
        .await;
        assert_eq!(got, again);
    }

    #[tokio::test]
    async fn the_example_being_run_is_never_its_own_demo() {
        let sel = selection(1, Retriever::Bm25);
        let own = "Create a Docker Image Size skill: a checklist for shrinking Docker images";
        let got = pick(&sel, own, &WORDS, None).await;
        assert_eq!(ids(&got), vec![101]);
        let got = pick(&sel, own, &WORDS, Some(101)).await;
        assert_ne!(ids(&got), vec![101]);
        assert_eq!(got.len(), 1);
    }

    #[test]
    fn ties_keep_pool_order_and_k_caps() {
        let got = nearest(&[0.5, 0.9, 0.5, 0.9, 0.1], 3, |_| false);
        assert_eq!(got, vec![(1, 0.9), (3, 0.9), (0, 0.5)]);
        assert_eq!(nearest(&[0.5], 4, |_| false).len(), 1);
        assert!(nearest(&[0.5, 0.2], 2, |i| i == 0) == vec![(1, 0.2)]);
    }

    #[test]
    fn the_compared_text_is_the_fields_values() {
        let v = json!({"a": "x y", "b": ["p", "q"], "c": 3});
        let v = v.as_object().cloned().unwrap_or_default();
        let f: Vec<String> = ["b", "a", "c", "missing"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(text_of(&f, &v), "p, q\nx y\n3");
        assert!((cosine(&[1.0, 0.0], &[2.0, 0.0]) - 1.0).abs() < 1e-9);
        assert_eq!(cosine(&[0.0, 0.0], &[1.0, 0.0]), 0.0);
    }

    /// Run through a program, the nearest pool example becomes a demo in the
    /// prompt (after the fixed demos), the others stay out, and the bundled
    /// program's spec hash is unchanged by the new (unset) field.
    #[tokio::test]
    async fn a_program_run_shows_the_chosen_demos() {
        use crate::lm::client::{CallContext, LmClient};
        use crate::lm::scripted::ScriptedModel;
        use std::sync::Arc;
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("config/programs/skill_understanding.yaml");
        let mut spec = crate::program::ProgramSpec::load(&path).unwrap();
        let plain = spec.content_hash();
        let model = Arc::new(ScriptedModel::fixed(" not an answer"));
        let lm = LmClient::new("task", model.clone(), Default::default());
        let mut pool = pool();
        for p in &mut pool {
            let name = p.fields["name"].clone();
            p.fields
                .insert("taxonomy_path".into(), json!(format!("x/{name}")));
            for (f, v) in [
                ("skill_style", json!("minimal")),
                ("subdirectories", json!([])),
                ("keywords", json!(["a", "b", "c"])),
                ("description", json!("Use when testing.")),
            ] {
                p.fields.insert(f.into(), v);
            }
        }
        spec.demo_selection = Some(DemoSelection {
            knn: KnnSelection {
                k: 1,
                retriever: Retriever::Bm25,
                fields: Vec::new(),
                pool,
            },
        });
        assert_ne!(spec.content_hash(), plain);
        let _ = crate::program::run_program(
            &spec,
            &Map::new(),
            &lm,
            &input(
                "Create a SQL Query Plans skill: reading PostgreSQL EXPLAIN output for SQL queries",
            ),
            &CallContext::default(),
        )
        .await;
        let prompt = crate::lm::scripted::prompt_text(&model.requests()[0]);
        assert!(prompt.contains("Create a SQL Indexes skill"), "{prompt}");
        assert!(!prompt.contains("Docker"), "{prompt}");
        spec.demo_selection = None;
        assert_eq!(spec.content_hash(), plain);
    }

    /// The spec form reads and writes as `{knn: {k, retriever, pool}}`.
    #[test]
    fn the_selection_round_trips_through_yaml() {
        let yaml = "knn:\n  k: 2\n  retriever: embedding\n  pool:\n    - example_id: 7\n      fields: {task_description: hi}\n";
        let sel: DemoSelection = serde_yaml::from_str(yaml).unwrap();
        let k = &sel.knn;
        assert_eq!(
            (k.k, k.retriever, k.pool[0].example_id),
            (2, Retriever::Embedding, Some(7))
        );
        let back: DemoSelection =
            serde_json::from_value(serde_json::to_value(&sel).unwrap()).unwrap();
        assert_eq!(back, sel);
    }
}
