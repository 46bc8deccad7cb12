-- The encoded wakeup hint of a dispatchable task, kept so that statements
-- other than the snapshot write (claim release, recovery) can wake workers
-- with a hint. NULL when the row is not at a runnable task; '' when the hint
-- would exceed PostgreSQL's NOTIFY payload limit.
ALTER TABLE sayiir.tasks ADD COLUMN hint TEXT;

-- Why the finder skips this row (e.g. a snapshot that cannot be decoded).
-- Cleared by the next write of the workflow. List them with
-- `SELECT instance_id, quarantined FROM sayiir.tasks WHERE quarantined IS NOT NULL`.
ALTER TABLE sayiir.tasks ADD COLUMN quarantined TEXT;
