//! Typed queries behind the registry: alias moves with their evidence
//! (alias_history), stored version comparisons, and the evaluations that
//! scored a version (directly, or as the candidate an optimization kept).

use super::{Split, Store};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// One move of an alias, as stored in alias_history.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AliasMove {
    pub id: i64,
    pub alias: String,
    pub from_version_id: Option<i64>,
    pub from_version: Option<i64>,
    pub to_version_id: i64,
    pub to_version: i64,
    /// `set`, `promote` or `rollback`.
    pub action: String,
    pub reason: Option<String>,
    pub comparison_id: Option<i64>,
    pub at: String,
}

/// A stored comparison of version B (challenger) against A (reference).
#[derive(Debug, Clone, serde::Serialize)]
pub struct ComparisonRow {
    pub id: i64,
    pub program_id: i64,
    pub a_version_id: i64,
    pub b_version_id: i64,
    pub trainset_id: i64,
    pub split_id: Option<i64>,
    pub split: Split,
    pub metric: String,
    pub a_evaluation_id: Option<i64>,
    pub b_evaluation_id: Option<i64>,
    pub n: i64,
    pub a_mean: f64,
    pub b_mean: f64,
    pub mean_diff: f64,
    pub ci_low: f64,
    pub ci_high: f64,
    pub confidence: f64,
    pub wins: i64,
    pub losses: i64,
    pub ties: i64,
    pub p_value: f64,
    pub seed: i64,
    pub resamples: i64,
    /// The whole result (per-example outcomes and the most changed examples).
    pub result_json: String,
    pub created_at: String,
}

const COMPARISON_COLS: &str = "id, program_id, a_version_id, b_version_id, trainset_id, split_id, split, metric, \
    a_evaluation_id, b_evaluation_id, n, a_mean, b_mean, mean_diff, ci_low, ci_high, confidence, wins, losses, ties, \
    p_value, seed, resamples, result_json, created_at";

fn comparison_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<ComparisonRow> {
    Ok(ComparisonRow {
        id: r.get(0)?,
        program_id: r.get(1)?,
        a_version_id: r.get(2)?,
        b_version_id: r.get(3)?,
        trainset_id: r.get(4)?,
        split_id: r.get(5)?,
        split: r.get(6)?,
        metric: r.get(7)?,
        a_evaluation_id: r.get(8)?,
        b_evaluation_id: r.get(9)?,
        n: r.get(10)?,
        a_mean: r.get(11)?,
        b_mean: r.get(12)?,
        mean_diff: r.get(13)?,
        ci_low: r.get(14)?,
        ci_high: r.get(15)?,
        confidence: r.get(16)?,
        wins: r.get(17)?,
        losses: r.get(18)?,
        ties: r.get(19)?,
        p_value: r.get(20)?,
        seed: r.get(21)?,
        resamples: r.get(22)?,
        result_json: r.get(23)?,
        created_at: r.get(24)?,
    })
}

/// A finished full evaluation that scored a version.
#[derive(Debug, Clone, serde::Serialize)]
pub struct VersionEvaluation {
    pub evaluation_id: i64,
    pub run_id: i64,
    pub split: Split,
    pub metric: String,
    pub n: i64,
    pub mean_score: Option<f64>,
    pub created_at: String,
}

impl Store {
    /// Points an alias at a version and records the move (with the
    /// comparison that justified it, if any) in alias_history, in one
    /// transaction. Returns the version the alias pointed to before.
    pub fn move_alias(
        &mut self,
        program: &str,
        alias: &str,
        version_id: i64,
        action: &str,
        reason: Option<&str>,
        comparison_id: Option<i64>,
    ) -> Result<Option<i64>> {
        let program_id = self.ensure_program(program)?;
        let tx = self.write_transaction()?;
        let from: Option<i64> = tx
            .query_row(
                "SELECT version_id FROM aliases WHERE program_id = ?1 AND alias = ?2",
                params![program_id, alias],
                |r| r.get(0),
            )
            .optional()?;
        let at = now();
        tx.execute(
            "INSERT INTO aliases (program_id, alias, version_id, updated_at) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (program_id, alias) DO UPDATE SET version_id = excluded.version_id, updated_at = excluded.updated_at",
            params![program_id, alias, version_id, at],
        )?;
        tx.execute(
            "INSERT INTO alias_history (program_id, alias, from_version_id, to_version_id, action, reason, at, comparison_id) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![program_id, alias, from, version_id, action, reason, at, comparison_id],
        )?;
        tx.commit()?;
        Ok(from)
    }

    /// Moves of `program`'s aliases (one alias, or all), newest first.
    pub fn alias_history(&self, program: &str, alias: Option<&str>) -> Result<Vec<AliasMove>> {
        let mut stmt = self.conn.prepare(
            "SELECT h.id, h.alias, h.from_version_id, vf.version, h.to_version_id, vt.version, h.action, h.reason, \
             h.comparison_id, h.at FROM alias_history h JOIN programs p ON p.id = h.program_id \
             LEFT JOIN program_versions vf ON vf.id = h.from_version_id \
             JOIN program_versions vt ON vt.id = h.to_version_id \
             WHERE p.name = ?1 AND (?2 IS NULL OR h.alias = ?2) ORDER BY h.id DESC",
        )?;
        let rows = stmt
            .query_map(params![program, alias], |r| {
                Ok(AliasMove {
                    id: r.get(0)?,
                    alias: r.get(1)?,
                    from_version_id: r.get(2)?,
                    from_version: r.get(3)?,
                    to_version_id: r.get(4)?,
                    to_version: r.get(5)?,
                    action: r.get(6)?,
                    reason: r.get(7)?,
                    comparison_id: r.get(8)?,
                    at: r.get(9)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Stores a comparison (its `id` and `created_at` are assigned here).
    pub fn insert_comparison(&mut self, c: &ComparisonRow) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO comparisons (program_id, a_version_id, b_version_id, trainset_id, split_id, split, metric, \
             a_evaluation_id, b_evaluation_id, n, a_mean, b_mean, mean_diff, ci_low, ci_high, confidence, wins, \
             losses, ties, p_value, seed, resamples, result_json, created_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, \
             ?22, ?23, ?24)",
            params![
                c.program_id,
                c.a_version_id,
                c.b_version_id,
                c.trainset_id,
                c.split_id,
                c.split,
                c.metric,
                c.a_evaluation_id,
                c.b_evaluation_id,
                c.n,
                c.a_mean,
                c.b_mean,
                c.mean_diff,
                c.ci_low,
                c.ci_high,
                c.confidence,
                c.wins,
                c.losses,
                c.ties,
                c.p_value,
                c.seed,
                c.resamples,
                c.result_json,
                now()
            ],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// A stored comparison by id.
    pub fn comparison(&self, id: i64) -> Result<ComparisonRow> {
        self.conn
            .query_row(
                &format!("SELECT {COMPARISON_COLS} FROM comparisons WHERE id = ?1"),
                [id],
                comparison_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "comparison",
                name: id.to_string(),
            })
    }

    /// The newest comparison of the two versions, in either direction,
    /// optionally on one split only.
    pub fn latest_comparison(
        &self,
        version_a: i64,
        version_b: i64,
        split: Option<Split>,
    ) -> Result<Option<ComparisonRow>> {
        Ok(self
            .conn
            .query_row(
                &format!(
                    "SELECT {COMPARISON_COLS} FROM comparisons \
                     WHERE ((a_version_id = ?1 AND b_version_id = ?2) OR (a_version_id = ?2 AND b_version_id = ?1)) \
                     AND (?3 IS NULL OR split = ?3) ORDER BY id DESC LIMIT 1"
                ),
                params![version_a, version_b, split],
                comparison_from_row,
            )
            .optional()?)
    }

    /// Comparisons stored for `program`, newest first.
    pub fn comparisons(&self, program_id: i64) -> Result<Vec<ComparisonRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {COMPARISON_COLS} FROM comparisons WHERE program_id = ?1 ORDER BY id DESC"
        ))?;
        let rows = stmt
            .query_map([program_id], comparison_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Finished full evaluations that scored version `version_id`: evaluations
    /// of the version itself (eval runs) and of the candidate an optimization
    /// stored as this version. Newest first.
    pub fn version_evaluations(&self, version_id: i64) -> Result<Vec<VersionEvaluation>> {
        let mut stmt = self.conn.prepare(
            "SELECT e.id, e.run_id, e.split, e.metric, e.n, e.mean_score, e.created_at FROM evaluations e \
             JOIN program_versions v ON v.id = ?1 \
             WHERE e.status = 'done' AND e.kind = 'full' \
             AND (e.version_id = v.id OR (v.candidate_id IS NOT NULL AND e.candidate_id = v.candidate_id)) \
             ORDER BY e.id DESC",
        )?;
        let rows = stmt
            .query_map([version_id], |r| {
                Ok(VersionEvaluation {
                    evaluation_id: r.get(0)?,
                    run_id: r.get(1)?,
                    split: r.get(2)?,
                    metric: r.get(3)?,
                    n: r.get(4)?,
                    mean_score: r.get(5)?,
                    created_at: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}
