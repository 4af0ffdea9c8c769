-- The events with their numbers, as readers see them (operators, tests): on PostgreSQL numbers
-- are given in batches after commit (`event_batches`), here `seq` is a column of `events`.
CREATE VIEW numbered_events AS
SELECT seq, id, event_id, tenant_id, event_type, aggregate, payload, created_at_ms FROM events;
