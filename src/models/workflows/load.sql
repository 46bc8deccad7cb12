-- load_snapshot: workflow $1's blob with the outputs of its members, in one
-- statement (one consistent read).
SELECT w.instance_id,
       w.snapshot,
       w.trace_parent,
       COALESCE(o.task_ids, '{}') AS task_ids,
       COALESCE(o.outputs, '{}') AS outputs
FROM sayiir.workflows AS w
LEFT JOIN LATERAL (
    SELECT array_agg(t.task_id) AS task_ids, array_agg(t.output) AS outputs
    FROM sayiir.task_outputs AS t
    WHERE t.instance_id = w.instance_id
      AND t.task_id = ANY (w.members)
) AS o ON true
WHERE w.instance_id = $1
