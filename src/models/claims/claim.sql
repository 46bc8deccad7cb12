WITH wf AS (
    -- The row lock makes the check atomic with the owner's save: a claim
    -- either waits for that save and sees the recorded output, or lands
    -- before it while the owner's claim is still live.
    -- $5, when set, is the revision the claimer's copy was read at (see
    -- src/dispatch/seen.rs): a copy the workflow has moved past since is
    -- stale, even where position and membership match again (a loop body's
    -- next iteration).
    SELECT instance_id,
           status = 'InProgress'
               AND current_task_id = $2
               AND NOT ($2 = ANY (members))
               AND ($5::int8 IS NULL OR revision = $5::int8) AS runnable,
           -- For metrics and the takeover's tracing event: the holder and
           -- task of an expired claim the upsert below may replace (read at
           -- the statement's start; a claim or extension since would be live
           -- at the upsert, which then refuses).
           (SELECT old.worker_id
            FROM sayiir.claims AS old
            WHERE old.instance_id = $1
              AND NOT sayiir.claim_is_live(old.expires_at)) AS expired_holder,
           (SELECT old.task_id
            FROM sayiir.claims AS old
            WHERE old.instance_id = $1
              AND NOT sayiir.claim_is_live(old.expires_at)) AS expired_task
    FROM sayiir.workflows
    WHERE instance_id = $1
    FOR NO KEY UPDATE
),
claimed AS (
    INSERT INTO sayiir.claims AS c (instance_id, task_id, worker_id, claimed_at, expires_at)
    SELECT wf.instance_id, $2, $3, now(), now() + $4::float8 * interval '1 millisecond'
    FROM wf
    WHERE wf.runnable
    ON CONFLICT (instance_id) DO UPDATE SET
        task_id    = EXCLUDED.task_id,
        worker_id  = EXCLUDED.worker_id,
        claimed_at = EXCLUDED.claimed_at,
        expires_at = EXCLUDED.expires_at
    WHERE NOT sayiir.claim_is_live(c.expires_at)
    RETURNING c.instance_id, c.expires_at AS expires,
              floor(extract(epoch FROM c.claimed_at))::int8 AS claimed_at,
              floor(extract(epoch FROM c.expires_at))::int8 AS expires_at
),
mirrored AS (
    -- The finder reads the claim from the queue row.
    UPDATE sayiir.tasks AS q
    SET claimed_until = COALESCE(claimed.expires, 'infinity')
    FROM claimed
    WHERE q.instance_id = claimed.instance_id
)
SELECT EXISTS (SELECT 1 FROM wf) AS found,
       COALESCE((SELECT wf.runnable FROM wf), false) AS runnable,
       (SELECT wf.expired_holder FROM wf) AS expired_holder,
       (SELECT wf.expired_task FROM wf) AS expired_task,
       claimed.claimed_at,
       claimed.expires_at
FROM (SELECT 1) AS one
LEFT JOIN claimed ON true
