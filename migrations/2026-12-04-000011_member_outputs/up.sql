-- sayiir.member_outputs: the recorded outputs of the tasks listed in
-- `members` of one instance, as two arrays in the same order (task ids,
-- outputs), both empty when there are none. Always exactly one row. The
-- one definition of how a snapshot is hydrated with its outputs: loading a
-- snapshot, the finder and the hinted finder all call it.
--
-- A single SELECT, STABLE, not STRICT, SQL language: the planner inlines
-- it into each calling statement as the subquery it stands for, so each
-- call is one probe of task_outputs' primary key per instance.
CREATE FUNCTION sayiir.member_outputs(instance_id text, members bytea[])
RETURNS TABLE (task_ids bytea[], outputs bytea[])
LANGUAGE sql
STABLE
PARALLEL SAFE
AS 'SELECT COALESCE(array_agg(t.task_id), ''{}''), COALESCE(array_agg(t.output), ''{}'')
    FROM sayiir.task_outputs AS t
    WHERE t.instance_id = $1 AND t.task_id = ANY ($2)';

COMMENT ON FUNCTION sayiir.member_outputs(text, bytea[]) IS
    'The recorded outputs of the member tasks of one instance, as parallel arrays (task_ids, outputs), empty when none; one row.';
