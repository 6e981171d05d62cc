//! Batched writes for bulk loads (benchmarks, imports, replaying a finished
//! optimizer batch): many rows per transaction through one cached prepared
//! statement, instead of one autocommit per row as in `runs.rs`.
//!
//! Each method is one transaction: either all its rows are stored or none.

use super::{CandidateRow, EvaluationRow, ScoreRow, Store};
use crate::error::{Error, Result};
use crate::util::now;
use rusqlite::{params, params_from_iter, ToSql, TransactionBehavior};
use std::collections::BTreeSet;

impl Store {
    /// Inserts the candidates of run `run_id` (their `id` and `run_id` fields are
    /// ignored) and returns the new ids in order. Unlike [`Store::add_candidate`]
    /// this is a plain INSERT: a spec hash already stored for the run is an error.
    pub fn insert_candidates_bulk(
        &mut self,
        run_id: i64,
        rows: &[CandidateRow],
    ) -> Result<Vec<i64>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(rows.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO candidates (run_id, parent_ids, origin, spec_json, hash, trial, created_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            )?;
            let at = now();
            for c in rows {
                stmt.execute(params![
                    run_id,
                    c.parent_ids,
                    c.origin,
                    c.spec_json,
                    c.hash,
                    c.trial,
                    at
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Inserts evaluations as given (their `id` field is ignored; `status` is
    /// stored as is, and a `done` one gets `finished_at`) and returns the new ids.
    pub fn insert_evaluations_bulk(&mut self, rows: &[EvaluationRow]) -> Result<Vec<i64>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut ids = Vec::with_capacity(rows.len());
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO evaluations (run_id, candidate_id, version_id, split, kind, metric, n, \
                 mean_score, status, created_at, finished_at) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            )?;
            let at = now();
            for e in rows {
                let finished = (e.status == "done").then_some(at.as_str());
                stmt.execute(params![
                    e.run_id,
                    e.candidate_id,
                    e.version_id,
                    e.split,
                    e.kind,
                    e.metric,
                    e.n,
                    e.mean_score,
                    e.status,
                    at,
                    finished
                ])?;
                ids.push(tx.last_insert_rowid());
            }
        }
        tx.commit()?;
        Ok(ids)
    }

    /// Records many scores of one evaluation in one transaction (same
    /// replace-on-conflict semantics as [`Store::insert_score`]).
    pub fn insert_scores_bulk(&mut self, evaluation_id: i64, rows: &[ScoreRow]) -> Result<()> {
        self.insert_scores_bulk_many(&[(evaluation_id, rows)])
    }

    /// Records the scores of several evaluations in one transaction.
    ///
    /// Two things make this several times cheaper per row than
    /// [`Store::insert_score`]: rows go [`ROWS_PER_STATEMENT`] at a time into
    /// one multi-row `INSERT` (SQLite's per-statement work is paid once per
    /// chunk), and the foreign keys are checked once per distinct evaluation
    /// and example inside the transaction instead of twice per row by SQLite.
    /// A reference to a missing row is an error and nothing is stored.
    pub fn insert_scores_bulk_many(&mut self, batches: &[(i64, &[ScoreRow])]) -> Result<()> {
        let rows: Vec<(i64, &ScoreRow)> = batches
            .iter()
            .flat_map(|(e, rows)| rows.iter().map(move |r| (*e, r)))
            .collect();
        // `foreign_keys` cannot change inside a transaction: switch it off
        // around ours (this connection only) and always switch it back on.
        let enforced: bool = self
            .conn
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))?;
        if enforced {
            self.conn.execute_batch("PRAGMA foreign_keys = OFF")?;
        }
        let result = insert_scores_checked(&mut self.conn, &rows);
        if enforced {
            self.conn.execute_batch("PRAGMA foreign_keys = ON")?;
        }
        result
    }
}

/// The transaction of [`Store::insert_scores_bulk_many`]: parent checks, then
/// multi-row inserts.
fn insert_scores_checked(conn: &mut rusqlite::Connection, rows: &[(i64, &ScoreRow)]) -> Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let evaluations: BTreeSet<i64> = rows.iter().map(|(e, _)| *e).collect();
        let examples: BTreeSet<i64> = rows.iter().map(|(_, r)| r.example_id).collect();
        for (table, ids) in [("evaluations", &evaluations), ("examples", &examples)] {
            let mut stmt = tx.prepare_cached(&format!("SELECT 1 FROM {table} WHERE id = ?1"))?;
            for id in ids {
                if !stmt.exists([id])? {
                    return Err(Error::Invalid(format!(
                        "a score references {table} row {id}, which does not exist; no score of this batch was stored"
                    )));
                }
            }
        }
        const HEAD: &str = "INSERT OR REPLACE INTO scores \
            (evaluation_id, example_id, score, feedback, prediction_json, error) VALUES ";
        insert_chunked(&tx, HEAD, 6, rows, |(e, r), v| {
            v.extend([
                e as &dyn ToSql,
                &r.example_id,
                &r.score,
                &r.feedback,
                &r.prediction_json,
                &r.error,
            ])
        })?;
    }
    tx.commit()?;
    Ok(())
}

/// Inserts `rows` through multi-row statements of [`ROWS_PER_STATEMENT`] rows
/// (single-row statements for the remainder); `bind` appends one row's
/// `columns` values in `head`'s column order.
pub(crate) fn insert_chunked<'a, T>(
    tx: &rusqlite::Transaction,
    head: &str,
    columns: usize,
    rows: &'a [T],
    bind: impl Fn(&'a T, &mut Vec<&'a dyn ToSql>),
) -> Result<()> {
    let mut chunks = rows.chunks_exact(ROWS_PER_STATEMENT);
    if rows.len() >= ROWS_PER_STATEMENT {
        let mut stmt = tx.prepare_cached(&multi_row_insert(head, columns, ROWS_PER_STATEMENT))?;
        for chunk in &mut chunks {
            let mut values = Vec::with_capacity(columns * chunk.len());
            for r in chunk {
                bind(r, &mut values);
            }
            stmt.execute(params_from_iter(values))?;
        }
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut stmt = tx.prepare_cached(&multi_row_insert(head, columns, 1))?;
        for r in rest {
            let mut values = Vec::with_capacity(columns);
            bind(r, &mut values);
            stmt.execute(params_from_iter(values))?;
        }
    }
    Ok(())
}

/// Rows per multi-row `INSERT` in bulk writes: large enough to amortize a
/// statement's fixed cost, small enough to stay far below SQLite's limit of
/// 32,766 bound parameters.
pub const ROWS_PER_STATEMENT: usize = 32;

/// `HEAD` followed by `rows` groups of `columns` numbered placeholders.
fn multi_row_insert(head: &str, columns: usize, rows: usize) -> String {
    let mut sql = String::with_capacity(head.len() + rows * columns * 5);
    sql.push_str(head);
    for r in 0..rows {
        if r > 0 {
            sql.push(',');
        }
        sql.push('(');
        for c in 0..columns {
            if c > 0 {
                sql.push(',');
            }
            sql.push_str(&format!("?{}", r * columns + c + 1));
        }
        sql.push(')');
    }
    sql
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewRun;

    #[test]
    fn bulk_rows_are_stored_and_ranked() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("b.db")).unwrap();
        // Scores reference examples: insert two without a trainset file.
        s.conn()
            .execute_batch(
                "INSERT INTO trainsets (id, name, content_hash, source, format, n_examples, created_at) \
                 VALUES (1, 't', 'h', 's', 'json', 2, 'now'); \
                 INSERT INTO examples (id, trainset_id, idx, fields_json, hash) VALUES (1, 1, 0, '{}', 'a'), (2, 1, 1, '{}', 'b');",
            )
            .unwrap();
        let run = s
            .create_run(&NewRun {
                kind: "bench",
                config_json: "{}".into(),
                ..Default::default()
            })
            .unwrap();
        let cand = |h: &str| CandidateRow {
            id: 0,
            run_id: run,
            parent_ids: "[]".into(),
            origin: "bench".into(),
            spec_json: "{}".into(),
            hash: h.into(),
            trial: None,
        };
        let ids = s
            .insert_candidates_bulk(run, &[cand("a"), cand("b")])
            .unwrap();
        assert_eq!(ids.len(), 2);
        let ev = |c: i64, m: f64| EvaluationRow {
            id: 0,
            run_id: run,
            candidate_id: Some(c),
            version_id: None,
            split: "val".into(),
            kind: "full".into(),
            metric: "m".into(),
            n: 2,
            mean_score: Some(m),
            status: "done".into(),
        };
        let evs = s
            .insert_evaluations_bulk(&[ev(ids[0], 0.2), ev(ids[1], 0.9)])
            .unwrap();
        let score = |ex: i64, v: f64| ScoreRow {
            example_id: ex,
            score: v,
            feedback: None,
            prediction_json: None,
            error: None,
        };
        s.insert_scores_bulk(evs[0], &[score(1, 0.1), score(2, 0.3)])
            .unwrap();
        s.insert_scores_bulk_many(&[(evs[1], &[score(1, 1.0), score(2, 0.8)][..])])
            .unwrap();
        assert_eq!(s.count("scores").unwrap(), 4);
        assert_eq!(s.scores(evs[1]).unwrap()[0].score, 1.0);
        let best: i64 = s
            .conn()
            .query_row(
                "SELECT candidate_id FROM candidate_leaderboard WHERE run_id = ?1 AND rank = 1",
                [run],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(best, ids[1]);
        // A failing row rolls the whole batch back.
        assert!(s
            .insert_candidates_bulk(run, &[cand("c"), cand("a")])
            .is_err());
        assert_eq!(s.candidates(run).unwrap().len(), 2);
    }

    /// Batches longer than one multi-row statement (plus a remainder) store
    /// every row once, with its own values, and a repeated key is replaced.
    #[test]
    fn multi_row_statements_store_every_row() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = Store::open(dir.path().join("m.db")).unwrap();
        let n_examples = 2 * ROWS_PER_STATEMENT + 6;
        s.conn()
            .execute(
                "INSERT INTO trainsets (id, name, content_hash, source, format, n_examples, created_at) \
                 VALUES (1, 't', 'h', 's', 'json', ?1, 'now')",
                [n_examples as i64],
            )
            .unwrap();
        for i in 0..n_examples as i64 {
            s.conn()
                .execute(
                    "INSERT INTO examples (id, trainset_id, idx, fields_json, hash) VALUES (?1, 1, ?1, '{}', ?1)",
                    [i + 1],
                )
                .unwrap();
        }
        let run = s
            .create_run(&NewRun {
                kind: "bench",
                config_json: "{}".into(),
                ..Default::default()
            })
            .unwrap();
        let ev = EvaluationRow {
            id: 0,
            run_id: run,
            candidate_id: None,
            version_id: None,
            split: "val".into(),
            kind: "full".into(),
            metric: "m".into(),
            n: n_examples as i64,
            mean_score: None,
            status: "running".into(),
        };
        let evs = s
            .insert_evaluations_bulk(&[ev.clone(), ev.clone()])
            .unwrap();
        let rows: Vec<ScoreRow> = (0..n_examples as i64)
            .map(|i| ScoreRow {
                example_id: i + 1,
                score: i as f64 / 100.0,
                feedback: Some(format!("f{i}")),
                prediction_json: None,
                error: None,
            })
            .collect();
        // The second evaluation gets 3 rows, then one of them again with a new score.
        let again = [ScoreRow {
            score: 0.99,
            ..rows[1].clone()
        }];
        s.insert_scores_bulk_many(&[(evs[0], &rows[..]), (evs[1], &rows[..3])])
            .unwrap();
        s.insert_scores_bulk(evs[1], &again).unwrap();
        let first = s.scores(evs[0]).unwrap();
        assert_eq!(first.len(), n_examples);
        for (i, r) in first.iter().enumerate() {
            assert_eq!(r.example_id, i as i64 + 1);
            assert_eq!(r.score, i as f64 / 100.0);
            assert_eq!(r.feedback.as_deref(), Some(format!("f{i}").as_str()));
        }
        let second = s.scores(evs[1]).unwrap();
        assert_eq!(second.len(), 3);
        assert_eq!(second[1].score, 0.99);
        // A bad row (unknown example) rolls back the whole multi-statement batch.
        let bad = ScoreRow {
            example_id: 9999,
            ..rows[0].clone()
        };
        let mut with_bad = rows.clone();
        with_bad.push(bad);
        let evs2 = s.insert_evaluations_bulk(&[ev]).unwrap();
        let err = s.insert_scores_bulk(evs2[0], &with_bad).unwrap_err();
        assert!(err.to_string().contains("examples row 9999"), "{err}");
        assert!(s.scores(evs2[0]).unwrap().is_empty());
        assert!(s.insert_scores_bulk(424242, &rows[..1]).is_err());
        // SQLite's own enforcement is back on for every other statement.
        let fk: bool = s
            .conn()
            .query_row("PRAGMA foreign_keys", [], |r| r.get(0))
            .unwrap();
        assert!(fk);
        assert!(s
            .conn()
            .execute(
                "INSERT INTO scores (evaluation_id, example_id, score) VALUES (424242, 1, 0.5)",
                []
            )
            .is_err());
    }
}
