-- The keys of a REST target's page whose creates are about to be sent, written before the first POST and cleared
-- with the page's record: a run killed between a create landing and its record leaves them here, so that a later
-- complete pass looks them up and can delete what landed if the source no longer has it (otherwise such a record
-- would be unknown to the engine and stay at the target for ever).
CREATE TABLE rest_target_intents (
    pipeline TEXT NOT NULL,
    entity   TEXT NOT NULL,
    tbl      TEXT NOT NULL,
    key_hash TEXT NOT NULL,
    run_id   TEXT NOT NULL,
    PRIMARY KEY (pipeline, entity, key_hash)
);
