-- Journeys: entries into a campaign's steps and their progress.

-- name: enter-journeys
-- A journey that exists for the same entry, or an unfinished one of the
-- campaign for the customer, or one from the same event, stops the entry:
-- it is left out of the result, and so are its deliveries.
INSERT INTO journeys (campaign, customer_id, occurrence, event_id, step, status, reason, ended_at)
SELECT j.campaign, j.customer_id, j.occurrence, j.event_id, j.step, j.status::journey_status, nullif(j.reason, ''),
       CASE WHEN j.status <> 'active' THEN now() END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::integer[], $6::text[], $7::text[])
     AS j (campaign, customer_id, occurrence, event_id, step, status, reason)
ON CONFLICT DO NOTHING
RETURNING campaign, customer_id, occurrence, event_id;

-- name: advance-journeys
-- Moves each journey from the step the caller saw to the next one; a
-- journey another process moved in between is left alone and left out.
UPDATE journeys j
SET step = a.to_step, status = a.status::journey_status, reason = nullif(a.reason, ''),
    ended_at = CASE WHEN a.status <> 'active' THEN now() END, updated_at = now()
FROM unnest($1::bigint[], $2::integer[], $3::integer[], $4::text[], $5::text[])
     AS a (id, from_step, to_step, status, reason)
WHERE j.id = a.id AND j.step = a.from_step AND j.status = 'active'
RETURNING j.id;

-- name: active-journeys
-- The unfinished journeys of $1 whose next step is due at $3, or whose last
-- step may have finished: $2 holds, per step (1-based) and one past the
-- last, the offset from the start in microseconds. A journey waits while
-- its last step's delivery is unfinished.
SELECT j.id, j.customer_id, j.occurrence, j.event_id, j.step,
       coalesce(d.status::text, '') AS last_status,
       c.id IS NOT NULL AS found,
       coalesce(c.email, '') AS email,
       coalesce(c.first_name, '') AS first_name,
       coalesce(c.timezone, 'UTC') AS timezone,
       coalesce(c.subscribed, false)
           AND NOT EXISTS (SELECT 1 FROM opted_out_addresses x WHERE x.email = lower(c.email)) AS subscribed,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed,
       c.created_at, coalesce(c.attributes, '{}') AS attributes,
       coalesce(c.orders_count, 0) AS orders_count, coalesce(c.total_spent, 0)::float8 AS total_spent,
       c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       e.type AS event_type, e.occurred_at AS event_occurred_at, e.amount::float8 AS event_amount,
       e.properties AS event_properties
FROM journeys j
LEFT JOIN deliveries d
       ON d.campaign = j.campaign AND d.customer_id = j.customer_id AND d.occurrence = j.occurrence
      AND d.step = j.step AND d.event_id = j.event_id
LEFT JOIN customers c ON c.id = j.customer_id
LEFT JOIN events e ON j.event_id <> '' AND e.dedup_key = j.event_id
WHERE j.campaign = $1 AND j.status = 'active'
  AND j.occurrence + ($2::bigint[])[j.step + 1] * interval '1 microsecond' <= $3
  AND (j.step = 0 OR d.status IN ('sent', 'failed', 'skipped', 'held_out'))
ORDER BY j.customer_id;

-- name: exit-removed-journeys
-- Journeys of campaigns that are gone (or no longer journeys) end.
UPDATE journeys
SET status = 'exited', reason = 'campaign removed', ended_at = now(), updated_at = now()
WHERE status = 'active' AND campaign <> ALL ($1::text[])
RETURNING campaign;

-- name: journeys
SELECT id, campaign, customer_id, occurrence, event_id, step, status::text, coalesce(reason, '') AS reason,
       started_at, ended_at
FROM journeys
WHERE ($1 = '' OR campaign = $1) AND ($2 = '' OR customer_id = $2)
ORDER BY campaign, customer_id, occurrence, event_id;
