package worker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/store"
)

// How a delivery waits for its send window
//
// A delivery is sent at or after its send_at, inside its campaign's
// effective send window. The planner enqueues its task with ProcessAt =
// send_at, but a worker can still pick it up too early or outside the
// window: the reconciler re-enqueued it, Redis lost its data, an operator
// ran it from the dashboard, or a backlog (after an outage) reached it
// after the window closed. The worker then sends nothing: it moves the row
// back to queued with send_at = the next instant at or after max(now,
// send_at) inside the window (store.Defer), and returns a *Deferred error,
// which the Asynq server turns into a retry at exactly that time without
// counting a failure or using up a retry (see NewServer).
//
// The task keeps its TaskID (the delivery id). That is what keeps a
// deferral from causing a duplicate: Asynq runs one task per id at a time,
// and a second task under another id could run concurrently with it, and
// both would claim the row (a claim takes over a row left sending) and
// send. The reconciler's re-enqueue of a deferred row meets the waiting
// task's id and leaves it alone; after a Redis data loss it enqueues the
// delivery again with ProcessAt = the new send_at. Whichever task runs,
// the claim and this window check decide again, so none sends outside the
// window.
//
// Asynq archives a task on its last retry whatever its handler returns,
// so such a task is not deferred but finished: the row stays queued, and
// the reconciler enqueues it again (ProcessAt = send_at) once it has been
// idle for its period.

// Deferred is the error a handler returns for a delivery deferred to its
// send window: the task runs again at Until.
type Deferred struct {
	Until time.Time
	// Delay is Until less the worker's clock when it deferred.
	Delay time.Duration
	// Throttled is true for a delivery held back by the send-rate
	// throttles or a domain backoff rather than by its send window.
	Throttled bool
}

func (d *Deferred) Error() string {
	if d.Throttled {
		return "throttled: deferred to its send slot, until " + d.Until.UTC().Format(time.RFC3339Nano)
	}
	return "deferred to its send window, until " + d.Until.UTC().Format(time.RFC3339)
}

// sendTime is when c may be sent: the later of now and its send_at, moved
// into the campaign's effective window (in the window's zone, or the
// customer's).
func (w *Worker) sendTime(set *campaign.Set, camp *campaign.Campaign, c *store.Claim, now time.Time) time.Time {
	at := now
	if c.SendAt.After(now) {
		at = c.SendAt
	}
	if win := set.EffectiveWindow(camp); win != nil {
		at = win.SendAt(at, w.zones.Load(c.Customer.Timezone))
	}
	return at
}

// deferDelivery puts c back to queued until until and returns the
// *Deferred error that makes Asynq run the task again then. Nothing is
// recorded as failed; the deferral is counted and logged. reason is
// reasonThrottled for a delivery held back by the throttle, else empty
// (its send window). In a batch (bt set), the delivery is detached from
// the batch with the deferral and handed on to a task of its own, to run
// at until, and nil is returned.
func (w *Worker) deferDelivery(ctx context.Context, c *store.Claim, until time.Time, reason string, r retries, bt *batchTask) error {
	until = until.UTC()
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	applied, err := w.defers.do(rctx, store.Deferral{ID: c.ID, Attempt: c.Attempts, SendAt: until})
	if err != nil {
		// Nothing was sent: the task runs again and decides again.
		return fmt.Errorf("defer delivery %s: %w: %w", c.ID, ErrInfrastructure, err)
	}
	if !applied {
		w.log.Warn("deferral superseded by a later attempt", "delivery_id", c.ID, "attempt", c.Attempts)
		return nil
	}
	if reason == reasonThrottled {
		// Counted by send (nurture_throttle_waits_total).
		w.log.Debug("delivery deferred: its send slot is too far away", "delivery_id", c.ID, "campaign", c.Campaign,
			"customer_id", c.Customer.ID, "send_at", until)
	} else {
		w.metrics.Deferred(c.Campaign)
		w.log.Debug("delivery deferred to its send window", "delivery_id", c.ID, "campaign", c.Campaign,
			"customer_id", c.Customer.ID, "send_at", until)
	}
	if bt != nil {
		w.handoff(rctx, bt, c.Campaign, c.ID, until, r.max)
		return nil
	}
	if r.known && r.retried >= r.max {
		// A task on its last retry is archived whatever error it returns.
		// Let it finish instead: the reconciler finds the row queued and
		// enqueues it again, to run at its send_at.
		w.log.Info("deferred delivery left to the reconciler: its task has no retry left", "delivery_id", c.ID, "send_at", until)
		return nil
	}
	return &Deferred{Until: until, Delay: until.Sub(w.cfg.Now()), Throttled: reason == reasonThrottled}
}

// retryDelay is the Asynq server's delay before running a task again: a
// deferred one at its send time, others after the backoff of attempt n
// (1-based).
func retryDelay(base, max time.Duration, n int, err error) time.Duration {
	var d *Deferred
	if errors.As(err, &d) {
		return d.Delay
	}
	return Backoff(base, max, n)
}

// isFailure reports whether a handler error counts as a failed attempt:
// a database outage and a deferral do not, so neither uses up a retry.
func isFailure(err error) bool {
	var d *Deferred
	return !errors.Is(err, ErrInfrastructure) && !errors.As(err, &d)
}
