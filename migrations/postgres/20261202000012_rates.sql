-- Exchange rates per tenant: 1 `base` = `rate` `quote` (a decimal string, never a float), as of a
-- date, with where it came from (`ecb`, `openexchangerates`, `manual`…).

CREATE TABLE fin_rates (
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    base           TEXT NOT NULL,
    quote          TEXT NOT NULL,
    as_of          TEXT NOT NULL,
    source         TEXT NOT NULL,
    rate           TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, base, quote, as_of, source)
);
