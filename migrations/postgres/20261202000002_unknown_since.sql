-- When a reference's attempt first ended ambiguously (epoch ms), kept through take-overs until
-- it is resolved: the not-found grace period counts from here, and operators see how long a
-- reference has been stuck.
ALTER TABLE waybills ADD COLUMN unknown_since_ms BIGINT;
CREATE INDEX waybills_unresolved ON waybills (state, unknown_since_ms);
