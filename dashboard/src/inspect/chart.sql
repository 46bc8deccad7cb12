-- Workflows finished in each of the last 60 whole minutes and in the
-- current one, by status: 61 rows, oldest first, every minute present.
--
-- Each count reads workflows_status_updated_at_idx (status, updated_at)
-- for one status and one minute, and stops after $1 rows (COUNT_CAP + 1):
-- at most 183 capped walks, whatever the throughput. A finished workflow
-- is never written again, so its updated_at is its finished_at (both are
-- now() of the finishing write).
SELECT m.minute,
       (SELECT count(*) FROM (
            SELECT FROM sayiir.workflows AS w
            WHERE w.status = 'Completed'
              AND w.updated_at >= m.minute
              AND w.updated_at < m.minute + interval '1 minute'
            ORDER BY w.updated_at
            LIMIT $1) AS c) AS completed,
       (SELECT count(*) FROM (
            SELECT FROM sayiir.workflows AS w
            WHERE w.status = 'Failed'
              AND w.updated_at >= m.minute
              AND w.updated_at < m.minute + interval '1 minute'
            ORDER BY w.updated_at
            LIMIT $1) AS c) AS failed,
       (SELECT count(*) FROM (
            SELECT FROM sayiir.workflows AS w
            WHERE w.status = 'Cancelled'
              AND w.updated_at >= m.minute
              AND w.updated_at < m.minute + interval '1 minute'
            ORDER BY w.updated_at
            LIMIT $1) AS c) AS cancelled
FROM generate_series(date_trunc('minute', now()) - interval '60 minutes',
                     date_trunc('minute', now()),
                     interval '1 minute') AS m (minute)
ORDER BY m.minute
