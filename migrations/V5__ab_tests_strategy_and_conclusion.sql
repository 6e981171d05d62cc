-- skill-fleet tracker schema, version 5: A/B tests as `skill-fleet ab` runs them.
--
-- 1. `ab_tests` is rebuilt (SQLite cannot change a CHECK in place; ids are
--    kept, the store turns foreign keys off while migrating) with:
--    `strategy` (sticky: a key's variant is a stable hash of salt, key and
--    variant; random: drawn per request), the hashing `salt` (fixed at
--    creation, so routing survives restarts and renames), the status
--    vocabulary active | concluded (version 1's `stopped` becomes
--    `concluded`), the winning variant, the alias promoted to it, and when.
-- 2. `ab_weight_history`: every weight a variant had, from creation on (one
--    row per variant per change; the weights of a change share `at`).
-- 3. `ab_assignments`: one row per routing event (a key routed twice is two
--    rows), so requests per variant are counted rows and a weight change
--    shows in the data; an outcome belongs to its key's latest assignment.
--    Version 1's UNIQUE(test_id, unit_key) is dropped for that.
-- 4. `ab_outcomes.kind`: score | success | failure (success stores score 1,
--    failure 0, so `score` is always the observed value).

CREATE TABLE ab_tests_v5 (
    id                 INTEGER PRIMARY KEY,
    name               TEXT NOT NULL UNIQUE,
    program_id         INTEGER NOT NULL REFERENCES programs(id),
    strategy           TEXT NOT NULL DEFAULT 'sticky' CHECK (strategy IN ('sticky', 'random')),
    salt               TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'concluded')),
    winner_variant_id  INTEGER REFERENCES ab_variants(id),
    promoted_alias     TEXT,
    created_at         TEXT NOT NULL,
    concluded_at       TEXT
);

INSERT INTO ab_tests_v5 (id, name, program_id, strategy, salt, status, created_at, concluded_at)
SELECT id, name, program_id, 'sticky', 'ab-test-' || id || '-' || name,
       CASE status WHEN 'stopped' THEN 'concluded' ELSE status END, created_at, stopped_at
FROM ab_tests;

DROP TABLE ab_tests;
ALTER TABLE ab_tests_v5 RENAME TO ab_tests;

CREATE TABLE ab_weight_history (
    id          INTEGER PRIMARY KEY,
    test_id     INTEGER NOT NULL REFERENCES ab_tests(id) ON DELETE CASCADE,
    variant_id  INTEGER NOT NULL REFERENCES ab_variants(id) ON DELETE CASCADE,
    weight      REAL NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX ab_weight_history_test ON ab_weight_history(test_id, at);

INSERT INTO ab_weight_history (test_id, variant_id, weight, at)
SELECT v.test_id, v.id, v.weight, t.created_at FROM ab_variants v JOIN ab_tests t ON t.id = v.test_id;

CREATE TABLE ab_assignments_v5 (
    id          INTEGER PRIMARY KEY,
    test_id     INTEGER NOT NULL REFERENCES ab_tests(id) ON DELETE CASCADE,
    variant_id  INTEGER NOT NULL REFERENCES ab_variants(id),
    unit_key    TEXT NOT NULL,
    at          TEXT NOT NULL
);

INSERT INTO ab_assignments_v5 (id, test_id, variant_id, unit_key, at)
SELECT id, test_id, variant_id, unit_key, at FROM ab_assignments;

DROP TABLE ab_assignments;
ALTER TABLE ab_assignments_v5 RENAME TO ab_assignments;
CREATE INDEX ab_assignments_key ON ab_assignments(test_id, unit_key, id);
CREATE INDEX ab_assignments_variant ON ab_assignments(variant_id);

CREATE TABLE ab_outcomes_v5 (
    id             INTEGER PRIMARY KEY,
    assignment_id  INTEGER NOT NULL REFERENCES ab_assignments(id) ON DELETE CASCADE,
    kind           TEXT NOT NULL DEFAULT 'score' CHECK (kind IN ('score', 'success', 'failure')),
    score          REAL NOT NULL,
    at             TEXT NOT NULL
);

INSERT INTO ab_outcomes_v5 (id, assignment_id, kind, score, at)
SELECT id, assignment_id, 'score', score, at FROM ab_outcomes;

DROP TABLE ab_outcomes;
ALTER TABLE ab_outcomes_v5 RENAME TO ab_outcomes;
CREATE INDEX ab_outcomes_assignment ON ab_outcomes(assignment_id);
