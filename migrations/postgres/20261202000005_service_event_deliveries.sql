-- Webhook deliveries of the services' events (inventory today): such a delivery has no waybill
-- but the event it pushes (`event_id`, its `aggregate`, whose deliveries go in order, and the
-- `payload` sent).
ALTER TABLE webhook_deliveries ALTER COLUMN waybill_id DROP NOT NULL;
ALTER TABLE webhook_deliveries ADD COLUMN event_id TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN aggregate TEXT;
ALTER TABLE webhook_deliveries ADD COLUMN payload TEXT;
CREATE INDEX webhook_deliveries_aggregate_order ON webhook_deliveries (endpoint_id, aggregate, sequence)
    WHERE state = 'pending';
-- One delivery per service event and endpoint, whoever fans it out.
CREATE UNIQUE INDEX webhook_deliveries_event ON webhook_deliveries (event_id, endpoint_id)
    WHERE event_id IS NOT NULL;
