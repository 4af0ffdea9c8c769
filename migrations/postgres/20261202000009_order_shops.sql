-- The tenants' sales-channel shops the orders service pulls orders from (and writes tracking
-- back to), and the write-backs due.

CREATE TABLE ord_shops (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    channel             TEXT NOT NULL,
    shop                TEXT NOT NULL,
    base_url            TEXT NOT NULL,
    -- JSON of the channel's credentials (access token, LWA client and refresh token, webhook
    -- secret); never returned by the API and never logged.
    credentials         TEXT NOT NULL,
    pull_interval_secs  BIGINT NOT NULL,
    overlap_secs        BIGINT NOT NULL,
    -- Orders updated before this were pulled and committed (epoch ms).
    cursor_ms           BIGINT NOT NULL,
    next_pull_at_ms     BIGINT,
    last_pull_at_ms     BIGINT,
    last_error          TEXT,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL,
    UNIQUE (tenant_id, channel, shop)
);
CREATE INDEX ord_shops_due ON ord_shops (next_pull_at_ms) WHERE next_pull_at_ms IS NOT NULL;

CREATE TABLE ord_writebacks (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL,
    order_id            TEXT NOT NULL REFERENCES ord_orders (id),
    shop_id             TEXT NOT NULL REFERENCES ord_shops (id),
    shipment_id         TEXT NOT NULL,
    -- pending, done, failed (given up: a refusal of the channel).
    state               TEXT NOT NULL,
    attempts            BIGINT NOT NULL DEFAULT 0,
    next_attempt_at_ms  BIGINT,
    last_error          TEXT,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL,
    UNIQUE (order_id, shipment_id)
);
CREATE INDEX ord_writebacks_due ON ord_writebacks (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;

-- Paid orders not yet shipped, by payment time: what the promise watch reads.
CREATE INDEX ord_orders_unshipped ON ord_orders (paid_at_ms)
    WHERE state IN ('received', 'on_hold', 'allocated', 'waybill_created');
