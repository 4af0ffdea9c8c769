-- The gateway's own events on the services' bus: a waybill created or cancelled, a tracking
-- event stored (USPS pre-advice excepted, as for pushes), a last mile assigned. Written by
-- triggers in the statement that stores the change, like the webhook deliveries; the
-- aggregate is the waybill (whose row each of these changes locks), so its events stay in
-- order.

CREATE FUNCTION sg_publish(tenant TEXT, kind TEXT, aggregate TEXT, body JSONB) RETURNS void AS $$
DECLARE
    id TEXT := 'evt_' || replace(gen_random_uuid()::TEXT, '-', '');
    now_ms BIGINT := (extract(epoch FROM clock_timestamp()) * 1000)::BIGINT;
BEGIN
    INSERT INTO events (event_id, tenant_id, event_type, aggregate, payload, created_at_ms)
    VALUES (id, tenant, kind, aggregate,
        (jsonb_build_object('eventId', id, 'type', kind,
            'createdAt', to_char(clock_timestamp() AT TIME ZONE 'UTC',
                                 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')) || body)::TEXT,
        now_ms);
END
$$ LANGUAGE plpgsql;

CREATE FUNCTION waybills_publish_state() RETURNS trigger AS $$
BEGIN
    PERFORM sg_publish(NEW.tenant_id, 'waybill.' || NEW.state, 'waybill:' || NEW.id,
        jsonb_build_object('waybill', jsonb_build_object('waybillNumber', NEW.waybill_number,
            'referenceNumber', NEW.reference_number, 'trackingNumber', NEW.tracking_number,
            'carrier', NEW.carrier, 'channel', NEW.channel, 'state', NEW.state,
            'chargeAmount', NEW.quoted_amount, 'chargeCurrency', NEW.quoted_currency)));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER waybills_publish_state AFTER UPDATE OF state ON waybills FOR EACH ROW
WHEN (NEW.state IN ('created', 'cancelled') AND OLD.state IS DISTINCT FROM NEW.state)
EXECUTE FUNCTION waybills_publish_state();

CREATE FUNCTION tracking_events_publish() RETURNS trigger AS $$
DECLARE
    w waybills%ROWTYPE;
BEGIN
    SELECT * INTO w FROM waybills WHERE id = NEW.waybill_id;
    PERFORM sg_publish(w.tenant_id, 'tracking.updated', 'waybill:' || w.id,
        jsonb_build_object(
            'waybill', jsonb_build_object('waybillNumber', w.waybill_number,
                'referenceNumber', w.reference_number, 'carrier', w.carrier),
            'event', jsonb_build_object('source', NEW.source, 'statusCode', NEW.status_code,
                'trackingStatus', NEW.status, 'description', NEW.description,
                'occurredAt', NEW.occurred_at)));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER tracking_events_publish AFTER INSERT ON tracking_events FOR EACH ROW
WHEN (NOT (upper(NEW.source) = 'USPS' AND NEW.status_code IN ('GX', 'MA', '80', '81')))
EXECUTE FUNCTION tracking_events_publish();

CREATE FUNCTION waybills_publish_last_mile() RETURNS trigger AS $$
BEGIN
    PERFORM sg_publish(NEW.tenant_id, 'last_mile.assigned', 'waybill:' || NEW.id,
        jsonb_build_object(
            'waybill', jsonb_build_object('waybillNumber', NEW.waybill_number,
                'referenceNumber', NEW.reference_number, 'carrier', NEW.carrier),
            'lastMileCarrier', NEW.last_mile_carrier,
            'lastMileTrackingNumber', NEW.last_mile_tracking_number));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER waybills_publish_last_mile
AFTER UPDATE OF last_mile_carrier, last_mile_tracking_number ON waybills FOR EACH ROW
WHEN (NEW.last_mile_tracking_number IS NOT NULL
      AND (OLD.last_mile_carrier IS DISTINCT FROM NEW.last_mile_carrier
           OR OLD.last_mile_tracking_number IS DISTINCT FROM NEW.last_mile_tracking_number))
EXECUTE FUNCTION waybills_publish_last_mile();
