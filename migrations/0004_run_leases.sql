-- One run of a pipeline at a time, across processes: a run holds its pipeline's lease while it goes, renewing the
-- heartbeat every few seconds. A second start finds the lease held and refuses (the CLI exits 4); a lease whose
-- heartbeat stopped, or whose process is gone, is taken over.
CREATE TABLE run_leases (
    pipeline      TEXT PRIMARY KEY,
    token         TEXT NOT NULL,            -- the holder's own id (a UUID), so that only it renews or releases
    started_by    TEXT NOT NULL,            -- manual | cli | schedule
    pid           INTEGER NOT NULL,
    host          TEXT NOT NULL,
    since         TEXT NOT NULL,            -- RFC 3339, when the lease was taken
    heartbeat_ms  INTEGER NOT NULL          -- Unix milliseconds of the last renewal
);

-- Rows a run's passes would have deleted but the delete guard held back (shown with a Confirm deletes button).
ALTER TABLE runs ADD COLUMN held_deletes INTEGER NOT NULL DEFAULT 0;
