DROP VIEW sayiir.task_priorities;
DROP FUNCTION sayiir.task_is_dispatchable(boolean, boolean, timestamptz, timestamptz);
