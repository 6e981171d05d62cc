//! `trainset expand`: examples derived from existing skills. Every
//! `SKILL.md` with YAML frontmatter (`name`, `description`, optional
//! `metadata`) below a directory becomes one example of the skill schema:
//! the taxonomy path from its folder path, the style from the document's
//! shape, the subdirectories from the folders present, keywords and a task
//! description. Files that cannot become a valid example are listed with the
//! reason; duplicates (by name or by task) are dropped and reported.

use crate::config::Taxonomy;
use crate::data::{validate, Example, Schema};
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use std::path::{Path, PathBuf};

/// Where the style of a skill changes (`expand:` in the config).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExpandSettings {
    /// A document at least this long (lines) is `comprehensive`...
    pub comprehensive_min_lines: usize,
    /// ...and so is one with at least this many `##` sections.
    pub comprehensive_min_sections: usize,
    /// A skill with `references/` or `guides/` and at least this many links
    /// into them is a `navigation_hub`.
    pub hub_min_links: usize,
}

impl Default for ExpandSettings {
    fn default() -> Self {
        ExpandSettings {
            comprehensive_min_lines: 150,
            comprehensive_min_sections: 6,
            hub_min_links: 3,
        }
    }
}

/// A file that did not become an example, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    pub path: String,
    pub reason: String,
}

/// An example dropped as a duplicate of an earlier one.
#[derive(Debug, Clone, Serialize)]
pub struct Duplicate {
    pub path: String,
    pub duplicate_of: String,
    /// `name` or `task`.
    pub by: String,
}

/// What `expand` found.
#[derive(Debug, Clone, Serialize)]
pub struct Expansion {
    /// The examples (skill schema fields plus `source` and `source_path`).
    pub examples: Vec<Map<String, Value>>,
    pub skipped: Vec<Skipped>,
    pub duplicates: Vec<Duplicate>,
}

/// Every `SKILL.md` below `dir`, in path order.
fn skill_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io(&d, e))?;
        for entry in entries {
            let entry = entry.map_err(|e| Error::io(&d, e))?;
            let path = entry.path();
            let ty = entry.file_type().map_err(|e| Error::io(&path, e))?;
            if ty.is_dir() {
                stack.push(path);
            } else if ty.is_file() && entry.file_name() == "SKILL.md" {
                out.push(path);
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The YAML frontmatter and the body of a markdown file.
fn split_frontmatter(text: &str) -> std::result::Result<(&str, &str), String> {
    let rest = text
        .strip_prefix("---\n")
        .or_else(|| text.strip_prefix("---\r\n"))
        .ok_or("no YAML frontmatter (expected the file to start with a `---` line)")?;
    let end = rest
        .find("\n---")
        .ok_or("the YAML frontmatter is not closed by a `---` line")?;
    let body = rest[end + 4..].trim_start_matches(['-', '\r', '\n']);
    Ok((&rest[..end], body))
}

const STOP_WORDS: &[&str] = &[
    "the", "and", "for", "with", "use", "when", "you", "your", "are", "from", "into", "that",
    "this", "need", "needs", "how", "what", "skill", "using", "about", "more", "their", "them",
    "its", "any",
];

fn words(text: &str) -> impl Iterator<Item = String> + '_ {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.len() >= 3)
        .map(str::to_lowercase)
        .filter(|w| !STOP_WORDS.contains(&w.as_str()))
}

/// Up to six keywords: the frontmatter's own (`metadata.keywords`,
/// `metadata.tags`, `keywords`, `tags`), else the name's words followed by
/// the description's most frequent words.
fn keywords(front: &serde_yaml::Value, name: &str, description: &str) -> Vec<String> {
    let listed = ["keywords", "tags"].iter().find_map(|k| {
        front
            .get("metadata")
            .and_then(|m| m.get(*k))
            .or_else(|| front.get(*k))
            .and_then(|v| v.as_sequence())
    });
    let mut out: Vec<String> = Vec::new();
    let mut push = |w: String| {
        if !out.contains(&w) && out.len() < 6 {
            out.push(w);
        }
    };
    if let Some(list) = listed {
        for v in list {
            if let Some(s) = v.as_str() {
                push(s.trim().to_lowercase());
            }
        }
        return out;
    }
    for w in words(&name.replace('-', " ")) {
        push(w);
    }
    let mut counts: Vec<(String, usize)> = Vec::new();
    for w in words(description) {
        match counts.iter_mut().find(|(x, _)| *x == w) {
            Some((_, n)) => *n += 1,
            None => counts.push((w, 1)),
        }
    }
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    for (w, _) in counts {
        push(w);
    }
    out.truncate(5);
    out
}

fn title(name: &str) -> String {
    name.split('-')
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// The first paragraph of prose in the body (no headings, lists or code).
fn first_paragraph(body: &str) -> Option<String> {
    let mut para = Vec::new();
    let mut in_code = false;
    for line in body.lines() {
        let t = line.trim();
        if t.starts_with("```") {
            in_code = !in_code;
            continue;
        }
        if in_code
            || t.starts_with('#')
            || t.starts_with('-')
            || t.starts_with('*')
            || t.starts_with('|')
        {
            if !para.is_empty() {
                break;
            }
            continue;
        }
        if t.is_empty() {
            if !para.is_empty() {
                break;
            }
            continue;
        }
        para.push(t);
    }
    (!para.is_empty()).then(|| para.join(" "))
}

/// One SKILL.md as example fields, or the reason it cannot be one.
fn example_from(
    dir: &Path,
    path: &Path,
    settings: &ExpandSettings,
) -> std::result::Result<Map<String, Value>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("unreadable: {e}"))?;
    let (yaml, body) = split_frontmatter(&text)?;
    let front: serde_yaml::Value =
        serde_yaml::from_str(yaml).map_err(|e| format!("broken YAML frontmatter: {e}"))?;
    let field = |k: &str| -> std::result::Result<String, String> {
        front
            .get(k)
            .and_then(|v| v.as_str())
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .ok_or(format!(
                "the frontmatter has no `{k}` (a non-empty string is expected)"
            ))
    };
    let (name, description) = (field("name")?, field("description")?);
    let skill_dir = path.parent().ok_or("no parent folder")?;
    let rel = skill_dir
        .strip_prefix(dir)
        .map_err(|_| "outside the scanned folder".to_string())?;
    let folders: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let Some(category) = folders.first() else {
        return Err("not inside a category folder (expected DIR/CATEGORY/.../SKILL.md)".into());
    };
    let taxonomy_path = format!("{category}/{name}");
    let mut subdirectories: Vec<String> = Vec::new();
    for sub in crate::tasks::skill::schema::SUBDIRECTORIES {
        if skill_dir.join(sub).is_dir() {
            subdirectories.push(sub.to_string());
        }
    }
    let lines = body.lines().count();
    let sections = body.lines().filter(|l| l.starts_with("## ")).count();
    let links = body.matches("](references/").count()
        + body.matches("](guides/").count()
        + body.matches("](./references/").count()
        + body.matches("](./guides/").count();
    let has_hub_dirs = subdirectories
        .iter()
        .any(|s| s == "references" || s == "guides");
    let style = if has_hub_dirs && links >= settings.hub_min_links {
        "navigation_hub"
    } else if lines >= settings.comprehensive_min_lines
        || sections >= settings.comprehensive_min_sections
    {
        "comprehensive"
    } else {
        "minimal"
    };
    let summary = first_paragraph(body).unwrap_or_else(|| description.clone());
    let summary: String = summary
        .split_whitespace()
        .take(30)
        .collect::<Vec<_>>()
        .join(" ");
    let task = format!(
        "Create a {} skill: {}",
        title(&name),
        summary.trim_end_matches('.')
    );
    Ok(json!({
        "task_description": task,
        "expected_taxonomy_path": taxonomy_path,
        "expected_name": name,
        "expected_skill_style": style,
        "expected_subdirectories": subdirectories,
        "expected_keywords": keywords(&front, &name, &description),
        "expected_description": description,
        "source": "skills-dir",
    })
    .as_object()
    .cloned()
    .unwrap_or_default())
}

fn normalized(s: &str) -> String {
    s.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .to_lowercase()
}

/// Derives examples from every SKILL.md below `dir`. Each example is
/// validated like an imported trainset row; one that fails is skipped with
/// the validator's problems as the reason, so only valid rows come out.
pub fn expand(dir: &Path, settings: &ExpandSettings, taxonomy: &Taxonomy) -> Result<Expansion> {
    if !dir.is_dir() {
        return Err(Error::Invalid(format!(
            "--skills-dir {}: not a folder",
            dir.display()
        )));
    }
    let mut out = Expansion {
        examples: Vec::new(),
        skipped: Vec::new(),
        duplicates: Vec::new(),
    };
    let mut seen: Vec<(String, String, String)> = Vec::new(); // (name, task, path)
    for path in skill_files(dir)? {
        let shown = path.display().to_string();
        let fields = match example_from(dir, &path, settings) {
            Ok(f) => f,
            Err(reason) => {
                out.skipped.push(Skipped {
                    path: shown,
                    reason,
                });
                continue;
            }
        };
        let example = Example {
            index: 0,
            line: None,
            fields: fields.clone(),
        };
        let problems = validate(&shown, &[example], Schema::Skill, taxonomy);
        if !problems.is_empty() {
            let reason = problems
                .iter()
                .map(|p| p.to_string().replace(&format!("{shown}: example #0 "), ""))
                .collect::<Vec<_>>()
                .join("; ");
            out.skipped.push(Skipped {
                path: shown,
                reason,
            });
            continue;
        }
        let name = fields["expected_name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let task = normalized(fields["task_description"].as_str().unwrap_or_default());
        if let Some((_, _, first)) = seen.iter().find(|(n, _, _)| *n == name) {
            out.duplicates.push(Duplicate {
                path: shown,
                duplicate_of: first.clone(),
                by: "name".into(),
            });
            continue;
        }
        if let Some((_, _, first)) = seen.iter().find(|(_, t, _)| *t == task) {
            out.duplicates.push(Duplicate {
                path: shown,
                duplicate_of: first.clone(),
                by: "task".into(),
            });
            continue;
        }
        seen.push((name, task, shown.clone()));
        let mut fields = fields;
        if let Ok(rel) = path.strip_prefix(dir) {
            fields.insert("source_path".into(), json!(rel.display().to_string()));
        }
        out.examples.push(fields);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frontmatter_is_split_from_the_body_and_its_absence_is_a_reason() {
        let (y, b) = split_frontmatter("---\nname: x\n---\n# Title\ntext\n").unwrap();
        assert_eq!(y, "name: x");
        assert!(b.starts_with("# Title"));
        assert!(split_frontmatter("# no frontmatter")
            .unwrap_err()
            .contains("no YAML frontmatter"));
        assert!(split_frontmatter("---\nname: x\n")
            .unwrap_err()
            .contains("not closed"));
    }

    #[test]
    fn keywords_come_from_the_frontmatter_or_the_name_and_description() {
        let front: serde_yaml::Value = serde_yaml::from_str("metadata:\n  tags: [A, b]\n").unwrap();
        assert_eq!(keywords(&front, "x-y", "d"), vec!["a", "b"]);
        let none = serde_yaml::Value::Null;
        let k = keywords(
            &none,
            "tokio-cancellation",
            "Use when cancelling tokio tasks and tokio timers",
        );
        assert_eq!(&k[..2], &["tokio", "cancellation"]);
        assert!(k.contains(&"tasks".to_string()));
    }
}
