-- Recording a delivery's outcome was the one write of the send path that
-- could not be heap-only: it moves the row out of deliveries_unfinished
-- (its predicate reads finished, its key is updated_at), and an update
-- that changes a column any index reads writes a new entry into every
-- index of the table, four here. That made the outcome cost as much
-- PostgreSQL time as the claim and five times its WAL records.
--
-- The unfinished deliveries move to a table of their own, which holds the
-- id and the reconciler's idle clock (updated_at) of every delivery that
-- is not finished. The statement triggers of deliveries keep it, so every
-- writer of deliveries (the worker, bounces, erasure, anyone with psql)
-- keeps it right. No index of deliveries reads status, finished or
-- updated_at any more: queueing, claiming and recording are heap-only
-- while the page has room; the outcome removes one row of
-- deliveries_open instead.

-- +goose Up
CREATE TABLE deliveries_open (
    id         uuid PRIMARY KEY,
    updated_at timestamptz NOT NULL
);
CREATE INDEX deliveries_open_updated_at ON deliveries_open (updated_at);

-- The statement triggers of migration 0014 keep deliveries_open too: one
-- function call per statement does both. An update touches
-- deliveries_open only for the rows whose finished or updated_at changed;
-- a claim, which changes neither, leaves it alone.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_log_rows() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    CASE TG_OP
    WHEN 'INSERT' THEN
        INSERT INTO rollup_log (campaign, day)
        SELECT DISTINCT campaign, (send_at AT TIME ZONE 'UTC')::date FROM new_rows;
        INSERT INTO deliveries_open (id, updated_at)
        SELECT id, updated_at FROM new_rows WHERE NOT finished;
    WHEN 'DELETE' THEN
        INSERT INTO rollup_log (campaign, day)
        SELECT DISTINCT campaign, (send_at AT TIME ZONE 'UTC')::date FROM old_rows;
        DELETE FROM deliveries_open o USING old_rows r WHERE o.id = r.id AND NOT r.finished;
    ELSE -- UPDATE: a row may move to another day
        INSERT INTO rollup_log (campaign, day)
        SELECT campaign, (send_at AT TIME ZONE 'UTC')::date FROM new_rows
        UNION
        SELECT campaign, (send_at AT TIME ZONE 'UTC')::date FROM old_rows;
        -- The two sides touch disjoint rows: finished ones leave, the
        -- others come back or move their clock.
        WITH changed AS MATERIALIZED (
            SELECT n.id, n.finished, n.updated_at
            FROM new_rows n JOIN old_rows r ON r.id = n.id
            WHERE n.finished <> r.finished OR (NOT n.finished AND n.updated_at <> r.updated_at)
        ), gone AS (
            DELETE FROM deliveries_open o USING changed c WHERE o.id = c.id AND c.finished
        )
        INSERT INTO deliveries_open (id, updated_at)
        SELECT id, updated_at FROM changed WHERE NOT finished
        ON CONFLICT (id) DO UPDATE SET updated_at = excluded.updated_at;
    END CASE;
    RETURN NULL;
END
$$;
-- +goose StatementEnd

INSERT INTO deliveries_open (id, updated_at)
SELECT id, updated_at FROM deliveries WHERE NOT finished;

DROP INDEX deliveries_unfinished;

-- +goose Down
CREATE INDEX deliveries_unfinished ON deliveries (updated_at) WHERE NOT finished;
-- rollup_log_rows as migration 0014 made it.
-- +goose StatementBegin
CREATE OR REPLACE FUNCTION rollup_log_rows() RETURNS trigger LANGUAGE plpgsql AS $$
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
DROP TABLE deliveries_open;
