-- What crash recovery needs to know about a queue row at AtTask(t):
-- * `input_from` / `input_known`: the task whose output is t's input (NULL
--   with input_known = true: the workflow's initial input), recorded when
--   the workflow entered AtTask(t) and kept when t's output is saved, so a
--   recovered t gets the same input without reading history.
-- * `released_at`: when a worker last released its claim on the instance,
--   evidence that a claim-holding worker (not an in-process runner, which
--   takes no claims) was driving it.
ALTER TABLE sayiir.tasks ADD COLUMN input_from BYTEA;
ALTER TABLE sayiir.tasks ADD COLUMN input_known BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE sayiir.tasks ADD COLUMN released_at TIMESTAMPTZ;
