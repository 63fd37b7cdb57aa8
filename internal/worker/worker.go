// Package worker sends deliveries: it is the Asynq handler that claims a
// delivery row, re-checks consent and the send window, renders the
// delivery's template, sends it over a pooled SMTP transport and records
// the outcome.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hibiken/asynq"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/compose"
	nmail "nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/queue"
	"nurture/internal/ratelog"
	"nurture/internal/store"
	"nurture/internal/throttle"
	"nurture/internal/tracking"
	"nurture/internal/unsubscribe"
	"nurture/internal/window"
)

// Config configures a Worker. Zero values take the documented defaults.
type Config struct {
	// From is the sender of campaigns that name none (MAIL_FROM). Empty:
	// the from of the campaigns' settings.yaml, else
	// "nurture <nurture@localhost>" (compose.DefaultFrom).
	From string
	// MessageIDDomain is the right-hand side of Message-IDs. Default: the
	// domain of the sender of campaigns that name none.
	MessageIDDomain string
	// Batch is the most deliveries claimed or recorded in one database
	// round trip. Default 500.
	Batch int
	// Linger is how long a claim or record, when others are waiting
	// already, waits for more to share its statement and commit. Default
	// 8ms; negative: none. A claim or record that finds none waiting goes
	// at once.
	Linger time.Duration
	// InFlight is the most deliveries being processed at once, by tasks
	// of their own and batch tasks together: claimed, rendered, sent or
	// waiting for one of these. A delivery whose outcome is decided and
	// only waits for the statement that records it counts in a second
	// bound of the same size instead, when a place there is free, so that
	// the waves of outcomes a busy worker records together do not leave
	// its SMTP connections without messages. Default 64; NewService sets
	// it to the servers' concurrency.
	InFlight int
	// RetryBase and RetryMax are the backoff of a delivery that a batch
	// task hands on to a task of its own after a temporary failure, as
	// ServerConfig's are for tasks. Defaults 15s and 1h.
	RetryBase, RetryMax time.Duration
	// Unsubscribe, when set, gives every email a one-click unsubscribe
	// link: List-Unsubscribe headers and {{.UnsubscribeURL}} in templates.
	Unsubscribe *unsubscribe.Links
	// Tracking, when set, adds the open pixel and click redirects to the
	// emails of campaigns that track them (PUBLIC_URL and SECRET). Default
	// nil: no email is tracked.
	Tracking *tracking.Links
	// Now is the clock emails are rendered with (inactive_days and the
	// other facts), send times and windows are checked against, and
	// trouble is timed by. Default time.Now.
	Now func() time.Time
	// DrainInterval is how often outcomes kept in Redis during a database
	// outage are moved into PostgreSQL. Default 2s.
	DrainInterval time.Duration
	// TroubleInterval is the least time between two warnings about one
	// kind of SMTP trouble; the warning counts what happened in between.
	// Default 30s.
	TroubleInterval time.Duration
	// Throttle configures the send-rate throttles (rate_limits in
	// settings.yaml) and domain backoffs, kept in the journal's Redis:
	// the longest wait for a send slot before the delivery is put back
	// (MaxWait, default 10s) and the backoff of a domain after a 421 or
	// 452 reply (BackoffBase 30s, doubling up to BackoffMax 10m). See
	// throttle.Config.
	Throttle throttle.Config
}

func (c Config) withDefaults() Config {
	if c.Batch <= 0 {
		c.Batch = 500
	}
	switch {
	case c.Linger == 0:
		c.Linger = 8 * time.Millisecond
	case c.Linger < 0:
		c.Linger = 0
	}
	if c.InFlight <= 0 {
		c.InFlight = 64
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 15 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.DrainInterval <= 0 {
		c.DrainInterval = 2 * time.Second
	}
	if c.TroubleInterval <= 0 {
		c.TroubleInterval = 30 * time.Second
	}
	return c
}

// Content is what a worker renders emails from; Reload swaps it whole.
type Content struct {
	Campaigns *campaign.Set
	Templates *nmail.Templates
	// Rules are the campaigns' compiled expressions; with them, a
	// campaign's exit_when is checked again just before each send. Nil:
	// not checked.
	Rules *audience.Rules
}

// Worker handles TaskSend tasks.
type Worker struct {
	cfg     Config
	store   *store.Store
	journal *queue.Journal
	sender  nmail.Sender
	log     *slog.Logger
	metrics *metrics.Metrics
	content atomic.Pointer[Content]
	compose *compose.Composer
	zones   window.Zones
	trouble *trouble
	// infra logs PostgreSQL and Redis trouble, rate-limited by kind.
	infra *ratelog.Limiter
	// throttle paces sends by rate_limits and domain backoffs.
	throttle *throttle.Limiter

	// queue enqueues the deliveries a batch task hands on.
	queue *queue.Client
	// slots bounds the deliveries in flight, and recording those whose
	// outcome waits to be recorded (Config.InFlight each); see slot.
	slots, recording chan struct{}
	// runner runs the deliveries of batch tasks.
	runner *runner

	claims  *batcher[claimKey, claim]
	records *batcher[store.Outcome, bool]
	defers  *batcher[store.Deferral, bool]
	// inflight counts running handlers: Asynq's Shutdown returns without
	// waiting for handlers it gave up on, and their outcomes must still be
	// recorded before the batchers stop.
	inflight sync.WaitGroup
	// stopping is closed by Close: a handler that can reach neither
	// PostgreSQL nor Redis to keep an outcome gives up then.
	stopping  chan struct{}
	closeOnce sync.Once
	drainDone chan struct{}
}

// recordTimeout bounds one batch of outcome writes; see New.
const recordTimeout = 10 * time.Second

// claimKey names a delivery to claim and the task claiming it: the id of
// a batch task, or "" for the delivery's own task.
type claimKey struct{ id, task string }

// claim is a store.Claim and, for a delivery claimed before, the outcome
// an earlier attempt kept in the journal because the database was down.
type claim struct {
	store.Claim
	kept *store.Outcome
}

// ErrInfrastructure marks a handler error caused by the database rather
// than the delivery; Asynq retries such tasks without using up their
// retries (see ServerConfig), so an outage cannot exhaust them.
var ErrInfrastructure = errors.New("infrastructure unavailable")

// How the outcome of a send survives a PostgreSQL outage
//
// The delivery row says sent only after the SMTP server accepted the
// message, and a task that fails is run again: so an outcome that cannot
// be written must not fail the task, or the retry sends a second copy.
// When recording fails, the worker keeps the outcome in the journal (a
// Redis hash, see queue.Journal) and acknowledges the task. The row stays
// "sending" until either
//   - the drain loop of any worker writes the kept outcome to the row once
//     PostgreSQL answers again, or
//   - the delivery is claimed again (the reconciler re-enqueues rows left
//     in sending): a claim that is not the first (attempts > 1) reads the
//     journal before sending and, finding an outcome, records it instead
//     of sending.
// The drain loop records a kept outcome only for the attempt that kept it
// and forgets it only once the row is finished, so it can never remove an
// entry that a newer claim has yet to read.
//
// What this does not cover: a worker killed between the SMTP server's
// acceptance and the journal write (the documented duplicate), and a
// PostgreSQL outage together with a loss of Redis's data, which loses the
// kept outcomes; such rows are sent again by the reconciler.

// New returns a Worker. Start it, and Close it after the Asynq server has
// stopped.
func New(cfg Config, st *store.Store, journal *queue.Journal, sender nmail.Sender, content *Content, m *metrics.Metrics, log *slog.Logger) *Worker {
	cfg = cfg.withDefaults()
	w := &Worker{cfg: cfg, store: st, journal: journal, sender: sender, log: log, metrics: m,
		stopping: make(chan struct{}), trouble: newTrouble(cfg.Now, cfg.TroubleInterval, log, m),
		infra:     ratelog.New(log, cfg.TroubleInterval, cfg.Now),
		queue:     queue.NewClient(journal.Client(), queue.Config{}),
		slots:     make(chan struct{}, cfg.InFlight),
		recording: make(chan struct{}, cfg.InFlight),
		runner:    newRunner(10 * time.Second),
		throttle:  throttle.New(journal.Client(), cfg.Throttle),
		compose:   compose.New(compose.Config{From: cfg.From, MessageIDDomain: cfg.MessageIDDomain, Unsubscribe: cfg.Unsubscribe, Tracking: cfg.Tracking})}
	w.content.Store(content)
	w.claims = newBatcher(2, cfg.Batch, cfg.Linger, time.Minute, w.claimBatch)
	// A record that takes long goes to the journal instead: the handler
	// must finish well within the task's timeout and Asynq's shutdown
	// timeout, or Asynq hands the task out again while this attempt's
	// outcome is still unwritten, and the new attempt sends again.
	w.records = newBatcher(2, cfg.Batch, cfg.Linger, recordTimeout, func(ctx context.Context, outs []store.Outcome) ([]bool, error) {
		// A longer outage than again covers is the journal's business, and
		// a flusher stuck in retries would hold up every other handler's
		// record.
		var stale []string
		try := w.infra.Begin("postgres")
		err := again(ctx, func() (err error) {
			stale, err = st.Record(ctx, outs)
			return err
		})
		if err == nil {
			try.Succeeded("PostgreSQL available again")
			applied := make([]bool, len(outs))
			for i := range applied {
				applied[i] = !slices.Contains(stale, outs[i].ID)
			}
			return applied, nil
		}
		m.InfraError("postgres", "record")
		try.Failed("PostgreSQL unavailable; outcomes go to Redis, deliveries wait (no retry is used up)", err)
		return nil, err
	})
	w.defers = newBatcher(2, cfg.Batch, cfg.Linger, recordTimeout, func(ctx context.Context, ds []store.Deferral) ([]bool, error) {
		var stale []string
		try := w.infra.Begin("postgres")
		err := again(ctx, func() (err error) {
			stale, err = st.Defer(ctx, ds)
			return err
		})
		if err != nil {
			m.InfraError("postgres", "defer")
			try.Failed("PostgreSQL unavailable; outcomes go to Redis, deliveries wait (no retry is used up)", err)
			return nil, err
		}
		applied := make([]bool, len(ds))
		for i := range applied {
			applied[i] = !slices.Contains(stale, ds[i].ID)
		}
		return applied, nil
	})
	return w
}

// again runs fn, and once more after a moment if it fails: that covers a
// connection PostgreSQL dropped (a pooled one, after a restart) without
// reporting trouble. A claim or record that ran twice is harmless: a claim
// of a delivery it claimed already counts one more attempt, and a record
// that applied leaves the row finished, which the second one does not
// change.
func again(ctx context.Context, fn func() error) error {
	err := fn()
	if err == nil {
		return nil
	}
	select {
	case <-ctx.Done():
		return err
	case <-time.After(100 * time.Millisecond):
	}
	return fn()
}

// claimBatch claims deliveries and reads the journal for those claimed
// before.
func (w *Worker) claimBatch(ctx context.Context, keys []claimKey) ([]claim, error) {
	ids, tasks := make([]string, len(keys)), make([]string, len(keys))
	for i, k := range keys {
		ids[i], tasks[i] = k.id, k.task
	}
	var cs []store.Claim
	try := w.infra.Begin("postgres")
	err := again(ctx, func() (err error) {
		cs, err = w.store.ClaimBy(ctx, ids, tasks)
		return err
	})
	if err != nil {
		w.metrics.InfraError("postgres", "claim")
		try.Failed("PostgreSQL unavailable; outcomes go to Redis, deliveries wait (no retry is used up)", err)
		return nil, err
	}
	try.Succeeded("PostgreSQL available again")
	out := make([]claim, len(cs))
	var again []string
	for i, c := range cs {
		out[i].Claim = c
		// A first claim cannot have a kept outcome: outcomes are kept
		// only by an attempt that claimed the delivery.
		if c.Claimed && c.Attempts > 1 {
			again = append(again, c.ID)
		}
	}
	if len(again) == 0 {
		return out, nil
	}
	kept, err := w.journal.Get(ctx, again)
	if err != nil {
		w.metrics.InfraError("redis", "journal")
		w.infra.Trouble("redis", "Redis unavailable; deliveries wait for it", err)
		return nil, err
	}
	for i := range out {
		if v, ok := kept[out[i].ID]; ok {
			o, err := decodeOutcome(v)
			if err != nil {
				return nil, fmt.Errorf("delivery %s: %w", out[i].ID, err)
			}
			out[i].kept = &o
		}
	}
	return out, nil
}

// Start runs the loop that moves kept outcomes into PostgreSQL until ctx
// ends or Close is called.
func (w *Worker) Start(ctx context.Context) error {
	w.drainDone = make(chan struct{})
	go func() {
		defer close(w.drainDone)
		t := time.NewTicker(w.cfg.DrainInterval)
		defer t.Stop()
		for {
			if _, err := w.Drain(ctx); err != nil && ctx.Err() == nil {
				w.infra.Trouble("drain", "recording outcomes kept in Redis failed; retrying", err, "every", w.cfg.DrainInterval)
			} else if err == nil {
				w.infra.Recovered("drain", "recording outcomes kept in Redis works again")
			}
			select {
			case <-ctx.Done():
				return
			case <-w.stopping:
				return
			case <-t.C:
			}
		}
	}()
	return nil
}

// Drain records the outcomes kept in the journal and returns how many it
// recorded.
func (w *Worker) Drain(ctx context.Context) (int, error) {
	n, err := w.journal.Len(ctx)
	if err != nil {
		return 0, err
	}
	w.metrics.OutcomesWaiting(n)
	if n == 0 {
		return 0, nil
	}
	recorded := 0
	var cursor uint64
	for {
		kept, next, err := w.journal.Scan(ctx, cursor, w.cfg.Batch)
		if err != nil {
			return recorded, err
		}
		cursor = next
		outs := make([]store.Outcome, 0, len(kept))
		var bad []string
		for id, v := range kept {
			o, err := decodeOutcome(v)
			if err != nil {
				w.log.Error("dropping an unreadable kept outcome", "delivery_id", id, "err", err)
				bad = append(bad, id)
				continue
			}
			o.ID = id
			outs = append(outs, o)
		}
		stale, err := w.store.Record(ctx, outs)
		if err != nil {
			return recorded, err
		}
		// A stale outcome was recorded already (by a claim that read it) or
		// belongs to an attempt a newer claim took over: forget it only
		// once the row is finished, for the newer claim must still read it.
		statuses, err := w.store.Statuses(ctx, stale)
		if err != nil {
			return recorded, err
		}
		forget, applied, waiting := bad, 0, 0
		for _, o := range outs {
			st, isStale := statuses[o.ID], slices.Contains(stale, o.ID)
			switch {
			case !isStale:
				applied++
				forget = append(forget, o.ID)
				w.metrics.Delivered(o.Campaign, o.Status)
			case st == "" || st == store.StatusSent || st == store.StatusFailed || st == store.StatusSkipped:
				forget = append(forget, o.ID)
			default:
				waiting++
			}
		}
		if err := w.journal.Delete(ctx, forget...); err != nil {
			return recorded, err
		}
		recorded += applied
		w.metrics.OutcomesRecorded(applied)
		if applied > 0 {
			w.log.Info("recorded outcomes kept during a database outage", "count", applied,
				"left_for_newer_claims", waiting)
		}
		if cursor == 0 {
			return recorded, nil // a full pass over the journal
		}
	}
}

// exits reports whether the campaign's exit_when holds for the claimed
// delivery's customer at now (with its triggering event, when it has one):
// a journey step or triggered email that is no longer wanted is not sent.
// The journey itself ends at its next evaluation, which checks exit_when
// again. An expression that fails at run time lets the email go, as it
// would have been planned, and is logged.
func (w *Worker) exits(ctx context.Context, rules *audience.Rules, c *store.Claim, now time.Time) (bool, error) {
	if rules == nil {
		return false, nil
	}
	t := rules.Target(c.Campaign)
	if t == nil || t.Campaign.ExitWhen == "" {
		return false, nil
	}
	f := audience.FactsAt(&c.Customer, now)
	stage, err := rules.Stage(&f)
	if err != nil {
		w.log.Warn("stage expression failed before send; exit_when not checked", "delivery", c.ID, "err", err)
		return false, nil
	}
	f.Stage = stage
	if c.EventID != "" {
		ev, err := w.store.Event(ctx, c.EventID)
		switch {
		case errors.Is(err, store.ErrNotFound):
			// The event is gone; exit_when is read without it.
		case err != nil:
			return false, err
		default:
			f.Event = ev
		}
	}
	exit, err := t.ExitWhen(&f)
	if err != nil {
		w.log.Warn("exit_when failed before send; sending as planned", "delivery", c.ID, "err", err)
		return false, nil
	}
	return exit, nil
}

// Reload replaces the campaigns and templates used for emails not yet rendered.
func (w *Worker) Reload(c *Content) { w.content.Store(c) }

// Close waits up to a minute for running handlers to record their
// outcomes, then stops the drain loop and the database batchers. Call it
// after the Asynq server has shut down.
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
	w.closeOnce.Do(func() { close(w.stopping) })
	if w.drainDone != nil {
		<-w.drainDone
	}
	w.claims.close()
	w.records.close()
	w.defers.close()
}

// ProcessTask implements asynq.Handler for tasks that send one delivery
// (queue.TaskSend) and batch tasks (queue.TaskSendBatch).
func (w *Worker) ProcessTask(ctx context.Context, t *asynq.Task) error {
	if t.Type() == queue.TaskSendBatch {
		return w.processBatch(ctx, t, nil)
	}
	w.inflight.Add(1)
	defer w.inflight.Done()
	s := &slot{w: w}
	select {
	case w.slots <- struct{}{}:
		s.held = w.slots
		defer s.free()
	case <-ctx.Done():
		return fmt.Errorf("delivery %s: %w: %w", t.Payload(), ErrInfrastructure, ctx.Err())
	}
	retried, ok1 := asynq.GetRetryCount(ctx)
	maxRetry, ok2 := asynq.GetMaxRetry(ctx)
	return w.deliver(ctx, string(t.Payload()), retries{retried: retried, max: maxRetry, known: ok1 && ok2}, nil, s)
}

// slot is one delivery's place among the worker's InFlight, taken before
// its claim. Once its outcome is decided, the delivery trades it for a
// place among those waiting to be recorded when one is free (see
// recorded), and gives back what it holds at the end. Only the delivery's
// goroutine uses it.
type slot struct {
	w *Worker
	// held is the bound whose place the delivery holds: w.slots, then
	// perhaps w.recording; nil before it takes one and after free.
	held chan struct{}
}

// recorded moves the delivery to the places of outcomes waiting to be
// recorded when one is free. When none is, it keeps its place in flight,
// never waiting: a worker whose outcomes PostgreSQL does not take fast
// enough claims no more, and the record's time is all its own.
func (s *slot) recorded() {
	if s.held != s.w.slots {
		return
	}
	select {
	case s.w.recording <- struct{}{}:
		<-s.held
		s.held = s.w.recording
	default:
	}
}

// free gives back the place the delivery holds.
func (s *slot) free() {
	if s.held != nil {
		<-s.held
		s.held = nil
	}
}

// retries are the retries a delivery's task used and may use; known is
// false when the handler runs outside an Asynq server.
type retries struct {
	retried, max int
	known        bool
}

// batchTask is the batch task a delivery is processed in: what it needs
// to hand the delivery on to a task of its own.
type batchTask struct {
	id, queue string
}

// How a batch task sends its deliveries
//
// A batch task (queue.TaskSendBatch) carries deliveries of one campaign,
// queue and send time, and its row of each names it (deliveries.task), so
// only it may claim them. It processes them concurrently within the
// worker's InFlight bound, each exactly as a task of its own would, with
// the claims and records of all tasks merged into few statements. What a
// task of its own leaves to Asynq, a batch hands on: a delivery to retry
// after a temporary failure, or deferred to its send window, is recorded
// queued and detached from the batch in the same statement, then enqueued
// on its own task (TaskID = delivery id) to run at its time. If that
// enqueue fails, the reconciler enqueues it later: late, never lost. A
// delivery the batch could not decide (PostgreSQL or Redis unavailable,
// or a shutdown) makes the batch run again, without using up a retry; its
// claims then skip the deliveries already finished or handed on.

// processBatch runs a batch task. Once stopping is closed (the server
// shuts down) it starts no more deliveries: it waits for those under way
// and returns an error that runs the batch again later, without using up
// a retry, so that it ends within the shutdown's grace and the rest of
// its deliveries, never claimed, wait for the rerun.
func (w *Worker) processBatch(ctx context.Context, t *asynq.Task, stopping <-chan struct{}) error {
	b, err := queue.DecodeBatch(t.Payload())
	if err != nil {
		w.log.Error("unreadable batch task; dropped", "err", err)
		return fmt.Errorf("%w: %w", err, asynq.SkipRetry)
	}
	id, _ := asynq.GetTaskID(ctx)
	qname, _ := asynq.GetQueueName(ctx)
	maxRetry, _ := asynq.GetMaxRetry(ctx)
	bt := &batchTask{id: id, queue: qname}
	errs := make([]error, len(b.IDs))
	var wg sync.WaitGroup
	w.inflight.Add(1)
	defer w.inflight.Done()
	for i, did := range b.IDs {
		select {
		case <-stopping:
			errs[i] = fmt.Errorf("delivery %s: %w: the worker is stopping", did, ErrInfrastructure)
			continue
		default:
		}
		select {
		case w.slots <- struct{}{}:
		case <-ctx.Done():
			errs[i] = fmt.Errorf("delivery %s: %w: %w", did, ErrInfrastructure, ctx.Err())
			continue
		case <-stopping:
			errs[i] = fmt.Errorf("delivery %s: %w: the worker is stopping", did, ErrInfrastructure)
			continue
		}
		wg.Add(1)
		s := &slot{w: w, held: w.slots}
		w.runner.run(func() {
			defer func() {
				s.free()
				wg.Done()
			}()
			// A batch's deliveries have used no retry of their own.
			errs[i] = w.deliver(ctx, did, retries{max: maxRetry, known: true}, bt, s)
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("batch %s: %w: %w", id, ErrInfrastructure, err)
	}
	return nil
}

// deliver claims and sends one delivery, for its own task (bt nil) or a
// batch task, and records the outcome. For its own task it returns what
// the task's handler returns; in a batch it returns an error only when
// the delivery is left undecided and the batch must run again. Once the
// outcome is decided, it trades s, the delivery's place in flight, for one
// among the outcomes waiting to be recorded.
func (w *Worker) deliver(ctx context.Context, id string, r retries, bt *batchTask, s *slot) error {
	key := claimKey{id: id}
	if bt != nil {
		key.task = bt.id
	}
	c, err := w.claims.do(ctx, key)
	if err != nil {
		return fmt.Errorf("claim delivery %s: %w: %w", id, ErrInfrastructure, err)
	}
	if !c.Claimed {
		switch c.Status {
		case "":
			// No row: the database was restored from an older backup, or
			// someone deleted the delivery. Nothing to send it by.
			w.log.Warn("task names a delivery that does not exist; acknowledged without sending", "delivery_id", id)
		case store.StatusSent, store.StatusFailed, store.StatusSkipped, store.StatusHeldOut:
			// Already finished (a duplicate task after a crash or a
			// reconciler re-enqueue): acknowledge without sending.
			w.log.Debug("delivery already finished, acknowledged without sending", "delivery_id", id, "status", c.Status)
		default:
			// Unfinished, but another task carries it now (a batch handed
			// it on, or this is a batch the reconciler replaced).
			w.log.Debug("delivery carried by another task, acknowledged without sending", "delivery_id", id, "status", c.Status)
		}
		return nil
	}
	var out store.Outcome
	if c.kept != nil {
		// An earlier attempt sent (or decided) this delivery while the
		// database was down: record its outcome, do not send again.
		out = *c.kept
		w.log.Info("recording the outcome an earlier attempt kept during a database outage", "delivery_id", id, "status", out.Status)
	} else {
		var (
			until time.Time
			infra error
		)
		out, until, infra = w.send(ctx, &c.Claim, r)
		if infra != nil {
			// Nothing was sent, and the trouble is Redis's, not the
			// delivery's: the row stays claimed until the task runs
			// again (without using up a retry) and claims it anew.
			return fmt.Errorf("delivery %s: %w: %w", id, ErrInfrastructure, infra)
		}
		if !until.IsZero() {
			return w.deferDelivery(ctx, &c.Claim, until, out.Reason, r, bt)
		}
	}
	out.ID = id
	out.Attempt = c.Attempts
	out.Campaign = c.Campaign
	// Record with a context of its own: a shutdown must not lose the
	// outcome of a send that already happened.
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	s.recorded()
	applied, err := w.records.do(rctx, out)
	if err != nil {
		if out.Status == store.StatusRetry {
			// Nothing was sent: running the task again is safe.
			return fmt.Errorf("record delivery %s as %s: %w: %w", id, out.Status, ErrInfrastructure, err)
		}
		if err := w.keep(out); err != nil {
			return fmt.Errorf("record delivery %s as %s: %w: %w", id, out.Status, ErrInfrastructure, err)
		}
		return nil // counted in metrics when recorded
	}
	if c.kept != nil && applied {
		// Only once applied: a newer claim that took over must still find
		// the kept outcome (the drain loop forgets it when the row is done).
		if err := w.journal.Delete(rctx, id); err != nil {
			w.log.Warn("could not forget a recorded outcome in Redis", "delivery_id", id, "err", err)
		}
		w.metrics.OutcomesRecorded(1)
	}
	if !applied {
		// A later attempt took the delivery over (this one outlived its
		// lease or timeout); that attempt records the outcome.
		w.log.Warn("outcome superseded by a later attempt", "delivery_id", id, "attempt", c.Attempts, "status", out.Status)
		return nil
	}
	w.metrics.Delivered(c.Campaign, out.Status)
	switch {
	case out.Status == store.StatusRetry && bt != nil:
		// Recorded queued and detached from the batch: on its own task now.
		at := w.cfg.Now().Add(Backoff(w.cfg.RetryBase, w.cfg.RetryMax, 1))
		w.handoff(rctx, bt, c.Campaign, id, at, r.max-1)
	case out.Status == store.StatusRetry:
		return fmt.Errorf("delivery %s: %s", id, out.Error)
	case out.Status == store.StatusFailed && bt == nil:
		return fmt.Errorf("delivery %s failed: %s: %w", id, out.Error, asynq.SkipRetry)
	}
	return nil
}

// handoff enqueues a delivery a batch handed on, detached from it, on a
// task of its own to run at at. When Redis refuses, the row (queued, on
// its own task) waits for the reconciler.
func (w *Worker) handoff(ctx context.Context, bt *batchTask, campaign, id string, at time.Time, maxRetry int) {
	err := w.queue.Handoff(ctx, queue.Ref{ID: id, Queue: bt.queue, SendAt: at, Campaign: campaign}, maxRetry)
	if err != nil {
		w.metrics.InfraError("redis", "handoff")
		w.infra.Trouble("handoff", "Redis refused a delivery handed on by its batch; the reconciler enqueues it later", err,
			"delivery_id", id)
	}
}

// keep writes an outcome PostgreSQL could not take to the journal,
// retrying (and trying PostgreSQL again) until one of them takes it or the
// worker is closed.
func (w *Worker) keep(out store.Outcome) error {
	v := encodeOutcome(out)
	delay := 100 * time.Millisecond
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := w.journal.Put(ctx, out.ID, v)
		cancel()
		if err == nil {
			w.metrics.OutcomesKept(1)
			w.infra.Trouble("kept", "PostgreSQL could not record send outcomes; kept in Redis until it can", nil,
				"delivery_id", out.ID, "status", out.Status)
			return nil
		}
		w.metrics.InfraError("redis", "journal")
		ctx, cancel = context.WithTimeout(context.Background(), 5*time.Second)
		stale, rerr := w.store.Record(ctx, []store.Outcome{out})
		cancel()
		if rerr == nil {
			if len(stale) == 0 {
				w.metrics.Delivered(out.Campaign, out.Status)
			}
			return nil
		}
		w.infra.Trouble("unkept", "neither PostgreSQL nor Redis can keep a send outcome; retrying", err, "delivery_id", out.ID,
			"status", out.Status, "redis_err", err, "postgres_err", rerr, "retry_in", delay)
		select {
		case <-w.stopping:
			w.log.Error("stopping with a send outcome unrecorded; the delivery may be sent again", "delivery_id", out.ID, "status", out.Status)
			return err
		case <-time.After(delay):
		}
		delay = min(delay*2, 5*time.Second)
	}
}

// keptOutcome is an Outcome as kept in the journal.
type keptOutcome struct {
	Campaign  string `json:"campaign"`
	Status    string `json:"status"`
	Reason    string `json:"reason,omitempty"`
	Error     string `json:"error,omitempty"`
	MessageID string `json:"message_id,omitempty"`
	Reply     string `json:"reply,omitempty"`
	Attempt   int    `json:"attempt"`
	// SentAt is absent in outcomes kept before it existed: they are dated
	// when recorded.
	SentAt time.Time `json:"sent_at,omitzero"`
}

func encodeOutcome(o store.Outcome) []byte {
	v, _ := json.Marshal(keptOutcome{Campaign: o.Campaign, Status: o.Status, Reason: o.Reason, Error: o.Error,
		MessageID: o.MessageID, Reply: o.Reply, Attempt: o.Attempt, SentAt: o.SentAt})
	return v
}

func decodeOutcome(v []byte) (store.Outcome, error) {
	var k keptOutcome
	if err := json.Unmarshal(v, &k); err != nil {
		return store.Outcome{}, fmt.Errorf("kept outcome: %w", err)
	}
	return store.Outcome{Campaign: k.Campaign, Status: k.Status, Reason: k.Reason, Error: k.Error,
		MessageID: k.MessageID, Reply: k.Reply, Attempt: k.Attempt, SentAt: k.SentAt}, nil
}

// send decides the outcome of one claimed delivery, or, when it must
// not go out yet, returns the time to defer it to instead.
//
// A delivery held back by the throttles for longer than their MaxWait is
// deferred too: its Outcome then has the Reason "throttled". infra is a
// Redis error that kept the throttles from being checked; nothing was sent.
func (w *Worker) send(ctx context.Context, c *store.Claim, r retries) (out store.Outcome, until time.Time, infra error) {
	switch {
	case !c.CustomerFound && store.IsErasedID(c.Customer.ID):
		// Erased while this delivery waited for a retry or its send time.
		return store.Outcome{Status: store.StatusSkipped, Reason: "erased"}, time.Time{}, nil
	case !c.CustomerFound:
		return store.Outcome{Status: store.StatusSkipped, Reason: "customer no longer exists"}, time.Time{}, nil
	case !c.Customer.Subscribed:
		return store.Outcome{Status: store.StatusSkipped, Reason: "unsubscribed"}, time.Time{}, nil
	case c.Customer.Suppressed:
		return store.Outcome{Status: store.StatusSkipped, Reason: "suppressed"}, time.Time{}, nil
	}
	content := w.content.Load()
	camp := content.Campaigns.Campaign(c.Campaign)
	switch {
	case camp == nil:
		return store.Outcome{Status: store.StatusSkipped, Reason: "campaign removed"}, time.Time{}, nil
	case !camp.Enabled:
		return store.Outcome{Status: store.StatusSkipped, Reason: "campaign disabled"}, time.Time{}, nil
	}
	now := w.cfg.Now()
	if exit, err := w.exits(ctx, content.Rules, c, now); err != nil {
		return store.Outcome{Status: store.StatusRetry, Error: err.Error()}, time.Time{}, nil
	} else if exit {
		return store.Outcome{Status: store.StatusSkipped, Reason: "exit_when"}, time.Time{}, nil
	}
	if at := w.sendTime(content.Campaigns, camp, c, now); at.After(now) {
		return store.Outcome{}, at, nil
	}
	msg, err := w.compose.Message(compose.Input{
		DeliveryID: c.ID, Campaign: camp, Settings: &content.Campaigns.Settings,
		Templates: content.Templates, Template: c.Template, Variant: c.Variant,
		Customer: &c.Customer, Stage: c.Stage, Now: now,
	})
	switch {
	case errors.Is(err, compose.ErrTemplateNotFound):
		// A reload removed it after planning (the campaign, or this
		// journey step, now names another): the error says which.
		return store.Outcome{Status: store.StatusSkipped, Reason: "template removed", Error: err.Error()}, time.Time{}, nil
	case err != nil:
		return store.Outcome{Status: store.StatusSkipped, Reason: "template error: " + err.Error()}, time.Time{}, nil
	}
	msgID := msg.MessageID
	// Wait for a send slot before taking an SMTP connection: a waiting
	// delivery holds none.
	domain := recipientDomain(c.Customer.Email)
	try := w.infra.Begin("redis")
	ticket, err := w.throttle.Wait(ctx, domain, limitsFor(content.Campaigns.Settings.RateLimits, domain))
	if err != nil {
		var tooLong *throttle.TooLong
		switch {
		case errors.As(err, &tooLong):
			w.metrics.ThrottleDeferred()
			return store.Outcome{Reason: reasonThrottled}, now.Add(tooLong.Wait), nil
		case ctx.Err() != nil:
			// Cut short by a shutdown or the task's timeout: nothing was
			// sent, and the task runs again.
			return store.Outcome{Status: store.StatusRetry, Error: "waiting for a send slot: " + err.Error()}, time.Time{}, nil
		default:
			w.metrics.InfraError("redis", "throttle")
			try.Failed("Redis unavailable; deliveries wait for it", err)
			return store.Outcome{}, time.Time{}, err
		}
	}
	if ticket.Asked {
		try.Succeeded("Redis available again")
	}
	if ticket.Waited > 0 {
		w.metrics.ThrottleWaited(ticket.Waited)
	}
	start := time.Now()
	reply, err := w.sender.Send(ctx, msg)
	w.metrics.SendLatency(time.Since(start))
	if err == nil {
		w.trouble.ok()
		if ticket.Episode {
			w.recovered(ctx, domain)
		}
		return store.Outcome{Status: store.StatusSent, MessageID: msgID, Reply: reply, SentAt: w.cfg.Now().UTC()}, time.Time{}, nil
	}
	w.trouble.failed(err)
	w.slowDown(ctx, domain, err)
	if nmail.IsPermanent(err) {
		return store.Outcome{Status: store.StatusFailed, Reason: "rejected", Error: err.Error(), MessageID: msgID}, time.Time{}, nil
	}
	retried, maxRetry := r.retried, r.max
	if ctx.Err() != nil {
		// Cut short by a shutdown or the task's timeout, not the server's
		// fault: Asynq runs the task again without counting an attempt.
		return store.Outcome{Status: store.StatusRetry, Error: err.Error(), MessageID: msgID}, time.Time{}, nil
	}
	if retried >= maxRetry {
		// The row's count: a delivery a batch handed on used an attempt
		// before its own task's retries.
		attempts := max(c.Attempts, retried+1)
		return store.Outcome{Status: store.StatusFailed, Reason: fmt.Sprintf("gave up after %d attempts", attempts), Error: err.Error(), MessageID: msgID}, time.Time{}, nil
	}
	return store.Outcome{Status: store.StatusRetry, Error: err.Error(), MessageID: msgID}, time.Time{}, nil
}

// Health reports SMTP trouble: an error while the latest sends failed on
// the transport (refused, timed out, dropped, TLS, AUTH or 4xx), nil once
// a send succeeds.
func (w *Worker) Health() error { return w.trouble.health() }
