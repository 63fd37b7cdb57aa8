-- Triggers: events and stage entries that start campaigns, and the stage
-- history that stage entries are read from.

-- +goose Up
-- Due events are found by type and a range of occurred_at.
CREATE INDEX events_type_occurred_at ON events (type, occurred_at);

-- Each customer's stage as the latest stage sweep saw it. customer_id has
-- no foreign key, like deliveries': the history outlives the customer row.
CREATE TABLE customer_stages (
    customer_id text COLLATE "C" PRIMARY KEY,
    stage       text NOT NULL,
    since       timestamptz NOT NULL -- the sweep that first saw this stage
);

-- Every change a sweep observed, baselines included. from_stage is null
-- for a customer's first recorded stage. entry says whether the change is
-- an entry into to_stage for stage triggers: every change from a known
-- stage is; a first recorded stage is one only when the customer was
-- created after the previous sweep.
CREATE TABLE stage_changes (
    seq         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    customer_id text COLLATE "C" NOT NULL,
    from_stage  text,
    to_stage    text NOT NULL,
    observed_at timestamptz NOT NULL,
    entry       boolean NOT NULL
);

CREATE INDEX stage_changes_customer ON stage_changes (customer_id, seq);
-- Stage triggers read the entries into one stage over a range of time.
CREATE INDEX stage_changes_entries ON stage_changes (to_stage, observed_at) WHERE entry;

-- One row per sweep instant. A sweep never records a time older than the
-- latest row here: history only moves forward.
CREATE TABLE stage_sweeps (
    swept_at   timestamptz PRIMARY KEY,
    customers  integer NOT NULL, -- customers whose stage was evaluated
    changes    integer NOT NULL, -- rows written to stage_changes
    entries    integer NOT NULL, -- of which entries
    updated_at timestamptz NOT NULL DEFAULT now()
);

-- +goose Down
DROP TABLE stage_sweeps;
DROP TABLE stage_changes;
DROP TABLE customer_stages;
DROP INDEX events_type_occurred_at;
