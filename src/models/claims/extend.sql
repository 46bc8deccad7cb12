WITH wf AS (
    -- The workflow row first, as every writer locks it (SPEC 3.9).
    SELECT instance_id
    FROM sayiir.workflows
    WHERE instance_id = $1
    FOR KEY SHARE
),
moved AS (
    -- Added to the current expiry (not to now); a claim without expiry stays so.
    UPDATE sayiir.claims AS c
    SET expires_at = c.expires_at + $4::float8 * interval '1 millisecond'
    FROM wf
    WHERE c.instance_id = wf.instance_id AND c.task_id = $2 AND c.worker_id = $3
    RETURNING c.instance_id, c.expires_at
),
mirrored AS (
    UPDATE sayiir.tasks AS q
    SET claimed_until = COALESCE(moved.expires_at, 'infinity')
    FROM moved
    WHERE q.instance_id = moved.instance_id
)
SELECT (SELECT count(*) FROM moved) AS matched,
       0::int8 AS woke,
       (SELECT c.worker_id FROM sayiir.claims AS c WHERE c.instance_id = $1) AS owner
