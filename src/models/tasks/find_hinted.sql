-- find_hinted_task: the hinted instance $1 at task $2 with its hydrated
-- snapshot, when the finder's rules (find.sql) would offer it.
SELECT w.instance_id,
       w.revision,
       w.snapshot,
       w.trace_parent,
       o.task_ids,
       o.outputs
FROM sayiir.tasks AS q
JOIN sayiir.workflows AS w ON w.instance_id = q.instance_id
CROSS JOIN LATERAL sayiir.member_outputs(w.instance_id, w.members) AS o
WHERE q.instance_id = $1
  AND q.task_id = $2
  AND q.position_kind = 'AtTask' AND NOT q.completed AND q.quarantined IS NULL
  AND w.status = 'InProgress' AND w.position_kind = 'AtTask'
  AND w.current_task_id = q.task_id
  AND sayiir.task_is_dispatchable(q.input_ready, q.requested, q.retry_at, q.claimed_until)
