-- Payments from the providers (Stripe, PayPal): the accounts whose webhooks a tenant points at
-- shipgate, each delivered event once (its provider's event id), matched to an order or kept
-- for review, and the finance service's own view of orders (fed by `order.received`) that
-- payments are matched against. Orders follow their payments in `payment_status`.

CREATE TABLE fin_payment_accounts (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL REFERENCES tenants (id),
    provider       TEXT NOT NULL,
    name           TEXT NOT NULL,
    -- Stripe: the endpoint's signing secret (whsec_…). PayPal: the webhook id. Never returned.
    secret         TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    UNIQUE (tenant_id, provider, name)
);

CREATE TABLE fin_payments (
    tenant_id      TEXT NOT NULL,
    provider       TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    -- The provider's object (pi_…, ch_…, dp_…, a capture id) and the payment it belongs to.
    object_id      TEXT,
    payment_ref    TEXT,
    charge_ref     TEXT,
    -- What the payer's metadata named, and the order it matched (NULL: kept for review).
    order_ref      TEXT,
    order_id       TEXT,
    amount         BIGINT NOT NULL,
    currency       TEXT,
    -- matched, unmatched, ignored (an event with nothing to post).
    status         TEXT NOT NULL,
    transfer_ids   TEXT,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, provider, event_id)
);
CREATE INDEX fin_payments_payment ON fin_payments (tenant_id, payment_ref);
CREATE INDEX fin_payments_charge ON fin_payments (tenant_id, charge_ref);
CREATE INDEX fin_payments_review ON fin_payments (tenant_id, status, received_at_ms);

CREATE TABLE fin_orders (
    tenant_id      TEXT NOT NULL,
    order_id       TEXT NOT NULL,
    external_id    TEXT NOT NULL,
    order_number   TEXT,
    channel        TEXT NOT NULL,
    PRIMARY KEY (tenant_id, order_id)
);
CREATE INDEX fin_orders_external ON fin_orders (tenant_id, external_id);
CREATE INDEX fin_orders_number ON fin_orders (tenant_id, order_number);

ALTER TABLE ord_orders ADD COLUMN payment_status TEXT;
