SELECT w.instance_id,
       w.snapshot,
       w.trace_parent,
       COALESCE(o.task_ids, '{}') AS task_ids,
       COALESCE(o.outputs, '{}') AS outputs
