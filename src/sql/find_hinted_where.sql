WHERE q.instance_id = $1
  AND q.task_id = $2
  AND
