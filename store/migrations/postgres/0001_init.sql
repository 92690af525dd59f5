-- clvd schema, PostgreSQL flavour. Times are TIMESTAMPTZ (microseconds, UTC), money is BIGINT minor
-- units, tag sets are canonical JSON arrays (sorted, de-duplicated) stored as TEXT so that equal sets
-- are equal text (JSONB would normalise them too, but TEXT keeps both dialects byte-identical).
-- JSON documents that are opaque to the store are TEXT for the same reason: returned as given.

CREATE TABLE tenants (
    id                     TEXT PRIMARY KEY,
    name                   TEXT NOT NULL,
    created_at             TIMESTAMPTZ NOT NULL,
    zendesk_base_url       TEXT NOT NULL DEFAULT '',
    zendesk_email          TEXT NOT NULL DEFAULT '',
    zendesk_api_token      TEXT NOT NULL DEFAULT '', -- sealed
    zendesk_webhook_secret TEXT NOT NULL DEFAULT '', -- sealed
    shopify_secret         TEXT NOT NULL DEFAULT '', -- sealed
    orders_secret          TEXT NOT NULL DEFAULT '', -- sealed
    settings               TEXT NOT NULL DEFAULT '{}'
);

CREATE INDEX tenants_created_idx ON tenants (created_at, id);

-- Empty identity fields are NULL, so the unique indexes only constrain values that are known.
CREATE TABLE customers (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    email            TEXT,
    external_id      TEXT,
    zendesk_user_id  TEXT,
    name             TEXT NOT NULL DEFAULT '',
    created_at       TIMESTAMPTZ NOT NULL,
    data_version     BIGINT NOT NULL DEFAULT 0,
    data_changed_at  TIMESTAMPTZ NOT NULL,
    scored_version   BIGINT NOT NULL DEFAULT 0,
    user_tags_pushed TEXT, -- NULL: never pushed
    -- (tenant_id, id) is what other tables reference, so a row can never point at another tenant's customer.
    CONSTRAINT customers_tenant_id_uq UNIQUE (tenant_id, id)
);

CREATE UNIQUE INDEX customers_email_uq ON customers (tenant_id, email) WHERE email IS NOT NULL;
CREATE UNIQUE INDEX customers_external_id_uq ON customers (tenant_id, external_id) WHERE external_id IS NOT NULL;
CREATE UNIQUE INDEX customers_zendesk_user_uq ON customers (tenant_id, zendesk_user_id) WHERE zendesk_user_id IS NOT NULL;
-- Recovery scan for scores that fell behind their data (StaleScores): only stale rows are indexed.
CREATE INDEX customers_stale_idx ON customers (data_changed_at) WHERE data_version > scored_version;

CREATE TABLE orders (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source      TEXT NOT NULL,
    order_id    TEXT NOT NULL,
    customer_id BIGINT, -- NULL: guest order
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    currency    TEXT NOT NULL,
    total_minor BIGINT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('open', 'paid', 'refunded', 'cancelled')),
    PRIMARY KEY (tenant_id, source, order_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

CREATE INDEX orders_customer_idx ON orders (tenant_id, customer_id, created_at, order_id);

-- No foreign key to orders: a refund may arrive before its order.
CREATE TABLE refunds (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    refund_id    TEXT NOT NULL,
    order_id     TEXT NOT NULL,
    amount_minor BIGINT NOT NULL,
    currency     TEXT NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, source, refund_id)
);

CREATE INDEX refunds_order_idx ON refunds (tenant_id, source, order_id);

CREATE TABLE tickets (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    ticket_id    TEXT NOT NULL,
    customer_id  BIGINT,
    requester_id TEXT NOT NULL DEFAULT '',
    subject      TEXT NOT NULL DEFAULT '',
    status       TEXT NOT NULL DEFAULT '',
    priority     TEXT NOT NULL DEFAULT '',
    satisfaction TEXT NOT NULL DEFAULT '',
    created_at   TIMESTAMPTZ, -- NULL: unknown
    updated_at   TIMESTAMPTZ NOT NULL,
    tags_pushed  TEXT, -- NULL: never pushed
    PRIMARY KEY (tenant_id, source, ticket_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id)
);

CREATE INDEX tickets_customer_idx ON tickets (tenant_id, customer_id);

-- Processed ticket event ids, for exactly-once application of redelivered webhooks.
CREATE TABLE ticket_events (
    tenant_id    TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    source       TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, source, event_id)
);

CREATE INDEX ticket_events_processed_idx ON ticket_events (processed_at);

-- A customer's current score. The columns that are filtered or sorted on are real columns.
CREATE TABLE scores (
    tenant_id           TEXT NOT NULL,
    customer_id         BIGINT NOT NULL,
    model               TEXT NOT NULL,
    currency            TEXT NOT NULL,
    historic_minor      BIGINT NOT NULL,
    simple_clv          DOUBLE PRECISION NOT NULL,
    predicted_clv       DOUBLE PRECISION NOT NULL,
    p_alive             DOUBLE PRECISION NOT NULL,
    churn_probability   DOUBLE PRECISION NOT NULL,
    churn_band          TEXT NOT NULL,
    churn_reasons       TEXT NOT NULL, -- JSON array
    tier                TEXT NOT NULL,
    segment             TEXT NOT NULL,
    expected_purchases  DOUBLE PRECISION NOT NULL,
    expected_next_order TIMESTAMPTZ,
    orders              BIGINT NOT NULL,
    last_order          TIMESTAMPTZ,
    tags                TEXT NOT NULL, -- canonical JSON array
    scored_at           TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, customer_id),
    FOREIGN KEY (tenant_id, customer_id) REFERENCES customers (tenant_id, id) ON DELETE CASCADE
);

CREATE INDEX scores_tier_idx ON scores (tenant_id, tier);
CREATE INDEX scores_churn_band_idx ON scores (tenant_id, churn_band);
CREATE INDEX scores_segment_idx ON scores (tenant_id, segment);
CREATE INDEX scores_predicted_clv_idx ON scores (tenant_id, predicted_clv);

CREATE TABLE models (
    id               BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant_id        TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    kind             TEXT NOT NULL,
    fitted_at        TIMESTAMPTZ NOT NULL,
    params           TEXT NOT NULL,
    customers        BIGINT NOT NULL,
    repeat_customers BIGINT NOT NULL,
    log_lik          DOUBLE PRECISION, -- NULL: not a number (failed fit)
    converged        BOOLEAN NOT NULL,
    seconds          DOUBLE PRECISION NOT NULL,
    quality          TEXT NOT NULL
);

CREATE INDEX models_tenant_idx ON models (tenant_id, fitted_at, id);

CREATE TABLE tenant_state (
    tenant_id   TEXT NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    state_key   TEXT NOT NULL,
    state_value TEXT NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (tenant_id, state_key)
);
