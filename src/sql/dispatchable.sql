q.position_kind = 'AtTask'
      AND NOT q.completed
      AND q.input_ready
      AND q.quarantined IS NULL
      AND (q.retry_at IS NULL OR q.retry_at <= now())
      AND NOT EXISTS (SELECT 1 FROM sayiir.signals AS s WHERE s.instance_id = q.instance_id)
      AND NOT EXISTS (
          SELECT 1 FROM sayiir.claims AS c
          WHERE c.instance_id = q.instance_id
            AND (c.expires_at IS NULL OR c.expires_at > now())
      )
      -- The queue row agrees with the workflow row (a concurrent write can
      -- leave a stale one behind; maintenance removes it).
      AND EXISTS (
          SELECT 1 FROM sayiir.workflows AS v
          WHERE v.instance_id = q.instance_id
            AND v.status = 'InProgress'
            AND v.position_kind = q.position_kind
      )
