-- RESOLVE's queue: child records whose parent is not in the target yet. They wait here (the latest version of each,
-- one open entry per key) and land when the parent arrives: at the end of a completed run, and in the scheduler's
-- loop every 5 minutes; after 5 tries of that loop an entry is dead (the operator is told; a manual retry works).
CREATE TABLE pending_children (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    pipeline       TEXT NOT NULL REFERENCES pipelines(name) ON DELETE CASCADE,
    entity         TEXT NOT NULL,
    key_hash       TEXT NOT NULL,            -- the child's BK_HASH
    field          TEXT NOT NULL,            -- the reference field (source name)
    parent_entity  TEXT NOT NULL,
    parent_key     TEXT NOT NULL,            -- the missing parent's key, as the child holds it (JSON)
    raw            TEXT NOT NULL,            -- the record as fetched (JSON)
    run_id         TEXT NOT NULL,
    status         TEXT NOT NULL DEFAULT 'pending',   -- pending | dead | landed
    tries          INTEGER NOT NULL DEFAULT 0,
    last_try_at    TEXT,
    created_at     TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    landed_at      TEXT
);
CREATE UNIQUE INDEX pending_children_open ON pending_children(pipeline, entity, key_hash)
    WHERE status IN ('pending', 'dead');
CREATE INDEX pending_children_due ON pending_children(status, pipeline);
