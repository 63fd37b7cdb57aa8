-- Rollups for the results pages: campaign_daily, refreshed incrementally
-- by the scheduler's leader, and the stage counts and flows each sweep
-- records.

-- name: rollup-try-lock
-- One refresh at a time; a refresh that finds another under way skips.
-- 0x6e75727475726534 is "nurture4".
SELECT pg_try_advisory_xact_lock(7959953343309996340);

-- name: rollup-progress
-- The previous refresh's bound (null: none yet) and this transaction's:
-- every transaction older than its snapshot's xmin is visible to it.
SELECT bound, pg_snapshot_xmin(pg_current_snapshot()) FROM rollup_progress FOR UPDATE;

-- name: rollup-dirty-table
CREATE TEMPORARY TABLE rollup_dirty (
    campaign text COLLATE "C" NOT NULL,
    day      date NOT NULL,
    PRIMARY KEY (campaign, day)
) ON COMMIT DROP;

-- name: rollup-dirty-all
-- A first refresh: every day of every campaign. What rollup_log holds is
-- counted with them.
WITH logged AS (
    DELETE FROM rollup_log
)
INSERT INTO rollup_dirty (campaign, day)
SELECT DISTINCT campaign, (send_at AT TIME ZONE 'UTC')::date FROM deliveries;

-- name: rollup-dirty
-- $1 the previous refresh's bound. The days whose counts may have
-- changed: those that rollup_log names (every statement that wrote
-- deliveries logs the days of the rows it wrote, so a bounce or a
-- complaint, which is written on the delivery, logs its day too), taken
-- out of it; and the days of deliveries that earned a purchase, were
-- first opened or clicked, or whose recipient opted out through the
-- campaign's link since the bound, each read through its touched index.
-- The refresh is one repeatable-read transaction: rows of rollup_log
-- written by a transaction that commits after its snapshot stay for the
-- next refresh, and the counts read the same snapshot.
WITH logged AS (
    DELETE FROM rollup_log RETURNING campaign, day
)
INSERT INTO rollup_dirty (campaign, day)
SELECT campaign, day FROM logged
UNION
-- a purchase changes the counts of every step of its entry
SELECT e.campaign, (e.send_at AT TIME ZONE 'UTC')::date
FROM conversions c
JOIN deliveries d ON d.id = c.delivery_id
JOIN deliveries e ON e.campaign = d.campaign AND e.customer_id = d.customer_id
                 AND e.occurrence = d.occurrence AND e.event_id = d.event_id
WHERE c.touched >= $1::xid8
UNION
SELECT d.campaign, (d.send_at AT TIME ZONE 'UTC')::date
FROM delivery_tracking t JOIN deliveries d ON d.id = t.delivery_id
WHERE t.touched >= $1::xid8
UNION
SELECT d.campaign, (d.send_at AT TIME ZONE 'UTC')::date
FROM consent_changes cc JOIN deliveries d ON d.campaign = cc.campaign AND d.customer_id = cc.customer_id
WHERE cc.touched >= $1::xid8 AND cc.campaign IS NOT NULL;

-- name: rollup-dirty-analyze
-- The planner then knows how few days there are.
ANALYZE rollup_dirty;

-- name: rollup-clear
-- $1 whether this is a first refresh: then every row goes.
DELETE FROM campaign_daily cd
WHERE $1::boolean OR EXISTS (SELECT 1 FROM rollup_dirty k WHERE k.campaign = cd.campaign AND k.day = cd.day);

-- name: rollup-count-all
-- A first refresh counts every delivery at once, with hash joins: the
-- counts of the report query (results.sql, report) per day.
INSERT INTO campaign_daily (day, campaign, variant, step, status, reason, deliveries, unsubscribed, bounced, complained,
                            converted, revenue, opened, clicked, entries_converted)
SELECT (d.send_at AT TIME ZONE 'UTC')::date, d.campaign, d.variant, d.step, d.status::text, coalesce(d.reason, ''),
       count(*),
       count(*) FILTER (WHERE d.status = 'sent' AND EXISTS (
           SELECT 1 FROM consent_changes cc
           WHERE cc.customer_id = d.customer_id AND cc.campaign = d.campaign AND NOT cc.subscribed
             AND cc.changed_at >= d.sent_at
             AND NOT EXISTS (
                 SELECT 1 FROM deliveries n
                 WHERE n.campaign = d.campaign AND n.customer_id = d.customer_id AND n.status = 'sent'
                   AND n.sent_at > d.sent_at AND n.sent_at <= cc.changed_at))),
       count(*) FILTER (WHERE d.bounce IS NOT NULL),
       count(*) FILTER (WHERE d.complained_at IS NOT NULL),
       count(c.revenue),
       coalesce(sum(c.revenue), 0),
       count(*) FILTER (WHERE t.opens > 0 OR t.clicks > 0),
       count(*) FILTER (WHERE t.clicks > 0),
       count(*) FILTER (WHERE d.step = 1 AND EXISTS (
           SELECT 1 FROM deliveries e JOIN conversions ec ON ec.delivery_id = e.id
           WHERE e.campaign = d.campaign AND e.customer_id = d.customer_id
             AND e.occurrence = d.occurrence AND e.event_id = d.event_id))
FROM deliveries d
LEFT JOIN (SELECT delivery_id, sum(amount) AS revenue FROM conversions GROUP BY delivery_id) c ON c.delivery_id = d.id
LEFT JOIN delivery_tracking t ON t.delivery_id = d.id
GROUP BY 1, 2, 3, 4, 5, 6;

-- name: rollup-count
-- The same counts for each dirty day, each read through
-- deliveries_campaign_send_at: OFFSET 0 keeps the LATERAL subquery from
-- being flattened into a scan of every delivery.
INSERT INTO campaign_daily (day, campaign, variant, step, status, reason, deliveries, unsubscribed, bounced, complained,
                            converted, revenue, opened, clicked, entries_converted)
SELECT k.day, k.campaign, d.variant, d.step, d.status::text, coalesce(d.reason, ''),
       count(*),
       count(*) FILTER (WHERE d.status = 'sent' AND EXISTS (
           SELECT 1 FROM consent_changes cc
           WHERE cc.customer_id = d.customer_id AND cc.campaign = k.campaign AND NOT cc.subscribed
             AND cc.changed_at >= d.sent_at
             AND NOT EXISTS (
                 SELECT 1 FROM deliveries n
                 WHERE n.campaign = k.campaign AND n.customer_id = d.customer_id AND n.status = 'sent'
                   AND n.sent_at > d.sent_at AND n.sent_at <= cc.changed_at))),
       count(*) FILTER (WHERE d.bounce IS NOT NULL),
       count(*) FILTER (WHERE d.complained_at IS NOT NULL),
       count(d.revenue),
       coalesce(sum(d.revenue), 0),
       count(*) FILTER (WHERE d.opens > 0 OR d.clicks > 0),
       count(*) FILTER (WHERE d.clicks > 0),
       count(*) FILTER (WHERE d.step = 1 AND EXISTS (
           SELECT 1 FROM deliveries e JOIN conversions ec ON ec.delivery_id = e.id
           WHERE e.campaign = k.campaign AND e.customer_id = d.customer_id
             AND e.occurrence = d.occurrence AND e.event_id = d.event_id))
FROM rollup_dirty k
CROSS JOIN LATERAL (
    SELECT d.customer_id, d.occurrence, d.event_id, d.variant, d.step, d.status, d.reason, d.sent_at, d.bounce, d.complained_at,
           t.opens, t.clicks,
           (SELECT sum(amount) FROM conversions c WHERE c.delivery_id = d.id) AS revenue
    FROM deliveries d
    LEFT JOIN delivery_tracking t ON t.delivery_id = d.id
    WHERE d.campaign = k.campaign
      AND d.send_at >= k.day::timestamp AT TIME ZONE 'UTC'
      AND d.send_at < (k.day + 1)::timestamp AT TIME ZONE 'UTC'
    OFFSET 0
) d
GROUP BY 1, 2, 3, 4, 5, 6;

-- name: rollup-done
UPDATE rollup_progress SET bound = $1, refreshed_at = $2;

-- name: rollup-refreshed-at
SELECT refreshed_at FROM rollup_progress;

-- name: campaign-totals
-- The report rows of every campaign ($1 '') or one, from the rollup.
SELECT campaign, variant, step, status, reason,
       sum(deliveries)::bigint, sum(unsubscribed)::bigint, sum(bounced)::bigint, sum(complained)::bigint,
       sum(converted)::bigint, sum(revenue)::float8, sum(opened)::bigint, sum(clicked)::bigint, sum(entries_converted)::bigint
FROM campaign_daily
WHERE $1::text = '' OR campaign = $1
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5;

-- name: campaign-days
-- One campaign's deliveries per day: all of them, those sent, opened and
-- clicked, and of the sent ones the converted ones with their revenue.
SELECT day,
       sum(deliveries)::bigint,
       coalesce(sum(deliveries) FILTER (WHERE status = 'sent'), 0)::bigint,
       sum(opened)::bigint,
       sum(clicked)::bigint,
       coalesce(sum(converted) FILTER (WHERE status = 'sent'), 0)::bigint,
       coalesce(sum(revenue) FILTER (WHERE status = 'sent'), 0)::float8
FROM campaign_daily
WHERE campaign = $1
GROUP BY day
ORDER BY day;

-- name: sweep-counts-clear
-- A sweep repeated at the same instant replaces the counts.
DELETE FROM stage_counts WHERE swept_at = $1;

-- name: sweep-counts
-- $1 the sweep's instant, $2..$4 each stage's customers and total_spent.
INSERT INTO stage_counts (swept_at, stage, customers, total_spent)
SELECT $1, s.stage, s.customers, s.total_spent
FROM unnest($2::text[], $3::bigint[], $4::numeric[]) AS s (stage, customers, total_spent);

-- name: sweep-flows
-- $1 the sweep's instant: the changes it recorded, by from and to stage;
-- a sweep repeated at the same instant adds its own.
INSERT INTO stage_flows (swept_at, from_stage, to_stage, customers)
SELECT $1, coalesce(from_stage, ''), to_stage, count(*) FROM sweep_changes GROUP BY 2, 3
ON CONFLICT (swept_at, from_stage, to_stage) DO UPDATE SET customers = stage_flows.customers + excluded.customers;

-- name: stage-days
-- Each stage's customers and total_spent at the last sweep of each UTC
-- day in [$1, $2).
WITH last AS (
    SELECT DISTINCT ON ((swept_at AT TIME ZONE 'UTC')::date) swept_at
    FROM stage_counts
    WHERE swept_at >= $1 AND swept_at < $2
    ORDER BY (swept_at AT TIME ZONE 'UTC')::date, swept_at DESC
)
SELECT s.swept_at, s.stage, s.customers, s.total_spent::float8
FROM last JOIN stage_counts s USING (swept_at)
ORDER BY s.swept_at, s.stage;

-- name: stage-latest
-- Each stage's customers and total_spent at the latest sweep.
SELECT s.swept_at, s.stage, s.customers, s.total_spent::float8
FROM stage_counts s
WHERE s.swept_at = (SELECT max(swept_at) FROM stage_counts)
ORDER BY s.stage;

-- name: stage-flows
-- The changes recorded by sweeps in [$1, $2), by from and to stage.
SELECT from_stage, to_stage, sum(customers)::bigint
FROM stage_flows
WHERE swept_at >= $1 AND swept_at < $2
GROUP BY 1, 2
ORDER BY 1, 2;
