-- Sending a delivery writes its row three times: queued, sending, sent. An
-- update is heap-only (HOT: no index entry written, a fraction of the
-- cost) only when no column any index reads changes and the page has room
-- for the new version. Every one of those writes used to change an
-- indexed column: status (in the predicate of deliveries_unfinished),
-- updated_at (its key), touched (deliveries_touched, set by a trigger on
-- every update) and message_id (deliveries_message_id). So each wrote an
-- entry into six to eight indexes. After this migration:
--
-- - deliveries_unfinished reads finished, a generated column that changes
--   only when a delivery finishes, and its key updated_at no longer moves
--   when a delivery is queued or claimed (sending_at records the claim).
--   Queueing and claiming are HOT; recording the outcome writes the four
--   indexes every row has, and leaves deliveries_unfinished.
-- - The rollup refresh learns which campaign days changed from
--   rollup_log, written once per statement by triggers on deliveries,
--   rather than from a per-row touched column and its index. A statement
--   that moves a delivery to another day logs both days.
-- - A bounce finds its delivery by the id inside the Message-ID that
--   nurture gave the email (<delivery id@domain>), through the primary
--   key; deliveries_message_id goes.
-- - New pages of deliveries keep 30 % free, room for the new versions.

-- +goose Up
DROP INDEX deliveries_message_id;

DROP TRIGGER deliveries_touch ON deliveries;
DROP INDEX deliveries_touched;
ALTER TABLE deliveries DROP COLUMN touched;

-- The campaign days (by send_at, UTC) whose counts may have changed since
-- the last refresh, read and emptied by it. No index: a refresh reads all
-- of it, and writers only append.
CREATE TABLE rollup_log (
    campaign text COLLATE "C" NOT NULL,
    day      date NOT NULL
);

-- One function for the three triggers: each has the transition tables of
-- its event only, and only the branch of that event runs.
-- +goose StatementBegin
CREATE FUNCTION rollup_log_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_OP
    WHEN 'INSERT' THEN
        INSERT INTO rollup_log (campaign, day)
        SELECT DISTINCT campaign, (send_at AT TIME ZONE 'UTC')::date FROM new_rows;
    WHEN 'DELETE' THEN
        INSERT INTO rollup_log (campaign, day)
        SELECT DISTINCT campaign, (send_at AT TIME ZONE 'UTC')::date FROM old_rows;
    ELSE -- UPDATE: a row may move to another day
        INSERT INTO rollup_log (campaign, day)
        SELECT campaign, (send_at AT TIME ZONE 'UTC')::date FROM new_rows
        UNION
        SELECT campaign, (send_at AT TIME ZONE 'UTC')::date FROM old_rows;
    END CASE;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER deliveries_log_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_log_rows();
CREATE TRIGGER deliveries_log_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_log_rows();
CREATE TRIGGER deliveries_log_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION rollup_log_rows();

-- The stored generated column rewrites the table once, with the new
-- fillfactor: every page, old rows included, gets its free room.
ALTER TABLE deliveries SET (fillfactor = 70);
ALTER TABLE deliveries ADD COLUMN finished boolean NOT NULL
    GENERATED ALWAYS AS (status IN ('sent', 'failed', 'skipped', 'held_out')) STORED;
DROP INDEX deliveries_unfinished;
CREATE INDEX deliveries_unfinished ON deliveries (updated_at) WHERE NOT finished;

-- Days changed before this migration were to be found by their touched
-- rows: the next refresh counts every day again instead.
UPDATE rollup_progress SET bound = NULL;

-- +goose Down
-- Before, a claim moved updated_at, and the reconciler reads it so: rows
-- claimed since the upgrade get their claim's time back, or a delivery
-- being sent would look idle.
UPDATE deliveries SET updated_at = greatest(updated_at, queued_at, sending_at)
WHERE status IN ('planned', 'queued', 'sending');
ALTER TABLE deliveries RESET (fillfactor);
DROP INDEX deliveries_unfinished;
ALTER TABLE deliveries DROP COLUMN finished;
CREATE INDEX deliveries_unfinished ON deliveries (updated_at) WHERE status IN ('planned', 'queued', 'sending');

DROP TRIGGER deliveries_log_delete ON deliveries;
DROP TRIGGER deliveries_log_update ON deliveries;
DROP TRIGGER deliveries_log_insert ON deliveries;
DROP FUNCTION rollup_log_rows();
DROP TABLE rollup_log;

-- Rows get touched again from the next refresh on; the one after the
-- downgrade misses the days changed in between unless it is a first one.
ALTER TABLE deliveries ADD COLUMN touched xid8;
ALTER TABLE deliveries ALTER COLUMN touched SET DEFAULT pg_current_xact_id();
CREATE TRIGGER deliveries_touch BEFORE UPDATE ON deliveries
    FOR EACH ROW EXECUTE FUNCTION rollup_touch();
CREATE INDEX deliveries_touched ON deliveries (touched);
UPDATE rollup_progress SET bound = NULL;

CREATE INDEX deliveries_message_id ON deliveries (message_id) WHERE message_id IS NOT NULL;
