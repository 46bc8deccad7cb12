-- The one definition of a live claim: one that never expires (NULL) or
-- expires in the future, on the database clock. Every statement that asks
-- whether a claim holds an instance calls it (the claim, the write's
-- wakeup, and Diesel queries through `models::claims`). A plain SQL
-- expression, STABLE: the planner inlines it, so it costs what the
-- expression costs and indexes on expires_at still apply.
CREATE FUNCTION sayiir.claim_is_live(expires_at timestamptz)
RETURNS boolean
LANGUAGE sql
STABLE
PARALLEL SAFE
AS 'SELECT $1 IS NULL OR $1 > now()';

COMMENT ON FUNCTION sayiir.claim_is_live(timestamptz) IS
    'Whether a claim with this expires_at holds its instance now: it never expires (NULL) or expires in the future.';
