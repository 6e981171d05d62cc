-- skill-fleet tracker schema, version 1.
-- Every entity of the product lives here from the start so that later features
-- (registry, A/B routing, reports, HTTP jobs) only add queries, not tables.
-- Timestamps are RFC 3339 UTC text; JSON columns hold serde_json documents.

CREATE TABLE trainsets (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL,
    content_hash  TEXT NOT NULL UNIQUE,
    source        TEXT NOT NULL,
    format        TEXT NOT NULL,
    n_examples    INTEGER NOT NULL,
    created_at    TEXT NOT NULL
);
CREATE INDEX trainsets_name ON trainsets(name);

CREATE TABLE examples (
    id           INTEGER PRIMARY KEY,
    trainset_id  INTEGER NOT NULL REFERENCES trainsets(id) ON DELETE CASCADE,
    idx          INTEGER NOT NULL,
    fields_json  TEXT NOT NULL,
    hash         TEXT NOT NULL,
    category     TEXT,
    style        TEXT,
    source       TEXT,
    UNIQUE (trainset_id, idx)
);
CREATE INDEX examples_hash ON examples(hash);

-- A named, seeded split of a trainset; several may exist, the newest is used by default.
CREATE TABLE splits (
    id           INTEGER PRIMARY KEY,
    trainset_id  INTEGER NOT NULL REFERENCES trainsets(id) ON DELETE CASCADE,
    seed         INTEGER NOT NULL,
    train_frac   REAL NOT NULL,
    val_frac     REAL NOT NULL,
    created_at   TEXT NOT NULL,
    UNIQUE (trainset_id, seed, train_frac, val_frac)
);

CREATE TABLE split_assignments (
    split_id    INTEGER NOT NULL REFERENCES splits(id) ON DELETE CASCADE,
    example_id  INTEGER NOT NULL REFERENCES examples(id) ON DELETE CASCADE,
    part        TEXT NOT NULL CHECK (part IN ('train', 'val', 'test')),
    PRIMARY KEY (split_id, example_id)
);
CREATE INDEX split_assignments_part ON split_assignments(split_id, part);

CREATE TABLE programs (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE runs (
    id                 INTEGER PRIMARY KEY,
    kind               TEXT NOT NULL,            -- optimize | eval | predict | bench
    optimizer          TEXT,
    config_json        TEXT NOT NULL DEFAULT '{}',
    trainset_id        INTEGER REFERENCES trainsets(id),
    split_id           INTEGER REFERENCES splits(id),
    program_id         INTEGER REFERENCES programs(id),
    base_version_id    INTEGER,
    status             TEXT NOT NULL DEFAULT 'running'
                       CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'interrupted')),
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
CREATE INDEX runs_program ON runs(program_id);

CREATE TABLE program_versions (
    id            INTEGER PRIMARY KEY,
    program_id    INTEGER NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    version       INTEGER NOT NULL,
    spec_json     TEXT NOT NULL,
    content_hash  TEXT NOT NULL,
    parent_id     INTEGER REFERENCES program_versions(id),
    run_id        INTEGER REFERENCES runs(id),
    candidate_id  INTEGER,
    score         REAL,
    note          TEXT,
    created_at    TEXT NOT NULL,
    UNIQUE (program_id, version),
    UNIQUE (program_id, content_hash)
);

CREATE TABLE aliases (
    program_id  INTEGER NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    alias       TEXT NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES program_versions(id),
    updated_at  TEXT NOT NULL,
    PRIMARY KEY (program_id, alias)
);

CREATE TABLE alias_history (
    id               INTEGER PRIMARY KEY,
    program_id       INTEGER NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    alias            TEXT NOT NULL,
    from_version_id  INTEGER REFERENCES program_versions(id),
    to_version_id    INTEGER NOT NULL REFERENCES program_versions(id),
    action           TEXT NOT NULL CHECK (action IN ('set', 'promote', 'rollback')),
    reason           TEXT,
    at               TEXT NOT NULL
);

CREATE TABLE candidates (
    id          INTEGER PRIMARY KEY,
    run_id      INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    parent_ids  TEXT NOT NULL DEFAULT '[]',
    origin      TEXT NOT NULL,
    spec_json   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    trial       INTEGER,
    created_at  TEXT NOT NULL,
    UNIQUE (run_id, hash)
);

CREATE TABLE evaluations (
    id            INTEGER PRIMARY KEY,
    run_id        INTEGER NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    candidate_id  INTEGER REFERENCES candidates(id) ON DELETE CASCADE,
    version_id    INTEGER REFERENCES program_versions(id),
    split         TEXT NOT NULL,
    kind          TEXT NOT NULL CHECK (kind IN ('full', 'minibatch')),
    metric        TEXT NOT NULL,
    n             INTEGER NOT NULL,
    mean_score    REAL,
    status        TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'done')),
    created_at    TEXT NOT NULL,
    finished_at   TEXT
);
CREATE INDEX evaluations_candidate ON evaluations(candidate_id);
CREATE INDEX evaluations_run ON evaluations(run_id);

CREATE TABLE scores (
    evaluation_id    INTEGER NOT NULL REFERENCES evaluations(id) ON DELETE CASCADE,
    example_id       INTEGER NOT NULL REFERENCES examples(id),
    score            REAL NOT NULL,
    feedback         TEXT,
    prediction_json  TEXT,
    error            TEXT,
    PRIMARY KEY (evaluation_id, example_id)
);

CREATE TABLE traces (
    id                 INTEGER PRIMARY KEY,
    run_id             INTEGER,
    candidate_id       INTEGER,
    example_id         INTEGER,
    predictor          TEXT,
    role               TEXT,
    provider           TEXT NOT NULL,
    model              TEXT NOT NULL,
    prompt_tokens      INTEGER NOT NULL DEFAULT 0,
    completion_tokens  INTEGER NOT NULL DEFAULT 0,
    cost_usd           REAL NOT NULL DEFAULT 0,
    latency_ms         REAL NOT NULL DEFAULT 0,
    cache_hit          INTEGER NOT NULL DEFAULT 0,
    attempts           INTEGER NOT NULL DEFAULT 1,
    error              TEXT,
    request_json       TEXT NOT NULL,
    response_text      TEXT,
    at                 TEXT NOT NULL
);
CREATE INDEX traces_run ON traces(run_id, candidate_id);

CREATE TABLE lm_cache (
    key            TEXT PRIMARY KEY,
    provider       TEXT NOT NULL,
    model          TEXT NOT NULL,
    response_json  TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    hits           INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE ab_tests (
    id          INTEGER PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    program_id  INTEGER NOT NULL REFERENCES programs(id),
    status      TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'stopped')),
    created_at  TEXT NOT NULL,
    stopped_at  TEXT
);

CREATE TABLE ab_variants (
    id          INTEGER PRIMARY KEY,
    test_id     INTEGER NOT NULL REFERENCES ab_tests(id) ON DELETE CASCADE,
    name        TEXT NOT NULL,
    version_id  INTEGER NOT NULL REFERENCES program_versions(id),
    weight      REAL NOT NULL DEFAULT 1.0,
    UNIQUE (test_id, name)
);

CREATE TABLE ab_assignments (
    id          INTEGER PRIMARY KEY,
    test_id     INTEGER NOT NULL REFERENCES ab_tests(id) ON DELETE CASCADE,
    variant_id  INTEGER NOT NULL REFERENCES ab_variants(id),
    unit_key    TEXT NOT NULL,
    at          TEXT NOT NULL,
    UNIQUE (test_id, unit_key)
);

CREATE TABLE ab_outcomes (
    id             INTEGER PRIMARY KEY,
    assignment_id  INTEGER NOT NULL REFERENCES ab_assignments(id) ON DELETE CASCADE,
    score          REAL NOT NULL,
    at             TEXT NOT NULL
);

CREATE TABLE jobs (
    id            TEXT PRIMARY KEY,
    run_id        INTEGER REFERENCES runs(id),
    request_json  TEXT NOT NULL,
    status        TEXT NOT NULL DEFAULT 'pending'
                  CHECK (status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')),
    progress      REAL NOT NULL DEFAULT 0,
    error         TEXT,
    created_at    TEXT NOT NULL,
    updated_at    TEXT NOT NULL
);

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

-- Candidates ranked by their best full evaluation on validation within a run.
CREATE VIEW candidate_leaderboard AS
SELECT c.run_id, c.id AS candidate_id, c.origin, c.trial,
       MAX(e.mean_score) AS val_score, SUM(e.n) AS n_scored,
       RANK() OVER (PARTITION BY c.run_id ORDER BY MAX(e.mean_score) DESC) AS rank
FROM candidates c
JOIN evaluations e ON e.candidate_id = c.id AND e.kind = 'full' AND e.status = 'done'
GROUP BY c.id;

-- Per-example comparison of every pair of evaluations on the same examples:
-- filter by a_evaluation_id / b_evaluation_id to see wins and losses.
CREATE VIEW example_wins_losses AS
SELECT a.evaluation_id AS a_evaluation_id, b.evaluation_id AS b_evaluation_id,
       a.example_id, a.score AS a_score, b.score AS b_score,
       CASE WHEN b.score > a.score THEN 'win' WHEN b.score < a.score THEN 'loss' ELSE 'tie' END AS outcome
FROM scores a
JOIN scores b ON a.example_id = b.example_id AND a.evaluation_id <> b.evaluation_id;
