WITH w AS (
    INSERT INTO sayiir.workflows AS cur
        (instance_id, definition_hash, status, position_kind, current_task_id,
         snapshot, members, trace_parent, error, finished_at)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, CASE WHEN $10 THEN now() END)
    ON CONFLICT (instance_id) DO UPDATE SET
        (definition_hash, status, position_kind, current_task_id, snapshot,
         trace_parent, error, finished_at)
                     = (EXCLUDED.definition_hash, EXCLUDED.status,
                        EXCLUDED.position_kind, EXCLUDED.current_task_id,
                        EXCLUDED.snapshot, EXCLUDED.trace_parent,
                        EXCLUDED.error, EXCLUDED.finished_at),
        members      = CASE WHEN $11 THEN cur.members || EXCLUDED.members
                            ELSE EXCLUDED.members END,
        revision     = cur.revision + 1,
        updated_at   = now()
    -- Terminal guard: a finished workflow is never written again. A Paused
    -- one only goes back to InProgress through unpause, never through a
    -- stale save (e.g. a worker's late loop decision).
    WHERE cur.status = 'InProgress'
       OR (cur.status = 'Paused' AND ($12 OR EXCLUDED.status <> 'InProgress'))
    RETURNING cur.instance_id, cur.revision, cur.status, cur.position_kind,
              cur.current_task_id, cur.snapshot
),
ended AS (
    -- The claim this save finishes ($13, $14: its task, whose output the
    -- save records, and its worker; both NULL otherwise). Ending it here
    -- leaves the worker's release nothing to write (src/dispatch/held.rs).
    -- Only that worker's claim on that task, so a claim taken over since
    -- stays its new holder's.
    DELETE FROM sayiir.claims AS c
    USING w
    WHERE c.instance_id = w.instance_id AND c.task_id = $13 AND c.worker_id = $14
    RETURNING c.instance_id
),
outputs AS (
    INSERT INTO sayiir.task_outputs AS o (instance_id, task_id, output)
    SELECT w.instance_id, t.task_id, t.output
    FROM w, unnest($15::bytea[], $16::bytea[]) AS t (task_id, output)
    ON CONFLICT (instance_id, task_id) DO UPDATE
        SET output = EXCLUDED.output, recorded_at = now()
        WHERE o.output IS DISTINCT FROM EXCLUDED.output
),
history AS (
    INSERT INTO sayiir.history
        (instance_id, revision, status, position_kind, current_task_id, snapshot)
    SELECT instance_id, revision, status, position_kind, current_task_id, snapshot
    FROM w
    WHERE $17
),
queue_drop AS (
    DELETE FROM sayiir.tasks AS q
    USING w
    WHERE q.instance_id = w.instance_id AND NOT $18
),
queue AS (
    INSERT INTO sayiir.tasks AS q
        (instance_id, position_kind, task_id, park_id, signal_name, wake_at,
         completed, input_ready, priority, tags, retry_at, failed_worker, aged_from, hint,
         input_from, input_known, claimed_until, released_at, requested, event_waiting)
    SELECT w.instance_id, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30, $31,
           $32, NOT $24,
           -- A new queue row starts from the claim and requests already
           -- there (a claim this save ends is not); an existing one keeps
           -- its own (their statements keep them current).
           (SELECT COALESCE(c.expires_at, 'infinity') FROM sayiir.claims AS c
            WHERE c.instance_id = w.instance_id
              AND c.instance_id NOT IN (SELECT e.instance_id FROM ended AS e)),
           CASE WHEN EXISTS (SELECT 1 FROM ended) THEN now() END,
           EXISTS (SELECT 1 FROM sayiir.signals AS s WHERE s.instance_id = w.instance_id),
           -- An event buffered before the park is delivered by maintenance.
           $19 = 'AtSignal' AND EXISTS (
               SELECT 1 FROM sayiir.events AS e
               WHERE e.instance_id = w.instance_id AND e.signal_name = $22)
    FROM w
    WHERE $18
    ON CONFLICT (instance_id) DO UPDATE SET
        position_kind = EXCLUDED.position_kind,
        task_id       = EXCLUDED.task_id,
        park_id       = EXCLUDED.park_id,
        signal_name   = EXCLUDED.signal_name,
        wake_at       = EXCLUDED.wake_at,
        completed     = EXCLUDED.completed,
        input_ready   = EXCLUDED.input_ready,
        priority      = EXCLUDED.priority,
        tags          = EXCLUDED.tags,
        retry_at      = EXCLUDED.retry_at,
        failed_worker = EXCLUDED.failed_worker,
        stalls        = 0,
        aged_from     = EXCLUDED.aged_from,
        hint          = EXCLUDED.hint,
        -- Saving t's own output keeps the input pointer of AtTask(t).
        input_from    = CASE WHEN EXCLUDED.completed AND q.position_kind = 'AtTask'
                                  AND EXCLUDED.position_kind = 'AtTask'
                                  AND q.task_id = EXCLUDED.task_id
                             THEN q.input_from ELSE EXCLUDED.input_from END,
        input_known   = CASE WHEN EXCLUDED.completed AND q.position_kind = 'AtTask'
                                  AND EXCLUDED.position_kind = 'AtTask'
                                  AND q.task_id = EXCLUDED.task_id
                             THEN q.input_known ELSE EXCLUDED.input_known END,
        quarantined   = NULL,
        event_waiting = EXCLUDED.event_waiting,
        -- A claim this save ends, as its release would have recorded it.
        claimed_until = CASE WHEN EXISTS (SELECT 1 FROM ended) THEN NULL
                             ELSE q.claimed_until END,
        released_at   = CASE WHEN EXISTS (SELECT 1 FROM ended) THEN now()
                             ELSE q.released_at END,
        -- A new state is offered afresh.
        offered_to    = NULL,
        offered_until = NULL,
        queued_at     = now()
),
wake AS (
    SELECT pg_notify('sayiir_diesel_task_ready', $33)
    FROM w
    -- Only when a worker can claim it now: the holder of a live claim
    -- wakes workers when it releases (or when its save ends it, here),
    -- and a back-off wakes nobody.
    WHERE $33 IS NOT NULL
      AND ($28 IS NULL OR $28 <= now())
      AND NOT EXISTS (
          SELECT 1 FROM sayiir.claims AS c
          WHERE c.instance_id = w.instance_id
            AND sayiir.claim_is_live(c.expires_at)
            AND c.instance_id NOT IN (SELECT e.instance_id FROM ended AS e))
)
SELECT (SELECT count(*) FROM w) AS written,
       (SELECT count(*) FROM wake) AS notified,
       (SELECT count(*) FROM ended) AS ended
