//! Finding a program by file path or registered name, version or alias, and
//! registering YAML specs as content-addressed versions.

use super::spec::ProgramSpec;
use crate::error::{Error, Result};
use crate::store::{NewVersion, Store, VersionRow};
use std::path::{Path, PathBuf};

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
///
/// With a version or alias, a spec file only names the program: the stored
/// version or alias of the program it names is used, or the call is refused
/// when there is none. Taking the file's own content instead would silently
/// ignore `--alias`/`--version` and evaluate something other than what was
/// asked for.
pub fn load_program(store: &mut Store, r: &ProgramRef) -> Result<(ProgramSpec, VersionRow)> {
    if let Some(file) = spec_file(store, r) {
        let spec = if file.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&file).map_err(|e| Error::io(&file, e))?;
            super::dspy::import_dspy_json(&file.display().to_string(), &text)?
        } else {
            ProgramSpec::load(&file)?
        };
        if r.version.is_some() || r.alias.is_some() {
            return stored_version(
                store,
                &spec.name,
                r.version,
                r.alias.as_deref(),
                Some(&file),
            );
        }
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
    stored_version(store, &r.program, r.version, r.alias.as_deref(), None)
}

/// [`load_program`] for a reference that needs no spec file, on a read-only
/// connection: None when `r` names a file (which `load_program` registers
/// through a writable store). Served predictions take this path, so they
/// never wait on the writer to look a version up.
pub fn load_stored_program(
    store: &Store,
    r: &ProgramRef,
) -> Result<Option<(ProgramSpec, VersionRow)>> {
    if spec_file(store, r).is_some() {
        return Ok(None);
    }
    stored_version(store, &r.program, r.version, r.alias.as_deref(), None).map(Some)
}

/// The spec file `r` names: a path, or the bundled `config/programs/NAME.yaml`
/// of a bare name with no version or alias asked and none registered.
fn spec_file(store: &Store, r: &ProgramRef) -> Option<PathBuf> {
    let path = Path::new(&r.program);
    let bundled = Path::new("config/programs").join(format!("{}.yaml", r.program));
    if path.is_file() {
        Some(path.to_path_buf())
    } else if r.version.is_none()
        && r.alias.is_none()
        && bundled.is_file()
        && store.find_version(&r.program, None).is_err()
    {
        Some(bundled)
    } else {
        None
    }
}

/// A stored version of `program`: by alias, by number, or the newest. When
/// both an alias and a number are given they must agree. A miss names the
/// spec file that named the program, if any, and what does exist, so the
/// user can pick again.
fn stored_version(
    store: &Store,
    program: &str,
    version: Option<i64>,
    alias: Option<&str>,
    named_by: Option<&Path>,
) -> Result<(ProgramSpec, VersionRow)> {
    let found = match alias {
        Some(a) => store.version_by_alias(program, a),
        None => store.find_version(program, version),
    };
    let row = match found {
        Ok(row) => row,
        Err(Error::NotFound { kind, name }) => {
            return Err(Error::NotFound {
                kind,
                name: format!(
                    "{name} ({}{})",
                    named_by
                        .map(|f| format!("named by {}; ", f.display()))
                        .unwrap_or_default(),
                    what_exists(store, program)?
                ),
            })
        }
        Err(e) => return Err(e),
    };
    if let (Some(a), Some(v)) = (alias, version) {
        if row.version != v {
            return Err(Error::Invalid(format!(
                "alias `{a}` of program `{program}` points to version {}, not version {v}; give one of them",
                row.version
            )));
        }
    }
    let spec: ProgramSpec = serde_json::from_str(&row.spec_json)?;
    Ok((spec, row))
}

/// "program `P` has versions 1, 2 and aliases production -> 2", or that it
/// is not registered.
fn what_exists(store: &Store, program: &str) -> Result<String> {
    let versions = store.list_versions(program)?;
    if versions.is_empty() {
        return Ok(format!(
            "program `{program}` has no stored versions; register it with `program register FILE`"
        ));
    }
    let mut numbers: Vec<String> = versions.iter().map(|v| v.version.to_string()).collect();
    numbers.reverse();
    let aliases = store.aliases(program)?;
    let aliases = if aliases.is_empty() {
        "no aliases".to_string()
    } else {
        let list: Vec<String> = aliases.iter().map(|(a, v)| format!("{a} -> {v}")).collect();
        format!("aliases {}", list.join(", "))
    };
    Ok(format!(
        "program `{program}` has versions {} and {aliases}",
        numbers.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec of program `p` whose description tells versions apart.
    fn write_spec(dir: &Path, file: &str, description: &str) -> String {
        let path = dir.join(file);
        let yaml = format!(
            "name: p\ndescription: {description}\npredictors:\n  - name: answer\n    signature:\n      inputs: [{{name: question}}]\n      outputs: [{{name: answer}}]\n"
        );
        std::fs::write(&path, yaml).unwrap();
        path.display().to_string()
    }

    fn file_ref(program: &str, version: Option<i64>, alias: Option<&str>) -> ProgramRef {
        ProgramRef {
            program: program.to_string(),
            version,
            alias: alias.map(str::to_string),
        }
    }

    /// A store with `p` v1 ("first", aliased `production`) and v2 ("second");
    /// returns the store and the path of the v2 file.
    fn two_versions(dir: &Path) -> (Store, String) {
        let mut store = Store::open(dir.join("t.db")).unwrap();
        let first = write_spec(dir, "first.yaml", "first");
        let second = write_spec(dir, "second.yaml", "second");
        let (_, v1) = load_program(&mut store, &file_ref(&first, None, None)).unwrap();
        let (_, v2) = load_program(&mut store, &file_ref(&second, None, None)).unwrap();
        assert_eq!((v1.version, v2.version), (1, 2));
        store
            .set_alias("p", "production", v1.id, "set", None)
            .unwrap();
        (store, second)
    }

    #[test]
    fn spec_file_with_alias_uses_the_aliased_version_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, second) = two_versions(dir.path());
        let (spec, row) =
            load_program(&mut store, &file_ref(&second, None, Some("production"))).unwrap();
        assert_eq!(row.version, 1);
        assert_eq!(spec.description, "first");
    }

    #[test]
    fn spec_file_with_version_uses_that_version_not_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, second) = two_versions(dir.path());
        let (spec, row) = load_program(&mut store, &file_ref(&second, Some(1), None)).unwrap();
        assert_eq!(row.version, 1);
        assert_eq!(spec.description, "first");
    }

    #[test]
    fn spec_file_with_unknown_alias_is_refused_naming_program_alias_and_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, _) = two_versions(dir.path());
        let third = write_spec(dir.path(), "third.yaml", "third");
        let err = load_program(&mut store, &file_ref(&third, None, Some("staging"))).unwrap_err();
        assert!(
            matches!(err, Error::NotFound { kind: "alias", .. }),
            "{err:?}"
        );
        let text = err.to_string();
        for part in [
            "p@staging",
            "named by ",
            "third.yaml;",
            "versions 1, 2",
            "aliases production -> 1",
        ] {
            assert!(text.contains(part), "`{part}` not in: {text}");
        }
        // The file was not registered on the way.
        assert_eq!(store.list_versions("p").unwrap().len(), 2);
    }

    #[test]
    fn spec_file_with_unknown_version_is_refused_naming_what_exists() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, second) = two_versions(dir.path());
        let err = load_program(&mut store, &file_ref(&second, Some(7), None)).unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("p v7") && text.contains("versions 1, 2"),
            "{text}"
        );
    }

    #[test]
    fn spec_file_of_an_unregistered_program_with_alias_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::open(dir.path().join("t.db")).unwrap();
        let file = write_spec(dir.path(), "p.yaml", "only");
        let err = load_program(&mut store, &file_ref(&file, None, Some("production"))).unwrap_err();
        assert!(err.to_string().contains("no stored versions"), "{err}");
        assert!(store.list_versions("p").unwrap().is_empty());
    }

    #[test]
    fn alias_and_version_that_disagree_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (mut store, second) = two_versions(dir.path());
        let err =
            load_program(&mut store, &file_ref(&second, Some(2), Some("production"))).unwrap_err();
        assert!(
            err.to_string()
                .contains("alias `production` of program `p` points to version 1, not version 2"),
            "{err}"
        );
        let (_, row) =
            load_program(&mut store, &file_ref("p", Some(1), Some("production"))).unwrap();
        assert_eq!(row.version, 1);
    }
}
