-- Queries that empty a disposable database: Scratch runs them, Store never
-- does.

-- name: scratch-reset
TRUNCATE customers, consent_changes, opted_out_addresses, events, suppressions, deliveries,
         journeys, customer_stages, stage_changes, stage_sweeps;

-- name: scratch-clear-deliveries
-- Deliveries and the journeys they belong to.
TRUNCATE deliveries, journeys;

-- name: scratch-vacuum
-- After a bulk import, so that timings do not depend on when autovacuum
-- gets to the new rows.
VACUUM (ANALYZE) customers, events, suppressions, deliveries;
