-- Sticky consent: an opt-out from the person survives imports, and every
-- change of consent is kept.

-- +goose Up
-- opted_out_at and opt_out_source are set when the person withdrew consent
-- (an unsubscribe link, a one-click POST): an import may not subscribe
-- such a customer again; only an explicit re-subscription clears them.
-- subscribed = false without them is an opt-out the importer owns.
ALTER TABLE customers
    ADD COLUMN opted_out_at   timestamptz,
    ADD COLUMN opt_out_source text,
    ADD CONSTRAINT customers_opt_out_complete CHECK ((opted_out_at IS NULL) = (opt_out_source IS NULL)),
    ADD CONSTRAINT customers_opt_out_unsubscribed CHECK (opted_out_at IS NULL OR NOT subscribed);

-- One row per change of customers.subscribed, in seq order. customer_id
-- has no foreign key, like deliveries': the history is an audit trail.
CREATE TABLE consent_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text COLLATE "C" NOT NULL,
    subscribed  boolean NOT NULL,
    source      text NOT NULL,   -- "import", "unsubscribe link", or the source of a re-subscription
    campaign    text,            -- the campaign whose email carried the opt-out, when known
    changed_at  timestamptz NOT NULL
);

CREATE INDEX consent_changes_customer ON consent_changes (customer_id, seq);

-- A person's opt-out holds for their address, whatever customer id carries
-- it (another record of the same person, from another system) and
-- whatever later imports do to the record's email. Planning and claims
-- look the address up here, as they do suppressions: a small table they
-- hash, so the candidate scan keeps streaming in id order.
CREATE TABLE opted_out_addresses (
    email        text PRIMARY KEY CHECK (email = lower(email)),
    customer_id  text COLLATE "C" NOT NULL, -- whose opt-out put it here
    opted_out_at timestamptz NOT NULL
);

-- Who is unsubscribed already may have used an unsubscribe link: nothing
-- told those apart from opt-outs by import. Treat them all as the
-- person's, so no upgrade re-subscribes anyone who opted out; a customer
-- the CRM had unsubscribed comes back with `nurture subscribe`.
UPDATE customers
SET opted_out_at = updated_at, opt_out_source = 'before consent history'
WHERE NOT subscribed;

INSERT INTO consent_changes (customer_id, subscribed, source, changed_at)
SELECT id, false, opt_out_source, opted_out_at
FROM customers
WHERE opted_out_at IS NOT NULL
ORDER BY id;

INSERT INTO opted_out_addresses (email, customer_id, opted_out_at)
SELECT lower(email), id, opted_out_at
FROM customers
WHERE opted_out_at IS NOT NULL
ORDER BY id
ON CONFLICT (email) DO NOTHING;

-- Who put an address on the suppression list: the command line, the API,
-- a bounce or complaint feed. Rows from before say "unknown".
ALTER TABLE suppressions ADD COLUMN source text NOT NULL DEFAULT 'unknown';
ALTER TABLE suppressions ALTER COLUMN source DROP DEFAULT;

-- +goose Down
ALTER TABLE suppressions DROP COLUMN source;
DROP TABLE opted_out_addresses;
DROP TABLE consent_changes;
ALTER TABLE customers
    DROP COLUMN opt_out_source,
    DROP COLUMN opted_out_at;
