ALTER TABLE sayiir.tasks DROP COLUMN quarantined;
ALTER TABLE sayiir.tasks DROP COLUMN hint;
