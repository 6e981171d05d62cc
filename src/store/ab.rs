//! Typed queries on A/B tests: tests and their variants, weight history,
//! assignments (one row per routing event) and outcomes.

use super::{AbStatus, AbStrategy, OutcomeKind, Store};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, OptionalExtension};

/// A stored A/B test with its program's name and, once concluded, its winner.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AbTestRow {
    pub id: i64,
    pub name: String,
    pub program_id: i64,
    pub program: String,
    pub strategy: AbStrategy,
    /// Mixed into every sticky hash; fixed at creation.
    #[serde(skip)]
    pub salt: String,
    pub status: AbStatus,
    pub winner: Option<String>,
    pub promoted_alias: Option<String>,
    pub created_at: String,
    pub concluded_at: Option<String>,
}

/// A variant of a test: a program version and its current weight.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AbVariantRow {
    pub id: i64,
    pub name: String,
    pub version_id: i64,
    pub version: i64,
    pub weight: f64,
}

/// A variant to create.
#[derive(Debug, Clone)]
pub struct NewAbVariant {
    pub name: String,
    pub version_id: i64,
    pub weight: f64,
}

/// One outcome with the variant its assignment routed to.
#[derive(Debug, Clone)]
pub struct AbOutcomeRow {
    pub variant_id: i64,
    pub kind: OutcomeKind,
    pub score: f64,
}

const TEST_COLS: &str = "t.id, t.name, t.program_id, p.name, t.strategy, t.salt, t.status, \
     w.name, t.promoted_alias, t.created_at, t.concluded_at";

const TEST_FROM: &str = "ab_tests t JOIN programs p ON p.id = t.program_id \
     LEFT JOIN ab_variants w ON w.id = t.winner_variant_id";

fn test_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<AbTestRow> {
    Ok(AbTestRow {
        id: r.get(0)?,
        name: r.get(1)?,
        program_id: r.get(2)?,
        program: r.get(3)?,
        strategy: r.get(4)?,
        salt: r.get(5)?,
        status: r.get(6)?,
        winner: r.get(7)?,
        promoted_alias: r.get(8)?,
        created_at: r.get(9)?,
        concluded_at: r.get(10)?,
    })
}

impl Store {
    /// Creates a test with its variants and their first weights, all or none.
    pub fn create_ab_test(
        &mut self,
        name: &str,
        program_id: i64,
        strategy: AbStrategy,
        salt: &str,
        variants: &[NewAbVariant],
    ) -> Result<AbTestRow> {
        let taken: Option<i64> = self
            .conn
            .query_row("SELECT id FROM ab_tests WHERE name = ?1", [name], |r| {
                r.get(0)
            })
            .optional()?;
        if taken.is_some() {
            return Err(Error::Invalid(format!(
                "--name: an A/B test named `{name}` exists already; pick another name"
            )));
        }
        let at = now();
        let tx = self.write_transaction()?;
        tx.execute(
            "INSERT INTO ab_tests (name, program_id, strategy, salt, status, created_at) \
             VALUES (?1, ?2, ?3, ?4, 'active', ?5)",
            params![name, program_id, strategy, salt, at],
        )?;
        let test_id = tx.last_insert_rowid();
        for v in variants {
            tx.execute(
                "INSERT INTO ab_variants (test_id, name, version_id, weight) VALUES (?1, ?2, ?3, ?4)",
                params![test_id, v.name, v.version_id, v.weight],
            )?;
            tx.execute(
                "INSERT INTO ab_weight_history (test_id, variant_id, weight, at) VALUES (?1, ?2, ?3, ?4)",
                params![test_id, tx.last_insert_rowid(), v.weight, at],
            )?;
        }
        tx.commit()?;
        self.ab_test(name)
    }

    /// A test by name.
    pub fn ab_test(&self, name: &str) -> Result<AbTestRow> {
        self.conn
            .query_row(
                &format!("SELECT {TEST_COLS} FROM {TEST_FROM} WHERE t.name = ?1"),
                [name],
                test_from_row,
            )
            .optional()?
            .ok_or_else(|| Error::NotFound {
                kind: "A/B test",
                name: name.to_string(),
            })
    }

    /// Every test, newest first.
    pub fn ab_tests(&self) -> Result<Vec<AbTestRow>> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {TEST_COLS} FROM {TEST_FROM} ORDER BY t.id DESC"
        ))?;
        let rows = stmt
            .query_map([], test_from_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// The variants of a test in creation order, with their version numbers.
    pub fn ab_variants(&self, test_id: i64) -> Result<Vec<AbVariantRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT a.id, a.name, a.version_id, v.version, a.weight FROM ab_variants a \
             JOIN program_versions v ON v.id = a.version_id WHERE a.test_id = ?1 ORDER BY a.id",
        )?;
        let rows = stmt
            .query_map([test_id], |r| {
                Ok(AbVariantRow {
                    id: r.get(0)?,
                    name: r.get(1)?,
                    version_id: r.get(2)?,
                    version: r.get(3)?,
                    weight: r.get(4)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Sets new weights (variant id, weight) and records them in the weight
    /// history, all or none.
    pub fn set_ab_weights(&mut self, test_id: i64, weights: &[(i64, f64)]) -> Result<()> {
        let at = now();
        let tx = self.write_transaction()?;
        for (variant_id, weight) in weights {
            tx.execute(
                "UPDATE ab_variants SET weight = ?1 WHERE id = ?2 AND test_id = ?3",
                params![weight, variant_id, test_id],
            )?;
            tx.execute(
                "INSERT INTO ab_weight_history (test_id, variant_id, weight, at) VALUES (?1, ?2, ?3, ?4)",
                params![test_id, variant_id, weight, at],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The weight history of a test: (variant name, weight, at), oldest first.
    pub fn ab_weight_history(&self, test_id: i64) -> Result<Vec<(String, f64, String)>> {
        let mut stmt = self.conn.prepare(
            "SELECT v.name, h.weight, h.at FROM ab_weight_history h JOIN ab_variants v ON v.id = h.variant_id \
             WHERE h.test_id = ?1 ORDER BY h.id",
        )?;
        let rows = stmt
            .query_map([test_id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Stores one assignment per (key, variant id), all or none; returns
    /// their row ids in order.
    pub fn insert_ab_assignments(
        &mut self,
        test_id: i64,
        assignments: &[(&str, i64)],
    ) -> Result<Vec<i64>> {
        let at = now();
        let tx = self.write_transaction()?;
        let mut ids = Vec::with_capacity(assignments.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO ab_assignments (test_id, variant_id, unit_key, at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for (key, variant_id) in assignments {
                stmt.execute(params![test_id, variant_id, key, at])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// The latest assignment of `key` in a test: (assignment id, variant id).
    pub fn latest_ab_assignment(&self, test_id: i64, key: &str) -> Result<Option<(i64, i64)>> {
        Ok(self
            .conn
            .query_row(
                "SELECT id, variant_id FROM ab_assignments WHERE test_id = ?1 AND unit_key = ?2 \
                 ORDER BY id DESC LIMIT 1",
                params![test_id, key],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?)
    }

    /// Stores an outcome of an assignment.
    pub fn insert_ab_outcome(
        &mut self,
        assignment_id: i64,
        kind: OutcomeKind,
        score: f64,
    ) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO ab_outcomes (assignment_id, kind, score, at) VALUES (?1, ?2, ?3, ?4)",
            params![assignment_id, kind, score, now()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    /// The kinds of outcome a test has recorded so far.
    pub fn ab_outcome_kinds(&self, test_id: i64) -> Result<Vec<OutcomeKind>> {
        let mut stmt = self.conn.prepare(
            "SELECT DISTINCT o.kind FROM ab_outcomes o JOIN ab_assignments a ON a.id = o.assignment_id \
             WHERE a.test_id = ?1",
        )?;
        let rows = stmt
            .query_map([test_id], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Assignments (requests) per variant id of a test.
    pub fn ab_request_counts(&self, test_id: i64) -> Result<Vec<(i64, i64)>> {
        let mut stmt = self.conn.prepare(
            "SELECT variant_id, COUNT(*) FROM ab_assignments WHERE test_id = ?1 GROUP BY variant_id",
        )?;
        let rows = stmt
            .query_map([test_id], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Every outcome of a test with its variant, oldest first.
    pub fn ab_outcomes(&self, test_id: i64) -> Result<Vec<AbOutcomeRow>> {
        let mut stmt = self.conn.prepare(
            "SELECT a.variant_id, o.kind, o.score FROM ab_outcomes o \
             JOIN ab_assignments a ON a.id = o.assignment_id WHERE a.test_id = ?1 ORDER BY o.id",
        )?;
        let rows = stmt
            .query_map([test_id], |r| {
                Ok(AbOutcomeRow {
                    variant_id: r.get(0)?,
                    kind: r.get(1)?,
                    score: r.get(2)?,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }

    /// Marks a test concluded with its winner; with `promote` (alias and the
    /// reason), moves the program's alias to the winner's version through
    /// [`Store::set_alias`] in the same transaction, so the test never reads
    /// as concluded-and-promoted while the alias has not moved, or the
    /// other way round.
    pub fn conclude_ab_test(
        &mut self,
        test: &AbTestRow,
        winner: &AbVariantRow,
        promote: Option<(&str, &str)>,
    ) -> Result<()> {
        let own = self.conn.is_autocommit();
        if own {
            self.conn.execute_batch("BEGIN IMMEDIATE")?;
        }
        let result = self.conclude_ab_test_rows(test, winner, promote);
        if own {
            match &result {
                Ok(()) => self.conn.execute_batch("COMMIT")?,
                Err(_) => {
                    let _ = self.conn.execute_batch("ROLLBACK");
                }
            }
        }
        result
    }

    fn conclude_ab_test_rows(
        &mut self,
        test: &AbTestRow,
        winner: &AbVariantRow,
        promote: Option<(&str, &str)>,
    ) -> Result<()> {
        if let Some((alias, reason)) = promote {
            self.set_alias(
                &test.program,
                alias,
                winner.version_id,
                "promote",
                Some(reason),
            )?;
        }
        let changed = self.conn.execute(
            "UPDATE ab_tests SET status = 'concluded', winner_variant_id = ?1, promoted_alias = ?2, \
             concluded_at = ?3 WHERE id = ?4 AND status = 'active'",
            params![winner.id, promote.map(|(a, _)| a), now(), test.id],
        )?;
        if changed == 0 {
            return Err(Error::Invalid(format!(
                "A/B test `{}` is concluded already",
                test.name
            )));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Version 4 rows of the A/B tables keep their ids and links through the
    /// version 5 rebuilds; `stopped` reads as `concluded`, old scores as
    /// `score` outcomes, and the weights start the weight history.
    #[test]
    fn version_4_ab_rows_survive_the_version_5_rebuild() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v4.db");
        {
            let mut conn = rusqlite::Connection::open(&path).unwrap();
            super::super::embedded::migrations::runner()
                .set_target(refinery::Target::Version(4))
                .run(&mut conn)
                .unwrap();
            conn.execute_batch(
                "INSERT INTO programs (id, name, created_at) VALUES (1, 'p', 'now'); \
                 INSERT INTO program_versions (id, program_id, version, spec_json, content_hash, created_at) \
                 VALUES (10, 1, 1, '{}', 'h1', 'now'), (11, 1, 2, '{}', 'h2', 'now'); \
                 INSERT INTO ab_tests (id, name, program_id, status, created_at, stopped_at) \
                 VALUES (7, 'old', 1, 'stopped', 't0', 't1'); \
                 INSERT INTO ab_variants (id, test_id, name, version_id, weight) \
                 VALUES (20, 7, 'V1', 10, 3.0), (21, 7, 'V2', 11, 1.0); \
                 INSERT INTO ab_assignments (id, test_id, variant_id, unit_key, at) VALUES (30, 7, 21, 'u', 't'); \
                 INSERT INTO ab_outcomes (id, assignment_id, score, at) VALUES (40, 30, 0.25, 't');",
            )
            .unwrap();
        }
        let s = Store::open(&path).unwrap();
        let t = s.ab_test("old").unwrap();
        assert_eq!(
            (t.id, t.status, t.strategy),
            (7, AbStatus::Concluded, AbStrategy::Sticky)
        );
        assert_eq!(t.concluded_at.as_deref(), Some("t1"));
        assert_eq!(s.latest_ab_assignment(7, "u").unwrap(), Some((30, 21)));
        let o = s.ab_outcomes(7).unwrap();
        assert_eq!(
            (o[0].variant_id, o[0].kind, o[0].score),
            (21, OutcomeKind::Score, 0.25)
        );
        assert_eq!(s.ab_weight_history(7).unwrap().len(), 2);
        let fk_problems: i64 = s
            .conn()
            .query_row("SELECT COUNT(*) FROM pragma_foreign_key_check", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(fk_problems, 0);
    }
}
