WHERE w.instance_id = $1
