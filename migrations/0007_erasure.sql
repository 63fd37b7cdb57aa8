-- Erasure of a person: what stays of their address is a one-way hash, so
-- that a later import of it is never emailed, and each erasure leaves an
-- anonymous log row.

-- +goose Up
-- The SHA-256 of each customer's lower-cased address, kept current by
-- PostgreSQL on every write, whoever writes: planning and claims compare it
-- with the erased addresses without hashing a row.
ALTER TABLE customers
    ADD COLUMN email_hash bytea GENERATED ALWAYS AS (sha256(lower(email)::bytea)) STORED;

-- Addresses of erased people, as customers.email_hash: no campaign plans or
-- sends to an address here, under any customer id. The address itself is
-- kept nowhere.
CREATE TABLE erased_addresses (
    hash      bytea PRIMARY KEY CHECK (length(hash) = 32),
    erased_at timestamptz NOT NULL
);

-- One row per erasure: when, who asked (the API or the command line) and
-- how many rows were erased or kept without the person. Nothing here names
-- or points to the person.
CREATE TABLE erasures (
    seq             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    erased_at       timestamptz NOT NULL,
    source          text NOT NULL CHECK (source IN ('api', 'cli')),
    customer        boolean NOT NULL, -- a customer row existed (and its address was hashed)
    deliveries      integer NOT NULL, -- kept, no longer pointing to the person
    events          integer NOT NULL, -- kept without properties, no longer pointing to the person
    journeys        integer NOT NULL, -- kept, no longer pointing to the person
    consent_changes integer NOT NULL, -- kept, no longer pointing to the person
    stage_changes   integer NOT NULL  -- deleted
);

-- +goose Down
DROP TABLE erasures;
DROP TABLE erased_addresses;
ALTER TABLE customers DROP COLUMN email_hash;
