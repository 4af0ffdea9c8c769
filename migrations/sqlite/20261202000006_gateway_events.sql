-- The gateway's own events on the services' bus: a waybill created or cancelled, a tracking
-- event stored (USPS pre-advice excepted, as for pushes), a last mile assigned. Written by
-- triggers in the statement that stores the change, like the webhook deliveries; the
-- aggregate is the waybill, so its events stay in order.

CREATE TRIGGER waybills_publish_state AFTER UPDATE OF state ON waybills FOR EACH ROW
WHEN NEW.state IN ('created', 'cancelled') AND OLD.state IS NOT NEW.state
BEGIN
    INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms)
    SELECT t.id, NEW.tenant_id, t.type, 'waybill:' || NEW.id,
        json_object('eventId', t.id, 'type', t.type,
            'createdAt', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            'waybill', json_object('waybillNumber', NEW.waybill_number,
                'referenceNumber', NEW.reference_number, 'trackingNumber', NEW.tracking_number,
                'carrier', NEW.carrier, 'channel', NEW.channel, 'state', NEW.state,
                'chargeAmount', NEW.quoted_amount, 'chargeCurrency', NEW.quoted_currency)),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM (SELECT 'evt_' || lower(hex(randomblob(16))) AS id,
                 'waybill.' || NEW.state AS type) t;
END;

CREATE TRIGGER tracking_events_publish AFTER INSERT ON tracking_events FOR EACH ROW
WHEN NOT (upper(NEW.source) = 'USPS' AND NEW.status_code IN ('GX', 'MA', '80', '81'))
BEGIN
    INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms)
    SELECT t.id, w.tenant_id, 'tracking.updated', 'waybill:' || w.id,
        json_object('eventId', t.id, 'type', 'tracking.updated',
            'createdAt', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            'waybill', json_object('waybillNumber', w.waybill_number,
                'referenceNumber', w.reference_number, 'carrier', w.carrier),
            'event', json_object('source', NEW.source, 'statusCode', NEW.status_code,
                'trackingStatus', NEW.status, 'description', NEW.description,
                'occurredAt', NEW.occurred_at)),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM waybills w, (SELECT 'evt_' || lower(hex(randomblob(16))) AS id) t
    WHERE w.id = NEW.waybill_id;
END;

CREATE TRIGGER waybills_publish_last_mile
AFTER UPDATE OF last_mile_carrier, last_mile_tracking_number ON waybills FOR EACH ROW
WHEN NEW.last_mile_tracking_number IS NOT NULL
     AND (OLD.last_mile_carrier IS NOT NEW.last_mile_carrier
          OR OLD.last_mile_tracking_number IS NOT NEW.last_mile_tracking_number)
BEGIN
    INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms)
    SELECT t.id, NEW.tenant_id, 'last_mile.assigned', 'waybill:' || NEW.id,
        json_object('eventId', t.id, 'type', 'last_mile.assigned',
            'createdAt', strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),
            'waybill', json_object('waybillNumber', NEW.waybill_number,
                'referenceNumber', NEW.reference_number, 'carrier', NEW.carrier),
            'lastMileCarrier', NEW.last_mile_carrier,
            'lastMileTrackingNumber', NEW.last_mile_tracking_number),
        CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)
    FROM (SELECT 'evt_' || lower(hex(randomblob(16))) AS id) t;
END;
