-- Deliveries: planning, queueing, claiming by workers and outcomes.

-- name: insert-deliveries
-- Planning is idempotent: a delivery that exists for the same campaign,
-- customer, occurrence, step and event is left alone and not returned, and
-- so is a second entry from one event. Rows may be born held out or
-- skipped (the frequency cap): those are finished at once.
INSERT INTO deliveries (campaign, customer_id, occurrence, stage, template, queue, step, event_id, variant, send_at,
                        status, reason, skipped_at)
SELECT d.campaign, d.customer_id, d.occurrence, d.stage, d.template, d.queue, d.step, d.event_id, d.variant, d.send_at,
       d.status::delivery_status, nullif(d.reason, ''), CASE WHEN d.status = 'skipped' THEN now() END
FROM unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[],
            $7::integer[], $8::text[], $9::text[], $10::timestamptz[], $11::text[], $12::text[])
     AS d (campaign, customer_id, occurrence, stage, template, queue, step, event_id, variant, send_at, status, reason)
ON CONFLICT DO NOTHING
RETURNING id::text, queue, send_at, occurrence, status::text, coalesce(reason, ''), campaign;

-- name: cap-lock
-- One lock serialises every insert under the global frequency cap, across
-- processes: the count and the insert that relies on it are atomic.
SELECT pg_advisory_xact_lock($1);

-- name: cap-sends
-- What counts toward the global frequency cap: deliveries planned, queued,
-- being sent or sent, by send time, for the given customers in a range.
SELECT customer_id, send_at
FROM deliveries
WHERE customer_id = ANY ($1::text[]) AND send_at > $2 AND send_at < $3
  AND status IN ('planned', 'queued', 'sending', 'sent')
ORDER BY customer_id, send_at;

-- name: mark-queued
-- $2 is each delivery's batch task, '' for its own task. updated_at stays
-- as planning set it a moment before, so deliveries_open is left alone;
-- no index of deliveries reads the columns written, so the update is
-- heap-only (migrations 0014 and 0015).
--
-- The status is compared as text so that the column's statistics do not
-- estimate how many rows pass: statistics gathered when no delivery was
-- planned (every row queued or sent) made PostgreSQL expect one row, scan
-- deliveries and join the ids by a nested loop, quadratic in the chunk
-- (0.9 s for 1,649 rows, 54 ms this way).
UPDATE deliveries d
SET status = 'queued', queued_at = now(), task = nullif(t.task, '')
FROM unnest($1::uuid[], $2::text[]) AS t (id, task)
WHERE d.id = t.id AND d.id = ANY ($1::uuid[])
  AND d.status::text <> ALL ('{queued,sending,sent,failed,skipped,held_out}'::text[]);

-- name: touch
-- The reconciler enqueued these again: planned ones are queued now, and
-- every unfinished one waits a full period before it is looked at again.
UPDATE deliveries
SET status    = CASE WHEN status = 'planned' THEN 'queued' ELSE status END,
    queued_at = CASE WHEN status = 'planned' THEN now() ELSE queued_at END,
    updated_at = now()
WHERE id = ANY ($1::uuid[]) AND status <> ALL ('{sent,failed,skipped,held_out}');

-- name: detach
-- The reconciler replaces a batch task that is gone by the deliveries'
-- own tasks: detached first, so that the new tasks can claim them. Only
-- rows the listed batch still carries change, and a sending one only when
-- it has been idle for $3: a batch the reconciler took for gone that
-- claimed it in between (a dashboard run, a task Redis lost while a worker
-- ran it) keeps it. The caller enqueues own tasks for the ids returned.
UPDATE deliveries d
SET task = NULL
FROM unnest($1::uuid[], $2::text[]) AS t (id, task)
WHERE d.id = t.id AND d.id = ANY ($1::uuid[]) AND d.task = t.task
  AND d.status <> ALL ('{sent,failed,skipped,held_out}')
  AND (d.status <> 'sending' OR greatest(d.updated_at, d.sending_at) < now() - $3::interval)
RETURNING d.id::text;

-- name: active-queues
-- Queues that still hold work: a worker must keep serving them even after
-- the campaign that used them moved to another queue or went away.
-- deliveries_open lists the unfinished deliveries (migration 0015).
SELECT DISTINCT d.queue
FROM deliveries_open o
JOIN deliveries d ON d.id = o.id
ORDER BY d.queue;

-- name: unfinished
-- Unfinished deliveries idle for $1: neither written (updated_at) nor
-- claimed (sending_at, which a claim sets instead of updated_at) since.
-- deliveries_open keeps updated_at of each unfinished delivery, indexed.
SELECT d.id::text, d.queue, d.send_at, d.campaign, coalesce(d.task, '')
FROM deliveries_open o
JOIN deliveries d ON d.id = o.id
WHERE o.updated_at < now() - $1::interval
  AND (d.sending_at IS NULL OR d.sending_at < now() - $1::interval)
ORDER BY o.updated_at, o.id
LIMIT $2;

-- name: unfinished-after-loss
-- After Redis lost its data: every planned or queued delivery at once (its
-- task may be gone), and those sending for longer than $1 (a worker still
-- sending one has finished or given up by then).
SELECT d.id::text, d.queue, d.send_at, d.campaign, coalesce(d.task, '')
FROM deliveries_open o
JOIN deliveries d ON d.id = o.id
WHERE d.status <> 'sending' OR greatest(d.updated_at, d.sending_at) < now() - $1::interval
ORDER BY o.updated_at, o.id
LIMIT $2;

-- name: claim
-- Moves each unfinished delivery to sending and returns it with its
-- customer as it is now. Only the rows claimed come back, each with its
-- input position; the caller reads the others with claim-unclaimed, which
-- is rare (a duplicate task, a delivery finished or carried by another
-- task), rather than every claim reading each row twice.
-- Only the task the row names may claim it ($2: the claiming task's id,
-- which for a delivery's own task is the delivery id). An id given twice
-- (two tasks claiming one delivery in one statement) is claimed for one
-- of them at most.
-- sending_at is the claim's time; updated_at stays, so that the claim
-- leaves deliveries_open alone and is heap-only (migrations 0014 and 0015).
-- "= ANY" scans the primary key in id order, and the caller sorts the
-- ids, so concurrent claims lock rows in the same order and cannot
-- deadlock.
WITH claimed AS (
    UPDATE deliveries d
    SET status = 'sending', attempts = d.attempts + 1, sending_at = now()
    FROM unnest($1::uuid[], $2::text[]) WITH ORDINALITY AS i (id, task, ord)
    WHERE d.id = ANY ($1::uuid[]) AND i.id = d.id AND coalesce(d.task, d.id::text) = i.task
      AND d.status <> ALL ('{sent,failed,skipped,held_out}')
    RETURNING i.ord, d.campaign, d.customer_id, d.occurrence, d.stage, d.template, d.attempts,
              d.step, d.event_id, d.variant, d.send_at
)
SELECT cl.ord::integer, cl.campaign, cl.occurrence, cl.stage, cl.template, cl.step, cl.event_id, cl.variant,
       cl.send_at, cl.attempts,
       c.id IS NOT NULL AS found,
       cl.customer_id,
       coalesce(c.email, '') AS email,
       coalesce(c.first_name, '') AS first_name,
       coalesce(c.timezone, '') AS timezone,
       coalesce(c.subscribed, false)
           AND NOT EXISTS (SELECT 1 FROM opted_out_addresses x WHERE x.email = lower(c.email)) AS subscribed,
       c.created_at,
       coalesce(c.attributes, '{}') AS attributes,
       coalesce(c.orders_count, 0) AS orders_count,
       coalesce(c.total_spent, 0)::float8 AS total_spent,
       c.first_purchase_at,
       c.last_purchase_at,
       c.last_active_at,
       (EXISTS (SELECT 1 FROM suppressions s WHERE s.email = lower(c.email))
           OR EXISTS (SELECT 1 FROM erased_addresses ea WHERE ea.hash = c.email_hash)) AS suppressed
FROM claimed cl
LEFT JOIN customers c ON c.id = cl.customer_id;

-- name: claim-unclaimed
-- The deliveries a claim did not take, as they are now, by input
-- position; ids with no row are left out.
SELECT i.ord::integer, d.campaign, d.occurrence, d.stage, d.template, d.step, d.event_id, d.variant, d.send_at,
       d.status::text, d.attempts
FROM unnest($1::uuid[]) WITH ORDINALITY AS i (id, ord)
JOIN deliveries d ON d.id = i.id;

-- name: record
-- Only deliveries being sent take an outcome: a finished delivery is never
-- changed again, whatever a late or duplicate worker reports; and an
-- outcome for an attempt that a later claim took over is refused. The caller
-- sorts the outcomes by id, so concurrent batches lock rows in one order.
UPDATE deliveries d
SET status     = (CASE o.status WHEN 'retry' THEN 'queued' ELSE o.status END)::delivery_status,
    reason     = coalesce(nullif(o.reason, ''), d.reason),
    last_error = coalesce(nullif(o.error, ''), d.last_error),
    message_id = coalesce(nullif(o.message_id, ''), d.message_id),
    smtp_reply = coalesce(nullif(o.reply, ''), d.smtp_reply),
    queued_at  = CASE WHEN o.status = 'retry' THEN now() ELSE d.queued_at END,
    task       = CASE WHEN o.status = 'retry' THEN NULL ELSE d.task END,
    sent_at    = CASE WHEN o.status = 'sent' THEN coalesce(o.sent_at, now()) ELSE d.sent_at END,
    failed_at  = CASE WHEN o.status = 'failed' THEN now() ELSE d.failed_at END,
    skipped_at = CASE WHEN o.status = 'skipped' THEN now() ELSE d.skipped_at END,
    updated_at = now()
FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::integer[], $8::timestamptz[])
     AS o (id, status, reason, error, message_id, reply, attempt, sent_at)
WHERE d.id = o.id AND d.status = 'sending' AND (o.attempt = 0 OR d.attempts = o.attempt)
RETURNING d.id::text;

-- name: delivery
SELECT id::text, campaign, customer_id, occurrence, stage, template, queue, status::text,
       coalesce(reason, ''), attempts, coalesce(last_error, ''), coalesce(message_id, ''), coalesce(smtp_reply, ''),
       planned_at, queued_at, sending_at, sent_at, failed_at, skipped_at, greatest(updated_at, queued_at, sending_at) AS updated_at,
       step, event_id, variant, send_at
FROM deliveries
WHERE id = $1;

-- name: deliveries
SELECT id::text, campaign, customer_id, occurrence, stage, template, queue, status::text,
       coalesce(reason, ''), attempts, coalesce(last_error, ''), coalesce(message_id, ''), coalesce(smtp_reply, ''),
       planned_at, queued_at, sending_at, sent_at, failed_at, skipped_at, greatest(updated_at, queued_at, sending_at) AS updated_at,
       step, event_id, variant, send_at
FROM deliveries
WHERE ($1 = '' OR campaign = $1) AND ($2 = '' OR customer_id = $2) AND ($3 = '' OR status::text = $3)
ORDER BY campaign, customer_id, occurrence, step, event_id;

-- name: delivery-statuses
SELECT id::text, status::text
FROM deliveries
WHERE id = ANY ($1::uuid[]);

-- name: delivery-counts
-- Statuses sort in their life order: planned, queued, sending, sent, failed, skipped.
SELECT campaign, stage, status::text AS status_name, count(*)::integer AS n
FROM deliveries
GROUP BY campaign, stage, status
ORDER BY campaign, stage, status;

-- name: try-leader
SELECT pg_try_advisory_lock($1);

-- name: release-leader
SELECT pg_advisory_unlock($1);

-- name: defer-deliveries
-- A worker picked these up before their send time or outside their send
-- window: back to queued with the new send time. A deferral is not a send
-- attempt, so the claim's attempt is given back. Only the claim that is
-- current may defer (the same guard as record).
UPDATE deliveries d
SET status = 'queued', send_at = o.send_at, attempts = d.attempts - 1, queued_at = now(), updated_at = now(),
    task = NULL
FROM unnest($1::uuid[], $2::timestamptz[], $3::integer[]) AS o (id, send_at, attempt)
WHERE d.id = o.id AND d.status = 'sending' AND d.attempts = o.attempt
RETURNING d.id::text;
