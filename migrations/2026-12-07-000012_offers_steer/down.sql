COMMENT ON COLUMN sayiir.tasks.offered_until IS
'Until when other workers'' finders pass over this row (the offer lease).';
