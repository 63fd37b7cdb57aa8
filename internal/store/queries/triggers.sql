-- Triggers: due events and stage entries, and the stage sweep.

-- name: due-events
-- $1 campaign, $2 event type, $3 exclusive lower and $4 inclusive upper
-- bound of occurred_at (the due window moved back by the delay), $5 the
-- evaluation instant, $6 whether the campaign is a journey. Events of this
-- type in the window that have no entry of this campaign yet (looked up in
-- deliveries_event_entry and journeys_event_entry), with
-- their customer as now; events of unknown customers wait for them.
-- History is as for candidates: entries (step 1) in every status but
-- failed and skipped, or for a journey its entries.
-- $7 leaves out events whose customer's history keeps them out already:
-- $8 sends or entries reached (0: no limit), a journey under way, or an
-- entry after $9 (null: no cooldown). $10 is a customer id, to read only
-- their events ('': everyone's).
SELECT e.dedup_key AS event_id, e.type AS event_type, e.occurred_at, e.amount::float8 AS amount, e.properties,
       e.occurred_at AS entered_at,
       c.id, c.email, c.first_name, c.timezone,
       c.subscribed AND NOT EXISTS (SELECT 1 FROM opted_out_addresses x WHERE x.email = lower(c.email)) AS subscribed,
       c.created_at, c.attributes, c.orders_count, c.total_spent::float8 AS total_spent,
       c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed,
       CASE WHEN $6::boolean THEN coalesce(hj.sends, 0) ELSE coalesce(h.sends, 0) END::integer AS sends,
       CASE WHEN $6::boolean THEN hj.last_occurrence ELSE h.last_occurrence END AS last_occurrence,
       coalesce(hj.active, false) AS active
FROM events e
-- One index lookup per due event for an entry it made already. Written as
-- NOT EXISTS, the planner, trusting statistics that have not seen the
-- newest events (it expects one due event), read every entry of the
-- campaign once per due event; a LIMIT keeps the lookup parameterized.
LEFT JOIN LATERAL (
    SELECT 1 AS found FROM deliveries d
    WHERE d.campaign = $1 AND d.event_id = e.dedup_key AND d.event_id <> '' AND d.step = 1
    LIMIT 1
) done_d ON true
LEFT JOIN LATERAL (
    SELECT 1 AS found FROM journeys j
    WHERE j.campaign = $1 AND j.event_id = e.dedup_key AND j.event_id <> ''
    LIMIT 1
) done_j ON true
JOIN customers c ON c.id = e.customer_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE d.status NOT IN ('failed', 'skipped')) AS sends,
           max(d.occurrence) FILTER (WHERE d.occurrence < $5 AND d.status NOT IN ('failed', 'skipped')) AS last_occurrence
    FROM deliveries d
    WHERE NOT $6::boolean AND d.campaign = $1 AND d.customer_id = c.id AND d.step = 1
) h ON true
LEFT JOIN LATERAL (
    -- a journey's history is of entries: every one counts
    SELECT count(*) AS sends,
           max(j.occurrence) FILTER (WHERE j.occurrence < $5) AS last_occurrence,
           bool_or(j.status = 'active') AS active
    FROM journeys j
    WHERE $6::boolean AND j.campaign = $1 AND j.customer_id = c.id
) hj ON true
WHERE e.type = $2 AND e.occurred_at > $3 AND e.occurred_at <= $4
  AND ($10::text = '' OR e.customer_id = $10::text)
  AND done_d.found IS NULL AND done_j.found IS NULL
  AND NOT ($7::boolean AND (
        ($8::integer > 0 AND CASE WHEN $6::boolean THEN coalesce(hj.sends, 0) ELSE coalesce(h.sends, 0) END >= $8::integer)
        OR coalesce(hj.active, false)
        OR coalesce(CASE WHEN $6::boolean THEN hj.last_occurrence ELSE h.last_occurrence END > $9::timestamptz, false)))
ORDER BY c.id, e.occurred_at, e.dedup_key;

-- name: due-stage-entries
-- $1 campaign, $2 stage, $3 exclusive lower and $4 inclusive upper bound
-- of observed_at, $5 the evaluation instant, $6 the delay in microseconds,
-- $7 and $8 entries a simulated sweep observed (a dry run; empty
-- otherwise), $9 whether the campaign is a journey, $10 a customer id to
-- read only their entries ('': everyone's). Entries into the stage in the
-- window without a delivery (or journey) of this campaign at their due
-- time, with their customer as now.
WITH entered AS (
    SELECT customer_id, observed_at
    FROM stage_changes
    WHERE entry AND to_stage = $2 AND observed_at > $3 AND observed_at <= $4
      AND ($10::text = '' OR customer_id = $10::text)
    UNION ALL
    SELECT s.customer_id COLLATE "C", s.observed_at
    FROM unnest($7::text[], $8::timestamptz[]) AS s (customer_id, observed_at)
    WHERE $10::text = '' OR s.customer_id = $10::text
)
SELECT '' AS event_id, '' AS event_type, NULL::timestamptz AS occurred_at, NULL::float8 AS amount, NULL::jsonb AS properties,
       en.observed_at AS entered_at,
       c.id, c.email, c.first_name, c.timezone,
       c.subscribed AND NOT EXISTS (SELECT 1 FROM opted_out_addresses x WHERE x.email = lower(c.email)) AS subscribed,
       c.created_at, c.attributes, c.orders_count, c.total_spent::float8 AS total_spent,
       c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed,
       CASE WHEN $9::boolean THEN coalesce(hj.sends, 0) ELSE coalesce(h.sends, 0) END::integer AS sends,
       CASE WHEN $9::boolean THEN hj.last_occurrence ELSE h.last_occurrence END AS last_occurrence,
       coalesce(hj.active, false) AS active
FROM entered en
JOIN customers c ON c.id = en.customer_id
LEFT JOIN LATERAL (
    SELECT count(*) FILTER (WHERE d.status NOT IN ('failed', 'skipped')) AS sends,
           max(d.occurrence) FILTER (WHERE d.occurrence < $5 AND d.status NOT IN ('failed', 'skipped')) AS last_occurrence
    FROM deliveries d
    WHERE NOT $9::boolean AND d.campaign = $1 AND d.customer_id = c.id AND d.step = 1
) h ON true
LEFT JOIN LATERAL (
    -- a journey's history is of entries: every one counts
    SELECT count(*) AS sends,
           max(j.occurrence) FILTER (WHERE j.occurrence < $5) AS last_occurrence,
           bool_or(j.status = 'active') AS active
    FROM journeys j
    WHERE $9::boolean AND j.campaign = $1 AND j.customer_id = c.id
) hj ON true
WHERE NOT EXISTS (
    SELECT 1 FROM deliveries d
    WHERE d.campaign = $1 AND d.customer_id = en.customer_id AND d.step = 1 AND d.event_id = ''
      AND d.occurrence = en.observed_at + $6::bigint * interval '1 microsecond'
)
AND NOT EXISTS (
    SELECT 1 FROM journeys j
    WHERE j.campaign = $1 AND j.customer_id = en.customer_id AND j.event_id = ''
      AND j.occurrence = en.observed_at + $6::bigint * interval '1 microsecond'
)
ORDER BY c.id, en.observed_at;

-- name: sweep-lock
-- Sweeps run one at a time, across processes: each compares with the
-- stages the previous one stored. 0x6e75727475726533 is "nurture3".
SELECT pg_advisory_xact_lock(7959953343309996339);

-- name: sweep-times
-- The latest sweep, and the latest one before $1.
SELECT (SELECT max(swept_at) FROM stage_sweeps),
       (SELECT max(swept_at) FROM stage_sweeps WHERE swept_at < $1);

-- name: sweep-customers
-- Every customer with the stage the latest sweep stored for them (null:
-- none yet). Both sides are read in id order, so rows stream.
SELECT c.id, c.email, c.first_name, c.timezone, c.subscribed, c.created_at, c.attributes,
       c.orders_count, c.total_spent::float8 AS total_spent, c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed,
       cs.stage AS current_stage
FROM customers c
LEFT JOIN customer_stages cs ON cs.customer_id = c.id
ORDER BY c.id;

-- name: sweep-customer
-- One customer as sweep-customers reads them, for a simulated sweep of
-- one person (explain).
SELECT c.id, c.email, c.first_name, c.timezone, c.subscribed, c.created_at, c.attributes,
       c.orders_count, c.total_spent::float8 AS total_spent, c.first_purchase_at, c.last_purchase_at, c.last_active_at,
       EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email)) AS suppressed,
       cs.stage AS current_stage
FROM customers c
LEFT JOIN customer_stages cs ON cs.customer_id = c.id
WHERE c.id = $1;

-- name: sweep-table
CREATE TEMPORARY TABLE sweep_changes (
    customer_id text COLLATE "C" NOT NULL,
    from_stage  text,
    to_stage    text NOT NULL,
    entry       boolean NOT NULL
) ON COMMIT DROP;

-- name: sweep-apply
-- $1 the sweep's instant. Only changes reach this table: the current
-- stages take them and the history keeps them.
WITH current AS (
    INSERT INTO customer_stages (customer_id, stage, since)
    SELECT customer_id, to_stage, $1 FROM sweep_changes
    ON CONFLICT (customer_id) DO UPDATE SET stage = excluded.stage, since = excluded.since
)
INSERT INTO stage_changes (customer_id, from_stage, to_stage, observed_at, entry)
SELECT customer_id, from_stage, to_stage, $1, entry FROM sweep_changes ORDER BY customer_id;

-- name: sweep-record
-- A sweep repeated at the same instant adds its counts to the first's.
INSERT INTO stage_sweeps (swept_at, customers, changes, entries)
VALUES ($1, $2, $3, $4)
ON CONFLICT (swept_at) DO UPDATE
SET customers = excluded.customers, changes = stage_sweeps.changes + excluded.changes,
    entries = stage_sweeps.entries + excluded.entries, updated_at = now();

-- name: stage-history
SELECT coalesce(from_stage, '') AS from_stage, to_stage, observed_at, entry
FROM stage_changes
WHERE customer_id = $1
ORDER BY seq;
