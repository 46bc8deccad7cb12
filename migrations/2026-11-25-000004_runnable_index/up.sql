-- The finder's candidates: rows at a task that is not done and not set
-- aside. Parked (delay/signal) and crash-window rows stay out of it, so the
-- finder's scan is as small as the work that can actually run.
CREATE INDEX tasks_runnable_idx ON sayiir.tasks (priority, aged_from)
    WHERE position_kind = 'AtTask' AND NOT completed AND quarantined IS NULL;
