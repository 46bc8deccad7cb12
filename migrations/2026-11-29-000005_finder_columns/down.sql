DROP TRIGGER tasks_follow_signals ON sayiir.signals;
DROP FUNCTION sayiir.tasks_follow_signals();
DROP INDEX sayiir.tasks_failed_worker_idx;
DROP INDEX sayiir.tasks_recovery_idx;
DROP INDEX sayiir.events_sent_at_idx;
DROP INDEX sayiir.tasks_event_waiting_idx;
DROP INDEX sayiir.tasks_requested_idx;
CREATE INDEX tasks_dispatch_idx ON sayiir.tasks (priority, aged_from);
ALTER TABLE sayiir.tasks RESET (fillfactor);
ALTER TABLE sayiir.tasks
    DROP COLUMN event_waiting,
    DROP COLUMN offered_until,
    DROP COLUMN offered_to,
    DROP COLUMN requested,
    DROP COLUMN claimed_until;
