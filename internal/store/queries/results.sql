-- Results: attribution of purchases and the campaign report.

-- name: attribution-lock
-- Attribution runs one at a time and never beside an import (the import
-- lock, "nurture2"): the events it reads up to are all committed, and
-- none with a lower seq can commit later. It does not wait for an import:
-- false means one is under way, and attribution tries again later.
SELECT pg_try_advisory_xact_lock(7959953343309996338);

-- name: attribution-progress
SELECT last_seq FROM attribution_progress FOR UPDATE;

-- name: attribute
-- $1 the last seq read, $2 how many events to read at most, $3 and $4 the
-- conversion window of each campaign (seconds), $5 the window of every
-- other campaign. A purchase goes to the customer's most recent delivery
-- that was sent, or held out, at most a window before it (last touch);
-- a tie on time goes to the one due later, then to the campaign first
-- in name order, then to the later step (then the lowest id). The first
-- row returned has the number of events read and no campaign; one row per
-- campaign follows with its conversions recorded and their revenue.
WITH batch AS (
    SELECT seq, customer_id, type, occurred_at, amount
    FROM events
    WHERE seq > $1
    ORDER BY seq
    LIMIT $2
), windows AS (
    SELECT w.campaign, make_interval(secs => w.secs) AS win
    FROM unnest($3::text[], $4::float8[]) AS w (campaign, secs)
), attributed AS (
    INSERT INTO conversions (event_seq, delivery_id, campaign, occurred_at, amount)
    SELECT b.seq, d.id, d.campaign, b.occurred_at, coalesce(b.amount, 0)
    FROM batch b
    CROSS JOIN LATERAL (
        SELECT d.id, d.campaign
        FROM deliveries d
        LEFT JOIN windows w ON w.campaign = d.campaign
        WHERE d.customer_id = b.customer_id
          AND d.send_at <= b.occurred_at
          AND ((d.status = 'sent' AND d.sent_at <= b.occurred_at
                AND b.occurred_at <= d.sent_at + coalesce(w.win, make_interval(secs => $5)))
            OR (d.status = 'held_out'
                AND b.occurred_at <= d.send_at + coalesce(w.win, make_interval(secs => $5))))
        ORDER BY CASE WHEN d.status = 'sent' THEN d.sent_at ELSE d.send_at END DESC, d.send_at DESC, d.campaign, d.step DESC, d.id
        LIMIT 1
    ) d
    WHERE b.type = 'purchase'
    ON CONFLICT (event_seq) DO NOTHING
    RETURNING campaign, amount
), progress AS (
    UPDATE attribution_progress SET last_seq = (SELECT max(seq) FROM batch)
    WHERE EXISTS (SELECT 1 FROM batch)
)
SELECT '' AS campaign, (SELECT count(*) FROM batch) AS n, 0::float8 AS revenue
UNION ALL
(SELECT campaign, count(*), sum(amount)::float8 FROM attributed GROUP BY campaign ORDER BY campaign);

-- name: report
-- One row per campaign, variant and step of the deliveries whose send_at
-- lies in [$1, $2) (nulls: unbounded), $3 one campaign or every one.
-- unsubscribed counts sent deliveries followed by an opt-out through that
-- campaign's link, each opt-out on the last one before it; bounced and complained the deliveries a bounce or a
-- complaint was recorded on; converted counts deliveries with an
-- attributed purchase, and revenue sums their amounts; opened and clicked
-- count deliveries with a human open (a human click counts as an open
-- too: the email was read with its images blocked) and a human click;
-- entries_converted counts first steps whose entry earned a purchase on
-- any of its steps (for a single email, the delivery itself).
SELECT d.campaign, d.variant, d.step, d.status::text, coalesce(d.reason, '') AS reason,
       count(*)::bigint AS deliveries,
       -- an opt-out counts for the last email of the campaign before it
       count(*) FILTER (WHERE d.status = 'sent' AND EXISTS (
           SELECT 1 FROM consent_changes cc
           WHERE cc.customer_id = d.customer_id AND cc.campaign = d.campaign AND NOT cc.subscribed
             AND cc.changed_at >= d.sent_at
             AND NOT EXISTS (
                 SELECT 1 FROM deliveries n
                 WHERE n.campaign = d.campaign AND n.customer_id = d.customer_id AND n.status = 'sent'
                   AND n.sent_at > d.sent_at AND n.sent_at <= cc.changed_at)))::bigint AS unsubscribed,
       count(*) FILTER (WHERE d.bounce IS NOT NULL)::bigint AS bounced,
       count(*) FILTER (WHERE d.complained_at IS NOT NULL)::bigint AS complained,
       count(c.delivery_id)::bigint AS converted,
       coalesce(sum(c.revenue), 0)::float8 AS revenue,
       count(*) FILTER (WHERE t.opens > 0 OR t.clicks > 0)::bigint AS opened,
       count(*) FILTER (WHERE t.clicks > 0)::bigint AS clicked,
       count(*) FILTER (WHERE d.step = 1 AND EXISTS (
           SELECT 1 FROM deliveries e JOIN conversions ec ON ec.delivery_id = e.id
           WHERE e.campaign = d.campaign AND e.customer_id = d.customer_id
             AND e.occurrence = d.occurrence AND e.event_id = d.event_id))::bigint AS entries_converted
FROM deliveries d
LEFT JOIN (
    SELECT delivery_id, sum(amount) AS revenue FROM conversions GROUP BY delivery_id
) c ON c.delivery_id = d.id
LEFT JOIN delivery_tracking t ON t.delivery_id = d.id
WHERE d.send_at >= coalesce($1::timestamptz, '-infinity')
  AND d.send_at < coalesce($2::timestamptz, 'infinity')
  AND ($3::text = '' OR d.campaign = $3)
GROUP BY 1, 2, 3, 4, 5
ORDER BY 1, 2, 3, 4, 5;
