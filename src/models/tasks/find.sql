-- find_available_tasks: up to $4 runnable tasks for worker $1 (aging $2
-- seconds, worker tags $3), each handed to $1 for $5 milliseconds so that
-- other workers' finders pass it by, with its hydrated snapshot.
--
-- Every rule is decided on the queue row itself (the shared ones through
-- sayiir.task_is_dispatchable), read through tasks_runnable_idx (priority,
-- aged_from) one priority level (sayiir.task_priorities) at a time, so
-- the cost is O(levels x limit) whatever the backlog, and no join exists
-- that the planner could turn into a scan. Within a level, the oldest row
-- has the best aged priority (priority - age / aging), so each level's walk
-- stops after $4 rows and the merge below is exact. Tasks that last failed
-- on this worker come last (SPEC 4.4), from their own small index.
WITH candidates AS (
    SELECT c.instance_id, c.task_id, c.priority, c.aged_from, false AS failed_here
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
    SELECT f.instance_id, f.task_id, f.priority, f.aged_from, true AS failed_here
    FROM (
        SELECT q.instance_id, q.task_id, q.priority, q.aged_from
        FROM sayiir.tasks AS q
        WHERE q.failed_worker = $1
          AND q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND (cardinality($3::text[]) = 0 OR q.tags <@ $3::text[])
          AND (q.offered_until IS NULL OR q.offered_until <= now() OR q.offered_to = $1)
          AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
        ORDER BY q.priority, q.aged_from
        LIMIT $4
        FOR NO KEY UPDATE SKIP LOCKED
    ) AS f
),
pick AS (
    SELECT c.instance_id, c.task_id, c.failed_here, c.aged_from,
           c.priority - extract(epoch FROM now() - c.aged_from) / $2 AS effective
    FROM candidates AS c
    ORDER BY c.failed_here, effective, c.aged_from, c.instance_id
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
    SELECT p.instance_id, p.failed_here, p.effective, p.aged_from,
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
offered AS (
    UPDATE sayiir.tasks AS q
    SET offered_to = $1,
        offered_until = now() + $5::float8 * interval '1 millisecond'
    FROM hydrated AS h
    WHERE q.instance_id = h.instance_id AND h.current
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
ORDER BY h.failed_here, h.effective, h.aged_from, h.instance_id
