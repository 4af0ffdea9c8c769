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
-- created, cancelled (voided at the carrier).
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
    waybill_number    TEXT,
    tracking_number   TEXT,
    quoted_amount     TEXT,
    quoted_currency   TEXT,
    -- Routing-label data of carriers that return no label image (SF Express rls_detail), JSON.
    routing_json      TEXT,
    claimed_at        TEXT NOT NULL,
    created_at        TEXT,
    cancelled_at      TEXT,
    updated_at        TEXT NOT NULL,
    -- Tracking: the status derived from the timeline, bumped version of the cached answer,
    -- the last-mile carrier (normalized, or raw when unknown) and when the poller is due.
    tracking_version  BIGINT NOT NULL DEFAULT 0,
    tracking_status   TEXT,
    last_mile_carrier TEXT,
    last_mile_tracking_number TEXT,
    last_mile_unknown BIGINT NOT NULL DEFAULT 0,
    next_poll_at      BIGINT,
    UNIQUE (tenant_id, reference_number),
    UNIQUE (carrier, waybill_number)
);

CREATE INDEX waybills_tenant_number ON waybills (tenant_id, waybill_number);
CREATE INDEX waybills_last_mile ON waybills (last_mile_tracking_number, tenant_id);
CREATE INDEX waybills_next_poll ON waybills (next_poll_at);
CREATE INDEX waybills_carrier_tracking ON waybills (carrier, tracking_number);

-- The timeline. One row per (waybill, reporting carrier, code, instant): a repeated push or poll
-- of the same event is the same row. `source` is the carrier id, or the normalized last-mile
-- carrier for last-mile events.
CREATE TABLE tracking_events (
    waybill_id      TEXT NOT NULL REFERENCES waybills (id),
    source          TEXT NOT NULL,
    status_code     TEXT NOT NULL,
    occurred_at_ms  BIGINT NOT NULL,
    occurred_at     TEXT NOT NULL,
    status          TEXT NOT NULL,
    description     TEXT NOT NULL,
    timezone        TEXT,
    address         TEXT,
    city            TEXT,
    state           TEXT,
    postal_code     TEXT,
    country         TEXT,
    received_at     TEXT NOT NULL,
    PRIMARY KEY (waybill_id, source, status_code, occurred_at_ms)
);

-- A stored event bumps its waybill's tracking version in the same statement, so the version
-- that orders cached answers can never lag behind the events.
CREATE TRIGGER tracking_events_bump AFTER INSERT ON tracking_events FOR EACH ROW
BEGIN
    UPDATE waybills SET tracking_version = tracking_version + 1 WHERE id = NEW.waybill_id;
END;

-- Carrier pushes already taken, by the carrier's delivery id: a replay is refused.
CREATE TABLE callback_receipts (
    carrier      TEXT NOT NULL,
    delivery_id  TEXT NOT NULL,
    received_at  BIGINT NOT NULL,
    PRIMARY KEY (carrier, delivery_id)
);

-- The label as the carrier returned it (or as shipgate rendered it), stored once at create.
CREATE TABLE labels (
    waybill_id  TEXT PRIMARY KEY REFERENCES waybills (id),
    format      TEXT NOT NULL,
    content     BLOB NOT NULL,
    created_at  TEXT NOT NULL
);

-- Exactly one charge per created waybill: the unique waybill_id, and the trigger below that
-- writes it in the same statement that marks the waybill created.
CREATE TABLE charges (
    id          TEXT PRIMARY KEY,
    waybill_id  TEXT NOT NULL UNIQUE REFERENCES waybills (id),
    tenant_id   TEXT NOT NULL REFERENCES tenants (id),
    amount      TEXT,
    currency    TEXT,
    created_at  TEXT NOT NULL
);

CREATE TRIGGER waybills_charge AFTER UPDATE OF state ON waybills
WHEN NEW.state = 'created' AND OLD.state <> 'created'
BEGIN
    INSERT INTO charges (id, waybill_id, tenant_id, amount, currency, created_at)
    VALUES (NEW.id, NEW.id, NEW.tenant_id, NEW.quoted_amount, NEW.quoted_currency, NEW.created_at);
END;
