WITH moved AS (
    -- Added to the current expiry (not to now); a claim without expiry stays so.
    UPDATE sayiir.claims
    SET expires_at = expires_at + $4::float8 * interval '1 millisecond'
    WHERE instance_id = $1 AND task_id = $2 AND worker_id = $3
    RETURNING instance_id, expires_at
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
