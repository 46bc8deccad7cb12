// @generated automatically by Diesel CLI.

pub mod sayiir {
    diesel::table! {
        /// Task claims: at most one per instance. A worker runs a task only after claiming it; a claim is refused while another worker's claim is live, or when the task's output is recorded or the workflow has moved on.
        sayiir.claims (instance_id) {
            /// The claimed workflow.
            instance_id -> Text,
            /// The claimed task, the raw 32 bytes.
            task_id -> Bytea,
            /// The worker holding the claim; only it can extend or release it.
            worker_id -> Text,
            /// Server time the claim was taken (heartbeats do not move it).
            claimed_at -> Timestamptz,
            /// Server time the claim expires, moved on by heartbeats; NULL: it never expires. An expired claim can be taken over.
            expires_at -> Nullable<Timestamptz>,
        }
    }

    diesel::table! {
        /// Buffered external events, a FIFO queue per (instance, signal name), consumed oldest first. No foreign key: an event may arrive before its instance exists or after it finished.
        sayiir.events (id) {
            /// Arrival order (identity).
            id -> Int8,
            /// The workflow the event is for (it may not exist yet).
            instance_id -> Text,
            /// The name of the signal the event answers.
            signal_name -> Text,
            /// The event's opaque payload.
            payload -> Bytea,
            /// Server time it was buffered.
            sent_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// Append-only record of accepted snapshot writes, one row per revision (when the backend keeps history). A trigger refuses updates; retention may delete old rows.
        sayiir.history (instance_id, revision) {
            /// The workflow the entry belongs to.
            instance_id -> Text,
            /// The revision of sayiir.workflows this write produced.
            revision -> Int8,
            /// The status at that revision (same values as sayiir.workflows.status).
            status -> Text,
            /// The position at that revision (same values as sayiir.workflows.position_kind).
            position_kind -> Nullable<Text>,
            /// The current task at that revision (same rule as sayiir.workflows.current_task_id).
            current_task_id -> Nullable<Bytea>,
            /// The framed snapshot at that revision, outputs emptied.
            snapshot -> Bytea,
            /// Server time of the write.
            recorded_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// Pending cancel and pause requests, at most one per (instance, kind); removed when applied or withdrawn.
        sayiir.signals (instance_id, kind) {
            /// The workflow the request is for.
            instance_id -> Text,
            /// Cancel or Pause.
            kind -> Text,
            /// Why, as the caller gave it.
            reason -> Nullable<Text>,
            /// Who asked, as the caller gave it.
            requested_by -> Nullable<Text>,
            /// When the caller asked (the caller's time).
            requested_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// Task outputs, one row per (instance, task), outside the snapshot blob so that concurrent fork branches each write their own row. Which rows belong to the current state is sayiir.workflows.members. Deleted with their workflow.
        sayiir.task_outputs (instance_id, task_id) {
            /// The workflow the output belongs to.
            instance_id -> Text,
            /// Id of the task that produced it, the raw 32 bytes.
            task_id -> Bytea,
            /// The serialized output, as the codec wrote it (may be empty).
            output -> Bytea,
            /// Server time these bytes were written; rewriting the same bytes keeps it.
            recorded_at -> Timestamptz,
        }
    }

    diesel::table! {
        /// The dispatch queue: one row per InProgress instance at a task, or parked at a delay or a signal. Paused, finished and not-started instances and other positions have no row. Written with its workflow by the snapshot write; claims, releases, offers and maintenance update its bookkeeping columns.
        sayiir.tasks (instance_id) {
            /// The queued workflow.
            instance_id -> Text,
            /// AtTask, AtDelay or AtSignal (sayiir_diesel::QueuedPosition).
            position_kind -> Text,
            /// AtTask: the task to run. AtDelay and AtSignal: the task after the park, if any.
            task_id -> Nullable<Bytea>,
            /// AtDelay and AtSignal: the id of the delay or signal node; NULL at a task.
            park_id -> Nullable<Bytea>,
            /// AtSignal: the name of the awaited event; NULL otherwise.
            signal_name -> Nullable<Text>,
            /// AtDelay: when the delay ends. AtSignal: when the wait times out, if it does. Maintenance moves the row on after it.
            wake_at -> Nullable<Timestamptz>,
            /// AtTask: the task's output is already recorded (a worker saved it and not the next state yet); such a row is not offered, and crash recovery runs it again after the recovery grace.
            completed -> Bool,
            /// The task's input can be resolved (the initial input, or a recorded output); rows without it are never offered.
            input_ready -> Bool,
            /// The current task's priority, 1 (highest) to 5; 3 by default. Aged by time since aged_from.
            priority -> Int2,
            /// Tags of the current task: a worker that has tags takes only rows whose tags it all has; a worker with none takes any row. Never contains NULL.
            tags -> Array<Text>,
            /// End of the current task's retry back-off (after a failure, a release with nothing saved, or a quarantine); not offered before it.
            retry_at -> Nullable<Timestamptz>,
            /// The worker the current task last failed on; that worker's finder takes the row last.
            failed_worker -> Nullable<Text>,
            /// The snapshot's own updated_at: priority aging counts from it, and within a priority the oldest goes first.
            aged_from -> Timestamptz,
            /// Server time the row was last written by a snapshot write.
            queued_at -> Timestamptz,
            /// The encoded wakeup hint of a runnable row, kept so that releases and recovery can wake workers with it; NULL when not at a runnable task, empty when it would not fit a NOTIFY payload.
            hint -> Nullable<Text>,
            /// Why the finder set this row aside (its snapshot could not be decoded); NULL for a normal row. Lifted after the retry_at back-off, and cleared by the next write of the workflow.
            quarantined -> Nullable<Text>,
            /// AtTask: the task whose output is the input of this one; NULL with input_known: the workflow's initial input. Lets crash recovery re-run a task with the same input.
            input_from -> Nullable<Bytea>,
            /// input_from was recorded when the workflow entered this task.
            input_known -> Bool,
            /// Server time a worker last released its claim on the instance: evidence for crash recovery that a claiming worker (not an in-process runner) was driving it.
            released_at -> Nullable<Timestamptz>,
            /// Copy of the live claim's expiry for the finder: NULL without a claim, infinity for a claim that never expires. sayiir.claims stays the truth.
            claimed_until -> Nullable<Timestamptz>,
            /// A cancel or pause request for the instance is pending in sayiir.signals (kept by a trigger); the row is not offered, maintenance applies the request.
            requested -> Bool,
            /// The worker a finder last handed this row to; a hint that spreads polling workers over different rows, never a lock (claims decide).
            offered_to -> Nullable<Text>,
            /// Until when the offer to offered_to lasts: other workers' finders return this row only after the rows offered to no one, oldest offer first.
            offered_until -> Nullable<Timestamptz>,
            /// AtSignal: an event for the awaited signal was already buffered when the workflow parked; maintenance delivers it.
            event_waiting -> Bool,
            /// How many times in a row the current task's claim was released with nothing saved; each one backs the task off longer. Reset by the next write of the workflow.
            stalls -> Int4,
        }
    }

    diesel::table! {
        /// One row per workflow instance: its current snapshot and the columns SQL filters and reports on. Written only by the snapshot write, which derives every column from the snapshot; Completed, Failed and Cancelled rows are never written again.
        sayiir.workflows (instance_id) {
            /// The instance id the application chose (no NUL bytes).
            instance_id -> Text,
            /// SHA-256 hash of the workflow definition, the raw 32 bytes.
            definition_hash -> Bytea,
            /// InProgress, Paused, Completed, Failed or Cancelled (sayiir_diesel::Status).
            status -> Text,
            /// Where an InProgress or Paused instance stands (NotStarted, AtTask, AtFork, AtJoin, AtDelay, AtSignal, InLoop); NULL once finished.
            position_kind -> Nullable<Text>,
            /// The task (32-byte id) an InProgress instance at AtTask is at; NULL at any other position or status.
            current_task_id -> Nullable<Bytea>,
            /// The framed snapshot (sayiir_core::snapshot_format) with every task output emptied; the outputs live in sayiir.task_outputs.
            snapshot -> Bytea,
            /// Ids of the tasks whose rows in sayiir.task_outputs belong to the current state; an output row not listed here was left by an earlier state (say, a previous loop iteration) and is not part of it. Once Completed or Failed, the membership of the last live state is kept, plus the outputs of the finishing write, so task results stay readable. Never contains NULL.
            members -> Array<Bytea>,
            /// W3C trace context of the workflow, restored on every load.
            trace_parent -> Nullable<Text>,
            /// The error message of a Failed workflow; NULL otherwise.
            error -> Nullable<Text>,
            /// Number of accepted writes, starting at 1 and bumped by each one; numbers the rows of sayiir.history and lets a claim refuse a copy read at an older revision.
            revision -> Int8,
            /// Server time of the first write.
            created_at -> Timestamptz,
            /// Server time of the latest accepted write.
            updated_at -> Timestamptz,
            /// Server time it became Completed, Failed or Cancelled; NULL while it is not finished. Retention deletes by it.
            finished_at -> Nullable<Timestamptz>,
        }
    }

    diesel::joinable!(claims -> workflows (instance_id));
    diesel::joinable!(history -> workflows (instance_id));
    diesel::joinable!(signals -> workflows (instance_id));
    diesel::joinable!(task_outputs -> workflows (instance_id));
    diesel::joinable!(tasks -> workflows (instance_id));

    diesel::allow_tables_to_appear_in_same_query!(
        claims,
        events,
        history,
        signals,
        task_outputs,
        tasks,
        workflows,
    );
}
