-- The marketer's toolkit: deliveries of journey steps and triggered
-- campaigns, send windows, experiments and the global frequency cap.

-- +goose Up
-- A held-out entry is recorded and never sent.
ALTER TYPE delivery_status ADD VALUE IF NOT EXISTS 'held_out';

ALTER TABLE deliveries
    ADD COLUMN step     integer NOT NULL DEFAULT 1 CHECK (step >= 1),
    -- The triggering event's id (events.dedup_key); '' for schedules and
    -- stage entries.
    ADD COLUMN event_id text COLLATE "C" NOT NULL DEFAULT '',
    -- The experiment group: a variant's name, 'holdout', or ''.
    ADD COLUMN variant  text NOT NULL DEFAULT '',
    -- When the email may go out: the step's due time moved into the send
    -- window. Workers do not send before it.
    ADD COLUMN send_at  timestamptz;

UPDATE deliveries SET send_at = occurrence;
ALTER TABLE deliveries ALTER COLUMN send_at SET NOT NULL;

-- The key grows to (campaign, customer, occurrence, step, event); its
-- leading columns still serve the planner's per-campaign history lookups.
ALTER TABLE deliveries DROP CONSTRAINT deliveries_campaign_customer_id_occurrence_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_key UNIQUE (campaign, customer_id, occurrence, step, event_id);

-- An event never yields two entries of one campaign, even if the
-- campaign's delay (and so the entry's occurrence) changed in between.
CREATE UNIQUE INDEX deliveries_event_entry ON deliveries (campaign, event_id) WHERE event_id <> '' AND step = 1;

-- The global frequency cap reads a customer's deliveries around a send time.
CREATE INDEX deliveries_customer_send_at ON deliveries (customer_id, send_at);

-- +goose Down
DROP INDEX deliveries_customer_send_at;
DROP INDEX deliveries_event_entry;
DELETE FROM deliveries WHERE step > 1 OR event_id <> '';
ALTER TABLE deliveries DROP CONSTRAINT deliveries_key;
ALTER TABLE deliveries ADD CONSTRAINT deliveries_campaign_customer_id_occurrence_key UNIQUE (campaign, customer_id, occurrence);
ALTER TABLE deliveries DROP COLUMN send_at, DROP COLUMN variant, DROP COLUMN event_id, DROP COLUMN step;
