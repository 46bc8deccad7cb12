-- The overview of the whole store in one statement: one snapshot (the
-- queue's runnable = waiting + running holds), one round trip.
--
-- Each count reads an index and stops after $1 entries (COUNT_CAP + 1):
-- the cost does not grow with the tables, and a count of $1 means "at
-- least COUNT_CAP". Each ORDER BY is the order of the index the count
-- reads, so no plan can prefer a scan of the table (a scan would have to
-- sort all it reads). The constants are literals, so the partial indexes
-- apply in generic plans too. A status is a closed range ordered by
-- (status, id), not an equality, so that no plan can walk another index
-- and filter the status (see inspect/list.rs).
SELECT
    (SELECT count(*) FROM (
        SELECT FROM sayiir.workflows AS w
        WHERE w.status BETWEEN 'InProgress' AND 'InProgress'
        ORDER BY w.status, w.instance_id COLLATE "C" LIMIT $1) AS c) AS in_progress,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.workflows AS w
        WHERE w.status BETWEEN 'Paused' AND 'Paused'
        ORDER BY w.status, w.instance_id COLLATE "C" LIMIT $1) AS c) AS paused,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.workflows AS w
        WHERE w.status BETWEEN 'Completed' AND 'Completed'
        ORDER BY w.status, w.instance_id COLLATE "C" LIMIT $1) AS c) AS completed,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.workflows AS w
        WHERE w.status BETWEEN 'Failed' AND 'Failed'
        ORDER BY w.status, w.instance_id COLLATE "C" LIMIT $1) AS c) AS failed,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.workflows AS w
        WHERE w.status BETWEEN 'Cancelled' AND 'Cancelled'
        ORDER BY w.status, w.instance_id COLLATE "C" LIMIT $1) AS c) AS cancelled,
    -- Runnable: at a task not done yet, not set aside (tasks_runnable_idx).
    (SELECT count(*) FROM (
        SELECT FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
        ORDER BY q.priority, q.aged_from LIMIT $1) AS c) AS runnable,
    -- Of those, the ones no live claim holds; the walk passes over the
    -- running ones, as many as there are live claims.
    (SELECT count(*) FROM (
        SELECT FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND (q.claimed_until IS NULL OR q.claimed_until <= now())
        ORDER BY q.priority, q.aged_from LIMIT $1) AS c) AS waiting,
    -- Of those, the ones a live claim holds: driven by the claims (as many
    -- as workers hold, plus expired ones), each probing its queue row by
    -- primary key (OFFSET 0 keeps the row's conditions out of the probe).
    (SELECT count(*) FROM (
        SELECT FROM sayiir.claims AS k
        CROSS JOIN LATERAL (
            SELECT q.position_kind, q.completed, q.quarantined, q.claimed_until
            FROM sayiir.tasks AS q
            WHERE q.instance_id = k.instance_id
            OFFSET 0) AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND q.claimed_until > now()
        LIMIT $1) AS c) AS running,
    -- The oldest waiting row: the first waiting row of each priority level
    -- in the finder's order (aged_from), one short walk per level.
    (SELECT min(h.queued_at)
     FROM sayiir.task_priorities AS l
     CROSS JOIN LATERAL (
         SELECT q.queued_at
         FROM sayiir.tasks AS q
         WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
           AND q.priority = l.priority
           AND (q.claimed_until IS NULL OR q.claimed_until <= now())
         ORDER BY q.aged_from
         LIMIT 1) AS h) AS oldest_waiting,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtDelay'
        ORDER BY q.wake_at, q.instance_id LIMIT $1) AS c) AS parked_at_delay,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtSignal'
        ORDER BY q.wake_at, q.instance_id LIMIT $1) AS c) AS parked_at_signal,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.tasks AS q
        WHERE q.quarantined IS NOT NULL
        ORDER BY q.retry_at LIMIT $1) AS c) AS quarantined,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.claims AS k
        WHERE k.expires_at <= now()
        ORDER BY k.expires_at LIMIT $1) AS c) AS expired_claims,
    -- No filter: any scan stops after $1 rows.
    (SELECT count(*) FROM (
        SELECT FROM sayiir.signals AS s LIMIT $1) AS c) AS pending_requests,
    (SELECT count(*) FROM (
        SELECT FROM sayiir.events AS e LIMIT $1) AS c) AS buffered_events,
    now() AS server_now
