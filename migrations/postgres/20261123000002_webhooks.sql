-- Pushes to subscribers: endpoints per tenant, and the outbox of deliveries (one row per event
-- and endpoint), written by triggers in the same statement as the change that causes them.

CREATE TABLE webhook_endpoints (
    id           TEXT PRIMARY KEY,
    tenant_id    TEXT NOT NULL REFERENCES tenants (id),
    url          TEXT NOT NULL,
    -- The subscribed event types between commas (`,tracking.updated,last_mile.assigned,`), so
    -- the triggers match one with LIKE.
    event_types  TEXT NOT NULL,
    description  TEXT,
    -- `whsec_` + base64 key (Standard Webhooks); shown once, kept to sign deliveries.
    secret       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    deleted_at   TEXT
);

CREATE INDEX webhook_endpoints_tenant ON webhook_endpoints (tenant_id) WHERE deleted_at IS NULL;

-- state: pending (due at next_attempt_at; a claimed one is leased until then), delivered,
-- dead (retried for the whole window), cancelled (its endpoint was deleted).
-- The sequence is the waybill's tracking version after the change: increasing per waybill.
CREATE TABLE webhook_deliveries (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    tenant_id        TEXT NOT NULL,
    waybill_id       TEXT NOT NULL REFERENCES waybills (id),
    sequence         BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    -- tracking.updated: the key of the event in tracking_events.
    source           TEXT,
    status_code      TEXT,
    occurred_at_ms   BIGINT,
    -- last_mile.assigned: the hand-over as it was made.
    last_mile_carrier TEXT,
    last_mile_tracking_number TEXT,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    -- Retries go on until this instant plus the retry window (reset by a replay).
    window_start     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_attempt_at  BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    delivered_at     BIGINT
);

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, waybill_id, sequence)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state, created_at);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, created_at);
-- Dead letters, counted at every metrics scrape.
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (endpoint_id) WHERE state = 'dead';
-- Finished deliveries, for pruning after the retention period.
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at)
    WHERE state IN ('delivered', 'cancelled');

-- The delivery log: every attempt with its answer.
CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    http_status  BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- A stored event bumps its waybill's tracking version and, unless platform rules hide it (USPS
-- pre-advice: GX, MA, 80, 81 — the rule of `tracking::hidden`), becomes a delivery to every
-- endpoint of the tenant subscribed to tracking events, in the same statement.
CREATE OR REPLACE FUNCTION tracking_events_bump() RETURNS trigger AS $$
DECLARE
    owner   TEXT;
    version BIGINT;
    now_ms  BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    UPDATE waybills SET tracking_version = tracking_version + 1 WHERE id = NEW.waybill_id
    RETURNING tenant_id, tracking_version INTO owner, version;
    IF NOT (upper(NEW.source) = 'USPS' AND NEW.status_code IN ('GX', 'MA', '80', '81')) THEN
        INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, waybill_id, sequence,
            event_type, source, status_code, occurred_at_ms, state, attempts, next_attempt_at,
            window_start, created_at)
        SELECT 'whd_' || replace(gen_random_uuid()::TEXT, '-', ''), e.id, owner, NEW.waybill_id,
            version, 'tracking.updated', NEW.source, NEW.status_code, NEW.occurred_at_ms,
            'pending', 0, 0, now_ms, now_ms
        FROM webhook_endpoints e
        WHERE e.tenant_id = owner AND e.deleted_at IS NULL
          AND e.event_types LIKE '%,tracking.updated,%';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

-- A new or changed last mile becomes a delivery to the endpoints subscribed to it (the update
-- that records it bumps the tracking version, which is the delivery's sequence).
CREATE FUNCTION waybills_last_mile_push() RETURNS trigger AS $$
DECLARE
    now_ms BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, waybill_id, sequence, event_type,
        last_mile_carrier, last_mile_tracking_number, state, attempts, next_attempt_at,
        window_start, created_at)
    SELECT 'whd_' || replace(gen_random_uuid()::TEXT, '-', ''), e.id, NEW.tenant_id, NEW.id,
        NEW.tracking_version, 'last_mile.assigned', NEW.last_mile_carrier,
        NEW.last_mile_tracking_number, 'pending', 0, 0, now_ms, now_ms
    FROM webhook_endpoints e
    WHERE e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL
      AND e.event_types LIKE '%,last_mile.assigned,%';
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER waybills_last_mile_push
AFTER UPDATE OF last_mile_carrier, last_mile_tracking_number ON waybills FOR EACH ROW
WHEN (NEW.last_mile_tracking_number IS NOT NULL
      AND (OLD.last_mile_carrier IS DISTINCT FROM NEW.last_mile_carrier
           OR OLD.last_mile_tracking_number IS DISTINCT FROM NEW.last_mile_tracking_number))
EXECUTE FUNCTION waybills_last_mile_push();
