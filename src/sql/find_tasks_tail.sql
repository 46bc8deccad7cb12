    ORDER BY failed_here, effective, q.aged_from, q.instance_id
    LIMIT $4
) AS pick
JOIN sayiir.workflows AS w ON w.instance_id = pick.instance_id
LEFT JOIN LATERAL (
    SELECT array_agg(t.task_id) AS task_ids, array_agg(t.output) AS outputs
    FROM sayiir.task_outputs AS t
    WHERE t.instance_id = w.instance_id
      AND t.task_id = ANY (w.members)
) AS o ON true
ORDER BY pick.failed_here, pick.effective, pick.aged_from, pick.instance_id
