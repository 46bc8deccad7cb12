-- Queue rows maintenance may move on, oldest first: each kind is read
-- through its own small index, and a row held by a live claim is left to
-- its worker. Parameters: the recovery grace in milliseconds, the batch.
-- Rows set aside as undecodable whose back-off has passed are put back for
-- the finder to try again (it sets them aside again, for twice as long, if
-- they still cannot be decoded).
WITH lifted AS (
    UPDATE sayiir.tasks AS q
    SET quarantined = NULL
    -- An array, not a join: the few ids are probed by primary key.
    WHERE q.instance_id = ANY (ARRAY(
        SELECT t.instance_id
        FROM sayiir.tasks AS t
        WHERE t.quarantined IS NOT NULL AND t.retry_at <= now()
        ORDER BY t.retry_at
        LIMIT $2
        FOR NO KEY UPDATE SKIP LOCKED
    ))
)
SELECT due.instance_id
FROM (
    -- A cancel or pause nobody will apply: no worker holds the instance,
    -- and no in-process runner (which takes no claims and applies requests
    -- itself at its task boundaries) may be driving it: it is parked, a
    -- worker released it after its last write, or nothing wrote it for the
    -- recovery grace.
    (SELECT q.instance_id, q.queued_at
     FROM sayiir.tasks AS q
     WHERE q.requested
       AND q.quarantined IS NULL
       AND (q.claimed_until IS NULL OR q.claimed_until <= now())
       AND (q.position_kind <> 'AtTask'
            OR q.released_at >= q.queued_at
            OR q.queued_at <= now() - $1::float8 * interval '1 millisecond')
     LIMIT $2)
    UNION
    -- A delay that expired, or a signal wait that timed out. The kind is
    -- tested as "not at a task" (the same rows: the column's CHECK allows
    -- three kinds), which the planner cannot match to the predicate of
    -- the dashboard's tasks_parked_idx (kind first, walked over every
    -- parked row), so it reads tasks_wake_at_idx from its start.
    (SELECT q.instance_id, q.queued_at
     FROM sayiir.tasks AS q
     WHERE q.wake_at <= now()
       AND q.position_kind <> 'AtTask'
       AND q.quarantined IS NULL
       AND (q.claimed_until IS NULL OR q.claimed_until <= now())
     ORDER BY q.wake_at
     LIMIT $2)
    UNION
    -- A signal wait whose event was buffered before the park was written.
    (SELECT q.instance_id, q.queued_at
     FROM sayiir.tasks AS q
     WHERE q.event_waiting
       AND q.position_kind = 'AtSignal'
       AND q.quarantined IS NULL
       AND (q.claimed_until IS NULL OR q.claimed_until <= now())
     LIMIT $2)
    UNION
    -- An event buffered while the park was being written (the write could
    -- not see it yet): recent events, each probing its instance's row.
    (SELECT q.instance_id, q.queued_at
     FROM sayiir.events AS e
     CROSS JOIN LATERAL (
         SELECT t.instance_id, t.queued_at
         FROM sayiir.tasks AS t
         WHERE t.instance_id = e.instance_id
           AND t.position_kind = 'AtSignal'
           AND t.signal_name = e.signal_name
           AND t.quarantined IS NULL
           AND (t.claimed_until IS NULL OR t.claimed_until <= now())
         OFFSET 0
     ) AS q
     WHERE e.sent_at >= now() - interval '10 minutes'
     LIMIT $2)
    UNION
    -- Recovery: the task's output is recorded but nothing moved on, and a
    -- claim-holding worker was driving it (its claim expired, or it
    -- released after the save); an in-process runner takes no claims.
    (SELECT q.instance_id, q.queued_at
     FROM sayiir.tasks AS q
     WHERE q.position_kind = 'AtTask'
       AND q.completed
       AND q.queued_at <= now() - $1::float8 * interval '1 millisecond'
       AND q.quarantined IS NULL
       AND (q.claimed_until IS NULL OR q.claimed_until <= now())
       AND (q.released_at >= q.queued_at OR q.claimed_until IS NOT NULL)
     ORDER BY q.queued_at
     LIMIT $2)
) AS due
ORDER BY due.queued_at
LIMIT $2
