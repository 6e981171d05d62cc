//! `config/config.yaml` and `config/taxonomy.yaml`: typed, with defaults that
//! work offline (the embedded local model, the bundled taxonomy).

use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::SystemTime;

/// The bundled taxonomy, used when no taxonomy file is configured or found.
const BUNDLED_TAXONOMY: &str = include_str!("../config/taxonomy.yaml");

/// One category of the skill taxonomy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Category {
    pub name: String,
    #[serde(default)]
    pub description: String,
}

/// The skill taxonomy: the categories a taxonomy path may start with.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Taxonomy {
    pub categories: Vec<Category>,
}

impl Taxonomy {
    /// Parses taxonomy YAML; `origin` names the file in errors.
    pub fn from_yaml(origin: &str, text: &str) -> Result<Self> {
        let t: Taxonomy = serde_yaml::from_str(text).map_err(|e| Error::Config {
            path: origin.to_string(),
            message: format!("{e}; expected `categories:` with a list of {{name, description}}"),
        })?;
        if t.categories.is_empty() {
            return Err(Error::Config {
                path: origin.to_string(),
                message: "`categories` is empty; expected at least one category".into(),
            });
        }
        Ok(t)
    }

    /// The taxonomy shipped with skill-fleet.
    pub fn bundled() -> Self {
        static BUNDLED: OnceLock<Taxonomy> = OnceLock::new();
        BUNDLED
            .get_or_init(|| {
                Self::from_yaml("config/taxonomy.yaml (bundled)", BUNDLED_TAXONOMY)
                    .expect("bundled taxonomy is valid YAML (checked by a unit test)")
            })
            .clone()
    }

    /// Reads a taxonomy file. Parsed files are kept for the process and
    /// parsed again only when the file's modification time or size changes:
    /// every served prediction asks for the taxonomy, and parsing its YAML
    /// was a visible share of a cached `POST /predict` (perf, 2026-11-29).
    pub fn load(path: &Path) -> Result<Self> {
        type Parsed = HashMap<PathBuf, (Option<SystemTime>, u64, Taxonomy)>;
        static PARSED: OnceLock<Mutex<Parsed>> = OnceLock::new();
        let meta = std::fs::metadata(path).map_err(|e| Error::io(path, e))?;
        let stamp = (meta.modified().ok(), meta.len());
        let parsed = PARSED.get_or_init(Mutex::default);
        if let Ok(cache) = parsed.lock() {
            if let Some((modified, len, t)) = cache.get(path) {
                if (*modified, *len) == stamp {
                    return Ok(t.clone());
                }
            }
        }
        let text = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        let t = Self::from_yaml(&path.display().to_string(), &text)?;
        if let Ok(mut cache) = parsed.lock() {
            cache.insert(path.to_path_buf(), (stamp.0, stamp.1, t.clone()));
        }
        Ok(t)
    }

    /// Whether `name` is a category.
    pub fn contains(&self, name: &str) -> bool {
        self.categories.iter().any(|c| c.name == name)
    }

    /// Category names in file order.
    pub fn names(&self) -> Vec<String> {
        self.categories.iter().map(|c| c.name.clone()).collect()
    }
}

/// A language-model role (task, prompt, reflection, judge): which provider and
/// model answers it and with which default parameters.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RoleConfig {
    /// `local`, `openai` or `gemini`.
    pub provider: String,
    /// GGUF path for `local`; model name for hosted providers.
    pub model: String,
    /// Base URL of an OpenAI-compatible server.
    #[serde(default)]
    pub base_url: Option<String>,
    /// Name of the environment variable holding the API key (never the key itself).
    #[serde(default)]
    pub api_key_env: Option<String>,
    /// `completion` (text completion, for base models) or `chat`.
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub temperature: Option<f32>,
    #[serde(default)]
    pub max_tokens: Option<u32>,
    /// Role to use when this one's retries are exhausted.
    #[serde(default)]
    pub fallback: Option<String>,
    /// Requests in flight at once for this role's provider.
    #[serde(default)]
    pub max_concurrency: Option<usize>,
}

/// Retry policy for provider calls (the original's RobustModule).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct RetryConfig {
    pub max_retries: u32,
    pub base_delay_ms: u64,
    pub max_delay_ms: u64,
    pub timeout_secs: u64,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            max_retries: 4,
            base_delay_ms: 500,
            max_delay_ms: 30_000,
            timeout_secs: 120,
        }
    }
}

/// Settings of the in-process llama.cpp provider.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LocalConfig {
    /// CPU threads; 0 means all cores.
    pub threads: usize,
    /// Context window per sequence, in tokens.
    pub context_tokens: u32,
    /// Sequences decoded together in one batch.
    pub max_sequences: usize,
}

impl Default for LocalConfig {
    fn default() -> Self {
        LocalConfig {
            threads: 0,
            context_tokens: 4096,
            max_sequences: 4,
        }
    }
}

/// Price of a model in USD per million tokens, for cost estimates in traces.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Default)]
#[serde(deny_unknown_fields)]
pub struct Price {
    pub prompt_per_mtok: f64,
    pub completion_per_mtok: f64,
}

/// Cache settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct CacheConfig {
    pub enabled: bool,
    pub memory_entries: usize,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            memory_entries: 10_000,
        }
    }
}

/// The language-model section of the config.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct LmConfig {
    pub roles: BTreeMap<String, RoleConfig>,
    pub retry: RetryConfig,
    pub local: LocalConfig,
    pub cache: CacheConfig,
    pub prices: BTreeMap<String, Price>,
}

/// Default path of the bundled local model, assembled by `scripts/setup.sh`.
pub const DEFAULT_MODEL_PATH: &str = "models/gemma-3-270m-q4_k_m.gguf";

impl Default for LmConfig {
    fn default() -> Self {
        let local = RoleConfig {
            provider: "local".into(),
            model: DEFAULT_MODEL_PATH.into(),
            base_url: None,
            api_key_env: None,
            mode: Some("completion".into()),
            temperature: Some(0.0),
            max_tokens: Some(256),
            fallback: None,
            max_concurrency: None,
        };
        let roles = ["task", "prompt", "reflection", "judge"]
            .into_iter()
            .map(|r| (r.to_string(), local.clone()))
            .collect();
        LmConfig {
            roles,
            retry: RetryConfig::default(),
            local: LocalConfig::default(),
            cache: CacheConfig::default(),
            prices: BTreeMap::new(),
        }
    }
}

/// The whole `config/config.yaml`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Taxonomy file; the bundled taxonomy when absent.
    pub taxonomy: Option<PathBuf>,
    pub lm: LmConfig,
    /// Named metric definitions (composites, judges, commands), written as
    /// `name: {composite: [...]}` maps rather than YAML tags.
    #[serde(with = "serde_yaml::with::singleton_map_recursive")]
    pub metrics: BTreeMap<String, crate::metrics::MetricDef>,
    /// Style thresholds of `trainset expand`.
    pub expand: crate::tasks::skill::expand::ExpandSettings,
    /// Near-duplicate threshold, rounds and prompt sizes of `trainset synthesize`.
    pub synthesize: crate::tasks::skill::synthesize::SynthesizeSettings,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            taxonomy: None,
            lm: LmConfig::default(),
            metrics: crate::metrics::default_definitions(),
            expand: Default::default(),
            synthesize: Default::default(),
        }
    }
}

impl Config {
    /// Reads a config file. A missing file at the default location gives the
    /// defaults, so the binary works from any directory; a missing file the
    /// user named explicitly is an error.
    pub fn load(path: &Path, explicit: bool) -> Result<Self> {
        match std::fs::read_to_string(path) {
            Ok(text) => serde_yaml::from_str(&text).map_err(|e| Error::Config {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                Ok(Config::default())
            }
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// The configured taxonomy, or the bundled one.
    pub fn taxonomy(&self) -> Result<Taxonomy> {
        match &self.taxonomy {
            Some(p) if p.exists() => Taxonomy::load(p),
            _ => Ok(Taxonomy::bundled()),
        }
    }

    /// A role's settings, or a clear error naming the roles that exist.
    pub fn role(&self, name: &str) -> Result<&RoleConfig> {
        self.lm.roles.get(name).ok_or_else(|| Error::Config {
            path: "config".into(),
            message: format!(
                "no LM role `{name}`; expected one of: {}",
                self.lm.roles.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bundled_taxonomy_has_16_categories() {
        let t = Taxonomy::bundled();
        assert_eq!(t.categories.len(), 16);
        assert!(t.contains("rust") && t.contains("tooling"));
    }

    #[test]
    fn a_taxonomy_file_is_read_again_after_it_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("taxonomy.yaml");
        std::fs::write(&path, "categories:\n  - name: alpha\n").expect("write");
        let first = Taxonomy::load(&path).expect("load");
        assert_eq!(first.names(), vec!["alpha".to_string()]);
        // A different size: seen even when the modification time's
        // resolution would hide the change.
        std::fs::write(&path, "categories:\n  - name: beta\n  - name: gamma\n").expect("rewrite");
        let second = Taxonomy::load(&path).expect("load again");
        assert_eq!(
            second.names(),
            vec!["beta".to_string(), "gamma".to_string()]
        );
    }

    #[test]
    fn bundled_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/config.yaml");
        let c = Config::load(&path, true).unwrap();
        for role in ["task", "prompt", "reflection", "judge"] {
            assert!(c.role(role).is_ok(), "role {role}");
        }
        assert_eq!(c.role("task").unwrap().provider, "local");
    }
}
