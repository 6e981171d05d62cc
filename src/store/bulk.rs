//! Multi-row inserts: many rows per statement through cached prepared
//! statements, inside the caller's transaction. The store writer's group
//! commits (scores, traces) use them.

use crate::error::Result;
use rusqlite::{params_from_iter, ToSql};

/// Inserts `rows` through multi-row statements of [`ROWS_PER_STATEMENT`] rows
/// (single-row statements for the remainder); `bind` appends one row's
/// `columns` values in `head`'s column order.
pub(crate) fn insert_chunked<'a, T>(
    tx: &rusqlite::Connection,
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
    use crate::store::{EvalKind, NewRun, RunKind, ScoreRow, Split, Store, Write};

    /// Groups longer than one multi-row statement (plus a remainder) store
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
            .create_run(&NewRun::new(RunKind::Bench, "{}".into()))
            .unwrap();
        let ev = |s: &Store| {
            s.create_evaluation(run, None, None, Split::Val, EvalKind::Full, "m", n_examples)
                .unwrap()
        };
        let (e0, e1) = (ev(&s), ev(&s));
        let rows: Vec<ScoreRow> = (0..n_examples as i64)
            .map(|i| ScoreRow {
                example_id: i + 1,
                score: i as f64 / 100.0,
                feedback: Some(format!("f{i}")),
                prediction_json: None,
                error: None,
            })
            .collect();
        let score = |e: i64, r: &ScoreRow| Write::Score {
            evaluation_id: e,
            row: r.clone(),
        };
        // The second evaluation gets 3 rows, then one of them again with a new score.
        let mut writes: Vec<Write> = rows.iter().map(|r| score(e0, r)).collect();
        writes.extend(rows[..3].iter().map(|r| score(e1, r)));
        writes.push(score(
            e1,
            &ScoreRow {
                score: 0.99,
                ..rows[1].clone()
            },
        ));
        s.apply_writes(&writes).unwrap();
        let first = s.scores(e0).unwrap();
        assert_eq!(first.len(), n_examples);
        for (i, r) in first.iter().enumerate() {
            assert_eq!(r.example_id, i as i64 + 1);
            assert_eq!(r.score, i as f64 / 100.0);
            assert_eq!(r.feedback.as_deref(), Some(format!("f{i}").as_str()));
        }
        let second = s.scores(e1).unwrap();
        assert_eq!(second.len(), 3);
        assert_eq!(second[1].score, 0.99);
        // A bad row (unknown example) rolls back the whole group.
        let e2 = ev(&s);
        let mut bad: Vec<Write> = rows.iter().map(|r| score(e2, r)).collect();
        bad.push(score(
            e2,
            &ScoreRow {
                example_id: 9999,
                ..rows[0].clone()
            },
        ));
        let err = s.apply_writes(&bad).unwrap_err();
        assert!(err.to_string().contains("examples row 9999"), "{err}");
        assert!(s.scores(e2).unwrap().is_empty());
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
