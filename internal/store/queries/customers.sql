-- Customers as the planner reads them, consent and its history, and
-- suppressions.

-- name: add-suppressions
-- One statement for a batch: all or nothing. Adding an address again
-- keeps the latest reason and source. The caller keeps the last of
-- repeated addresses, as ON CONFLICT may not touch a row twice.
INSERT INTO suppressions (email, reason, source)
SELECT lower(e), r, s FROM unnest($1::text[], $2::text[], $3::text[]) AS i (e, r, s)
ON CONFLICT (email) DO UPDATE SET reason = excluded.reason, source = excluded.source;

-- name: remove-suppression
DELETE FROM suppressions WHERE email = lower($1);

-- name: suppressions
SELECT email, reason, source, created_at FROM suppressions ORDER BY email;

-- name: unsubscribe
-- $1 customer, $2 source, $3 campaign (null: unknown), $4 time. The
-- person's opt-out: recorded once, and kept until a re-subscription. The
-- first value is whether the customer exists, the second whether this
-- call changed anything.
WITH opted_out AS (
    UPDATE customers
    SET subscribed = false, opted_out_at = $4, opt_out_source = $2, updated_at = now()
    WHERE id = $1 AND opted_out_at IS NULL
    RETURNING id, email
), history AS (
    INSERT INTO consent_changes (customer_id, subscribed, source, campaign, changed_at)
    SELECT id, false, $2, $3, $4 FROM opted_out
), address AS (
    INSERT INTO opted_out_addresses (email, customer_id, opted_out_at)
    SELECT lower(email), id, $4 FROM opted_out
    ON CONFLICT (email) DO NOTHING
)
SELECT EXISTS (SELECT 1 FROM customers WHERE id = $1), EXISTS (SELECT 1 FROM opted_out);

-- name: resubscribe
-- $1 customer, $2 source, $3 time. Clears any opt-out. Values as for
-- unsubscribe.
-- The person's opt-outs under other customer ids with the same address
-- are cleared too: the opt-out belongs to the address (see candidates).
WITH target AS (
    SELECT id, lower(email) AS email FROM customers WHERE id = $1
), subscribed AS (
    UPDATE customers c
    SET subscribed = true, opted_out_at = NULL, opt_out_source = NULL, updated_at = now()
    FROM target t
    WHERE NOT c.subscribed AND (c.id = t.id OR (lower(c.email) = t.email AND c.opted_out_at IS NOT NULL))
    RETURNING c.id
), history AS (
    INSERT INTO consent_changes (customer_id, subscribed, source, changed_at)
    SELECT id, true, $2, $3 FROM subscribed ORDER BY id
), address AS (
    DELETE FROM opted_out_addresses WHERE email = (SELECT email FROM target)
    RETURNING email
)
SELECT EXISTS (SELECT 1 FROM target), EXISTS (SELECT 1 FROM subscribed) OR EXISTS (SELECT 1 FROM address);

-- name: consent-history
SELECT subscribed, source, coalesce(campaign, '') AS campaign, changed_at
FROM consent_changes
WHERE customer_id = $1
ORDER BY seq;

-- name: candidates
-- $1 campaign, $2 evaluation instant, $3 exclusive lower and $4 inclusive
-- upper bound of last_active_at (null: unbounded). History counts
-- deliveries in every status but failed and skipped: those sent nothing.
-- Both sides are read in customer id order (the primary key, and the
-- deliveries unique key after its campaign), so rows stream without a sort.
SELECT c.id, c.email, c.first_name, c.timezone, c.created_at, c.attributes,
       c.orders_count, c.total_spent::float8 AS total_spent, c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       coalesce(h.sends, 0)::integer AS sends, h.last_occurrence, coalesce(h.planned, false) AS planned,
       false AS active
FROM customers c
LEFT JOIN (
    SELECT customer_id,
           count(*) FILTER (WHERE status NOT IN ('failed', 'skipped')) AS sends,
           max(occurrence) FILTER (WHERE occurrence < $2 AND status NOT IN ('failed', 'skipped')) AS last_occurrence,
           -- any status: the unique key refuses a second row for this occurrence
           bool_or(occurrence = $2) AS planned
    FROM deliveries
    -- an entry is its first step: later steps of a journey are not entries
    WHERE campaign = $1 AND step = 1
    GROUP BY customer_id
) h ON h.customer_id = c.id
WHERE c.subscribed
  -- an opt-out from the person holds for the address, under any id
  AND c.last_active_at > coalesce($3::timestamptz, '-infinity')
  AND c.last_active_at <= coalesce($4::timestamptz, 'infinity')
  AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
  -- an erased person's address, by its hash: one index probe
  AND NOT EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)
ORDER BY c.id;

-- name: candidates-journey
-- The candidates of a journey: as above, but the history is of entries
-- (journeys, which may have no delivery yet), every one counting, and
-- active says one is unfinished.
SELECT c.id, c.email, c.first_name, c.timezone, c.created_at, c.attributes,
       c.orders_count, c.total_spent::float8 AS total_spent, c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       coalesce(h.sends, 0)::integer AS sends, h.last_occurrence, coalesce(h.planned, false) AS planned,
       coalesce(h.active, false) AS active
FROM customers c
LEFT JOIN (
    SELECT customer_id,
           count(*) AS sends,
           max(occurrence) FILTER (WHERE occurrence < $2) AS last_occurrence,
           bool_or(occurrence = $2) AS planned,
           bool_or(status = 'active') AS active
    FROM journeys
    WHERE campaign = $1
    GROUP BY customer_id
) h ON h.customer_id = c.id
WHERE c.subscribed
  -- an opt-out from the person holds for the address, under any id
  AND c.last_active_at > coalesce($3::timestamptz, '-infinity')
  AND c.last_active_at <= coalesce($4::timestamptz, 'infinity')
  AND NOT EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
  -- an erased person's address, by its hash: one index probe
  AND NOT EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)
ORDER BY c.id;

-- name: opted-out-addresses
-- Read whole before a candidate scan, which skips these addresses in Go:
-- a join here made PostgreSQL sort every customer instead of streaming
-- them in id order. The claim checks the table again before each send.
SELECT email FROM opted_out_addresses;

-- name: customers
SELECT c.id, c.email, c.first_name, c.timezone, c.subscribed, c.created_at, c.attributes,
       c.orders_count, c.total_spent::float8 AS total_spent, c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed
FROM customers c
ORDER BY c.id;

-- name: counts
SELECT (SELECT count(*) FROM customers),
       (SELECT count(*) FROM events),
       (SELECT count(*) FROM suppressions),
       (SELECT count(*) FROM deliveries);

-- name: customer
-- One customer, with the same columns as customers, as a claim sees them:
-- subscribed unless they or their address opted out.
SELECT c.id, c.email, c.first_name, c.timezone,
       c.subscribed AND NOT EXISTS (SELECT 1 FROM opted_out_addresses x WHERE x.email = lower(c.email)) AS subscribed,
       c.created_at, c.attributes,
       c.orders_count, c.total_spent::float8 AS total_spent, c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed
FROM customers c
WHERE c.id = $1;
