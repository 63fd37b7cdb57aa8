-- A delivery's task: the Asynq task that may send it. NULL means the
-- delivery's own task, whose TaskID is the delivery id; otherwise the id
-- of a batch task that carries many deliveries of one campaign, queue and
-- send time. A claim succeeds only for the task the row names, so a
-- delivery is never sent by two live tasks at once: when a batch hands a
-- delivery on (a retry, a deferral to its send window) or the reconciler
-- replaces a batch that is gone, the row is detached (NULL) first.

-- +goose Up
ALTER TABLE deliveries ADD COLUMN task text;

-- +goose Down
ALTER TABLE deliveries DROP COLUMN task;
