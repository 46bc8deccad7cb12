-- Offers steer finders, they no longer hide work: a row offered to another
-- worker is still returned once the open rows fall short of the limit.
COMMENT ON COLUMN sayiir.tasks.offered_until IS
'Until when the offer to offered_to lasts: other workers'' finders return this row only after the rows offered to no one, oldest offer first.';
