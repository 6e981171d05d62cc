-- skill-fleet tracker schema, version 2: faster score writes and per-run leaderboards.
--
-- 1. `scores` becomes a WITHOUT ROWID table clustered on its primary key
--    (evaluation_id, example_id). Version 1 stored every score twice (the rowid
--    table plus the index behind the primary key); now one b-tree insert per row,
--    and "the scores of an evaluation" is one contiguous range.
-- 2. `candidate_leaderboard` groups by (run_id, candidate id). The rows are the
--    same (a candidate belongs to one run), but SQLite can now push a
--    `WHERE run_id = ?` filter into the view and use the candidates and
--    evaluations indexes instead of ranking every run (docs/benchmarks.md, part A).

DROP VIEW candidate_leaderboard;
DROP VIEW example_wins_losses;

CREATE TABLE scores_clustered (
    evaluation_id    INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    example_id       INTEGER NOT NULL REFERENCES examples(id),
    score            REAL NOT NULL,
    feedback         TEXT,
    prediction_json  TEXT,
    error            TEXT,
    PRIMARY KEY (evaluation_id, example_id)
) WITHOUT ROWID;

INSERT INTO scores_clustered (evaluation_id, example_id, score, feedback, prediction_json, error)
SELECT evaluation_id, example_id, score, feedback, prediction_json, error FROM scores;

DROP TABLE scores;
ALTER TABLE scores_clustered RENAME TO scores;

-- Candidates ranked by their best full evaluation on validation within a run.
CREATE VIEW candidate_leaderboard AS
SELECT c.run_id, c.id AS candidate_id, c.origin, c.trial,
       MAX(e.mean_score) AS val_score, SUM(e.n) AS n_scored,
       RANK() OVER (PARTITION BY c.run_id ORDER BY MAX(e.mean_score) DESC) AS rank
FROM candidates c
JOIN evaluations e ON e.candidate_id = c.id AND e.kind = 'full' AND e.status = 'done'
GROUP BY c.run_id, c.id;

-- Per-example comparison of every pair of evaluations on the same examples:
-- filter by a_evaluation_id / b_evaluation_id to see wins and losses.
CREATE VIEW example_wins_losses AS
SELECT a.evaluation_id AS a_evaluation_id, b.evaluation_id AS b_evaluation_id,
       a.example_id, a.score AS a_score, b.score AS b_score,
       CASE WHEN b.score > a.score THEN 'win' WHEN b.score < a.score THEN 'loss' ELSE 'tie' END AS outcome
FROM scores a
JOIN scores b ON a.example_id = b.example_id AND a.evaluation_id <> b.evaluation_id;
