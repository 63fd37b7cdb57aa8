-- Events' dedup_key compared byte by byte (COLLATE "C"), like the event
-- ids of deliveries and journeys that it is joined with. Every imported
-- event inserts its key into the unique index, and comparing keys in the
-- database's linguistic collation costs more than comparing bytes. The
-- joins from a delivery's or a journey's event_id to its event can now use
-- that index too: with the two collations apart, they could not. The
-- column changes collation only, so the table is not rewritten; its unique
-- index is rebuilt.

-- +goose Up
ALTER TABLE events ALTER COLUMN dedup_key TYPE text COLLATE "C";

-- +goose Down
ALTER TABLE events ALTER COLUMN dedup_key TYPE text COLLATE "default";
