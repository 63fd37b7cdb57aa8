-- Rollups for the results pages: daily delivery counts per campaign, and
-- per-stage counts and flows recorded by each stage sweep, so that a page
-- view reads small tables and never deliveries or customers.

-- +goose Up
-- touched is the id of the transaction that last wrote a row. The rollup
-- refresh reads rows touched since the oldest transaction still running
-- at its previous refresh (a snapshot's xmin): exact under concurrent
-- writers, whatever their clocks, and one index range scan.
-- +goose StatementBegin
CREATE FUNCTION rollup_touch() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.touched := pg_current_xact_id();
    RETURN NEW;
END
$$;
-- +goose StatementEnd

-- Rows written before this migration have no touched (the default, set
-- after the column is added, applies to new rows and rewrites nothing):
-- the first refresh rolls up everything. New rows take the default, which
-- costs planning's bulk inserts less than a trigger; updates need the
-- trigger.
ALTER TABLE deliveries ADD COLUMN touched xid8;
ALTER TABLE deliveries ALTER COLUMN touched SET DEFAULT pg_current_xact_id();
CREATE TRIGGER deliveries_touch BEFORE UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION rollup_touch();
CREATE INDEX deliveries_touched ON deliveries (touched);
-- A refresh recounts one campaign's day of deliveries.
CREATE INDEX deliveries_campaign_send_at ON deliveries (campaign, send_at);

-- New attributions change the counts of their delivery's day.
ALTER TABLE conversions ADD COLUMN touched xid8;
ALTER TABLE conversions ALTER COLUMN touched SET DEFAULT pg_current_xact_id();
CREATE TRIGGER conversions_touch BEFORE UPDATE ON conversions
    FOR EACH ROW EXECUTE FUNCTION rollup_touch();
CREATE INDEX conversions_touched ON conversions (touched);

-- So do opt-outs through a campaign's link.
ALTER TABLE consent_changes ADD COLUMN touched xid8;
ALTER TABLE consent_changes ALTER COLUMN touched SET DEFAULT pg_current_xact_id();
CREATE TRIGGER consent_changes_touch BEFORE UPDATE ON consent_changes
    FOR EACH ROW EXECUTE FUNCTION rollup_touch();
CREATE INDEX consent_changes_touched ON consent_changes (touched) WHERE campaign IS NOT NULL;

-- So do first opens and clicks. Only an update that makes a delivery
-- opened or clicked touches its row: later hits leave the touched index
-- alone, so they stay cheap (HOT) updates.
ALTER TABLE delivery_tracking ADD COLUMN touched xid8;
ALTER TABLE delivery_tracking ALTER COLUMN touched SET DEFAULT pg_current_xact_id();
CREATE TRIGGER delivery_tracking_touch BEFORE UPDATE ON delivery_tracking
    FOR EACH ROW WHEN ((OLD.opens = 0 AND OLD.clicks = 0 AND NEW.opens + NEW.clicks > 0) OR (OLD.clicks = 0 AND NEW.clicks > 0))
    EXECUTE FUNCTION rollup_touch();
CREATE INDEX delivery_tracking_touched ON delivery_tracking (touched);

-- The report's counts (store.ReportRow) of the deliveries due (send_at) on
-- one UTC day, per campaign, variant, step, status and reason.
CREATE TABLE campaign_daily (
    day          date NOT NULL,
    campaign     text COLLATE "C" NOT NULL,
    variant      text NOT NULL,
    step         integer NOT NULL,
    status       text NOT NULL,
    reason       text NOT NULL,
    deliveries   bigint NOT NULL,
    unsubscribed bigint NOT NULL,
    bounced      bigint NOT NULL,
    complained   bigint NOT NULL,
    converted    bigint NOT NULL,
    revenue      numeric(16, 2) NOT NULL,
    opened       bigint NOT NULL,
    clicked      bigint NOT NULL,
    -- first steps whose entry (any step) earned a purchase: the uplift's unit
    entries_converted bigint NOT NULL,
    PRIMARY KEY (campaign, day, variant, step, status, reason)
);

-- How far the refresh has read: rows touched by a transaction at or
-- after bound may be newer than campaign_daily (null: nothing rolled up
-- yet); refreshed_at is when the last refresh ran.
CREATE TABLE rollup_progress (
    one          boolean PRIMARY KEY DEFAULT true CHECK (one),
    bound        xid8,
    refreshed_at timestamptz
);
INSERT INTO rollup_progress DEFAULT VALUES;

-- Customers and the sum of their total_spent per stage, as each sweep saw
-- them (customers whose stage could not be evaluated keep their stored
-- stage).
CREATE TABLE stage_counts (
    swept_at    timestamptz NOT NULL,
    stage       text NOT NULL,
    customers   bigint NOT NULL,
    total_spent numeric(20, 2) NOT NULL,
    PRIMARY KEY (swept_at, stage)
);

-- The changes each sweep recorded, counted by from and to stage
-- (from_stage '' for first recorded stages).
CREATE TABLE stage_flows (
    swept_at   timestamptz NOT NULL,
    from_stage text NOT NULL,
    to_stage   text NOT NULL,
    customers  bigint NOT NULL,
    PRIMARY KEY (swept_at, from_stage, to_stage)
);

-- +goose Down
DROP TABLE stage_flows;
DROP TABLE stage_counts;
DROP TABLE rollup_progress;
DROP TABLE campaign_daily;
DROP INDEX delivery_tracking_touched;
DROP TRIGGER delivery_tracking_touch ON delivery_tracking;
ALTER TABLE delivery_tracking DROP COLUMN touched;
DROP INDEX consent_changes_touched;
DROP TRIGGER consent_changes_touch ON consent_changes;
ALTER TABLE consent_changes DROP COLUMN touched;
DROP INDEX conversions_touched;
DROP TRIGGER conversions_touch ON conversions;
ALTER TABLE conversions DROP COLUMN touched;
DROP INDEX deliveries_campaign_send_at;
DROP INDEX deliveries_touched;
DROP TRIGGER deliveries_touch ON deliveries;
ALTER TABLE deliveries DROP COLUMN touched;
DROP FUNCTION rollup_touch();
