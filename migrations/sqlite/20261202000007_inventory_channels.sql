-- Available-to-sell pushed to sales channels. A channel connection holds where and how to push
-- (a Shopify shop: its URL, API version, access token and location) and what to push (which
-- warehouses count, a buffer held back, an optional cap). The SKU's item id on the channel is
-- a mapping (inv_sku_aliases) under the connection's name.
CREATE TABLE inv_channels (
    tenant_id     TEXT NOT NULL REFERENCES tenants (id),
    channel       TEXT NOT NULL,
    platform      TEXT NOT NULL,
    base_url      TEXT NOT NULL,
    api_version   TEXT NOT NULL,
    -- Shown never; sent only to the shop.
    access_token  TEXT NOT NULL,
    location_id   TEXT NOT NULL,
    -- JSON list of warehouse codes counted; [] counts every warehouse.
    warehouses    TEXT NOT NULL,
    buffer        BIGINT NOT NULL,
    cap           BIGINT,
    created_at    TEXT NOT NULL,
    PRIMARY KEY (tenant_id, channel)
);

-- A SKU whose stock changed since it was last pushed to a channel: due at `due_at_ms` (the
-- change plus the coalescing window, or a retry's time); `version` counts the changes, so a
-- push that raced a newer change leaves the row for the next push.
CREATE TABLE inv_ats_pending (
    tenant_id    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    sku          TEXT NOT NULL,
    due_at_ms    BIGINT NOT NULL,
    version      BIGINT NOT NULL,
    attempts     BIGINT NOT NULL,
    last_error   TEXT,
    PRIMARY KEY (tenant_id, channel, sku)
);

CREATE INDEX inv_ats_pending_due ON inv_ats_pending (due_at_ms);

-- What the channel was last told.
CREATE TABLE inv_ats_pushed (
    tenant_id    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    sku          TEXT NOT NULL,
    quantity     BIGINT NOT NULL,
    pushed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, channel, sku)
);
