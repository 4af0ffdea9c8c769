CREATE TABLE tenants (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

-- API keys are stored as SHA-256 digests; the key itself is shown once, at creation.
CREATE TABLE api_keys (
    id          TEXT PRIMARY KEY,
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    key_hash    TEXT NOT NULL UNIQUE,
    key_prefix  TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    revoked_at  TEXT
);

-- One row per (tenant, reference number): the idempotency claim and, once created, the waybill.
-- state: pending (an attempt owns it until lease_until), unknown (the carrier may have created it),
-- created.
CREATE TABLE waybills (
    id                TEXT PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id),
    reference_number  TEXT NOT NULL,
    fingerprint       TEXT NOT NULL,
    state             TEXT NOT NULL,
    lease_until       BIGINT NOT NULL,
    attempts          BIGINT NOT NULL,
    channel           TEXT NOT NULL,
    carrier           TEXT NOT NULL,
    request_json      TEXT NOT NULL,
    waybill_number    TEXT UNIQUE,
    tracking_number   TEXT,
    claimed_at        TEXT NOT NULL,
    created_at        TEXT,
    updated_at        TEXT NOT NULL,
    UNIQUE (tenant_id, reference_number)
);

CREATE INDEX waybills_tenant_number ON waybills (tenant_id, waybill_number);

-- Exactly one charge per created waybill, enforced by the unique waybill_id.
CREATE TABLE charges (
    id          TEXT PRIMARY KEY,
    waybill_id  TEXT NOT NULL UNIQUE REFERENCES waybills (id),
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    amount      TEXT,
    currency    TEXT,
    created_at  TEXT NOT NULL
);
