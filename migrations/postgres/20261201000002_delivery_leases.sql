-- A claimed delivery is leased until this instant (epoch ms); cleared when its attempt is
-- recorded. What an endpoint has in flight is what is leased, so the worker can cap it.
ALTER TABLE webhook_deliveries ADD COLUMN leased_until BIGINT;
CREATE INDEX webhook_deliveries_in_flight ON webhook_deliveries (endpoint_id, leased_until);
