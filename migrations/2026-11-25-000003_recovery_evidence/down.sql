ALTER TABLE sayiir.tasks DROP COLUMN released_at;
ALTER TABLE sayiir.tasks DROP COLUMN input_known;
ALTER TABLE sayiir.tasks DROP COLUMN input_from;
