//! Typed queries on programs, content-addressed versions and aliases.

use super::Store;
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// A stored program version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionRow {
    pub id: i64,
    pub program_id: i64,
    pub program: String,
    pub version: i64,
    pub spec_json: String,
    pub content_hash: String,
    pub parent_id: Option<i64>,
    pub run_id: Option<i64>,
    pub candidate_id: Option<i64>,
    pub score: Option<f64>,
    pub note: Option<String>,
    pub created_at: String,
}

/// Lineage of a new version.
#[derive(Debug, Clone, Default)]
pub struct NewVersion<'a> {
    pub parent_id: Option<i64>,
    pub run_id: Option<i64>,
    pub candidate_id: Option<i64>,
    pub score: Option<f64>,
    pub note: Option<&'a str>,
}

const VERSION_COLS: &str =
    "v.id, v.program_id, p.name, v.version, v.spec_json, v.content_hash, v.parent_id, \
     v.run_id, v.candidate_id, v.score, v.note, v.created_at";

fn version_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<VersionRow> {
    Ok(VersionRow {
        id: r.get(0)?,
        program_id: r.get(1)?,
        program: r.get(2)?,
        version: r.get(3)?,
        spec_json: r.get(4)?,
        content_hash: r.get(5)?,
        parent_id: r.get(6)?,
        run_id: r.get(7)?,
        candidate_id: r.get(8)?,
        score: r.get(9)?,
        note: r.get(10)?,
        created_at: r.get(11)?,
    })
}

impl Store {
    /// The id of program `name`, created if new.
    pub fn ensure_program(&self, name: &str) -> Result<i64> {
        self.conn.execute(
            "INSERT OR IGNORE INTO programs (name, created_at) VALUES (?1, ?2)",
            params![name, now()],
        )?;
        Ok(self
            .conn
            .query_row("SELECT id FROM programs WHERE name = ?1", [name], |r| {
                r.get(0)
            })?)
    }

    /// Stores a spec as a version of `program`; identical content returns the
    /// existing version (content-addressed). Returns (version, created).
    pub fn save_version(
        &mut self,
        program: &str,
        spec_json: &str,
        content_hash: &str,
        lineage: NewVersion<'_>,
    ) -> Result<(VersionRow, bool)> {
        let program_id = self.ensure_program(program)?;
        let tx = self.write_transaction()?;
        let existing: Option<i64> = tx
            .query_row(
                "SELECT id FROM program_versions WHERE program_id = ?1 AND content_hash = ?2",
                params![program_id, content_hash],
                |r| r.get(0),
            )
            .optional()?;
        let (id, created) = match existing {
            Some(id) => (id, false),
            None => {
                let next: i64 = tx.query_row(
                    "SELECT COALESCE(MAX(version), 0) + 1 FROM program_versions WHERE program_id = ?1",
                    [program_id],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "INSERT INTO program_versions (program_id, version, spec_json, content_hash, parent_id, run_id, \
                     candidate_id, score, note, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![program_id, next, spec_json, content_hash, lineage.parent_id, lineage.run_id,
                        lineage.candidate_id, lineage.score, lineage.note, now()],
                )?;
                (tx.last_insert_rowid(), true)
            }
        };
        tx.commit()?;
        Ok((self.version_by_id(id)?, created))
    }

    /// A version by its row id.
    pub fn version_by_id(&self, id: i64) -> Result<VersionRow> {
        self.conn
            .prepare_cached(&format!("SELECT {VERSION_COLS} FROM program_versions v JOIN programs p ON p.id = v.program_id WHERE v.id = ?1"))?
            .query_row([id], version_from_row)
            .optional()?
            .ok_or_else(|| Error::NotFound { kind: "program version", name: id.to_string() })
    }

    /// A version of `program` by number, or the newest when `version` is None.
    pub fn find_version(&self, program: &str, version: Option<i64>) -> Result<VersionRow> {
        self.conn
            .prepare_cached(&format!(
                    "SELECT {VERSION_COLS} FROM program_versions v JOIN programs p ON p.id = v.program_id \
                     WHERE p.name = ?1 AND (?2 IS NULL OR v.version = ?2) ORDER BY v.version DESC LIMIT 1"
                ))?
            .query_row(params![program, version], version_from_row)
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "program version",
                name: match version {
                    Some(v) => format!("{program} v{v}"),
                    None => program.to_string(),
                },
            })
    }

    /// The version an alias of `program` points to.
    pub fn version_by_alias(&self, program: &str, alias: &str) -> Result<VersionRow> {
        let id: Option<i64> = self
            .conn
            .prepare_cached("SELECT a.version_id FROM aliases a JOIN programs p ON p.id = a.program_id WHERE p.name = ?1 AND a.alias = ?2")?
            .query_row(params![program, alias], |r| r.get(0))
            .optional()?;
        let id = id.ok_or_else(|| Error::NotFound {
            kind: "alias",
            name: format!("{program}@{alias}"),
        })?;
        self.version_by_id(id)
    }

    /// The aliases of `program` with the version number each points to, by
    /// alias name (for messages that say what exists).
    pub fn aliases(&self, program: &str) -> Result<Vec<(String, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT a.alias, v.version FROM aliases a JOIN programs p ON p.id = a.program_id \
             JOIN program_versions v ON v.id = a.version_id WHERE p.name = ?1 ORDER BY a.alias",
        )?;
        let rows = stmt
            .query_map([program], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Points an alias at a version, recording the move in alias_history
    /// (without a comparison; see [`Store::move_alias`]).
    pub fn set_alias(
        &mut self,
        program: &str,
        alias: &str,
        version_id: i64,
        action: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        self.move_alias(program, alias, version_id, action, reason, None)?;
        Ok(())
    }

    /// Versions of a program, newest first.
    pub fn list_versions(&self, program: &str) -> Result<Vec<VersionRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {VERSION_COLS} FROM program_versions v JOIN programs p ON p.id = v.program_id \
             WHERE p.name = ?1 ORDER BY v.version DESC"
        ))?;
        let rows = stmt
            .query_map([program], version_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

/// A registered program with its number of versions and newest version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ProgramSummary {
    pub id: i64,
    pub name: String,
    pub versions: i64,
    pub latest_version: Option<i64>,
}

impl Store {
    /// Every registered program, by name.
    pub fn list_programs(&self) -> Result<Vec<ProgramSummary>> {
        let mut stmt = self.conn().prepare(
            "SELECT p.id, p.name, COUNT(v.id), MAX(v.version) FROM programs p \
             LEFT JOIN program_versions v ON v.program_id = p.id GROUP BY p.id ORDER BY p.name",
        )?;
        let rows = stmt
            .query_map([], |r| {
                Ok(ProgramSummary {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    versions: r.get(2)?,
                    latest_version: r.get(3)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
