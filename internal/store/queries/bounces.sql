-- Bounces and complaints reported by the feeds, and what they do.

-- name: bounce-lock
-- One notice per address at a time, so that soft bounces arriving
-- together are counted one after the other.
SELECT pg_advisory_xact_lock(hashtextextended('nurture bounce ' || $1, 0));

-- name: bounce-erased
-- The address belongs to an erased person (as erase-customer hashes it):
-- nothing of it may be written in clear again; its hash suppresses it.
SELECT EXISTS (SELECT 1 FROM erased_addresses WHERE hash = sha256(lower($1)::bytea));

-- name: bounce-insert
-- $1 key, $2 kind, $3 email (lower case), $4 Message-ID (null: unknown),
-- $5 reason, $6 source, $7 occurred_at, $8 received_at. Links the notice
-- to the delivery whose email carried the Message-ID: nurture's are
-- <delivery id@domain>, so the id inside is looked up by primary key and
-- the whole Message-ID must match what the delivery recorded. The first
-- value says whether the notice is new (its key was not seen before);
-- then the delivery's id, customer and campaign, null when none matched.
WITH d AS (
    SELECT id, customer_id, campaign FROM deliveries
    WHERE id = (SELECT substring($4 FROM '^<([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})@')::uuid)
      AND message_id = $4
), ins AS (
    INSERT INTO bounces (dedup_key, kind, email, message_id, delivery_id, reason, source, occurred_at, received_at)
    SELECT $1, $2, $3, $4, (SELECT id FROM d), $5, $6, $7, $8
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING id
)
SELECT EXISTS (SELECT 1 FROM ins), (SELECT id::text FROM d), (SELECT customer_id FROM d), (SELECT campaign FROM d);

-- name: bounce-mark-delivery
-- $1 delivery, $2 kind, $3 occurred_at. The first bounce and complaint
-- are kept; a hard bounce replaces a soft one.
UPDATE deliveries
SET bounce        = CASE WHEN $2 = 'complaint' OR bounce = 'hard' THEN bounce ELSE $2 END,
    bounced_at    = CASE WHEN $2 = 'complaint' THEN bounced_at
                         WHEN $2 = 'hard' AND bounce = 'soft' THEN $3::timestamptz
                         ELSE coalesce(bounced_at, $3::timestamptz) END,
    complained_at = CASE WHEN $2 = 'complaint' THEN coalesce(complained_at, $3::timestamptz) ELSE complained_at END
WHERE id = $1::uuid;

-- name: bounce-soft-count
-- $1 email, $2 the start of the counted period (exclusive).
SELECT count(*)::integer FROM bounces WHERE email = $1 AND kind = 'soft' AND occurred_at > $2;

-- name: bounce-suppress
-- $1 email, $2 reason, $3 source, $4 time. An address suppressed already
-- keeps its first reason. Returns a row when the address was added.
INSERT INTO suppressions (email, reason, source, created_at)
VALUES ($1, $2, $3, $4)
ON CONFLICT (email) DO NOTHING
RETURNING true;

-- name: bounce-customers
-- The customers with an address, when no delivery names one.
SELECT id FROM customers WHERE lower(email) = $1 ORDER BY id;

-- name: bounces
SELECT dedup_key, kind, email, coalesce(message_id, '') AS message_id, coalesce(delivery_id::text, '') AS delivery_id,
       reason, source, occurred_at, received_at
FROM bounces
ORDER BY id;

-- name: delivery-bounces
SELECT id::text AS delivery_id, coalesce(bounce, '') AS bounce, bounced_at, complained_at
FROM deliveries
WHERE bounce IS NOT NULL OR complained_at IS NOT NULL
ORDER BY id;
