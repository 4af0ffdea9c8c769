-- Test and live data: a tenant row is one account's data in one mode. Live rows are the
-- accounts (account_id NULL); an account's test data lives under its own row, whose name is
-- the account id and `/test`, with account_id pointing at the live row. Every table that
-- scopes by tenant_id therefore keeps test and live data apart without a column of its own.
ALTER TABLE tenants ADD COLUMN mode TEXT NOT NULL DEFAULT 'live';
ALTER TABLE tenants ADD COLUMN account_id TEXT REFERENCES tenants (id);

-- Scopes: `*` (every scope, including ones added later) or a space-separated list.
-- expires_at_ms: set when a key is rotated, the end of the old key's grace period.
ALTER TABLE api_keys ADD COLUMN scopes TEXT NOT NULL DEFAULT '*';
ALTER TABLE api_keys ADD COLUMN description TEXT;
ALTER TABLE api_keys ADD COLUMN expires_at_ms BIGINT;
ALTER TABLE api_keys ADD COLUMN replaced_by TEXT;
CREATE INDEX api_keys_tenant ON api_keys (tenant_id, created_at);
