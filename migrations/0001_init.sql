-- The console's own state: pipelines, runs (the seeds' sync_batches per page), checkpoints and failed records.
-- Secrets never appear here: pipelines hold only { env } / { keychain } references.

CREATE TABLE pipelines (
    name        TEXT PRIMARY KEY NOT NULL,
    definition  TEXT NOT NULL,              -- the pipeline file (docs/pipeline-file.md), as TOML
    created_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
);

CREATE TABLE runs (
    id           TEXT PRIMARY KEY NOT NULL,  -- UUID v7
    pipeline     TEXT NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    status       TEXT NOT NULL,              -- running | paused | completed | failed | cancelled
    dry_run      INTEGER NOT NULL DEFAULT 0,
    started_at   TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    finished_at  TEXT,
    duration_ms  INTEGER NOT NULL DEFAULT 0,
    error        TEXT
);
CREATE INDEX runs_by_pipeline ON runs(pipeline, started_at);

CREATE TABLE run_entities (
    run_id     TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    entity     TEXT NOT NULL,
    status     TEXT NOT NULL,
    pages      INTEGER NOT NULL DEFAULT 0,
    fetched    INTEGER NOT NULL DEFAULT 0,
    inserted   INTEGER NOT NULL DEFAULT 0,
    updated    INTEGER NOT NULL DEFAULT 0,
    deleted    INTEGER NOT NULL DEFAULT 0,
    skipped    INTEGER NOT NULL DEFAULT 0,
    failed     INTEGER NOT NULL DEFAULT 0,
    pending    INTEGER NOT NULL DEFAULT 0,
    conflicts  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, entity)
);

-- A mirror of the checkpoint the target keeps in the same transaction as each page's data (the target's copy
-- is the truth on resume; this one lets the console show progress without connecting to the target).
CREATE TABLE checkpoints (
    pipeline    TEXT NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    entity      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    cursor      TEXT,                        -- JSON; NULL when the entity is done
    page_no     INTEGER NOT NULL DEFAULT 0,
    updated_at  TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (pipeline, entity)
);

-- The seeds' sync_batches: one row per page.
CREATE TABLE sync_batches (
    run_id        TEXT NOT NULL REFERENCES runs(id) ON DELETE CASCADE,
    entity        TEXT NOT NULL,
    page_no       INTEGER NOT NULL,
    records       INTEGER NOT NULL,
    inserted      INTEGER NOT NULL,
    updated       INTEGER NOT NULL,
    skipped       INTEGER NOT NULL,
    failed        INTEGER NOT NULL,
    fetch_ms      INTEGER NOT NULL,
    transform_ms  INTEGER NOT NULL,
    ingest_ms     INTEGER NOT NULL,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    PRIMARY KEY (run_id, entity, page_no)
);

-- The dead-letter queue. (run_id, entity, page_no, record_index) makes recording idempotent when a page is
-- processed again after a crash.
CREATE TABLE failed_records (
    id            INTEGER PRIMARY KEY AUTOINCREMENT,
    run_id        TEXT NOT NULL,
    pipeline      TEXT NOT NULL,
    entity        TEXT NOT NULL,
    page_no       INTEGER NOT NULL,
    record_index  INTEGER NOT NULL,
    stage         TEXT NOT NULL,             -- normalize | validate | map | ...
    error_type    TEXT NOT NULL,
    message       TEXT NOT NULL,
    raw           TEXT NOT NULL,             -- the record as fetched (JSON)
    processed     TEXT,                      -- the record as far as it got (JSON)
    status        TEXT NOT NULL DEFAULT 'failed',  -- failed | retried | dead
    retries       INTEGER NOT NULL DEFAULT 0,
    created_at    TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    UNIQUE (run_id, entity, page_no, record_index)
);
CREATE INDEX failed_by_pipeline ON failed_records(pipeline, entity, status);
