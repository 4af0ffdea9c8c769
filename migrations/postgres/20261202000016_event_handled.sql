-- Events a consumer has handled when its events come from a broker (which may hand one out
-- again): recorded in the transaction of the handling, so a repeat is recognised and skipped.
CREATE TABLE event_handled (
    consumer       TEXT NOT NULL,
    event_id       TEXT NOT NULL,
    handled_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (consumer, event_id)
);
CREATE INDEX event_handled_by_age ON event_handled (handled_at_ms);
