SELECT q.instance_id
FROM sayiir.tasks AS q
WHERE q.quarantined IS NULL
  AND NOT EXISTS (
      SELECT 1 FROM sayiir.claims AS c
      WHERE c.instance_id = q.instance_id
        AND (c.expires_at IS NULL OR c.expires_at > now())
  )
  AND (
      -- A cancel or pause nobody will apply: no worker holds the instance.
      EXISTS (SELECT 1 FROM sayiir.signals AS s WHERE s.instance_id = q.instance_id)
      OR (q.position_kind = 'AtDelay' AND q.wake_at <= now())
      OR (q.position_kind = 'AtSignal'
          AND (q.wake_at <= now()
               OR EXISTS (SELECT 1 FROM sayiir.events AS e
                          WHERE e.instance_id = q.instance_id
                            AND e.signal_name = q.signal_name)))
      -- Recovery: the task's output is recorded but nothing moved on, and a
      -- claim-holding worker was driving it (its claim expired, or it
      -- released after the save); an in-process runner takes no claims.
      OR (q.position_kind = 'AtTask' AND q.completed
          AND q.queued_at <= now() - $1::float8 * interval '1 millisecond'
          AND (q.released_at >= q.queued_at
               OR EXISTS (SELECT 1 FROM sayiir.claims AS c
                          WHERE c.instance_id = q.instance_id)))
      -- A queue row a concurrent write left behind.
      OR NOT EXISTS (
          SELECT 1 FROM sayiir.workflows AS v
          WHERE v.instance_id = q.instance_id
            AND v.status = 'InProgress'
            AND v.position_kind = q.position_kind
      )
  )
ORDER BY q.queued_at
LIMIT $2
