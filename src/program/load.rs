//! Finding a program by file path or registered name, version or alias, and
//! registering YAML specs as content-addressed versions.

use super::spec::ProgramSpec;
use crate::error::{Error, Result};
use crate::store::{NewVersion, Store, VersionRow};
use std::path::Path;

/// Which version of a program to use.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProgramRef {
    /// A YAML/JSON spec path, or the name of a registered program.
    pub program: String,
    pub version: Option<i64>,
    pub alias: Option<String>,
}

/// Resolves `r` to a spec and its stored version. A spec file is registered
/// (idempotently, by content hash) so every run points at a stored version;
/// a `config/programs/NAME.yaml` file is found by bare name too.
pub fn load_program(store: &mut Store, r: &ProgramRef) -> Result<(ProgramSpec, VersionRow)> {
    let path = Path::new(&r.program);
    let bundled = Path::new("config/programs").join(format!("{}.yaml", r.program));
    let file = if path.is_file() {
        Some(path.to_path_buf())
    } else if r.version.is_none()
        && r.alias.is_none()
        && bundled.is_file()
        && store.find_version(&r.program, None).is_err()
    {
        Some(bundled)
    } else {
        None
    };
    if let Some(file) = file {
        let spec = if file.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            super::dspy::import_dspy_json(&file.display().to_string(), &text)?
        } else {
            ProgramSpec::load(&file)?
        };
        let json = serde_json::to_string(&spec)?;
        let (row, _) = store.save_version(
            &spec.name,
            &json,
            &spec.content_hash(),
            NewVersion {
                note: Some("registered from file"),
                ..Default::default()
            },
        )?;
        return Ok((spec, row));
    }
    let row = match &r.alias {
        Some(a) => store.version_by_alias(&r.program, a)?,
        None => store.find_version(&r.program, r.version)?,
    };
    let spec: ProgramSpec = serde_json::from_str(&row.spec_json)?;
    Ok((spec, row))
}
