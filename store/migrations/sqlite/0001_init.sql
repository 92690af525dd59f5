-- clvd schema, SQLite flavour. Times are INTEGER unix microseconds (UTC), money is INTEGER minor
-- units, tag sets are canonical JSON arrays (sorted, de-duplicated) so that equal sets are equal text.
-- Tables are STRICT so a wrongly typed value fails instead of being stored as something else.

CREATE TABLE tenants (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    created_at             INTEGER NOT NULL,
    zendesk_base_url       TEXT NOT NULL DEFAULT '',
    zendesk_email          TEXT NOT NULL DEFAULT '',
    zendesk_api_token      TEXT NOT NULL DEFAULT '', -- sealed
    zendesk_webhook_secret TEXT NOT NULL DEFAULT '', -- sealed
    shopify_secret         TEXT NOT NULL DEFAULT '', -- sealed
    orders_secret          TEXT NOT NULL DEFAULT '', -- sealed
    settings               TEXT NOT NULL DEFAULT '{}'
) STRICT;

CREATE INDEX tenants_created_idx ON tenants (created_at, id);

-- Empty identity fields are NULL, so the unique indexes only constrain values that are known.
CREATE TABLE customers (
    id               INTEGER PRIMARY KEY AUTOINCREMENT, -- AUTOINCREMENT: ids are never reused
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email            TEXT,
    external_id      TEXT,
    zendesk_user_id  TEXT,
    name             TEXT NOT NULL DEFAULT '',
    created_at       INTEGER NOT NULL,
    data_version     INTEGER NOT NULL DEFAULT 0,
    data_changed_at  INTEGER NOT NULL,
    scored_version   INTEGER NOT NULL DEFAULT 0,
    user_tags_pushed TEXT -- NULL: never pushed
) STRICT;

-- (tenant_id, id) is what other tables reference, so a row can never point at another tenant's customer.
CREATE UNIQUE INDEX customers_tenant_id_uq ON customers (tenant_id, id);
CREATE UNIQUE INDEX customers_email_uq ON customers (tenant_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX customers_external_id_uq ON customers (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX customers_zendesk_user_uq ON customers (tenant_id, zendesk_user_id) WHERE zendesk_user_id IS NOT NULL;
-- Recovery scan for scores that fell behind their data (StaleScores): only stale rows are indexed.
CREATE INDEX customers_stale_idx ON customers (data_changed_at) WHERE data_version > scored_version;

CREATE TABLE orders (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    customer_id INTEGER, -- NULL: guest order
    created_at  INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    currency    TEXT NOT NULL,
    total_minor INTEGER NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'paid', 'refunded', 'cancelled')),
    PRIMARY KEY (tenant_id, source, order_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX orders_customer_idx ON orders (tenant_id, customer_id, created_at, order_id);

-- No foreign key to orders: a refund may arrive before its order.
CREATE TABLE refunds (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    refund_id    TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    amount_minor INTEGER NOT NULL,
    currency     TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, source, refund_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX refunds_order_idx ON refunds (tenant_id, source, order_id);

CREATE TABLE tickets (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    ticket_id    TEXT NOT NULL,
    customer_id  INTEGER,
    requester_id TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT '',
    priority     TEXT NOT NULL DEFAULT '',
    satisfaction TEXT NOT NULL DEFAULT '',
    created_at   INTEGER, -- NULL: unknown
    updated_at   INTEGER NOT NULL,
    tags_pushed  TEXT, -- NULL: never pushed
    PRIMARY KEY (tenant_id, source, ticket_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
) STRICT, WITHOUT ROWID;

CREATE INDEX tickets_customer_idx ON tickets (tenant_id, customer_id);

-- Processed ticket event ids, for exactly-once application of redelivered webhooks.
CREATE TABLE ticket_events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, source, event_id)
) STRICT, WITHOUT ROWID;

CREATE INDEX ticket_events_processed_idx ON ticket_events (processed_at);

-- A customer's current score. The columns that are filtered or sorted on are real columns.
CREATE TABLE scores (
    tenant_id           TEXT NOT NULL,
    customer_id         INTEGER NOT NULL,
    model               TEXT NOT NULL,
    currency            TEXT NOT NULL,
    historic_minor      INTEGER NOT NULL,
    simple_clv          REAL NOT NULL,
    predicted_clv       REAL NOT NULL,
    p_alive             REAL NOT NULL,
    churn_probability   REAL NOT NULL,
    churn_band          TEXT NOT NULL,
    churn_reasons       TEXT NOT NULL, -- JSON array
    tier                TEXT NOT NULL,
    segment             TEXT NOT NULL,
    expected_purchases  REAL NOT NULL,
    expected_next_order INTEGER,
    orders              INTEGER NOT NULL,
    last_order          INTEGER,
    tags                TEXT NOT NULL, -- canonical JSON array
    scored_at           INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, customer_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX scores_tier_idx ON scores (tenant_id, tier);
CREATE INDEX scores_churn_band_idx ON scores (tenant_id, churn_band);
CREATE INDEX scores_segment_idx ON scores (tenant_id, segment);
CREATE INDEX scores_predicted_clv_idx ON scores (tenant_id, predicted_clv);

CREATE TABLE models (
    id               INTEGER PRIMARY KEY AUTOINCREMENT,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    fitted_at        INTEGER NOT NULL,
    params           TEXT NOT NULL,
    customers        INTEGER NOT NULL,
    repeat_customers INTEGER NOT NULL,
    log_lik          REAL, -- NULL: not a number (failed fit)
    converged        INTEGER NOT NULL CHECK (converged IN (0, 1)),
    seconds          REAL NOT NULL,
    quality          TEXT NOT NULL
) STRICT;

CREATE INDEX models_tenant_idx ON models (tenant_id, fitted_at, id);

CREATE TABLE tenant_state (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state_key   TEXT NOT NULL,
    state_value TEXT NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (tenant_id, state_key)
) STRICT, WITHOUT ROWID;
