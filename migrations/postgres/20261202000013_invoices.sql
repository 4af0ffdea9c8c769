-- Carrier invoice reconciliation: the finance service's own view of waybills (from the
-- gateway's waybill events, which now carry the declared weight), imported invoices, and each
-- billed tracking number's line with its classification and dispute deadline.

CREATE OR REPLACE FUNCTION waybills_publish_state() RETURNS trigger AS $$
BEGIN
    PERFORM sg_publish(NEW.tenant_id, 'waybill.' || NEW.state, 'waybill:' || NEW.id,
        jsonb_build_object('waybill', jsonb_build_object('waybillNumber', NEW.waybill_number,
            'referenceNumber', NEW.reference_number, 'trackingNumber', NEW.tracking_number,
            'carrier', NEW.carrier, 'channel', NEW.channel, 'state', NEW.state,
            'chargeAmount', NEW.quoted_amount, 'chargeCurrency', NEW.quoted_currency,
            'declaredWeightGrams', (SELECT SUM((p->>'weightGrams')::BIGINT)
                FROM jsonb_array_elements(NEW.request_json::jsonb->'parcels') p))));
    RETURN NEW;
END
$$ LANGUAGE plpgsql;

CREATE TABLE fin_shipments (
    tenant_id              TEXT NOT NULL,
    waybill_number         TEXT NOT NULL,
    tracking_number        TEXT,
    carrier                TEXT NOT NULL,
    quoted_amount          BIGINT,
    quoted_currency        TEXT,
    declared_weight_grams  BIGINT,
    state                  TEXT NOT NULL,
    PRIMARY KEY (tenant_id, waybill_number)
);
CREATE INDEX fin_shipments_tracking ON fin_shipments (tenant_id, tracking_number);

CREATE TABLE fin_invoices (
    tenant_id       TEXT NOT NULL REFERENCES tenants (id),
    id              TEXT NOT NULL,
    carrier         TEXT NOT NULL,
    invoice_number  TEXT NOT NULL,
    invoice_date    TEXT NOT NULL,
    currency        TEXT NOT NULL,
    total           BIGINT NOT NULL,
    lines           BIGINT NOT NULL,
    bad_rows        TEXT NOT NULL,
    imported_at_ms  BIGINT NOT NULL,
    PRIMARY KEY (tenant_id, id),
    UNIQUE (tenant_id, carrier, invoice_number)
);

CREATE TABLE fin_invoice_lines (
    tenant_id              TEXT NOT NULL,
    invoice_id             TEXT NOT NULL,
    line                   BIGINT NOT NULL,
    tracking_number        TEXT NOT NULL,
    waybill_number         TEXT,
    billed                 BIGINT NOT NULL,
    quoted                 BIGINT,
    currency               TEXT NOT NULL,
    billed_weight_grams    BIGINT,
    declared_weight_grams  BIGINT,
    classification         TEXT NOT NULL,
    detail                 TEXT NOT NULL,
    charges                TEXT NOT NULL,
    dispute_deadline       TEXT,
    -- open, accepted, disputed, won, lost
    resolution             TEXT NOT NULL,
    PRIMARY KEY (tenant_id, invoice_id, line)
);
CREATE INDEX fin_invoice_lines_tracking ON fin_invoice_lines (tenant_id, tracking_number);
