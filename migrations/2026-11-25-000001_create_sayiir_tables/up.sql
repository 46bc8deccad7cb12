-- Everything sayiir-diesel owns lives in the schema `sayiir`; the application's
-- own tables (and its own `public.__diesel_schema_migrations`) are never touched.
-- The migration runner creates the schema before this file runs so that
-- diesel's bookkeeping table lands in it; the statement below keeps the file
-- runnable on its own (`diesel migration run` against a scratch database).
CREATE SCHEMA IF NOT EXISTS sayiir;

-- One row per workflow instance: the current snapshot and the columns that
-- SQL filters and reports on.
CREATE TABLE sayiir.workflows (
    instance_id      TEXT        PRIMARY KEY,
    definition_hash  BYTEA       NOT NULL CHECK (octet_length(definition_hash) = 32),
    status           TEXT        NOT NULL
        CHECK (status IN ('InProgress', 'Paused', 'Completed', 'Failed', 'Cancelled')),
    position_kind    TEXT,
    current_task_id  BYTEA,
    -- Framed snapshot (SYRS envelope) with every task output emptied; the
    -- outputs live in `task_outputs`.
    snapshot         BYTEA       NOT NULL,
    -- Task ids whose rows in `task_outputs` belong to this instance's state.
    -- Once Completed or Failed, the membership of the last live state is kept
    -- (plus outputs written by the finishing transition) so task results stay
    -- readable.
    members          BYTEA[]     NOT NULL DEFAULT '{}',
    trace_parent     TEXT,
    error            TEXT,
    -- Bumped on every accepted write; numbers the rows of `history`.
    revision         BIGINT      NOT NULL DEFAULT 1,
    created_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at       TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at      TIMESTAMPTZ
);

-- Reports and retention: workflows by status and age.
CREATE INDEX workflows_status_updated_at_idx ON sayiir.workflows (status, updated_at);
CREATE INDEX workflows_finished_at_idx ON sayiir.workflows (finished_at)
    WHERE finished_at IS NOT NULL;

-- One row per (instance, task) output, kept outside the snapshot blob so that
-- concurrent fork branches each write their own row.
CREATE TABLE sayiir.task_outputs (
    instance_id  TEXT        NOT NULL REFERENCES sayiir.workflows (instance_id) ON DELETE CASCADE,
    task_id      BYTEA       NOT NULL CHECK (octet_length(task_id) = 32),
    output       BYTEA       NOT NULL,
    recorded_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, task_id)
);

-- Immutable, append-only record of every accepted snapshot write.
CREATE TABLE sayiir.history (
    instance_id      TEXT        NOT NULL REFERENCES sayiir.workflows (instance_id) ON DELETE CASCADE,
    revision         BIGINT      NOT NULL,
    status           TEXT        NOT NULL,
    position_kind    TEXT,
    current_task_id  BYTEA,
    snapshot         BYTEA       NOT NULL,
    recorded_at      TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (instance_id, revision)
);

CREATE INDEX history_recorded_at_idx ON sayiir.history (recorded_at);

CREATE FUNCTION sayiir.history_is_append_only() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'sayiir.history is append-only: rows are never updated';
END;
$$;

CREATE TRIGGER history_is_append_only
    BEFORE UPDATE ON sayiir.history
    FOR EACH ROW EXECUTE FUNCTION sayiir.history_is_append_only();

-- The dispatch queue: one row per InProgress instance whose position can lead
-- to work (at a task, or parked at a delay or a signal). Finished, paused and
-- not-started instances have no row, so the finder's cost does not grow with
-- the number of finished workflows.
CREATE TABLE sayiir.tasks (
    instance_id      TEXT        PRIMARY KEY REFERENCES sayiir.workflows (instance_id) ON DELETE CASCADE,
    position_kind    TEXT        NOT NULL CHECK (position_kind IN ('AtTask', 'AtDelay', 'AtSignal')),
    -- AtTask: the task to run. AtDelay/AtSignal: the task after the park.
    task_id          BYTEA,
    -- AtDelay/AtSignal: the delay or signal node id.
    park_id          BYTEA,
    signal_name      TEXT,
    -- AtDelay: when it expires. AtSignal: the timeout, if any.
    wake_at          TIMESTAMPTZ,
    -- AtTask: the task's output is already recorded.
    completed        BOOLEAN     NOT NULL DEFAULT false,
    -- The task's input can be resolved (initial input or last output).
    input_ready      BOOLEAN     NOT NULL DEFAULT false,
    priority         SMALLINT    NOT NULL DEFAULT 3,
    tags             TEXT[]      NOT NULL DEFAULT '{}',
    -- Retry back-off of the current task, and the worker it last failed on.
    retry_at         TIMESTAMPTZ,
    failed_worker    TEXT,
    -- The snapshot's own `updated_at`: drives priority aging.
    aged_from        TIMESTAMPTZ NOT NULL,
    queued_at        TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX tasks_dispatch_idx ON sayiir.tasks (priority, aged_from);
CREATE INDEX tasks_wake_at_idx ON sayiir.tasks (wake_at) WHERE wake_at IS NOT NULL;

-- One live claim per instance. `expires_at` NULL means the claim never expires.
CREATE TABLE sayiir.claims (
    instance_id  TEXT        PRIMARY KEY REFERENCES sayiir.workflows (instance_id) ON DELETE CASCADE,
    task_id      BYTEA       NOT NULL,
    worker_id    TEXT        NOT NULL,
    claimed_at   TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at   TIMESTAMPTZ
);

CREATE INDEX claims_expires_at_idx ON sayiir.claims (expires_at) WHERE expires_at IS NOT NULL;

-- Pending cancel and pause requests: at most one per (instance, kind).
CREATE TABLE sayiir.signals (
    instance_id   TEXT        NOT NULL REFERENCES sayiir.workflows (instance_id) ON DELETE CASCADE,
    kind          TEXT        NOT NULL CHECK (kind IN ('Cancel', 'Pause')),
    reason        TEXT,
    requested_by  TEXT,
    requested_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (instance_id, kind)
);

-- External events, a FIFO queue per (instance, signal name). No foreign key:
-- events may arrive before the instance exists, or after it finished.
CREATE TABLE sayiir.events (
    id           BIGINT      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    instance_id  TEXT        NOT NULL,
    signal_name  TEXT        NOT NULL,
    payload      BYTEA       NOT NULL,
    sent_at      TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE INDEX events_queue_idx ON sayiir.events (instance_id, signal_name, id);
