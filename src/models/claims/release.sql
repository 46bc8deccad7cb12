WITH wf AS (
    -- The workflow row first, as every writer locks it (SPEC 3.9): a
    -- concurrent delete_snapshot, whose cascade reaches the queue row
    -- before the claim, waits here instead of deadlocking.
    SELECT instance_id
    FROM sayiir.workflows
    WHERE instance_id = $1
    FOR KEY SHARE
),
gone AS (
    DELETE FROM sayiir.claims AS c
    USING wf
    WHERE c.instance_id = wf.instance_id AND c.task_id = $2 AND c.worker_id = $3
    RETURNING c.instance_id, c.claimed_at
),
released AS (
    -- `released_at` is evidence for crash recovery that a claim-holding
    -- worker drives the instance. A release with nothing saved since the
    -- claim (the task failed with no retry left, panicked, or was given up)
    -- backs the task off, doubling from 1 s up to 1 min, and marks this
    -- worker so that another one is preferred.
    UPDATE sayiir.tasks AS q
    SET released_at   = now(),
        claimed_until = NULL,
        stalls        = CASE WHEN s.stalled THEN q.stalls + 1 ELSE 0 END,
        retry_at      = CASE WHEN s.stalled
                             THEN now() + least(power(2, least(q.stalls, 6)), 60) * interval '1 second'
                             ELSE q.retry_at END,
        failed_worker = CASE WHEN s.stalled THEN $3 ELSE q.failed_worker END
    FROM gone
    CROSS JOIN LATERAL (
        SELECT q2.position_kind = 'AtTask' AND NOT q2.completed
               AND q2.task_id = $2 AND q2.queued_at < gone.claimed_at AS stalled
        FROM sayiir.tasks AS q2
        WHERE q2.instance_id = gone.instance_id
    ) AS s
    WHERE q.instance_id = gone.instance_id
    RETURNING q.hint, q.quarantined, q.requested, q.retry_at
),
relaxed AS (
    -- This commit does not wait for the WAL flush (the transaction's own
    -- setting). Losing it in a server crash can only delay work: the WAL
    -- is replayed in order, so a release that is lost was the last thing
    -- this server acknowledged, after every durable commit that survived.
    -- What comes back is the claim, which blocks its workflow until it
    -- expires, and the back-off, the evidence for recovery and the wakeup,
    -- which only time work. Whatever the step wrote was saved before the
    -- release, by a durable commit, so nothing runs twice and nothing is
    -- lost.
    SELECT set_config('synchronous_commit', 'off', true) AS setting
),
wake AS (
    -- The workflow may have become runnable while the claim blocked it.
    SELECT pg_notify('sayiir_diesel_task_ready', r.hint)
    FROM released AS r
    WHERE r.hint IS NOT NULL
      AND r.quarantined IS NULL
      AND NOT r.requested
      AND (r.retry_at IS NULL OR r.retry_at <= now())
)
SELECT (SELECT count(*) FROM gone) AS matched,
       (SELECT count(*) FROM wake) AS woke,
       (SELECT c.worker_id FROM sayiir.claims AS c WHERE c.instance_id = $1) AS owner
WHERE (SELECT r.setting FROM relaxed AS r) = 'off'
