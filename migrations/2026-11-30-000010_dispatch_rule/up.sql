-- The dispatch rules the finder, the hinted finder and the queue sample
-- share, each defined once.
--
-- sayiir.task_is_dispatchable: whether a queued task may be handed out now
-- (its input can be resolved, no cancel or pause request is pending, its
-- retry back-off is over and no live claim holds it). A plain SQL
-- expression, STABLE: the planner inlines it into each statement, so the
-- rules stay index filters, as when they were written out.
CREATE FUNCTION sayiir.task_is_dispatchable(
    input_ready boolean,
    requested boolean,
    retry_at timestamptz,
    claimed_until timestamptz
)
RETURNS boolean
LANGUAGE sql
STABLE
PARALLEL SAFE
AS 'SELECT $1 AND NOT $2 AND ($3 IS NULL OR $3 <= now()) AND ($4 IS NULL OR $4 <= now())';

COMMENT ON FUNCTION sayiir.task_is_dispatchable(boolean, boolean, timestamptz, timestamptz) IS
    'Whether a queued task may be handed out now: input ready, no request pending, back-off over, no live claim (claimed_until mirrors the claim).';

-- sayiir.task_priorities: the distinct priorities of runnable queue rows,
-- found by skipping through tasks_runnable_idx one level at a time (a
-- loose index scan), so the cost is one index probe per level whatever the
-- backlog. The finders walk each level's rows oldest first.
CREATE VIEW sayiir.task_priorities (priority) AS
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
)
SELECT levels.priority FROM levels WHERE levels.priority IS NOT NULL;

COMMENT ON VIEW sayiir.task_priorities IS
    'The distinct priorities of runnable queue rows, one tasks_runnable_idx probe per level.';
