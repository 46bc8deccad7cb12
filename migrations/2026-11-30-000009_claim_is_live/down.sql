DROP FUNCTION sayiir.claim_is_live(timestamptz);
