-- skill-fleet tracker schema, version 3: one status vocabulary for runs and jobs.
--
-- 1. `runs.status` takes pending | running | completed | failed | cancelled |
--    interrupted (the values of `store::Status`); version 2's `succeeded` becomes
--    `completed`, the word the HTTP API uses. `runs.kind` is checked too.
--    SQLite cannot change a CHECK constraint in place, so `runs` is rebuilt
--    (its id values, and so every reference to them, are kept; the store turns
--    foreign-key enforcement off while migrating).
-- 2. `jobs` (unused until now) is reshaped for the HTTP API's persisted jobs:
--    integer ids, the same status vocabulary, a kind, a message and a result.

DROP VIEW run_summary;

CREATE TABLE runs_v3 (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL CHECK (kind IN ('optimize', 'eval', 'predict', 'bench')),
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

INSERT INTO runs_v3 (id, kind, optimizer, config_json, trainset_id, split_id, program_id, base_version_id,
                     status, progress, seed, baseline_score, best_score, best_candidate_id, test_score,
                     lm_calls, cache_hits, started_at, finished_at, error)
SELECT id, kind, optimizer, config_json, trainset_id, split_id, program_id, base_version_id,
       CASE status WHEN 'succeeded' THEN 'completed' ELSE status END,
       progress, seed, baseline_score, best_score, best_candidate_id, test_score,
       lm_calls, cache_hits, started_at, finished_at, error
FROM runs;

DROP TABLE runs;
ALTER TABLE runs_v3 RENAME TO runs;
CREATE INDEX runs_program ON runs(program_id);

DROP TABLE jobs;
CREATE TABLE jobs (
    id            INTEGER PRIMARY KEY,
    kind          TEXT NOT NULL CHECK (kind IN ('optimize', 'eval', 'predict')),
    run_id        INTEGER REFERENCES runs(id),
    request_json  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'completed', 'failed', 'cancelled', 'interrupted')),
    progress      REAL NOT NULL DEFAULT 0,
    message       TEXT,
    result_json   TEXT,
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);
CREATE INDEX jobs_status ON jobs(status);

-- One row per run with its headline numbers.
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
