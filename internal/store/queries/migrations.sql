-- Queries about the database itself: migrations applied, databases present.

-- name: migrations-version-table-exists
-- goose keeps the applied migrations in goose_db_version.
SELECT to_regclass('goose_db_version') IS NOT NULL;

-- name: migrations-applied-versions
-- The latest row of each version tells whether it is applied.
SELECT version_id
FROM (
    SELECT DISTINCT ON (version_id) version_id, is_applied
    FROM goose_db_version
    ORDER BY version_id, id DESC
) v
WHERE is_applied AND version_id > 0
ORDER BY version_id;
