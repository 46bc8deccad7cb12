ALTER TABLE sayiir.tasks DROP COLUMN stalls;
