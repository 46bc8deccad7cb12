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
      -- Recovery: the task's output is recorded but nothing moved on.
      OR (q.position_kind = 'AtTask' AND q.completed
          AND q.queued_at <= now() - $1::float8 * interval '1 millisecond')
  )
ORDER BY q.queued_at
LIMIT $2
