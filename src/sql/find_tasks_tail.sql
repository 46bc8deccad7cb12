    ORDER BY failed_here, effective, q.aged_from, q.instance_id
    LIMIT $4
) AS pick
JOIN sayiir.workflows AS w ON w.instance_id = pick.instance_id
