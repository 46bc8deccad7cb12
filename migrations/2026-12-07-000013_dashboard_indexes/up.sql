-- Indexes for the reads of the admin CLI and the dashboard
-- (sayiir-diesel-dashboard's `inspect`): every count there stops after
-- COUNT_CAP + 1 index entries and every list reads one page, whatever the
-- size of the tables, so each has an index that yields its rows in the
-- order it wants them.

-- Workflows of one status in instance id order: the counts per status, and
-- `list --status` a page at a time. Lists page in byte order (COLLATE "C")
-- whatever the database's collation, so that an id prefix is a range of
-- the index.
CREATE INDEX workflows_status_instance_idx
    ON sayiir.workflows (status, instance_id COLLATE "C");

-- Every workflow in byte order: `list` without a status, and id prefixes.
CREATE INDEX workflows_instance_bytes_idx
    ON sayiir.workflows (instance_id COLLATE "C");

-- Parked queue rows by kind and wake-up time: how many are parked at a
-- delay or a signal, and the parked workflows soonest first.
CREATE INDEX tasks_parked_idx ON sayiir.tasks (position_kind, wake_at, instance_id)
    WHERE position_kind IN ('AtDelay', 'AtSignal');

-- Runnable rows whose input cannot be resolved (no finder ever offers
-- them), oldest first: rare, so the index stays small.
CREATE INDEX tasks_input_not_ready_idx ON sayiir.tasks (queued_at)
    WHERE position_kind = 'AtTask' AND NOT completed AND quarantined IS NULL
      AND NOT input_ready;

-- Runnable rows released with nothing saved since their last write,
-- oldest first: tasks that keep failing.
CREATE INDEX tasks_stalled_idx ON sayiir.tasks (queued_at)
    WHERE position_kind = 'AtTask' AND NOT completed AND quarantined IS NULL
      AND stalls > 0;
