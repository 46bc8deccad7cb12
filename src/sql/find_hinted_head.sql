SELECT w.instance_id,
       w.snapshot,
       w.trace_parent,
       COALESCE(o.task_ids, '{}') AS task_ids,
       COALESCE(o.outputs, '{}') AS outputs
FROM sayiir.tasks AS q
JOIN sayiir.workflows AS w ON w.instance_id = q.instance_id
LEFT JOIN LATERAL (
    SELECT array_agg(t.task_id) AS task_ids, array_agg(t.output) AS outputs
    FROM sayiir.task_outputs AS t
    WHERE t.instance_id = w.instance_id
      AND t.task_id = ANY (w.members)
) AS o ON true
WHERE q.instance_id = $1
  AND q.task_id = $2
  AND
