-- The services' event outbox: every state change appends its events here in the transaction
-- that makes the change; consumers read them in `seq` order.
--
-- Ids are taken when a row is inserted but become visible when its transaction commits, which
-- may be in another order: a reader going by id could pass an id whose transaction commits
-- later. So `seq` is assigned after commit, by one sequencer at a time (the row lock on
-- `event_sequencer`), to the committed rows it has not numbered yet, in id order. Two events of
-- one aggregate are written under that aggregate's row lock, so the later one is committed,
-- hence numbered, after the earlier one.
CREATE TABLE events (
    id             BIGSERIAL PRIMARY KEY,
    seq            BIGINT UNIQUE,
    event_id       TEXT NOT NULL UNIQUE,
    tenant_id      TEXT NOT NULL,
    event_type     TEXT NOT NULL,
    -- The aggregate the event is about (`sku:ABC`, `allocation:A1`): its events stay in order.
    aggregate      TEXT NOT NULL,
    payload        TEXT NOT NULL,
    created_at_ms  BIGINT NOT NULL
);

CREATE INDEX events_unsequenced ON events (id) WHERE seq IS NULL;
CREATE INDEX events_created ON events (created_at_ms);

CREATE TABLE event_sequencer (
    name      TEXT PRIMARY KEY,
    last_seq  BIGINT NOT NULL
);
INSERT INTO event_sequencer (name, last_seq) VALUES ('events', 0);

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
