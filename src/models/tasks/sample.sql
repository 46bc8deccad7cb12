-- A sample of the dispatch queue for metrics: how many tasks a finder
-- could hand out now, counted up to $1, and how many seconds the oldest of
-- them has waited since its workflow's last update (0 when none).
--
-- Both read tasks_runnable_idx, never the whole table: the count stops
-- after $1 entries, and the oldest is the first claimable entry of each
-- priority level (walked as the finder walks them), so a backlog of any
-- size costs at most $1 index entries plus one short walk per level.
-- Worker tags and offers do not matter here: an offered task still waits.
WITH heads AS (
    SELECT h.aged_from
    FROM sayiir.task_priorities AS l
    CROSS JOIN LATERAL (
        SELECT q.aged_from
        FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND q.priority = l.priority
          AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
        ORDER BY q.aged_from
        LIMIT 1
    ) AS h
),
claimable AS (
    SELECT 1
    FROM sayiir.tasks AS q
    WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
      AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
    ORDER BY q.priority, q.aged_from
    LIMIT $1
)
SELECT (SELECT count(*) FROM claimable) AS depth,
       COALESCE((SELECT greatest(extract(epoch FROM now() - min(h.aged_from))::float8, 0)
                 FROM heads AS h), 0) AS oldest_age_secs
