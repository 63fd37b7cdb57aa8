// Package worker sends deliveries: it is the Asynq handler that claims a
// delivery row, re-checks consent, renders the campaign's template, sends it
// over a pooled SMTP transport and records the outcome.
package worker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	nmail "nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/store"
	"nurture/internal/unsubscribe"
)

// Config configures a Worker. Zero values take the documented defaults.
type Config struct {
	// From is the sender of campaigns that name none. Default
	// "nurture <nurture@localhost>".
	From string
	// MessageIDDomain is the right-hand side of Message-IDs. Default: the
	// domain of From.
	MessageIDDomain string
	// Batch is the most deliveries claimed or recorded in one database
	// round trip. Default 500.
	Batch int
	// Unsubscribe, when set, gives every email a one-click unsubscribe
	// link: List-Unsubscribe headers and {{.UnsubscribeURL}} in templates.
	Unsubscribe *unsubscribe.Links
}

func (c Config) withDefaults() Config {
	if c.From == "" {
		c.From = "nurture <nurture@localhost>"
	}
	if c.MessageIDDomain == "" {
		c.MessageIDDomain = "localhost"
		if a, err := mail.ParseAddress(c.From); err == nil {
			if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
				c.MessageIDDomain = a.Address[at+1:]
			}
		}
	}
	if c.Batch <= 0 {
		c.Batch = 500
	}
	return c
}

// Content is what a worker renders emails from; Reload swaps it whole.
type Content struct {
	Campaigns *campaign.Set
	Templates *nmail.Templates
}

// Worker handles TaskSend tasks.
type Worker struct {
	cfg     Config
	store   *store.Store
	sender  nmail.Sender
	log     *slog.Logger
	metrics *metrics.Metrics
	content atomic.Pointer[Content]
	now     func() time.Time

	claims  *batcher[string, store.Claim]
	records *batcher[store.Outcome, bool]
	// inflight counts running handlers: Asynq's Shutdown returns without
	// waiting for handlers it gave up on, and their outcomes must still be
	// recorded before the batchers stop.
	inflight sync.WaitGroup
}

// ErrInfrastructure marks a handler error caused by the database rather
// than the delivery; Asynq retries such tasks without using up their
// retries (see ServerConfig), so an outage cannot exhaust them.
var ErrInfrastructure = errors.New("infrastructure unavailable")

// New returns a Worker. Close it after the Asynq server has stopped.
func New(cfg Config, st *store.Store, sender nmail.Sender, content *Content, m *metrics.Metrics, log *slog.Logger) *Worker {
	cfg = cfg.withDefaults()
	w := &Worker{cfg: cfg, store: st, sender: sender, log: log, metrics: m, now: time.Now}
	w.content.Store(content)
	w.claims = newBatcher(2, cfg.Batch, func(ctx context.Context, ids []string) ([]store.Claim, error) {
		return st.Claim(ctx, ids)
	})
	w.records = newBatcher(2, cfg.Batch, func(ctx context.Context, outs []store.Outcome) ([]bool, error) {
		// A send that happened must not be repeated because its record
		// failed once: retry the write for a while before giving up (the
		// task is then retried, and the resend carries the same Message-ID).
		var err error
		for delay := 100 * time.Millisecond; delay <= 6400*time.Millisecond; delay *= 2 {
			var stale []string
			if stale, err = st.Record(ctx, outs); err == nil {
				applied := make([]bool, len(outs))
				for i := range applied {
					applied[i] = !slices.Contains(stale, outs[i].ID)
				}
				return applied, nil
			}
			log.Warn("recording outcomes failed; retrying", "count", len(outs), "err", err, "retry_in", delay)
			select {
			case <-ctx.Done():
				return nil, err
			case <-time.After(delay):
			}
		}
		return nil, err
	})
	return w
}

// Reload replaces the campaigns and templates used for emails not yet rendered.
func (w *Worker) Reload(c *Content) { w.content.Store(c) }

// Close waits up to a minute for running handlers to record their
// outcomes, then stops the database batchers. Call it after the Asynq
// server has shut down.
func (w *Worker) Close() {
	done := make(chan struct{})
	go func() {
		w.inflight.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		w.log.Error("handlers still running after a minute; their deliveries stay in sending for the reconciler")
	}
	w.claims.close()
	w.records.close()
}

// ProcessTask implements asynq.Handler.
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	w.inflight.Add(1)
	defer w.inflight.Done()
	id := string(t.Payload())
	claim, err := w.claims.do(ctx, id)
	if err != nil {
		return fmt.Errorf("claim delivery %s: %w: %w", id, ErrInfrastructure, err)
	}
	if !claim.Claimed {
		// Already finished (a duplicate task after a crash or a reconciler
		// re-enqueue) or gone: acknowledge without sending.
		w.log.Debug("delivery not claimable, acknowledged without sending", "delivery_id", id, "status", claim.Status)
		return nil
	}
	out := w.send(ctx, &claim)
	out.ID = id
	out.Attempt = claim.Attempts
	// Record with a context of its own: a shutdown must not lose the
	// outcome of a send that already happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	applied, err := w.records.do(rctx, out)
	if err != nil {
		return fmt.Errorf("record delivery %s as %s: %w: %w", id, out.Status, ErrInfrastructure, err)
	}
	if !applied {
		// A later attempt took the delivery over (this one outlived its
		// lease or timeout); that attempt records the outcome.
		w.log.Warn("outcome superseded by a later attempt", "delivery_id", id, "attempt", claim.Attempts, "status", out.Status)
		return nil
	}
	w.metrics.Delivered(claim.Campaign, out.Status)
	switch out.Status {
	case store.StatusRetry:
		return fmt.Errorf("delivery %s: %s", id, out.Error)
	case store.StatusFailed:
		return fmt.Errorf("delivery %s failed: %s: %w", id, out.Error, asynq.SkipRetry)
	}
	return nil
}

// send decides the outcome of one claimed delivery.
func (w *Worker) send(ctx context.Context, c *store.Claim) store.Outcome {
	switch {
	case !c.CustomerFound:
		return store.Outcome{Status: store.StatusSkipped, Reason: "customer no longer exists"}
	case !c.Customer.Subscribed:
		return store.Outcome{Status: store.StatusSkipped, Reason: "unsubscribed"}
	case c.Customer.Suppressed:
		return store.Outcome{Status: store.StatusSkipped, Reason: "suppressed"}
	}
	content := w.content.Load()
	camp := content.Campaigns.Campaign(c.Campaign)
	switch {
	case camp == nil:
		return store.Outcome{Status: store.StatusSkipped, Reason: "campaign removed"}
	case !camp.Enabled:
		return store.Outcome{Status: store.StatusSkipped, Reason: "campaign disabled"}
	}
	from := w.cfg.From
	if camp.Email.From != "" {
		from = camp.Email.From
	}
	now := w.now()
	facts := audience.FactsAt(&c.Customer, now)
	facts.Stage = c.Stage
	data := &nmail.Data{Facts: facts, Campaign: c.Campaign, Now: now}
	headers := map[string]string{
		"X-Nurture-Campaign": c.Campaign,
		"X-Nurture-Delivery": c.ID,
	}
	if w.cfg.Unsubscribe != nil {
		data.UnsubscribeURL = w.cfg.Unsubscribe.URL(c.Customer.ID)
		headers["List-Unsubscribe"] = "<" + data.UnsubscribeURL + ">"
		headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
	}
	r, err := content.Templates.Render(c.Template, data)
	if err != nil {
		return store.Outcome{Status: store.StatusSkipped, Reason: "template error: " + err.Error()}
	}
	msgID := nmail.MessageID(c.ID, w.cfg.MessageIDDomain)
	msg := &nmail.Message{
		ID:        c.ID,
		MessageID: msgID,
		From:      from,
		To:        c.Customer.Email,
		Subject:   r.Subject,
		HTML:      r.HTML,
		Text:      r.Text,
		Headers:   headers,
	}
	start := time.Now()
	reply, err := w.sender.Send(ctx, msg)
	w.metrics.SendLatency(time.Since(start))
	if err == nil {
		return store.Outcome{Status: store.StatusSent, MessageID: msgID, Reply: reply}
	}
	if nmail.IsPermanent(err) {
		return store.Outcome{Status: store.StatusFailed, Reason: "rejected", Error: err.Error(), MessageID: msgID}
	}
	retried, _ := asynq.GetRetryCount(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	if retried >= maxRetry {
		return store.Outcome{Status: store.StatusFailed, Reason: fmt.Sprintf("gave up after %d attempts", retried+1), Error: err.Error(), MessageID: msgID}
	}
	return store.Outcome{Status: store.StatusRetry, Error: err.Error(), MessageID: msgID}
}
