-- What `nurture explain` reads about one customer.

-- name: explain-history
-- The customer's history of each campaign as of $2, as the candidate scans
-- count it: entries of single emails from deliveries, of journeys from
-- journeys.
SELECT campaign, false AS journey,
       (count(*) FILTER (WHERE status NOT IN ('failed', 'skipped')))::integer AS sends,
       max(occurrence) FILTER (WHERE occurrence < $2 AND status NOT IN ('failed', 'skipped')) AS last_occurrence,
       bool_or(occurrence = $2) AS planned,
       false AS active
FROM deliveries
WHERE customer_id = $1 AND step = 1
GROUP BY campaign
UNION ALL
SELECT campaign, true AS journey,
       count(*)::integer AS sends,
       max(occurrence) FILTER (WHERE occurrence < $2) AS last_occurrence,
       bool_or(occurrence = $2) AS planned,
       bool_or(status = 'active') AS active
FROM journeys
WHERE customer_id = $1
GROUP BY campaign;

-- name: event
-- One event by its id (dedup_key), as expressions see it.
SELECT type, occurred_at, amount::float8 AS amount, properties
FROM events
WHERE dedup_key = $1;
