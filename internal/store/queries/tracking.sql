-- Results: opens and clicks recorded from the tracking handlers.

-- name: record-hits
-- $1 to $5 are the hits, one array element each: delivery id, kind (open
-- or click), the URL of a click ('' for an open), when, and whether the
-- user agent is a known link scanner; $6 the machine window in seconds.
-- A hit is machine-made when its user agent is a scanner's, when the
-- delivery is not yet recorded as sent, or when it comes less than the
-- window (2 s) after the send. Rows are written in delivery
-- order so that two processes never wait on each other in a cycle.
-- Returns the hits by campaign ('' for a delivery that no longer
-- exists: not recorded), kind and machine. The links of an erased
-- person's deliveries are counted, not kept.
WITH hits AS (
    SELECT h.delivery_id, h.kind, h.url, h.at, d.campaign, d.customer_id,
           (h.scanner OR d.sent_at IS NULL OR h.at < d.sent_at + make_interval(secs => $6)) AS machine
    FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::bool[]) AS h (delivery_id, kind, url, at, scanner)
    LEFT JOIN deliveries d ON d.id = h.delivery_id
), per_delivery AS (
    INSERT INTO delivery_tracking AS t (delivery_id, opens, first_opened_at, last_opened_at,
        clicks, first_clicked_at, last_clicked_at, machine_opens, machine_clicks, last_machine_at)
    SELECT delivery_id,
           count(*) FILTER (WHERE kind = 'open' AND NOT machine),
           min(at) FILTER (WHERE kind = 'open' AND NOT machine),
           max(at) FILTER (WHERE kind = 'open' AND NOT machine),
           count(*) FILTER (WHERE kind = 'click' AND NOT machine),
           min(at) FILTER (WHERE kind = 'click' AND NOT machine),
           max(at) FILTER (WHERE kind = 'click' AND NOT machine),
           count(*) FILTER (WHERE kind = 'open' AND machine),
           count(*) FILTER (WHERE kind = 'click' AND machine),
           max(at) FILTER (WHERE machine)
    FROM hits
    WHERE campaign IS NOT NULL
    GROUP BY delivery_id
    ORDER BY delivery_id
    ON CONFLICT (delivery_id) DO UPDATE SET
        opens            = t.opens + excluded.opens,
        first_opened_at  = least(t.first_opened_at, excluded.first_opened_at),
        last_opened_at   = greatest(t.last_opened_at, excluded.last_opened_at),
        clicks           = t.clicks + excluded.clicks,
        first_clicked_at = least(t.first_clicked_at, excluded.first_clicked_at),
        last_clicked_at  = greatest(t.last_clicked_at, excluded.last_clicked_at),
        machine_opens    = t.machine_opens + excluded.machine_opens,
        machine_clicks   = t.machine_clicks + excluded.machine_clicks,
        last_machine_at  = greatest(t.last_machine_at, excluded.last_machine_at)
), per_url AS (
    INSERT INTO delivery_clicks AS c (delivery_id, url, clicks, machine_clicks, first_clicked_at, last_clicked_at)
    SELECT delivery_id, url,
           count(*) FILTER (WHERE NOT machine),
           count(*) FILTER (WHERE machine),
           min(at) FILTER (WHERE NOT machine),
           max(at) FILTER (WHERE NOT machine)
    FROM hits
    -- an erased person's links are not kept: a link may name who clicked
    WHERE campaign IS NOT NULL AND kind = 'click' AND customer_id NOT LIKE 'erased-%'
    GROUP BY delivery_id, url
    ORDER BY delivery_id, url
    ON CONFLICT (delivery_id, url) DO UPDATE SET
        clicks           = c.clicks + excluded.clicks,
        machine_clicks   = c.machine_clicks + excluded.machine_clicks,
        first_clicked_at = least(c.first_clicked_at, excluded.first_clicked_at),
        last_clicked_at  = greatest(c.last_clicked_at, excluded.last_clicked_at)
)
SELECT coalesce(campaign, '') AS campaign, kind, machine, count(*)::bigint
FROM hits
GROUP BY 1, 2, 3
ORDER BY 1, 2, 3;

-- name: delivery-tracking
-- What was recorded of one delivery's opens and clicks.
SELECT opens, first_opened_at, last_opened_at, clicks, first_clicked_at, last_clicked_at,
       machine_opens, machine_clicks, last_machine_at
FROM delivery_tracking
WHERE delivery_id = $1;

-- name: delivery-clicks
-- The links of one delivery that were clicked, by URL.
SELECT url, clicks, machine_clicks, first_clicked_at, last_clicked_at
FROM delivery_clicks
WHERE delivery_id = $1
ORDER BY url;
