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

/// Runs `skill-fleet --db DB args...` from the repository root.
pub fn cli(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_skill-fleet"))
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
