-- Events update their customer's facts (last_event_at, the purchase
-- facts) as they arrive, one row update per customer per import. Those
-- updates can be heap-only (HOT: no index entry written) only when no
-- indexed column changes and the page has room for the new version:
-- last_active_at, derived from last_event_at, loses its index (candidate
-- scans read customers in id order and filter on it; they never used the
-- index to skip rows), and new pages keep a fifth free.
--
-- Existing pages are full; each row moves to a page with room at its
-- first update after this migration, or all at once by VACUUM FULL
-- customers in a quiet hour.

-- +goose Up
DROP INDEX customers_last_active_at;
ALTER TABLE customers SET (fillfactor = 80);

-- +goose Down
ALTER TABLE customers RESET (fillfactor);
CREATE INDEX customers_last_active_at ON customers (last_active_at);
