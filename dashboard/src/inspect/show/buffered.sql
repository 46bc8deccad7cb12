-- The buffered events of workflow $1 per signal name, in name order: at
-- most $3 names, each count stopping after $2 events (COUNT_CAP + 1).
-- The names are found by skipping through events_queue_idx (instance_id,
-- signal_name, id) one name at a time (a loose index scan), and the outer
-- LIMIT stops the walk, so the cost is one probe per name plus the capped
-- counts, however many events are buffered. Names come out in the order
-- the walk finds them: ascending.
WITH RECURSIVE names (signal_name) AS (
    (SELECT e.signal_name
     FROM sayiir.events AS e
     WHERE e.instance_id = $1
     ORDER BY e.signal_name
     LIMIT 1)
    UNION ALL
    SELECT (SELECT e.signal_name
            FROM sayiir.events AS e
            WHERE e.instance_id = $1 AND e.signal_name > n.signal_name
            ORDER BY e.signal_name
            LIMIT 1)
    FROM names AS n
    WHERE n.signal_name IS NOT NULL
)
SELECT n.signal_name,
       (SELECT count(*) FROM (
            SELECT FROM sayiir.events AS e
            WHERE e.instance_id = $1 AND e.signal_name = n.signal_name
            ORDER BY e.id
            LIMIT $2) AS c) AS count
FROM names AS n
WHERE n.signal_name IS NOT NULL
LIMIT $3
