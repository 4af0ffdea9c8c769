-- Events are numbered without rewriting them. The sequencer used to write `seq` into each
-- committed event: a second version of every row and of its five index entries, as much work
-- as writing the event. Now an event's id waits in `event_pending` (filled by the statement
-- trigger below) until the sequencer takes the committed ones, in id order, and writes them as
-- one row of `event_batches`: the batch's numbers are `first_seq`, `first_seq + 1`, ... in the
-- order of `ids`. The rules are the same as before: one sequencer at a time (the row lock on
-- `event_sequencer`), only committed events, numbers without gaps. A batch also carries each
-- event's type and tenant, so a consumer that wants few of them looks up only those.
CREATE TABLE event_pending (
    id          BIGINT PRIMARY KEY,
    event_type  TEXT NOT NULL,
    tenant_id   TEXT NOT NULL
);

CREATE TABLE event_batches (
    first_seq      BIGINT PRIMARY KEY,
    -- At most 5,000 (the sequencer's pass): a reader finds the batch holding a number by
    -- `first_seq` alone.
    ids            BIGINT[] NOT NULL,
    -- The events' types and tenants, in the order of `ids`.
    types          TEXT[] NOT NULL,
    tenants        TEXT[] NOT NULL,
    -- When it was numbered: none of its events is newer.
    created_at_ms  BIGINT NOT NULL
);

CREATE FUNCTION events_pending() RETURNS trigger AS $$
BEGIN
    INSERT INTO event_pending (id, event_type, tenant_id) SELECT id, event_type, tenant_id FROM fresh;
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER events_pending AFTER INSERT ON events REFERENCING NEW TABLE AS fresh
FOR EACH STATEMENT EXECUTE FUNCTION events_pending();

-- The events already numbered: runs of consecutive numbers, cut at multiples of 5,000.
INSERT INTO event_batches (first_seq, ids, types, tenants, created_at_ms)
SELECT min(seq), array_agg(id ORDER BY seq), array_agg(event_type ORDER BY seq),
       array_agg(tenant_id ORDER BY seq), max(created_at_ms)
FROM (SELECT id, seq, event_type, tenant_id, created_at_ms,
             seq - row_number() OVER (ORDER BY seq) AS run
      FROM events WHERE seq IS NOT NULL) numbered
GROUP BY run, (seq - 1) / 5000;

INSERT INTO event_pending (id, event_type, tenant_id)
SELECT id, event_type, tenant_id FROM events WHERE seq IS NULL;

-- Nothing looks events up by number, by event id or by age any more (pruning goes by batch;
-- event ids are random, made unique by their making): two index entries per event are left,
-- the id and the aggregate's history.
ALTER TABLE events DROP COLUMN seq;
DROP INDEX events_created;
ALTER TABLE events DROP CONSTRAINT events_event_id_key;

-- The events with their numbers, as readers see them (operators, tests); the same view exists
-- on SQLite, where `seq` is a column of `events`.
CREATE VIEW numbered_events AS
SELECT b.first_seq + u.n - 1 AS seq, e.id, e.event_id, e.tenant_id, e.event_type, e.aggregate,
       e.payload, e.created_at_ms
FROM event_batches b
CROSS JOIN LATERAL unnest(b.ids) WITH ORDINALITY AS u (id, n)
JOIN events e ON e.id = u.id;
