-- A pipeline switched off in the console: nothing runs it (the console's Run, the schedule, `syncflow run`) until it
-- is enabled again; a preview still may. Kept beside the definition, so re-importing the file keeps it off.
ALTER TABLE pipelines ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
