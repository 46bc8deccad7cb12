WITH gone AS (
    DELETE FROM sayiir.claims
    WHERE instance_id = $1 AND task_id = $2 AND worker_id = $3
    RETURNING instance_id
),
released AS (
    -- Evidence for crash recovery that a claim-holding worker drives it.
    UPDATE sayiir.tasks AS q
    SET released_at = now(),
        claimed_until = NULL
    FROM gone
    WHERE q.instance_id = gone.instance_id
),
wake AS (
    -- The workflow may have become runnable while the claim blocked it.
    SELECT pg_notify('sayiir_diesel_task_ready', q.hint)
    FROM gone
    JOIN sayiir.tasks AS q ON q.instance_id = gone.instance_id
    WHERE q.hint IS NOT NULL
      AND q.quarantined IS NULL
      AND NOT q.requested
      AND (q.retry_at IS NULL OR q.retry_at <= now())
)
SELECT (SELECT count(*) FROM gone) AS matched,
       (SELECT count(*) FROM wake) AS woke,
       (SELECT c.worker_id FROM sayiir.claims AS c WHERE c.instance_id = $1) AS owner
