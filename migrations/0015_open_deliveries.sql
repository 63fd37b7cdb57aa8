-- Recording a delivery's outcome was the one write of the send path that
-- could not be heap-only: it moves the row out of deliveries_unfinished
-- (its predicate reads finished, its key is updated_at), and an update
-- that changes a column any index reads writes a new entry into every
-- index of the table, four here. That made the outcome cost as much
-- PostgreSQL time as the claim and five times its WAL records.
--
-- The unfinished deliveries move to a table of their own, which holds the
-- id and the reconciler's idle clock (updated_at) of every delivery that
-- is not finished. Triggers keep it, so every writer of deliveries (the
-- worker, bounces, erasure, anyone with psql) keeps it right. No index of
-- deliveries reads status, finished or updated_at any more: queueing,
-- claiming and recording are heap-only while the page has room; the
-- outcome removes one row of deliveries_open instead.

-- +goose Up
CREATE TABLE deliveries_open (
    id         uuid PRIMARY KEY,
    updated_at timestamptz NOT NULL
);
CREATE INDEX deliveries_open_updated_at ON deliveries_open (updated_at);

-- One function for the three triggers, as for rollup_log. An update
-- touches deliveries_open only for the rows whose finished or updated_at
-- changed: a claim, which changes neither, leaves it alone.
-- +goose StatementBegin
CREATE FUNCTION deliveries_open_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_OP
    WHEN 'INSERT' THEN
        INSERT INTO deliveries_open (id, updated_at)
        SELECT id, updated_at FROM new_rows WHERE NOT finished;
    WHEN 'DELETE' THEN
        DELETE FROM deliveries_open o USING old_rows r WHERE o.id = r.id AND NOT r.finished;
    ELSE
        DELETE FROM deliveries_open o
        USING new_rows n JOIN old_rows r ON r.id = n.id
        WHERE o.id = n.id AND n.finished AND NOT r.finished;
        INSERT INTO deliveries_open (id, updated_at)
        SELECT n.id, n.updated_at FROM new_rows n JOIN old_rows r ON r.id = n.id
        WHERE NOT n.finished AND (r.finished OR r.updated_at <> n.updated_at)
        ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at;
    END CASE;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

CREATE TRIGGER deliveries_open_insert AFTER INSERT ON deliveries
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_open_rows();
CREATE TRIGGER deliveries_open_update AFTER UPDATE ON deliveries
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_open_rows();
CREATE TRIGGER deliveries_open_delete AFTER DELETE ON deliveries
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION deliveries_open_rows();

INSERT INTO deliveries_open (id, updated_at)
SELECT id, updated_at FROM deliveries WHERE NOT finished;

DROP INDEX deliveries_unfinished;

-- +goose Down
CREATE INDEX deliveries_unfinished ON deliveries (updated_at) WHERE NOT finished;
DROP TRIGGER deliveries_open_delete ON deliveries;
DROP TRIGGER deliveries_open_update ON deliveries;
DROP TRIGGER deliveries_open_insert ON deliveries;
DROP FUNCTION deliveries_open_rows();
DROP TABLE deliveries_open;
