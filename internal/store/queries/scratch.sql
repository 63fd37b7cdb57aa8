-- Queries that empty a disposable database: Scratch runs them, Store never
-- does.

-- name: scratch-reset
TRUNCATE customers, consent_changes, opted_out_addresses, events, suppressions, deliveries, deliveries_open,
         journeys, customer_stages, stage_changes, stage_sweeps, erased_addresses, erasures, conversions,
         bounces, delivery_tracking, delivery_clicks, campaign_daily, rollup_log, stage_counts, stage_flows;
UPDATE attribution_progress SET last_seq = 0;
UPDATE rollup_progress SET bound = NULL, refreshed_at = NULL;

-- name: scratch-clear-deliveries
-- Deliveries, the journeys they belong to, what they earned, the bounces,
-- opens and clicks about them, and their rollups.
TRUNCATE deliveries, deliveries_open, journeys, conversions, bounces, delivery_tracking, delivery_clicks, campaign_daily,
         rollup_log;
UPDATE rollup_progress SET bound = NULL, refreshed_at = NULL;

-- name: scratch-vacuum
-- After a bulk import, so that timings do not depend on when autovacuum
-- gets to the new rows.
VACUUM (ANALYZE) customers, events, suppressions, deliveries, deliveries_open;

-- name: scratch-clear-stages
TRUNCATE customer_stages, stage_changes, stage_sweeps;

-- name: scratch-shift-orders
-- $1 a LIKE pattern of customer ids, $2 the orders to add (or remove).
UPDATE customers SET orders_count = orders_count + $2 WHERE id LIKE $1;

-- name: scratch-delete-customers
-- $1 a LIKE pattern of customer ids: the customers and every row about them.
WITH ev AS (DELETE FROM events WHERE customer_id LIKE $1),
     de AS (DELETE FROM deliveries WHERE customer_id LIKE $1),
     jo AS (DELETE FROM journeys WHERE customer_id LIKE $1),
     cs AS (DELETE FROM customer_stages WHERE customer_id LIKE $1),
     sc AS (DELETE FROM stage_changes WHERE customer_id LIKE $1),
     cu AS (DELETE FROM customers WHERE id LIKE $1 RETURNING 1)
SELECT count(*)::integer FROM cu;

-- name: scratch-copy-table
-- The floor of an event import: the same columns as events, no index, no
-- constraint.
CREATE TABLE bench_event_copy (
    dedup_key   text,
    customer_id text,
    type        text,
    occurred_at timestamptz,
    amount      numeric(16, 2),
    properties  jsonb
);

-- name: scratch-copy-table-indexed
-- What the events table's keys and indexes cost an import: a table like
-- events, with all its indexes, written by COPY alone (no facts, no
-- duplicate check beyond the unique index).
CREATE TABLE bench_event_copy (LIKE events INCLUDING ALL);

-- name: scratch-copy-drop
DROP TABLE IF EXISTS bench_event_copy;
