-- Records a run stopped at because they need a change of the target's schema that was not applied (the run stops
-- for review instead of altering the table). The schema review learns from them beside the source's first pages,
-- so it shows the column a record on page 500 needs; applying the review clears them.
CREATE TABLE schema_evidence (
    pipeline TEXT NOT NULL,
    entity TEXT NOT NULL,
    -- JSON array of the source records (as fetched) that need the change
    records TEXT NOT NULL,
    seen_at TEXT NOT NULL,
    PRIMARY KEY (pipeline, entity)
);
