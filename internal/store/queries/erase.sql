-- Erasure of a person (Store.Erase), in one transaction. Unless a
-- statement says otherwise, $1 is the customer id and $2 the opaque token
-- that takes the id's place in the rows kept for counting.

-- name: erase-customer
-- $2 the time. Deletes the customer row and puts every address of the
-- person's on erased_addresses as a hash: the current one, and any older
-- one they opted out from. The clear-text rows of those addresses
-- (suppressions, opt-outs, bounces, and the bounces of the person's
-- deliveries) go: the hash suppresses them for good, and the deliveries
-- keep their bounce and complaint marks for the counts. Returns whether a
-- customer row existed.
WITH gone AS (
    DELETE FROM customers WHERE id = $1 RETURNING email
), addresses AS (
    SELECT lower(email) AS email FROM gone
    UNION
    SELECT email FROM opted_out_addresses WHERE customer_id = $1
), hashed AS (
    -- the expression of customers.email_hash
    INSERT INTO erased_addresses (hash, erased_at)
    SELECT sha256(email::bytea), $2::timestamptz FROM addresses
    ON CONFLICT (hash) DO NOTHING
), suppressed AS (
    DELETE FROM suppressions WHERE email IN (SELECT email FROM addresses)
), opted_out AS (
    DELETE FROM opted_out_addresses WHERE customer_id = $1 OR email IN (SELECT email FROM addresses)
), bounced AS (
    DELETE FROM bounces
    WHERE email IN (SELECT email FROM addresses)
       OR delivery_id IN (SELECT id FROM deliveries WHERE customer_id = $1)
)
SELECT EXISTS (SELECT 1 FROM gone);

-- name: erase-deliveries
-- $3 the time. The person's deliveries stay for the campaigns' counts
-- (campaign, step, variant, status, times) but point to the token. Those
-- not yet claimed by a worker are skipped: none of them is sent. Those a
-- worker is sending are left to it and returned, for Erase waits for
-- them. Texts that may quote the address (the server's reply, the last
-- error, a template error's details) go. The triggering event's id becomes
-- the id erase-events gives the event.
UPDATE deliveries d
SET customer_id = $2::text,
    event_id    = CASE WHEN d.event_id = '' THEN ''
                       ELSE coalesce((SELECT $2 || ':' || e.seq FROM events e WHERE e.dedup_key = d.event_id),
                                     $2 || ':' || gen_random_uuid()) END,
    status      = CASE WHEN d.status IN ('planned', 'queued') THEN 'skipped' ELSE d.status END,
    reason      = CASE WHEN d.status IN ('planned', 'queued') THEN 'erased' ELSE split_part(d.reason, ':', 1) END,
    skipped_at  = CASE WHEN d.status IN ('planned', 'queued') THEN $3::timestamptz ELSE d.skipped_at END,
    last_error  = NULL,
    smtp_reply  = NULL,
    updated_at  = now()
WHERE d.customer_id = $1
RETURNING d.id::text, d.status::text, coalesce(d.reason = 'erased' AND d.skipped_at = $3::timestamptz, false) AS cancelled;

-- name: erase-journeys
-- $3 the time. Journeys stay for the counts, pointing to the token; an
-- unfinished one exits.
UPDATE journeys j
SET customer_id = $2::text,
    event_id    = CASE WHEN j.event_id = '' THEN ''
                       ELSE coalesce((SELECT $2 || ':' || e.seq FROM events e WHERE e.dedup_key = j.event_id),
                                     $2 || ':' || gen_random_uuid()) END,
    status      = CASE WHEN j.status = 'active' THEN 'exited' ELSE j.status END,
    reason      = CASE WHEN j.status = 'active' THEN 'erased' ELSE split_part(j.reason, ':', 1) END,
    ended_at    = CASE WHEN j.status = 'active' THEN $3::timestamptz ELSE j.ended_at END,
    updated_at  = now()
WHERE j.customer_id = $1;

-- name: erase-events
-- Events stay (type, time, amount: a purchase still counts for the
-- campaign it is attributed to) without their properties, pointing to the
-- token; their own ids, which the caller chose, go too.
UPDATE events
SET customer_id = $2::text, properties = '{}', dedup_key = $2 || ':' || seq
WHERE customer_id = $1;

-- name: erase-consent
-- The consent history stays for the campaigns' unsubscribe counts,
-- pointing to the token; a source the caller wrote (a re-subscription's)
-- may name the person and is replaced.
UPDATE consent_changes
SET customer_id = $2::text,
    source      = CASE WHEN source IN ('import', 'unsubscribe link', 'before consent history', 'complaint', 'mailto') THEN source ELSE 'erased' END
WHERE customer_id = $1;

-- name: erase-stages
-- The stage history goes: kept under the token, it would count a customer
-- in their last stage for ever.
WITH current AS (
    DELETE FROM customer_stages WHERE customer_id = $1
)
DELETE FROM stage_changes WHERE customer_id = $1;

-- name: erase-clicks
-- $1 the token the person's deliveries now point to. The links they
-- clicked go: a link may carry who clicked it. The counts and times of
-- opens and clicks per delivery (delivery_tracking) stay.
DELETE FROM delivery_clicks k
USING deliveries d
WHERE d.customer_id = $1 AND k.delivery_id = d.id;

-- name: erase-log
INSERT INTO erasures (erased_at, source, customer, deliveries, events, journeys, consent_changes, stage_changes)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8);

-- name: erase-scrub
-- After the sends Erase waited for: what their outcome wrote that may
-- quote the address.
UPDATE deliveries
SET last_error = NULL, smtp_reply = NULL, reason = split_part(reason, ':', 1)
WHERE id = ANY ($1::uuid[]) AND status <> 'sending';
