-- Queries `nurture bench` uses to describe its database.

-- name: server-version
SHOW server_version;
