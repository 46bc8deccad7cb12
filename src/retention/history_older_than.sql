-- Retention, history by age: removes at most $2 history entries recorded
-- before $1, oldest first (read through history_recorded_at_idx). Entries
-- another transaction has locked are skipped and left for a later batch, so
-- the statement never waits for a writer or for a second pruner. The locked
-- rows are deleted by their row address (a TID scan): history rows are
-- never updated, and a locked row cannot move.
DELETE FROM sayiir.history
WHERE ctid = ANY (ARRAY (
    SELECT ctid
    FROM sayiir.history
    WHERE recorded_at < $1
    ORDER BY recorded_at
    LIMIT $2
    FOR UPDATE SKIP LOCKED
))
