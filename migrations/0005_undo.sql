-- Undo: a run that was undone (its changes to the target taken back) keeps its place in the history with the time
-- of the undo; it is never resumed.
ALTER TABLE runs ADD COLUMN undone_at TEXT;
