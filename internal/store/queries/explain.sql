-- What `nurture explain` reads about one customer.

-- name: explain-customer
-- The customer as a claim sees them: subscribed unless they or their
-- address opted out, and whether the address is suppressed.
SELECT c.id, c.email, c.first_name, c.timezone,
       c.subscribed AND NOT EXISTS (SELECT 1 FROM opted_out_addresses x WHERE x.email = lower(c.email)) AS subscribed,
       EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email)) AS suppressed,
       c.created_at, c.attributes, c.orders_count, c.total_spent::float8 AS total_spent,
       c.first_purchase_at, c.last_purchase_at, c.last_active_at
FROM customers c
WHERE c.id = $1;

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
