-- Retention, history beyond the newest N entries of each instance, one slice
-- at a time:
--   $1  the slice starts after this instance id ('' for the first slice)
--   $2  instances per slice (walked in id order through workflows_pkey)
--   $3  N, the entries each instance keeps
--   $4  most entries removed by this statement
-- Instances with at most N accepted writes (revision <= N) cannot have more
-- than N entries and are passed over. For each other instance, one backward
-- walk of history_pkey finds its (N+1)-th newest entry; that entry and every
-- older one go. Entries another transaction has locked are skipped.
-- Answers the last instance id of the slice (NULL when no instance is left
-- after $1) and the number of entries removed.
WITH slice AS MATERIALIZED (
    SELECT w.instance_id
    FROM sayiir.workflows AS w
    WHERE w.instance_id > $1
      AND w.revision > $3
    ORDER BY w.instance_id
    LIMIT $2
),
-- Both lookups are per instance (LATERAL): the row locks and the offset keep
-- the planner from turning them into a join over the whole history table.
doomed AS MATERIALIZED (
    SELECT old.address
    FROM slice AS s
    CROSS JOIN LATERAL (
        SELECT h.revision
        FROM sayiir.history AS h
        WHERE h.instance_id = s.instance_id
        ORDER BY h.revision DESC
        OFFSET $3
        LIMIT 1
    ) AS cut
    CROSS JOIN LATERAL (
        SELECT h.ctid AS address
        FROM sayiir.history AS h
        WHERE h.instance_id = s.instance_id
          AND h.revision <= cut.revision
        FOR UPDATE SKIP LOCKED
    ) AS old
    LIMIT $4
),
-- By row address (a TID scan): history rows are never updated, and a
-- locked row cannot move.
gone AS (
    DELETE FROM sayiir.history
    WHERE ctid = ANY (ARRAY (SELECT d.address FROM doomed AS d))
    RETURNING 1
)
SELECT (SELECT max(s.instance_id) FROM slice AS s) AS last_instance,
       (SELECT count(*) FROM gone) AS removed
