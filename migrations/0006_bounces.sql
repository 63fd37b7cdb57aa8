-- Bounces and complaints: what the feeds reported, linked to the delivery
-- they are about.

-- +goose Up
-- One row per notice. dedup_key is the feed's natural key (the SNS message
-- and recipient, the report's Message-ID and recipient, the webhook's
-- fields), so a feed delivering a notice again adds nothing. delivery_id
-- has no foreign key, like the other audit trails: it outlives the row.
CREATE TABLE bounces (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    dedup_key   text NOT NULL UNIQUE,
    kind        text NOT NULL CHECK (kind IN ('hard', 'soft', 'complaint')),
    email       text NOT NULL CHECK (email = lower(email)),
    message_id  text,
    delivery_id uuid,
    reason      text NOT NULL DEFAULT '',
    source      text NOT NULL,   -- webhook, ses, dsn
    occurred_at timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);

-- Soft bounces of an address are counted over a recent period.
CREATE INDEX bounces_soft ON bounces (email, occurred_at) WHERE kind = 'soft';
CREATE INDEX bounces_delivery ON bounces (delivery_id) WHERE delivery_id IS NOT NULL;

-- Notices name their email by its Message-ID.
CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;

-- On the delivery, the first bounce and complaint, for reports: bounce is
-- hard or soft (a hard one replaces a soft one).
ALTER TABLE deliveries
    ADD COLUMN bounce        text CHECK (bounce IN ('hard', 'soft')),
    ADD COLUMN bounced_at    timestamptz,
    ADD COLUMN complained_at timestamptz;

-- +goose Down
ALTER TABLE deliveries
    DROP COLUMN complained_at,
    DROP COLUMN bounced_at,
    DROP COLUMN bounce;
DROP INDEX deliveries_message_id;
DROP TABLE bounces;
