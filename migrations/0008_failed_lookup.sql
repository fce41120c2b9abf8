-- A failed record is looked up by its raw text before it is filed (the same record failing again stays one entry);
-- without this index each lookup scanned the pipeline's queue, so filing 20,000 records took minutes.
CREATE INDEX failed_by_record ON failed_records(pipeline, entity, raw);
