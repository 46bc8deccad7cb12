-- How many times in a row the current task's claim was released with
-- nothing saved since it was taken (the task failed with no retry left,
-- panicked, or was given up). Each such release backs the task off for
-- longer (`retry_at`) and marks the releasing worker (`failed_worker`), so a
-- task that always fails is neither re-run in a tight loop nor kept on the
-- worker it fails on. The next write of the workflow resets it.
ALTER TABLE sayiir.tasks ADD COLUMN stalls INTEGER NOT NULL DEFAULT 0;
