-- Customers, their events, deliveries and suppressions.

-- +goose Up
CREATE TABLE customers (
    id                text COLLATE "C" PRIMARY KEY, -- byte order: plan and stage list customers by id
    email             text NOT NULL,
    first_name        text NOT NULL DEFAULT '',
    timezone          text NOT NULL DEFAULT 'UTC',
    subscribed        boolean NOT NULL DEFAULT true,
    created_at        timestamptz NOT NULL,
    attributes        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(attributes) = 'object'),
    -- Facts derived from events, kept current by every import: each import
    -- adds the events it actually inserted, and a customer's first import
    -- computes them from the events that arrived before it.
    orders_count      integer NOT NULL DEFAULT 0,
    total_spent       numeric(16, 2) NOT NULL DEFAULT 0,
    first_purchase_at timestamptz,
    last_purchase_at  timestamptz,
    last_event_at     timestamptz,
    last_active_at    timestamptz GENERATED ALWAYS AS (greatest(created_at, last_event_at)) STORED,
    updated_at        timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX customers_last_active_at ON customers (last_active_at);
CREATE INDEX customers_lower_email ON customers (lower(email));

-- Events are append-only. dedup_key is the caller's event id when given,
-- otherwise a hash of the whole event, so re-importing a file adds nothing.
-- customer_id has no foreign key on purpose: events may arrive before
-- their customer, and the customer's facts are computed when it arrives.
CREATE TABLE events (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key   text NOT NULL UNIQUE,
    customer_id text COLLATE "C" NOT NULL,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    amount      numeric(16, 2),
    properties  jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(properties) = 'object'),
    imported_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX events_customer_id ON events (customer_id);

CREATE TABLE suppressions (
    email      text PRIMARY KEY CHECK (email = lower(email)),
    reason     text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TYPE delivery_status AS ENUM ('planned', 'queued', 'sending', 'sent', 'failed', 'skipped');

CREATE TABLE deliveries (
    id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    campaign    text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    occurrence  timestamptz NOT NULL,
    stage       text NOT NULL,
    template    text NOT NULL,
    queue       text NOT NULL,
    status      delivery_status NOT NULL DEFAULT 'planned',
    reason      text,          -- why skipped or failed
    attempts    integer NOT NULL DEFAULT 0,
    last_error  text,
    message_id  text,          -- Message-ID header of the email, set at first send attempt
    smtp_reply  text,          -- the server's final reply when it accepted the message
    planned_at  timestamptz NOT NULL DEFAULT now(),
    queued_at   timestamptz,
    sending_at  timestamptz,
    sent_at     timestamptz,
    failed_at   timestamptz,
    skipped_at  timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign, customer_id, occurrence)
);

-- The reconciler looks for deliveries that never left the queue.
CREATE INDEX deliveries_unfinished ON deliveries (updated_at) WHERE status IN ('planned', 'queued', 'sending');

-- +goose Down
DROP TABLE deliveries;
DROP TYPE delivery_status;
DROP TABLE suppressions;
DROP TABLE events;
DROP TABLE customers;
