-- Results: purchases attributed to the deliveries that earned them.

-- +goose Up
-- One row per attributed purchase event: the delivery it is attributed to
-- (last touch, across campaigns) and its amount as revenue.
CREATE TABLE conversions (
    event_seq   bigint PRIMARY KEY,          -- events.seq of the purchase
    delivery_id uuid NOT NULL,
    campaign    text COLLATE "C" NOT NULL,
    occurred_at timestamptz NOT NULL,
    amount      numeric(16, 2) NOT NULL DEFAULT 0,
    attributed_at timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX conversions_delivery ON conversions (delivery_id);

-- How far attribution has read the events: every purchase with a seq up
-- to last_seq has been looked at once.
CREATE TABLE attribution_progress (
    one      boolean PRIMARY KEY DEFAULT true CHECK (one),
    last_seq bigint NOT NULL DEFAULT 0
);
INSERT INTO attribution_progress DEFAULT VALUES;

-- +goose Down
DROP TABLE attribution_progress;
DROP TABLE conversions;
