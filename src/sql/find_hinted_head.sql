FROM sayiir.tasks AS q
JOIN sayiir.workflows AS w ON w.instance_id = q.instance_id
