-- skill-fleet tracker schema, version 4: stored version comparisons, the
-- evidence behind alias moves, and the version that answered a traced call.
--
-- 1. `comparisons`: one row per `compare PROGRAM V1 V2` (version A is the
--    reference, B the challenger). The headline statistics are columns so
--    that plain SQL and the promote gate can filter on them; `result_json`
--    keeps the whole result (per-example outcomes, most changed examples).
-- 2. `alias_history.comparison_id`: the comparison that justified a move
--    (NULL for moves made without evidence).
-- 3. `traces.version_id`: the program version whose call a trace records
--    (predictions served by alias, version or A/B test).

CREATE TABLE comparisons (
    id               INTEGER PRIMARY KEY,
    program_id       INTEGER NOT NULL REFERENCES programs(id) ON DELETE CASCADE,
    a_version_id     INTEGER NOT NULL REFERENCES program_versions(id),
    b_version_id     INTEGER NOT NULL REFERENCES program_versions(id),
    trainset_id      INTEGER NOT NULL REFERENCES trainsets(id),
    split_id         INTEGER REFERENCES splits(id),
    split            TEXT NOT NULL CHECK (split IN ('train', 'val', 'test', 'all')),
    metric           TEXT NOT NULL,
    run_id           INTEGER REFERENCES runs(id),
    a_evaluation_id  INTEGER REFERENCES evaluations(id),
    b_evaluation_id  INTEGER REFERENCES evaluations(id),
    n                INTEGER NOT NULL,
    a_mean           REAL NOT NULL,
    b_mean           REAL NOT NULL,
    mean_diff        REAL NOT NULL,           -- b_mean - a_mean
    ci_low           REAL NOT NULL,           -- paired bootstrap interval of mean_diff
    ci_high          REAL NOT NULL,
    confidence       REAL NOT NULL,
    wins             INTEGER NOT NULL,        -- examples where B scores higher
    losses           INTEGER NOT NULL,
    ties             INTEGER NOT NULL,
    p_value          REAL NOT NULL,           -- two-sided exact sign test on wins vs losses
    seed             INTEGER NOT NULL,
    resamples        INTEGER NOT NULL,
    result_json      TEXT NOT NULL,
    created_at       TEXT NOT NULL
);
CREATE INDEX comparisons_versions ON comparisons(program_id, b_version_id, a_version_id);

ALTER TABLE alias_history ADD COLUMN comparison_id INTEGER REFERENCES comparisons(id);

ALTER TABLE traces ADD COLUMN version_id INTEGER;
