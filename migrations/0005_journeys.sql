-- Journeys: a customer's progress through a campaign's steps.

-- +goose Up
CREATE TYPE journey_status AS ENUM ('active', 'finished', 'exited');

-- One row per entry. step is the last step whose delivery was recorded (0:
-- none yet); step n+1 is planned only once step n's delivery is finished.
CREATE TABLE journeys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    campaign    text COLLATE "C" NOT NULL,
    customer_id text COLLATE "C" NOT NULL,
    occurrence  timestamptz NOT NULL, -- the entry's start time
    event_id    text COLLATE "C" NOT NULL DEFAULT '',
    step        integer NOT NULL DEFAULT 0 CHECK (step >= 0),
    status      journey_status NOT NULL DEFAULT 'active',
    reason      text,                 -- why it exited, or how it finished
    started_at  timestamptz NOT NULL DEFAULT now(),
    ended_at    timestamptz,
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign, customer_id, occurrence, event_id)
);

-- A customer never has two unfinished journeys of one campaign, whatever
-- the number of schedulers.
CREATE UNIQUE INDEX journeys_one_active ON journeys (campaign, customer_id) WHERE status = 'active';
-- An event never starts a journey twice.
CREATE UNIQUE INDEX journeys_event_entry ON journeys (campaign, event_id) WHERE event_id <> '';

-- +goose Down
DROP TABLE journeys;
DROP TYPE journey_status;
