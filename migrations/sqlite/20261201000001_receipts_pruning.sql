-- Callback receipts are pruned by age (after tracking.callback_receipt_retention_days).
CREATE INDEX callback_receipts_received_at ON callback_receipts (received_at);
