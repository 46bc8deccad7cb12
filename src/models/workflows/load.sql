-- load_snapshot: workflow $1's blob with the outputs of its members, in one
-- statement (one consistent read).
SELECT w.instance_id,
       w.snapshot,
       w.trace_parent,
       o.task_ids,
       o.outputs
FROM sayiir.workflows AS w
CROSS JOIN LATERAL sayiir.member_outputs(w.instance_id, w.members) AS o
WHERE w.instance_id = $1
