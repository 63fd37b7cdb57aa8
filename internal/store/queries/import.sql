-- Imports of customers and events. A batch of customers is copied into a
-- temporary table, then merged into the real tables with one or two
-- statements. A batch of events is copied straight into events, and the
-- facts of its customers are moved by sums computed in Go; when that copy
-- meets a key imported before, the batch goes through the temporary table
-- of events instead.

-- name: import-lock
-- Imports run one at a time: a customer's first import computes its facts
-- from the events already there, which must include every committed event.
-- 0x6e75727475726532 is "nurture2" in ASCII.
SELECT pg_advisory_xact_lock(7959953343309996338);

-- name: import-customers-table
CREATE TEMPORARY TABLE import_customers (
    ord        integer NOT NULL, -- position in the batch: the last line of an id wins
    id         text NOT NULL,
    email      text NOT NULL,
    first_name text NOT NULL,
    timezone   text NOT NULL,
    subscribed boolean NOT NULL,
    created_at timestamptz,      -- null: now() for a new customer, unchanged for an existing one
    attributes jsonb NOT NULL
) ON COMMIT DROP;

-- name: import-customers-clear
TRUNCATE import_customers;

-- name: import-customers-update
-- $1 is the time of consent changes. Existing customers take the imported
-- values; their facts stay as they are. An import may unsubscribe anyone,
-- but subscribes only customers without an opt-out of their own
-- (opted_out_at): the import's true is ignored for them. Rows that would
-- not change are left alone, so a re-import writes nothing.
--
-- o is the row as the statement's snapshot saw it, for the consent history.
-- Only an unsubscribe may change the row between that snapshot and the
-- update (re-subscriptions wait for imports): the row then has an opt-out
-- of the person's, and the import changed nothing of its consent.
WITH updated AS (
    UPDATE customers c
    SET email      = t.email,
        first_name = t.first_name,
        timezone   = t.timezone,
        subscribed = t.subscribed AND c.opted_out_at IS NULL,
        created_at = coalesce(t.created_at, c.created_at),
        attributes = t.attributes,
        updated_at = now()
    FROM (SELECT DISTINCT ON (id) * FROM import_customers ORDER BY id, ord DESC) t, customers o
    WHERE c.id = t.id
      AND o.id = t.id
      AND (c.email, c.first_name, c.timezone, c.subscribed, c.created_at, c.attributes)
          IS DISTINCT FROM
          (t.email, t.first_name, t.timezone, t.subscribed AND c.opted_out_at IS NULL,
           coalesce(t.created_at, c.created_at), t.attributes)
    RETURNING c.id, c.subscribed, c.opted_out_at, o.subscribed AS was_subscribed
), history AS (
    INSERT INTO consent_changes (customer_id, subscribed, source, changed_at)
    SELECT id, subscribed, 'import', $1
    FROM updated
    WHERE subscribed <> was_subscribed AND opted_out_at IS NULL
    ORDER BY id
)
SELECT count(*) FROM updated;

-- name: import-customers-insert
-- $1 is the time of consent changes. New customers get the facts of the
-- events that arrived before them; those created unsubscribed start their
-- consent history.
WITH inserted AS (
    INSERT INTO customers (
        id, email, first_name, timezone, subscribed, created_at, attributes,
        orders_count, total_spent, first_purchase_at, last_purchase_at, last_event_at
    )
    SELECT t.id, t.email, t.first_name, t.timezone, t.subscribed, coalesce(t.created_at, now()), t.attributes,
           f.orders_count, coalesce(f.total_spent, 0), f.first_purchase_at, f.last_purchase_at, f.last_event_at
    FROM (SELECT DISTINCT ON (id) * FROM import_customers ORDER BY id, ord DESC) t
    CROSS JOIN LATERAL (
        SELECT count(*) FILTER (WHERE e.type = 'purchase')            AS orders_count,
               sum(e.amount) FILTER (WHERE e.type = 'purchase')       AS total_spent,
               min(e.occurred_at) FILTER (WHERE e.type = 'purchase')  AS first_purchase_at,
               max(e.occurred_at) FILTER (WHERE e.type = 'purchase')  AS last_purchase_at,
               max(e.occurred_at)                                     AS last_event_at
        FROM events e
        WHERE e.customer_id = t.id
    ) f
    WHERE NOT EXISTS (SELECT 1 FROM customers c WHERE c.id = t.id)
    ORDER BY t.id
    RETURNING id, subscribed
), history AS (
    INSERT INTO consent_changes (customer_id, subscribed, source, changed_at)
    SELECT id, false, 'import', $1
    FROM inserted
    WHERE NOT subscribed
    ORDER BY id
)
SELECT count(*) FROM inserted;

-- name: import-events-existing
-- $1 the dedup keys of a batch, each once: those imported before.
SELECT e.dedup_key
FROM events e
WHERE e.dedup_key = ANY ($1::text[]);

-- name: import-events-savepoint
-- Taken before the copy into events: a key imported before fails the
-- copy, which is rolled back to here, and the batch is written again by
-- import-events-insert.
SAVEPOINT import_events_copy;

-- name: import-events-release
RELEASE SAVEPOINT import_events_copy;

-- name: import-events-rollback
ROLLBACK TO SAVEPOINT import_events_copy;

-- name: import-events-facts
-- The facts of the events just copied into events, one row per customer:
-- $1 customer ids, $2 purchases, $3 the purchases' amounts in cents, $4
-- and $5 the first and last purchase (null without one), $6 the last
-- event. As in import-events-insert, customers not imported yet update no
-- row, and a customer whose facts would stay as they are is not written.
UPDATE customers c
SET orders_count      = c.orders_count + a.orders_count,
    total_spent       = c.total_spent + a.cents * 0.01,
    first_purchase_at = least(c.first_purchase_at, a.first_purchase_at),
    last_purchase_at  = greatest(c.last_purchase_at, a.last_purchase_at),
    last_event_at     = greatest(c.last_event_at, a.last_event_at),
    updated_at        = now()
FROM unnest($1::text[], $2::integer[], $3::bigint[], $4::timestamptz[], $5::timestamptz[], $6::timestamptz[])
     AS a (customer_id, orders_count, cents, first_purchase_at, last_purchase_at, last_event_at)
WHERE c.id = a.customer_id
  AND (a.orders_count > 0 OR c.last_event_at IS NULL OR a.last_event_at > c.last_event_at);

-- name: import-events-table
CREATE TEMPORARY TABLE import_events (
    dedup_key   text NOT NULL,
    customer_id text NOT NULL,
    type        text NOT NULL,
    occurred_at timestamptz NOT NULL,
    amount      numeric(16, 2),
    properties  jsonb NOT NULL
) ON COMMIT DROP;

-- name: import-events-clear
TRUNCATE import_events;

-- name: import-events-insert
-- Facts move by exactly the events inserted here: a repeated dedup_key
-- inserts nothing and so changes nothing. Events of customers not imported
-- yet update no row; import-customers-insert counts them later. A customer
-- whose facts the events leave as they are (no purchase, nothing later
-- than the last event: history imported late) is not written at all.
WITH inserted AS (
    INSERT INTO events (dedup_key, customer_id, type, occurred_at, amount, properties)
    SELECT dedup_key, customer_id, type, occurred_at, amount, properties
    FROM import_events
    ON CONFLICT (dedup_key) DO NOTHING
    RETURNING customer_id, type, occurred_at, amount
), added AS (
    SELECT customer_id,
           count(*)                                                   AS events,
           count(*) FILTER (WHERE type = 'purchase')                  AS orders_count,
           coalesce(sum(amount) FILTER (WHERE type = 'purchase'), 0)  AS total_spent,
           min(occurred_at) FILTER (WHERE type = 'purchase')          AS first_purchase_at,
           max(occurred_at) FILTER (WHERE type = 'purchase')          AS last_purchase_at,
           max(occurred_at)                                           AS last_event_at
    FROM inserted
    GROUP BY customer_id
), updated AS (
    UPDATE customers c
    SET orders_count      = c.orders_count + a.orders_count,
        total_spent       = c.total_spent + a.total_spent,
        first_purchase_at = least(c.first_purchase_at, a.first_purchase_at),
        last_purchase_at  = greatest(c.last_purchase_at, a.last_purchase_at),
        last_event_at     = greatest(c.last_event_at, a.last_event_at),
        updated_at        = now()
    FROM added a
    WHERE c.id = a.customer_id
      AND (a.orders_count > 0 OR c.last_event_at IS NULL OR a.last_event_at > c.last_event_at)
)
SELECT coalesce(sum(events), 0)::bigint FROM added;
