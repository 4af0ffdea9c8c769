-- Conversions between currencies: the two linked transfers (one per currency, through the
-- tenant's exchange accounts) and the rate used, stored with the converted amount.
CREATE TABLE fin_conversions (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    id               TEXT NOT NULL,
    debit_account    TEXT NOT NULL,
    credit_account   TEXT NOT NULL,
    amount           BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    converted        BIGINT NOT NULL,
    converted_currency TEXT NOT NULL,
    rate             TEXT NOT NULL,
    path             TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);
