-- skill-fleet tracker schema, version 8: per-input demos.
--
-- `traces.selected_demos`: for a call of a version that picks its demos per
-- input (KNN demo selection), the demos it picked, as a JSON array of
-- {"pool": index in the version's pool, "example_id": the trainset example,
-- "score": BM25 score or cosine}, nearest first. NULL for every other call,
-- and for rows written before this version.

ALTER TABLE traces ADD COLUMN selected_demos TEXT;
