-- Inventory: the tenant's SKUs and warehouses, stock per SKU and warehouse, and the append-only
-- movements and reservations that explain it. The stock row holds the running counters (read
-- without summing history) and is only ever changed in the transaction that appends the
-- movement, so on_hand is the sum of on_hand_delta and reserved the sum of the active
-- reservations at every commit.

CREATE TABLE inv_skus (
    tenant_id            TEXT NOT NULL REFERENCES tenants (id),
    sku                  TEXT NOT NULL,
    name                 TEXT,
    -- JSON object of attributes (e.g. {"battery": "UN3481"}) the shipping rules read.
    attributes           TEXT NOT NULL,
    -- A change that leaves a warehouse's available stock at or below this raises low_stock.
    low_stock_threshold  BIGINT,
    created_at           TEXT NOT NULL,
    PRIMARY KEY (tenant_id, sku)
);

CREATE TABLE inv_warehouses (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    code        TEXT NOT NULL,
    name        TEXT,
    country     TEXT NOT NULL,
    state       TEXT,
    postal_code TEXT,
    -- Lower is preferred when rules tie.
    priority    BIGINT NOT NULL,
    -- JSON list of the areas it serves ([{"country":"US","states":["NY"],"postcodeFrom":"00000","postcodeTo":"39999"}]).
    serves      TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, code)
);

-- Channel identifiers (a Shopify variant id, an Amazon ASIN or seller SKU, a listing id) mapped
-- to the tenant's SKU.
CREATE TABLE inv_sku_aliases (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    channel     TEXT NOT NULL,
    identifier  TEXT NOT NULL,
    sku         TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, channel, identifier),
    FOREIGN KEY (tenant_id, sku) REFERENCES inv_skus (tenant_id, sku)
);

CREATE TABLE inv_stock (
    tenant_id      TEXT NOT NULL,
    sku            TEXT NOT NULL,
    warehouse      TEXT NOT NULL,
    on_hand        BIGINT NOT NULL,
    reserved       BIGINT NOT NULL,
    safety         BIGINT NOT NULL,
    updated_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, sku, warehouse),
    FOREIGN KEY (tenant_id, sku) REFERENCES inv_skus (tenant_id, sku),
    FOREIGN KEY (tenant_id, warehouse) REFERENCES inv_warehouses (tenant_id, code),
    -- The last line of defence: no statement can leave stock negative or over-reserved.
    CHECK (on_hand >= 0 AND reserved >= 0 AND safety >= 0 AND reserved <= on_hand)
);

-- kind: receive, adjust, reserve, release, commit, restock.
CREATE TABLE inv_movements (
    tenant_id       TEXT NOT NULL,
    id              TEXT PRIMARY KEY,
    sku             TEXT NOT NULL,
    warehouse       TEXT NOT NULL,
    kind            TEXT NOT NULL,
    on_hand_delta   BIGINT NOT NULL,
    reserved_delta  BIGINT NOT NULL,
    reservation_id  TEXT,
    reason          TEXT,
    -- The caller's id of a receive / adjust / restock: the same id twice is one movement.
    request_id      TEXT,
    created_at_ms   BIGINT NOT NULL
);

CREATE INDEX inv_movements_stock ON inv_movements (tenant_id, sku, warehouse, created_at_ms);
CREATE UNIQUE INDEX inv_movements_request ON inv_movements (tenant_id, request_id)
    WHERE request_id IS NOT NULL;

-- An allocation: the caller's id, what was asked (fingerprint), and the plan as answered.
-- state: active (reservations held), released, committed.
CREATE TABLE inv_allocations (
    tenant_id      TEXT NOT NULL,
    id             TEXT NOT NULL,
    fingerprint    TEXT NOT NULL,
    state          TEXT NOT NULL,
    plan           TEXT NOT NULL,
    expires_at_ms  BIGINT,
    created_at_ms  BIGINT NOT NULL,
    closed_at_ms   BIGINT,
    reason         TEXT,
    PRIMARY KEY (tenant_id, id)
);

CREATE INDEX inv_allocations_expiry ON inv_allocations (expires_at_ms) WHERE state = 'active';

-- state: active, released, committed.
CREATE TABLE inv_reservations (
    id             TEXT PRIMARY KEY,
    tenant_id      TEXT NOT NULL,
    allocation_id  TEXT NOT NULL,
    sku            TEXT NOT NULL,
    warehouse      TEXT NOT NULL,
    quantity       BIGINT NOT NULL CHECK (quantity > 0),
    state          TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL,
    FOREIGN KEY (tenant_id, allocation_id) REFERENCES inv_allocations (tenant_id, id)
);

CREATE INDEX inv_reservations_allocation ON inv_reservations (tenant_id, allocation_id);
CREATE INDEX inv_reservations_active ON inv_reservations (tenant_id, sku, warehouse)
    WHERE state = 'active';
