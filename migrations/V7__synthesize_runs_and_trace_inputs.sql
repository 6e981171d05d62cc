-- skill-fleet tracker schema, version 7: training data from the tracker.
--
-- 1. `runs.kind` takes `synthesize` too: `trainset synthesize` records its
--    generation as a run (with its traces and budget). SQLite cannot change a
--    CHECK constraint in place, so `runs` is rebuilt as in version 3 (ids and
--    every reference to them kept; the store turns foreign-key enforcement off
--    while migrating), and the view reading it is dropped and made again.
-- 2. `traces.inputs_json`: the program inputs (without the spec's constants)
--    of the run a predictor call belongs to, so `trainset from-traces` can
--    rebuild an example from a traced prediction. Older rows stay NULL.
-- 3. `traces.assignment_id`: the A/B assignment that routed the call, so an
--    A/B outcome (recorded per assignment) can be joined to its prediction.

DROP VIEW run_summary;

CREATE TABLE runs_v7 (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('optimize', 'eval', 'predict', 'bench', 'synthesize')),
    optimizer          TEXT,
    config_json        TEXT NOT NULL DEFAULT '{}',
    trainset_id        INTEGER REFERENCES trainsets(id),
    split_id           INTEGER REFERENCES splits(id),
    program_id         INTEGER REFERENCES programs(id),
    base_version_id    INTEGER,
    status             TEXT NOT NULL DEFAULT 'running'
                       CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'interrupted')),
    progress           REAL NOT NULL DEFAULT 0,
    seed               INTEGER,
    baseline_score     REAL,
    best_score         REAL,
    best_candidate_id  INTEGER,
    test_score         REAL,
    lm_calls           INTEGER NOT NULL DEFAULT 0,
    cache_hits         INTEGER NOT NULL DEFAULT 0,
    started_at         TEXT NOT NULL,
    finished_at        TEXT,
    error              TEXT
);

INSERT INTO runs_v7 (id, kind, optimizer, config_json, trainset_id, split_id, program_id, base_version_id,
                     status, progress, seed, baseline_score, best_score, best_candidate_id, test_score,
                     lm_calls, cache_hits, started_at, finished_at, error)
SELECT id, kind, optimizer, config_json, trainset_id, split_id, program_id, base_version_id,
       status, progress, seed, baseline_score, best_score, best_candidate_id, test_score,
       lm_calls, cache_hits, started_at, finished_at, error
FROM runs;

DROP TABLE runs;
ALTER TABLE runs_v7 RENAME TO runs;
CREATE INDEX runs_program ON runs(program_id);

-- One row per run with its headline numbers (as in version 3).
CREATE VIEW run_summary AS
SELECT r.id AS run_id, r.kind, r.optimizer, r.status, r.progress, p.name AS program,
       t.name AS trainset, r.seed, r.baseline_score, r.best_score, r.test_score,
       r.lm_calls, r.cache_hits,
       (SELECT COUNT(*) FROM candidates c WHERE c.run_id = r.id) AS n_candidates,
       (SELECT COUNT(*) FROM evaluations e WHERE e.run_id = r.id) AS n_evaluations,
       r.started_at, r.finished_at, r.error
FROM runs r
LEFT JOIN programs p ON p.id = r.program_id
LEFT JOIN trainsets t ON t.id = r.trainset_id;

ALTER TABLE traces ADD COLUMN inputs_json TEXT;
ALTER TABLE traces ADD COLUMN assignment_id INTEGER;
