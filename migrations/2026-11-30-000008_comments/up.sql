-- What every table and column of schema `sayiir` means, and the rules the
-- backend keeps for it. `diesel print-schema` (with_docs = true in
-- diesel.toml) copies these comments into src/schema.rs, so they are the
-- docs of `sayiir_diesel::schema` too. Comments only: no data or structure
-- changes.

COMMENT ON TABLE sayiir.workflows IS
'One row per workflow instance: its current snapshot and the columns SQL filters and reports on. Written only by the snapshot write, which derives every column from the snapshot; Completed, Failed and Cancelled rows are never written again.';
COMMENT ON COLUMN sayiir.workflows.instance_id IS
'The instance id the application chose (no NUL bytes).';
COMMENT ON COLUMN sayiir.workflows.definition_hash IS
'SHA-256 hash of the workflow definition, the raw 32 bytes.';
COMMENT ON COLUMN sayiir.workflows.status IS
'InProgress, Paused, Completed, Failed or Cancelled (sayiir_diesel::Status).';
COMMENT ON COLUMN sayiir.workflows.position_kind IS
'Where an InProgress or Paused instance stands (NotStarted, AtTask, AtFork, AtJoin, AtDelay, AtSignal, InLoop); NULL once finished.';
COMMENT ON COLUMN sayiir.workflows.current_task_id IS
'The task (32-byte id) an InProgress instance at AtTask is at; NULL at any other position or status.';
COMMENT ON COLUMN sayiir.workflows.snapshot IS
'The framed snapshot (sayiir_core::snapshot_format) with every task output emptied; the outputs live in sayiir.task_outputs.';
COMMENT ON COLUMN sayiir.workflows.members IS
'Ids of the tasks whose rows in sayiir.task_outputs belong to the current state; an output row not listed here was left by an earlier state (say, a previous loop iteration) and is not part of it. Once Completed or Failed, the membership of the last live state is kept, plus the outputs of the finishing write, so task results stay readable. Never contains NULL.';
COMMENT ON COLUMN sayiir.workflows.trace_parent IS
'W3C trace context of the workflow, restored on every load.';
COMMENT ON COLUMN sayiir.workflows.error IS
'The error message of a Failed workflow; NULL otherwise.';
COMMENT ON COLUMN sayiir.workflows.revision IS
'Number of accepted writes, starting at 1 and bumped by each one; numbers the rows of sayiir.history and lets a claim refuse a copy read at an older revision.';
COMMENT ON COLUMN sayiir.workflows.created_at IS
'Server time of the first write.';
COMMENT ON COLUMN sayiir.workflows.updated_at IS
'Server time of the latest accepted write.';
COMMENT ON COLUMN sayiir.workflows.finished_at IS
'Server time it became Completed, Failed or Cancelled; NULL while it is not finished. Retention deletes by it.';

COMMENT ON TABLE sayiir.task_outputs IS
'Task outputs, one row per (instance, task), outside the snapshot blob so that concurrent fork branches each write their own row. Which rows belong to the current state is sayiir.workflows.members. Deleted with their workflow.';
COMMENT ON COLUMN sayiir.task_outputs.instance_id IS
'The workflow the output belongs to.';
COMMENT ON COLUMN sayiir.task_outputs.task_id IS
'Id of the task that produced it, the raw 32 bytes.';
COMMENT ON COLUMN sayiir.task_outputs.output IS
'The serialized output, as the codec wrote it (may be empty).';
COMMENT ON COLUMN sayiir.task_outputs.recorded_at IS
'Server time these bytes were written; rewriting the same bytes keeps it.';

COMMENT ON TABLE sayiir.history IS
'Append-only record of accepted snapshot writes, one row per revision (when the backend keeps history). A trigger refuses updates; retention may delete old rows.';
COMMENT ON COLUMN sayiir.history.instance_id IS
'The workflow the entry belongs to.';
COMMENT ON COLUMN sayiir.history.revision IS
'The revision of sayiir.workflows this write produced.';
COMMENT ON COLUMN sayiir.history.status IS
'The status at that revision (same values as sayiir.workflows.status).';
COMMENT ON COLUMN sayiir.history.position_kind IS
'The position at that revision (same values as sayiir.workflows.position_kind).';
COMMENT ON COLUMN sayiir.history.current_task_id IS
'The current task at that revision (same rule as sayiir.workflows.current_task_id).';
COMMENT ON COLUMN sayiir.history.snapshot IS
'The framed snapshot at that revision, outputs emptied.';
COMMENT ON COLUMN sayiir.history.recorded_at IS
'Server time of the write.';

COMMENT ON TABLE sayiir.tasks IS
'The dispatch queue: one row per InProgress instance at a task, or parked at a delay or a signal. Paused, finished and not-started instances and other positions have no row. Written with its workflow by the snapshot write; claims, releases, offers and maintenance update its bookkeeping columns.';
COMMENT ON COLUMN sayiir.tasks.instance_id IS
'The queued workflow.';
COMMENT ON COLUMN sayiir.tasks.position_kind IS
'AtTask, AtDelay or AtSignal (sayiir_diesel::QueuedPosition).';
COMMENT ON COLUMN sayiir.tasks.task_id IS
'AtTask: the task to run. AtDelay and AtSignal: the task after the park, if any.';
COMMENT ON COLUMN sayiir.tasks.park_id IS
'AtDelay and AtSignal: the id of the delay or signal node; NULL at a task.';
COMMENT ON COLUMN sayiir.tasks.signal_name IS
'AtSignal: the name of the awaited event; NULL otherwise.';
COMMENT ON COLUMN sayiir.tasks.wake_at IS
'AtDelay: when the delay ends. AtSignal: when the wait times out, if it does. Maintenance moves the row on after it.';
COMMENT ON COLUMN sayiir.tasks.completed IS
'AtTask: the task''s output is already recorded (a worker saved it and not the next state yet); such a row is not offered, and crash recovery runs it again after the recovery grace.';
COMMENT ON COLUMN sayiir.tasks.input_ready IS
'The task''s input can be resolved (the initial input, or a recorded output); rows without it are never offered.';
COMMENT ON COLUMN sayiir.tasks.priority IS
'The current task''s priority, 1 (highest) to 5; 3 by default. Aged by time since aged_from.';
COMMENT ON COLUMN sayiir.tasks.tags IS
'Tags of the current task: a worker that has tags takes only rows whose tags it all has; a worker with none takes any row. Never contains NULL.';
COMMENT ON COLUMN sayiir.tasks.retry_at IS
'End of the current task''s retry back-off (after a failure, a release with nothing saved, or a quarantine); not offered before it.';
COMMENT ON COLUMN sayiir.tasks.failed_worker IS
'The worker the current task last failed on; that worker''s finder takes the row last.';
COMMENT ON COLUMN sayiir.tasks.aged_from IS
'The snapshot''s own updated_at: priority aging counts from it, and within a priority the oldest goes first.';
COMMENT ON COLUMN sayiir.tasks.queued_at IS
'Server time the row was last written by a snapshot write.';
COMMENT ON COLUMN sayiir.tasks.hint IS
'The encoded wakeup hint of a runnable row, kept so that releases and recovery can wake workers with it; NULL when not at a runnable task, empty when it would not fit a NOTIFY payload.';
COMMENT ON COLUMN sayiir.tasks.quarantined IS
'Why the finder set this row aside (its snapshot could not be decoded); NULL for a normal row. Lifted after the retry_at back-off, and cleared by the next write of the workflow.';
COMMENT ON COLUMN sayiir.tasks.input_from IS
'AtTask: the task whose output is the input of this one; NULL with input_known: the workflow''s initial input. Lets crash recovery re-run a task with the same input.';
COMMENT ON COLUMN sayiir.tasks.input_known IS
'input_from was recorded when the workflow entered this task.';
COMMENT ON COLUMN sayiir.tasks.released_at IS
'Server time a worker last released its claim on the instance: evidence for crash recovery that a claiming worker (not an in-process runner) was driving it.';
COMMENT ON COLUMN sayiir.tasks.claimed_until IS
'Copy of the live claim''s expiry for the finder: NULL without a claim, infinity for a claim that never expires. sayiir.claims stays the truth.';
COMMENT ON COLUMN sayiir.tasks.requested IS
'A cancel or pause request for the instance is pending in sayiir.signals (kept by a trigger); the row is not offered, maintenance applies the request.';
COMMENT ON COLUMN sayiir.tasks.offered_to IS
'The worker a finder last handed this row to; a hint that spreads polling workers over different rows, never a lock (claims decide).';
COMMENT ON COLUMN sayiir.tasks.offered_until IS
'Until when other workers'' finders pass over this row (the offer lease).';
COMMENT ON COLUMN sayiir.tasks.event_waiting IS
'AtSignal: an event for the awaited signal was already buffered when the workflow parked; maintenance delivers it.';
COMMENT ON COLUMN sayiir.tasks.stalls IS
'How many times in a row the current task''s claim was released with nothing saved; each one backs the task off longer. Reset by the next write of the workflow.';

COMMENT ON TABLE sayiir.claims IS
'Task claims: at most one per instance. A worker runs a task only after claiming it; a claim is refused while another worker''s claim is live, or when the task''s output is recorded or the workflow has moved on.';
COMMENT ON COLUMN sayiir.claims.instance_id IS
'The claimed workflow.';
COMMENT ON COLUMN sayiir.claims.task_id IS
'The claimed task, the raw 32 bytes.';
COMMENT ON COLUMN sayiir.claims.worker_id IS
'The worker holding the claim; only it can extend or release it.';
COMMENT ON COLUMN sayiir.claims.claimed_at IS
'Server time the claim was taken (heartbeats do not move it).';
COMMENT ON COLUMN sayiir.claims.expires_at IS
'Server time the claim expires, moved on by heartbeats; NULL: it never expires. An expired claim can be taken over.';

COMMENT ON TABLE sayiir.signals IS
'Pending cancel and pause requests, at most one per (instance, kind); removed when applied or withdrawn.';
COMMENT ON COLUMN sayiir.signals.instance_id IS
'The workflow the request is for.';
COMMENT ON COLUMN sayiir.signals.kind IS
'Cancel or Pause.';
COMMENT ON COLUMN sayiir.signals.reason IS
'Why, as the caller gave it.';
COMMENT ON COLUMN sayiir.signals.requested_by IS
'Who asked, as the caller gave it.';
COMMENT ON COLUMN sayiir.signals.requested_at IS
'When the caller asked (the caller''s time).';

COMMENT ON TABLE sayiir.events IS
'Buffered external events, a FIFO queue per (instance, signal name), consumed oldest first. No foreign key: an event may arrive before its instance exists or after it finished.';
COMMENT ON COLUMN sayiir.events.id IS
'Arrival order (identity).';
COMMENT ON COLUMN sayiir.events.instance_id IS
'The workflow the event is for (it may not exist yet).';
COMMENT ON COLUMN sayiir.events.signal_name IS
'The name of the signal the event answers.';
COMMENT ON COLUMN sayiir.events.payload IS
'The event''s opaque payload.';
COMMENT ON COLUMN sayiir.events.sent_at IS
'Server time it was buffered.';
