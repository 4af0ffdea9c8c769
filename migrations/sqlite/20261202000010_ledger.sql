-- The finance service's double-entry ledger: accounts per tenant and currency with running
-- balances, and immutable transfers between two accounts of one currency. Amounts are integers
-- in the currency's minor units. An account's four counters change only in the statement
-- batch that inserts the transfer explaining them, under the account's row lock, so
-- posted balances always equal the sum of the account's posted transfers.

CREATE TABLE fin_accounts (
    tenant_id        TEXT NOT NULL REFERENCES tenants (id),
    id               TEXT NOT NULL,
    currency         TEXT NOT NULL,
    -- asset, liability, equity, revenue, expense: which side its balance is read from.
    kind             TEXT NOT NULL,
    name             TEXT,
    -- Balance limits: debits may not exceed credits (and the reverse).
    debits_must_not_exceed_credits  BIGINT NOT NULL,
    credits_must_not_exceed_debits  BIGINT NOT NULL,
    debits_pending   BIGINT NOT NULL DEFAULT 0,
    debits_posted    BIGINT NOT NULL DEFAULT 0,
    credits_pending  BIGINT NOT NULL DEFAULT 0,
    credits_posted   BIGINT NOT NULL DEFAULT 0,
    created_at_ms    BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id)
);

CREATE TABLE fin_transfers (
    n                INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT NOT NULL,
    id               TEXT NOT NULL,
    debit_account    TEXT NOT NULL,
    credit_account   TEXT NOT NULL,
    amount           BIGINT NOT NULL,
    currency         TEXT NOT NULL,
    -- What the transfer is (`shipping_charge`, `payment`, …), chosen by the caller.
    code             TEXT NOT NULL,
    -- single, pending, post_pending, void_pending.
    kind             TEXT NOT NULL,
    pending_id       TEXT,
    -- A pending transfer's state: pending, posted, voided, expired; `posted` otherwise.
    state            TEXT NOT NULL,
    expires_at_ms    BIGINT,
    linked           BIGINT NOT NULL,
    reference        TEXT,
    -- Digest of the request's fields: the same id with other fields is refused.
    request_hash     TEXT NOT NULL,
    created_at_ms    BIGINT NOT NULL,
    UNIQUE (tenant_id, id)
);
CREATE INDEX fin_transfers_debit ON fin_transfers (tenant_id, debit_account, n);
CREATE INDEX fin_transfers_credit ON fin_transfers (tenant_id, credit_account, n);
CREATE INDEX fin_transfers_created ON fin_transfers (tenant_id, created_at_ms);
CREATE INDEX fin_transfers_expiring ON fin_transfers (expires_at_ms) WHERE state = 'pending';
