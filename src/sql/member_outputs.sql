LEFT JOIN LATERAL (
    SELECT array_agg(t.task_id) AS task_ids, array_agg(t.output) AS outputs
    FROM sayiir.task_outputs AS t
    WHERE t.instance_id = w.instance_id
      AND t.task_id = ANY (w.members)
) AS o ON true
