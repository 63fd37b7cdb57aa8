-- Queries that empty a disposable database: Scratch runs them, Store never
-- does.

-- name: scratch-reset
TRUNCATE customers, consent_changes, opted_out_addresses, events, suppressions, deliveries;

-- name: scratch-clear-deliveries
TRUNCATE deliveries;

-- name: scratch-vacuum
-- After a bulk import, so that timings do not depend on when autovacuum
-- gets to the new rows.
VACUUM (ANALYZE) customers, events, suppressions, deliveries;
