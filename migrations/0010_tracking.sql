-- Results: opens and clicks of each delivery, from the open pixel and the
-- click redirects.

-- +goose Up
-- One row per delivery with at least one hit. Human opens and clicks are
-- counted with their first and last time; machine-made ones (a link
-- scanner, or a hit within 2 seconds of the send) are kept apart and do
-- not count as opens or clicks.
CREATE TABLE delivery_tracking (
    delivery_id      uuid PRIMARY KEY,
    opens            integer NOT NULL DEFAULT 0,
    first_opened_at  timestamptz,
    last_opened_at   timestamptz,
    clicks           integer NOT NULL DEFAULT 0,
    first_clicked_at timestamptz,
    last_clicked_at  timestamptz,
    machine_opens    integer NOT NULL DEFAULT 0,
    machine_clicks   integer NOT NULL DEFAULT 0,
    last_machine_at  timestamptz
);

-- One row per delivery and link clicked: which links people follow.
CREATE TABLE delivery_clicks (
    delivery_id      uuid NOT NULL,
    url              text NOT NULL,
    clicks           integer NOT NULL DEFAULT 0,
    machine_clicks   integer NOT NULL DEFAULT 0,
    first_clicked_at timestamptz,
    last_clicked_at  timestamptz,
    PRIMARY KEY (delivery_id, url)
);

-- +goose Down
DROP TABLE delivery_clicks;
DROP TABLE delivery_tracking;
