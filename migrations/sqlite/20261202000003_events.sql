-- The services' event outbox: every state change appends its events here in the transaction
-- that makes the change; consumers read them in `seq` order. SQLite has one writer, so ids are
-- taken in commit order and `seq` is the id.
CREATE TABLE events (
    id             INTEGER PRIMARY KEY AUTOINCREMENT,
    seq            BIGINT GENERATED ALWAYS AS (id) VIRTUAL,
    event_id       TEXT NOT NULL UNIQUE,
    tenant_id      TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    -- The aggregate the event is about (`sku:ABC`, `allocation:A1`): its events stay in order.
    aggregate      TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE INDEX events_seq ON events (seq);
CREATE INDEX events_created ON events (created_at_ms);

-- Where each consumer stands (the last `seq` it handled), and which instance holds it: one
-- instance at a time hands a consumer its events, and moves the position in the transaction
-- of the handling.
CREATE TABLE event_consumers (
    name            TEXT PRIMARY KEY,
    position        BIGINT NOT NULL,
    lease_owner     TEXT,
    lease_until_ms  BIGINT NOT NULL,
    updated_at_ms   BIGINT NOT NULL
);
