-- Jobs, the scheduler's memory, the retry loop's clock and the manual-conflict queue (issue 6).

-- Which process runs a job (a 'running' run whose process is gone was interrupted) and what started it.
ALTER TABLE runs ADD COLUMN pid INTEGER;
ALTER TABLE runs ADD COLUMN started_by TEXT NOT NULL DEFAULT 'manual';   -- manual | schedule | cli

-- When a failed record was last tried (the retry loop waits 60, 120, 240 s between tries).
ALTER TABLE failed_records ADD COLUMN last_try_at TEXT;

-- The scheduler's memory per pipeline: the last schedule it fired, and schedules missed while nothing ran.
CREATE TABLE schedule_state (
    pipeline       TEXT PRIMARY KEY NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    last_fire_at   TEXT,                     -- RFC 3339 UTC
    missed         INTEGER NOT NULL DEFAULT 0,
    missed_since   TEXT,
    window_id      TEXT,                     -- the window (its start, RFC 3339) the quota below counts in
    window_rows    INTEGER NOT NULL DEFAULT 0,
    paused_run     TEXT,                     -- a run the scheduler paused (window end or quota): it resumes it
    quota_window   TEXT                      -- the window whose days_to_complete share is done
);

-- Manual conflicts (and the audit trail of their resolution): a target row edited outside the engine whose
-- source row changed too. Values are JSON objects keyed by target column.
CREATE TABLE conflicts (
    id                 INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline           TEXT NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    entity             TEXT NOT NULL,
    target_table       TEXT NOT NULL,
    key_hash           TEXT NOT NULL,
    business_key       TEXT NOT NULL,        -- JSON object: key column → value
    source             TEXT NOT NULL,        -- the source's values now
    target             TEXT NOT NULL,        -- the target's values when the conflict was detected
    synced             TEXT,                 -- the values the engine last wrote (kept by the target's trigger)
    source_hash        TEXT NOT NULL,
    source_rowversion  TEXT,
    run_id             TEXT NOT NULL,
    status             TEXT NOT NULL DEFAULT 'open',   -- open | resolved
    detected_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    resolved_at        TEXT,
    resolved_by        TEXT,
    resolution         TEXT,                 -- source | target | fields
    chosen             TEXT,                 -- JSON object: column → "source" | "target"
    old_values         TEXT,                 -- the target row before the resolution
    new_values         TEXT                  -- the target row after it
);
CREATE UNIQUE INDEX conflicts_open ON conflicts(pipeline, entity, key_hash) WHERE status = 'open';
CREATE INDEX conflicts_by_pipeline ON conflicts(pipeline, status);
