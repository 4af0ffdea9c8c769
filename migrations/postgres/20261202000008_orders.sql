-- Orders: the tenant's orders from every sales channel, each version of each, and the shipments
-- (one waybill each) that carry them. The natural key of an order is (channel, shop, external
-- id); the processor finds its work by next_attempt_at_ms.

-- Warehouses gain the street address the orders service ships from (JSON: name, company,
-- phone, street1, street2, city).
ALTER TABLE inv_warehouses ADD COLUMN address TEXT;

CREATE TABLE ord_orders (
    id                    TEXT PRIMARY KEY,
    tenant_id             TEXT NOT NULL REFERENCES tenants (id),
    channel               TEXT NOT NULL,
    shop                  TEXT NOT NULL,
    external_id           TEXT NOT NULL,
    version               BIGINT NOT NULL,
    content_hash          TEXT NOT NULL,
    source_updated_at_ms  BIGINT,
    state                 TEXT NOT NULL,
    hold_reason           TEXT,
    hold_detail           TEXT,
    -- Another order that looks like the same purchase (flagged for review).
    duplicate_of          TEXT,
    -- 1 once a person released a possible duplicate: it is not flagged again.
    duplicate_cleared     BIGINT NOT NULL DEFAULT 0,
    -- The current version (normalized JSON).
    body                  TEXT NOT NULL,
    -- Digest of the normalized consignee address (merging) and of buyer, address and amount
    -- (possible duplicates across channels).
    consignee_key         TEXT NOT NULL,
    purchase_key          TEXT NOT NULL,
    placed_at_ms          BIGINT NOT NULL,
    paid_at_ms            BIGINT,
    -- Incremented each time the order goes back to received: names its next allocation.
    allocation_seq        BIGINT NOT NULL DEFAULT 0,
    allocation_id         TEXT,
    waybill_at_ms         BIGINT,
    shipped_at_ms         BIGINT,
    delivered_at_ms       BIGINT,
    -- Where a returned order came back to.
    return_warehouse      TEXT,
    -- When the processor should look at it next (NULL: nothing to do).
    next_attempt_at_ms    BIGINT,
    created_at_ms         BIGINT NOT NULL,
    updated_at_ms         BIGINT NOT NULL,
    UNIQUE (tenant_id, channel, shop, external_id)
);
CREATE INDEX ord_orders_due ON ord_orders (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
CREATE INDEX ord_orders_by_state ON ord_orders (tenant_id, state, created_at_ms);
CREATE INDEX ord_orders_by_time ON ord_orders (tenant_id, created_at_ms);
CREATE INDEX ord_orders_purchase ON ord_orders (tenant_id, purchase_key, placed_at_ms);

CREATE TABLE ord_versions (
    order_id              TEXT NOT NULL REFERENCES ord_orders (id),
    version               BIGINT NOT NULL,
    tenant_id             TEXT NOT NULL,
    content_hash          TEXT NOT NULL,
    body                  TEXT NOT NULL,
    source_updated_at_ms  BIGINT,
    received_at_ms        BIGINT NOT NULL,
    PRIMARY KEY (order_id, version)
);

-- A shipment is one waybill: lines of one or more orders (merged) from one warehouse. Its id is
-- derived from the order, version and warehouse, and is the waybill's reference number, so a
-- retry, a restart or a re-ingest asks the gateway for the same waybill.
CREATE TABLE ord_shipments (
    id                  TEXT PRIMARY KEY,
    tenant_id           TEXT NOT NULL REFERENCES tenants (id),
    warehouse           TEXT NOT NULL,
    consignee_key       TEXT NOT NULL,
    channel             TEXT NOT NULL,
    -- open (may still take merged orders), pending (being sent), created, rejected, voided.
    state               TEXT NOT NULL,
    -- JSON: [{"orderId", "sku", "quantity"}], and the consignee and parcels of the request.
    lines               TEXT NOT NULL,
    consignee           TEXT NOT NULL,
    parcels             TEXT NOT NULL,
    waybill_number      TEXT,
    tracking_number     TEXT,
    carrier             TEXT,
    tracking_status     TEXT,
    attempts            BIGINT NOT NULL DEFAULT 0,
    last_error          TEXT,
    send_after_ms       BIGINT NOT NULL,
    next_attempt_at_ms  BIGINT,
    created_at_ms       BIGINT NOT NULL,
    updated_at_ms       BIGINT NOT NULL
);
CREATE INDEX ord_shipments_due ON ord_shipments (next_attempt_at_ms) WHERE next_attempt_at_ms IS NOT NULL;
CREATE INDEX ord_shipments_open ON ord_shipments (tenant_id, warehouse, consignee_key) WHERE state = 'open';
CREATE INDEX ord_shipments_waybill ON ord_shipments (tenant_id, waybill_number);

CREATE TABLE ord_shipment_orders (
    shipment_id  TEXT NOT NULL REFERENCES ord_shipments (id),
    order_id     TEXT NOT NULL REFERENCES ord_orders (id),
    PRIMARY KEY (shipment_id, order_id)
);
CREATE INDEX ord_shipment_orders_order ON ord_shipment_orders (order_id);

-- What a tenant chose: merging orders to one consignee into one shipment.
CREATE TABLE ord_tenant_settings (
    tenant_id          TEXT PRIMARY KEY REFERENCES tenants (id),
    merge              BIGINT NOT NULL,
    merge_window_secs  BIGINT NOT NULL,
    updated_at_ms      BIGINT NOT NULL
);

-- One order's (or any aggregate's) events, for the order's history.
CREATE INDEX events_aggregate ON events (tenant_id, aggregate, id);
