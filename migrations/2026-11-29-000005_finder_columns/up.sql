-- The finder reads one table through one index. Everything it filters on is
-- a column of the queue row, so no join can be reordered into a scan when
-- the planner's statistics are stale (a fresh deployment, a burst):
-- * `claimed_until`: the expiry of the live claim (`infinity`: a claim that
--   never expires; NULL: no claim). Written by the claim, release and extend
--   statements beside `sayiir.claims`, which stays the truth `claim_task`
--   checks under the workflow row lock.
-- * `requested`: a cancel or pause is pending (kept by the trigger below).
-- * `offered_to` / `offered_until`: the worker a finder last handed this
--   row to, and until when other workers' finders leave it alone, so that
--   workers polling at once get different batches. A hint only: claims
--   decide.
-- * `event_waiting`: an event for this row's signal was already buffered
--   when the workflow parked there (maintenance delivers it). An event that
--   arrives while the park is being written is found by maintenance through
--   `events_sent_at_idx`.
ALTER TABLE sayiir.tasks
    ADD COLUMN claimed_until TIMESTAMPTZ,
    ADD COLUMN requested     BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN offered_to    TEXT,
    ADD COLUMN offered_until TIMESTAMPTZ,
    ADD COLUMN event_waiting BOOLEAN NOT NULL DEFAULT false;

UPDATE sayiir.tasks AS q
SET claimed_until = COALESCE(c.expires_at, 'infinity')
FROM sayiir.claims AS c
WHERE c.instance_id = q.instance_id;

UPDATE sayiir.tasks AS q
SET requested = true
WHERE EXISTS (SELECT 1 FROM sayiir.signals AS s WHERE s.instance_id = q.instance_id);

UPDATE sayiir.tasks AS q
SET event_waiting = true
WHERE q.position_kind = 'AtSignal'
  AND EXISTS (SELECT 1 FROM sayiir.events AS e
              WHERE e.instance_id = q.instance_id AND e.signal_name = q.signal_name);

-- Claims, releases and offers rewrite only unindexed columns: leave room on
-- each page for those updates to stay heap-only (HOT).
ALTER TABLE sayiir.tasks SET (fillfactor = 70);

-- One queue index for the finder: the runnable one (migration 4).
DROP INDEX sayiir.tasks_dispatch_idx;

-- Maintenance reads each kind of due row through its own small index.
CREATE INDEX tasks_requested_idx ON sayiir.tasks (instance_id) WHERE requested;
CREATE INDEX tasks_event_waiting_idx ON sayiir.tasks (instance_id)
    WHERE event_waiting AND position_kind = 'AtSignal';
CREATE INDEX events_sent_at_idx ON sayiir.events (sent_at);
CREATE INDEX tasks_recovery_idx ON sayiir.tasks (queued_at)
    WHERE position_kind = 'AtTask' AND completed;
-- The finder's fallback: tasks that last failed on the polling worker go
-- last (SPEC 4.4), read through this index only when the rest fall short.
CREATE INDEX tasks_failed_worker_idx ON sayiir.tasks (failed_worker, priority, aged_from)
    WHERE failed_worker IS NOT NULL
      AND position_kind = 'AtTask' AND NOT completed AND quarantined IS NULL;

-- `requested` follows `sayiir.signals`, whoever writes it.
CREATE FUNCTION sayiir.tasks_follow_signals() RETURNS trigger
    LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE sayiir.tasks SET requested = true
        WHERE instance_id = NEW.instance_id AND NOT requested;
    ELSE
        UPDATE sayiir.tasks AS q SET requested = EXISTS (
            SELECT 1 FROM sayiir.signals AS s WHERE s.instance_id = q.instance_id)
        WHERE q.instance_id = OLD.instance_id AND q.requested;
    END IF;
    RETURN NULL;
END;
$$;

CREATE TRIGGER tasks_follow_signals
    AFTER INSERT OR DELETE ON sayiir.signals
    FOR EACH ROW EXECUTE FUNCTION sayiir.tasks_follow_signals();
