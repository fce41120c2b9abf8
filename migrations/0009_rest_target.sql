-- A REST target cannot keep the engine's bookkeeping beside its data, so the state database keeps it: each entity's
-- checkpoint (written only after the page's calls succeeded), the target's id of every key the engine wrote there
-- (what the end of a pass deletes by), the keys the pass in progress has seen (16-byte BK_HASHes, a row per page), and
-- the highest rowversion written per entity (where an incremental pass starts: the API has no query for it).
CREATE TABLE rest_target_checkpoints (
    pipeline   TEXT NOT NULL,
    entity     TEXT NOT NULL,
    checkpoint TEXT NOT NULL,
    PRIMARY KEY (pipeline, entity)
);

CREATE TABLE rest_target_keys (
    pipeline  TEXT NOT NULL,
    entity    TEXT NOT NULL,
    key_hash  TEXT NOT NULL,
    target_id TEXT NOT NULL,
    PRIMARY KEY (pipeline, entity, key_hash)
);

CREATE TABLE rest_target_seen (
    pipeline TEXT NOT NULL,
    entity   TEXT NOT NULL,
    keys     BLOB NOT NULL
);
CREATE INDEX rest_target_seen_entity ON rest_target_seen (pipeline, entity);

CREATE TABLE rest_target_rowversions (
    pipeline   TEXT NOT NULL,
    entity     TEXT NOT NULL,
    rowversion TEXT NOT NULL,
    PRIMARY KEY (pipeline, entity)
);
