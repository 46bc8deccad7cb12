FROM (
    SELECT q.instance_id,
           COALESCE(q.failed_worker = $1, false) AS failed_here,
           q.priority - extract(epoch FROM now() - q.aged_from) / $2 AS effective,
           q.aged_from
    FROM sayiir.tasks AS q
    WHERE (cardinality($3::text[]) = 0 OR q.tags <@ $3::text[])
      AND
