-- A row set aside because its snapshot could not be decoded is retried
-- when its back-off (`retry_at`, doubling with `stalls`) has passed:
-- maintenance lifts the mark through this index, and the finder decodes
-- the row again.
CREATE INDEX tasks_quarantined_idx ON sayiir.tasks (retry_at) WHERE quarantined IS NOT NULL;
