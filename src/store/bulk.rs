//! Batched writes for bulk loads (benchmarks, imports, replaying a finished
//! optimizer batch): many rows per transaction through one cached prepared
//! statement, instead of one autocommit per row as in `runs.rs`.
//!
//! Each method is one transaction: either all its rows are stored or none.

use super::{CandidateRow, EvaluationRow, ScoreRow, Store};
use crate::error::Result;
use crate::util::now;
use rusqlite::{params, TransactionBehavior};

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
    pub fn insert_scores_bulk_many(&mut self, batches: &[(i64, &[ScoreRow])]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR REPLACE INTO scores (evaluation_id, example_id, score, feedback, prediction_json, error) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            )?;
            for (evaluation_id, rows) in batches {
                for s in rows.iter() {
                    stmt.execute(params![
                        evaluation_id,
                        s.example_id,
                        s.score,
                        s.feedback,
                        s.prediction_json,
                        s.error
                    ])?;
                }
            }
        }
        tx.commit()?;
        Ok(())
    }
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
}
