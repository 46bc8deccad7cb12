-- The schema itself stays: it also holds diesel's bookkeeping table for our
-- migrations.
DROP TABLE sayiir.events;
DROP TABLE sayiir.signals;
DROP TABLE sayiir.claims;
DROP TABLE sayiir.tasks;
DROP TABLE sayiir.history;
DROP FUNCTION sayiir.history_is_append_only();
DROP TABLE sayiir.task_outputs;
DROP TABLE sayiir.workflows;
