-- Webhook deliveries of the services' events (inventory today): such a delivery has no waybill
-- but the event it pushes (`event_id`, its `aggregate`, whose deliveries go in order, and the
-- `payload` sent). SQLite cannot drop NOT NULL from a column, so the table is rebuilt (its
-- attempts kept aside meanwhile, so the rebuild deletes none) and the triggers that fill it are
-- made again as they were.

DROP TRIGGER tracking_events_bump;
DROP TRIGGER waybills_last_mile_push;

CREATE TABLE webhook_attempts_kept AS SELECT * FROM webhook_attempts;
DROP TABLE webhook_attempts;

CREATE TABLE webhook_deliveries_new (
    id               TEXT PRIMARY KEY,
    endpoint_id      TEXT NOT NULL REFERENCES webhook_endpoints (id),
    tenant_id        TEXT NOT NULL,
    -- A waybill's event; NULL for a service's event (then event_id, aggregate and payload).
    waybill_id       TEXT REFERENCES waybills (id),
    sequence         BIGINT NOT NULL,
    event_type       TEXT NOT NULL,
    source           TEXT,
    status_code      TEXT,
    occurred_at_ms   BIGINT,
    last_mile_carrier TEXT,
    last_mile_tracking_number TEXT,
    state            TEXT NOT NULL,
    attempts         BIGINT NOT NULL,
    next_attempt_at  BIGINT NOT NULL,
    window_start     BIGINT NOT NULL,
    created_at       BIGINT NOT NULL,
    last_attempt_at  BIGINT,
    last_status      BIGINT,
    last_error       TEXT,
    delivered_at     BIGINT,
    leased_until     BIGINT,
    event_id         TEXT,
    aggregate        TEXT,
    payload          TEXT
);

INSERT INTO webhook_deliveries_new (id, endpoint_id, tenant_id, waybill_id, sequence, event_type,
    source, status_code, occurred_at_ms, last_mile_carrier, last_mile_tracking_number, state,
    attempts, next_attempt_at, window_start, created_at, last_attempt_at, last_status,
    last_error, delivered_at, leased_until)
SELECT id, endpoint_id, tenant_id, waybill_id, sequence, event_type, source, status_code,
    occurred_at_ms, last_mile_carrier, last_mile_tracking_number, state, attempts,
    next_attempt_at, window_start, created_at, last_attempt_at, last_status, last_error,
    delivered_at, leased_until
FROM webhook_deliveries;
DROP TABLE webhook_deliveries;
ALTER TABLE webhook_deliveries_new RENAME TO webhook_deliveries;

CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX webhook_deliveries_order ON webhook_deliveries (endpoint_id, waybill_id, sequence)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_aggregate_order ON webhook_deliveries (endpoint_id, aggregate, sequence)
    WHERE state = 'pending';
CREATE INDEX webhook_deliveries_endpoint ON webhook_deliveries (endpoint_id, state, created_at);
CREATE INDEX webhook_deliveries_tenant ON webhook_deliveries (tenant_id, created_at);
CREATE INDEX webhook_deliveries_dead ON webhook_deliveries (endpoint_id) WHERE state = 'dead';
CREATE INDEX webhook_deliveries_done ON webhook_deliveries (created_at)
    WHERE state IN ('delivered', 'cancelled');
CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (endpoint_id, leased_until);
-- One delivery per service event and endpoint, whoever fans it out.
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (event_id, endpoint_id)
    WHERE event_id IS NOT NULL;

CREATE TABLE webhook_attempts (
    delivery_id  TEXT NOT NULL REFERENCES webhook_deliveries (id) ON DELETE CASCADE,
    attempt      BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    http_status  BIGINT,
    error        TEXT,
    duration_ms  BIGINT NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);
INSERT INTO webhook_attempts SELECT * FROM webhook_attempts_kept;
DROP TABLE webhook_attempts_kept;

CREATE TRIGGER tracking_events_bump AFTER INSERT ON tracking_events FOR EACH ROW
BEGIN
    UPDATE waybills SET tracking_version = tracking_version + 1 WHERE id = NEW.waybill_id;
    INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, waybill_id, sequence,
        event_type, source, status_code, occurred_at_ms, state, attempts, next_attempt_at,
        window_start, created_at)
    SELECT 'whd_' || lower(hex(randomblob(16))), e.id, w.tenant_id, w.id, w.tracking_version,
        'tracking.updated', NEW.source, NEW.status_code, NEW.occurred_at_ms, 'pending', 0, 0,
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM waybills w
    JOIN webhook_endpoints e ON e.tenant_id = w.tenant_id AND e.deleted_at IS NULL
        AND e.event_types LIKE '%,tracking.updated,%'
    WHERE w.id = NEW.waybill_id
      AND NOT (upper(NEW.source) = 'USPS' AND NEW.status_code IN ('GX', 'MA', '80', '81'));
END;

-- A new or changed last mile becomes a delivery to the endpoints subscribed to it (the update
-- that records it bumps the tracking version, which is the delivery's sequence).
CREATE TRIGGER waybills_last_mile_push
AFTER UPDATE OF last_mile_carrier, last_mile_tracking_number ON waybills FOR EACH ROW
WHEN NEW.last_mile_tracking_number IS NOT NULL
     AND (OLD.last_mile_carrier IS NOT NEW.last_mile_carrier
          OR OLD.last_mile_tracking_number IS NOT NEW.last_mile_tracking_number)
BEGIN
    INSERT INTO webhook_deliveries (id, endpoint_id, tenant_id, waybill_id, sequence, event_type,
        last_mile_carrier, last_mile_tracking_number, state, attempts, next_attempt_at,
        window_start, created_at)
    SELECT 'whd_' || lower(hex(randomblob(16))), e.id, NEW.tenant_id, NEW.id,
        NEW.tracking_version, 'last_mile.assigned', NEW.last_mile_carrier,
        NEW.last_mile_tracking_number, 'pending', 0, 0,
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM webhook_endpoints e
    WHERE e.tenant_id = NEW.tenant_id AND e.deleted_at IS NULL
      AND e.event_types LIKE '%,last_mile.assigned,%';
END;
