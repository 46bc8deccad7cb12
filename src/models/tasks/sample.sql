-- A sample of the dispatch queue for metrics: how many tasks a finder
-- could hand out now, counted up to $1, and how many seconds the oldest of
-- them has waited since its workflow's last update (0 when none).
--
-- Both read tasks_runnable_idx, never the whole table: the count stops
-- after $1 entries, and the oldest is the first claimable entry of each
-- priority level (walked as the finder walks them), so a backlog of any
-- size costs at most $1 index entries plus one short walk per level.
-- Worker tags and offers do not matter here: an offered task still waits.
WITH RECURSIVE levels (priority) AS (
    (SELECT q.priority
     FROM sayiir.tasks AS q
     WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
     ORDER BY q.priority
     LIMIT 1)
    UNION ALL
    SELECT (SELECT q.priority
            FROM sayiir.tasks AS q
            WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
              AND q.priority > l.priority
            ORDER BY q.priority
            LIMIT 1)
    FROM levels AS l
    WHERE l.priority IS NOT NULL
),
heads AS (
    SELECT h.aged_from
    FROM levels AS l
    CROSS JOIN LATERAL (
        SELECT q.aged_from
        FROM sayiir.tasks AS q
        WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
          AND q.priority = l.priority
          -- dispatchable:begin
          AND q.input_ready
          AND NOT q.requested
          AND (q.retry_at IS NULL OR q.retry_at <= now())
          AND (q.claimed_until IS NULL OR q.claimed_until <= now())
          -- dispatchable:end
        ORDER BY q.aged_from
        LIMIT 1
    ) AS h
),
claimable AS (
    SELECT 1
    FROM sayiir.tasks AS q
    WHERE q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
      -- dispatchable:begin
      AND q.input_ready
      AND NOT q.requested
      AND (q.retry_at IS NULL OR q.retry_at <= now())
      AND (q.claimed_until IS NULL OR q.claimed_until <= now())
      -- dispatchable:end
    ORDER BY q.priority, q.aged_from
    LIMIT $1
)
SELECT (SELECT count(*) FROM claimable) AS depth,
       COALESCE((SELECT greatest(extract(epoch FROM now() - min(h.aged_from))::float8, 0)
                 FROM heads AS h), 0) AS oldest_age_secs
