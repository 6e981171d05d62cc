-- skill-fleet tracker schema, version 6: what has been exported to which
-- MLflow tracking server, so exporting again sends only what is new.
--
-- One row per exported object (an optimization or eval run, or one of its
-- candidates, which MLflow holds as nested runs). The row is written right
-- after MLflow created the run, and its progress columns after each batch
-- MLflow accepted, so an export that fails midway resumes where it stopped.

CREATE TABLE mlflow_exports (
    id              INTEGER PRIMARY KEY,
    tracking_uri    TEXT NOT NULL,
    experiment_id   TEXT NOT NULL,
    object          TEXT NOT NULL CHECK (object IN ('run', 'candidate')),
    local_id        INTEGER NOT NULL,
    mlflow_run_id   TEXT NOT NULL,
    params_logged   INTEGER NOT NULL DEFAULT 0,   -- 1 once the params were accepted (they are immutable)
    steps_logged    INTEGER NOT NULL DEFAULT 0,   -- trial scores already sent as metric steps
    finished        INTEGER NOT NULL DEFAULT 0,   -- 1 once final metrics, tags, artifacts and status were sent
    updated_at      TEXT NOT NULL,
    UNIQUE (tracking_uri, object, local_id)
);
