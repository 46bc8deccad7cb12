-- find_available_tasks: up to $4 runnable tasks for worker $1 (aging $2
-- seconds, worker tags $3), with their hydrated snapshots. Tasks offered to
-- no one (or to $1) come first, and are offered to $1 for $5 milliseconds;
-- the rest of the limit is filled with tasks offered to other workers and
-- not claimed yet, oldest offer first, which stay offered to their worker.
-- An offer steers different workers to different batches; it never hides a
-- claimable task, and a claim is what decides.
--
-- Every rule is decided on the queue row itself (the shared ones through
-- sayiir.task_is_dispatchable), read through tasks_runnable_idx (priority,
-- aged_from) one priority level (sayiir.task_priorities) at a time, so
-- the cost is O(levels x limit) whatever the backlog, and no join exists
-- that the planner could turn into a scan. Within a level, the oldest row
-- has the best aged priority (priority - age / aging), so each level's walk
-- stops after $4 rows and the merge below is exact. The walk for tasks
-- offered to others runs only when the open ones fall short of $4 (a
-- one-time filter), so a long queue pays nothing for it. Tasks that last
-- failed on this worker come after the others of their kind (SPEC 4.4),
-- from their own small index.
WITH open_tasks AS (
    SELECT c.instance_id, c.task_id, c.priority, c.aged_from, false AS failed_here,
           false AS taken, NULL::timestamptz AS offered_until
    FROM sayiir.task_priorities AS l
    CROSS JOIN LATERAL (
        SELECT q.instance_id, q.task_id, q.priority, q.aged_from
        FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND q.priority = l.priority
          AND q.failed_worker IS DISTINCT FROM $1
          AND (cardinality($3::text[]) = 0 OR q.tags <@ $3::text[])
          AND (q.offered_until IS NULL OR q.offered_until <= now() OR q.offered_to = $1)
          AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
        ORDER BY q.aged_from
        LIMIT $4
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS c
    UNION ALL
    SELECT f.instance_id, f.task_id, f.priority, f.aged_from, true AS failed_here,
           f.taken, f.offered_until
    FROM (
        SELECT q.instance_id, q.task_id, q.priority, q.aged_from,
               COALESCE(q.offered_until > now() AND q.offered_to <> $1, false) AS taken,
               q.offered_until
        FROM sayiir.tasks AS q
        WHERE q.failed_worker = $1
          AND q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND (cardinality($3::text[]) = 0 OR q.tags <@ $3::text[])
          AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
        ORDER BY q.priority, q.aged_from
        LIMIT $4
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS f
),
candidates AS (
    SELECT * FROM open_tasks
    UNION ALL
    SELECT c.instance_id, c.task_id, c.priority, c.aged_from, false AS failed_here,
           true AS taken, c.offered_until
    FROM sayiir.task_priorities AS l
    CROSS JOIN LATERAL (
        SELECT q.instance_id, q.task_id, q.priority, q.aged_from, q.offered_until
        FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND q.priority = l.priority
          AND q.failed_worker IS DISTINCT FROM $1
          AND (cardinality($3::text[]) = 0 OR q.tags <@ $3::text[])
          AND q.offered_until > now() AND q.offered_to <> $1
          AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
        ORDER BY q.aged_from
        LIMIT $4
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS c
    WHERE (SELECT count(*) FROM open_tasks AS o WHERE NOT o.taken) < $4
),
pick AS (
    SELECT c.instance_id, c.task_id, c.failed_here, c.taken, c.aged_from,
           CASE WHEN c.taken THEN c.offered_until END AS offered_until,
           c.priority - extract(epoch FROM now() - c.aged_from) / $2 AS effective
    FROM candidates AS c
    ORDER BY c.taken, c.failed_here, offered_until, effective, c.aged_from, c.instance_id
    LIMIT $4
),
-- Each pick's workflow row, probed by primary key (OFFSET 0 keeps the probe
-- a nested loop). A pick whose workflow row does not match it is not
-- offered, and is returned with `current` false for maintenance to look at
-- under the workflow lock: this statement cannot tell a queue row left
-- behind by a racing write from one a save committed while it ran (the row
-- lock reads the newest queue row, the workflow row is read as of the
-- statement's start).
hydrated AS (
    SELECT p.instance_id, p.failed_here, p.taken, p.offered_until, p.effective, p.aged_from,
           w.snapshot, w.trace_parent, w.members, w.revision,
           COALESCE(w.status = 'InProgress' AND w.position_kind = 'AtTask'
                    AND w.current_task_id = p.task_id, false) AS current
    FROM pick AS p
    LEFT JOIN LATERAL (
        SELECT v.status, v.position_kind, v.current_task_id, v.snapshot,
               v.trace_parent, v.members, v.revision
        FROM sayiir.workflows AS v
        WHERE v.instance_id = p.instance_id
        OFFSET 0
    ) AS w ON true
),
-- Offers, and the row locks taken to make them, only steer workers to
-- different tasks: an offer lost in a server crash lets a second worker
-- see the task too, and its claim decides, so no step can run twice and
-- none is lost. Their commit therefore does not wait for the WAL flush
-- (the transaction's own setting; the claims, saves and events of every
-- other statement keep the server's).
relaxed AS (
    SELECT set_config('synchronous_commit', 'off', true) AS setting
),
offered AS (
    UPDATE sayiir.tasks AS q
    SET offered_to = $1,
        offered_until = now() + $5::float8 * interval '1 millisecond'
    FROM hydrated AS h
    WHERE q.instance_id = h.instance_id AND h.current AND NOT h.taken
)
SELECT h.instance_id,
       h.current,
       COALESCE(h.revision, 0) AS revision,
       COALESCE(h.snapshot, '') AS snapshot,
       h.trace_parent,
       o.task_ids,
       o.outputs
FROM hydrated AS h
CROSS JOIN LATERAL sayiir.member_outputs(h.instance_id, h.members) AS o
WHERE (SELECT r.setting FROM relaxed AS r) = 'off'
ORDER BY h.taken, h.failed_here, h.offered_until, h.effective, h.aged_from, h.instance_id
