-- Queries `nurture bench` uses to reset and describe its own database.

-- name: bench-clear-deliveries
TRUNCATE deliveries;

-- name: bench-vacuum
-- After a bulk import, so that timings do not depend on when autovacuum
-- gets to the new rows.
VACUUM (ANALYZE) customers, events, suppressions, deliveries;

-- name: server-version
SHOW server_version;
