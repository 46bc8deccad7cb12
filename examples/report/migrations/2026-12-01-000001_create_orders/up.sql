-- The application's own table, in its own schema (public), next to
-- sayiir's. An order points at the workflow that fulfils it by instance id.
CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    customer TEXT NOT NULL,
    amount_cents BIGINT NOT NULL CHECK (amount_cents > 0),
    workflow_instance_id TEXT NOT NULL UNIQUE,
    placed_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
