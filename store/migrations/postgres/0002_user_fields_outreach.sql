-- User fields written to the helpdesk user next to the tags, and retention outreach.

-- The user field values the customer's helpdesk user should carry (canonical JSON object: keys
-- sorted), and what was last written there (NULL: never).
ALTER TABLE scores ADD COLUMN user_fields TEXT NOT NULL DEFAULT '{}';
ALTER TABLE customers ADD COLUMN user_fields_pushed TEXT;

-- One row per retention outreach: claimed (pending), then sent or failed; dry_run rows record who
-- would have been contacted; capped rows were over the tenant's daily limit.
CREATE TABLE outreach (
    id                BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id         TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    customer_id       BIGINT NOT NULL,
    status            TEXT NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'dry_run', 'capped')),
    rules             TEXT NOT NULL,
    reasons           TEXT NOT NULL,
    tier              TEXT NOT NULL,
    churn_band        TEXT NOT NULL,
    previous_tier     TEXT NOT NULL DEFAULT '',
    previous_band     TEXT NOT NULL DEFAULT '',
    predicted_clv     DOUBLE PRECISION NOT NULL,
    historic_minor    BIGINT NOT NULL,
    currency          TEXT NOT NULL,
    churn_probability DOUBLE PRECISION NOT NULL,
    zendesk_ticket_id TEXT NOT NULL DEFAULT '',
    webhook_status    INTEGER NOT NULL DEFAULT 0,
    attempts          INTEGER NOT NULL DEFAULT 0,
    error             TEXT NOT NULL DEFAULT '',
    created_at        TIMESTAMPTZ NOT NULL,
    completed_at      TIMESTAMPTZ,
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX outreach_customer_idx ON outreach (tenant_id, customer_id, created_at);
CREATE INDEX outreach_tenant_idx ON outreach (tenant_id, id);
CREATE INDEX outreach_pending_idx ON outreach (created_at) WHERE status = 'pending';
