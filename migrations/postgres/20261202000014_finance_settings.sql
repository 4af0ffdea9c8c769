-- A tenant's finance settings: the currency its reports and statements are in by default.
CREATE TABLE fin_settings (
    tenant_id        TEXT PRIMARY KEY REFERENCES tenants (id),
    report_currency  TEXT NOT NULL,
    updated_at_ms    BIGINT NOT NULL
);
