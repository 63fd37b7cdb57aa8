// Package planner decides who receives which campaign at one instant. The
// dry runs (`nurture plan`, `nurture stage`), `nurture run-once` and the
// scheduler's ticks all go through Evaluate, so a dry run shows exactly what
// a tick at the same instant would plan.
package planner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/experiment"
	"nurture/internal/freqcap"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/window"
)

// Planned is one delivery a campaign would record at one instant: an email
// to send, a held-out entry, or an email the frequency cap skips.
type Planned struct {
	Campaign   string    `json:"campaign"`
	CustomerID string    `json:"customer_id"`
	Email      string    `json:"email"`
	Stage      string    `json:"stage"`
	Template   string    `json:"template"`
	SendAt     time.Time `json:"send_at"`
	Step       int       `json:"step"`
	// Variant is the experiment group; empty (and left out) without
	// variants or holdout.
	Variant string `json:"variant,omitempty"`
	// Status is planned, held_out, or skipped with Reason.
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
	EventID string `json:"event_id,omitempty"`

	// Occurrence is the entry's start time (not printed: it is the
	// evaluation instant for schedules).
	Occurrence time.Time `json:"-"`
	// Queue is the campaign's queue.
	Queue string `json:"-"`
}

// delivery is p as a row to insert.
func (p *Planned) delivery() store.NewDelivery {
	return store.NewDelivery{
		Campaign: p.Campaign, CustomerID: p.CustomerID, Occurrence: p.Occurrence,
		Stage: p.Stage, Template: p.Template, Queue: p.Queue,
		Step: p.Step, EventID: p.EventID, Variant: p.Variant, SendAt: p.SendAt,
		Status: p.Status, Reason: p.Reason,
	}
}

// Stats counts what one evaluation of one campaign saw.
type Stats struct {
	Campaign string
	// Candidates is how many customers passed the SQL pre-filter.
	Candidates int
	// Matched is how many are in the audience.
	Matched int
	// AlreadyPlanned is how many candidates have a delivery at this very
	// occurrence from an earlier run of the same tick.
	AlreadyPlanned int
	// ExprErrors counts customers whose stage or where expression failed
	// at run time; they are left out and logged.
	ExprErrors int
	// HeldOut counts matched customers in the experiment's holdout.
	HeldOut int
}

// Planner evaluates campaigns against the stored customers.
type Planner struct {
	store *store.Store
	log   *slog.Logger
	zones window.Zones
}

// New returns a Planner reading st.
func New(st *store.Store, log *slog.Logger) *Planner {
	return &Planner{store: st, log: log}
}

// Evaluate calls fn for every customer in t's audience at the instant at,
// in customer id order. It writes nothing. fn must not keep the pointer.
func (p *Planner) Evaluate(ctx context.Context, rules *audience.Rules, t *audience.Target, at time.Time, fn func(*Planned) error) (Stats, error) {
	return p.evaluate(ctx, rules, t, at, fn, nil)
}

// evaluate is Evaluate; for a journey it also calls enter with each entry
// before fn with the deliveries of the steps the entry reached.
func (p *Planner) evaluate(ctx context.Context, rules *audience.Rules, t *audience.Target, at time.Time, fn func(*Planned) error, enter func(*store.NewJourney) error) (Stats, error) {
	c := t.Campaign
	st := Stats{Campaign: c.Name}
	if !c.Enabled || Triggered(c) {
		// A triggered campaign has no fire times: EvaluateTriggered.
		return st, nil
	}
	at = at.UTC()
	filter := store.CandidateFilter{
		Campaign:    c.Name,
		At:          at,
		MinInactive: c.Audience.MinInactive,
		MaxInactive: c.Audience.MaxInactive,
		// Evaluate outputs no attributes: decode them only for expressions.
		SkipAttributes: !t.NeedsAttributes(),
		Journey:        c.IsJourney(),
	}
	win := rules.Set().EffectiveWindow(c)
	exp := experimentOf(c)
	var out Planned
	err := p.store.Candidates(ctx, filter, func(cand *store.Candidate) error {
		st.Candidates++
		if cand.History.Planned {
			// This occurrence was planned already; a tick would insert
			// nothing, so a dry run must not show it either.
			st.AlreadyPlanned++
			return nil
		}
		facts := audience.FactsAt(&cand.Customer, at)
		stage, err := rules.Stage(&facts)
		if err != nil {
			st.ExprErrors++
			p.logExprError(st.ExprErrors, c.Name, cand.Customer.ID, err)
			return nil
		}
		facts.Stage = stage
		ok, err := t.Match(&cand.Customer, &facts, cand.History, at)
		if err != nil {
			st.ExprErrors++
			p.logExprError(st.ExprErrors, c.Name, cand.Customer.ID, err)
			return nil
		}
		if ok {
			ok, err = p.noExit(t, &facts)
		}
		if err != nil {
			st.ExprErrors++
			p.logExprError(st.ExprErrors, c.Name, cand.Customer.ID, err)
			return nil
		}
		if !ok {
			return nil
		}
		st.Matched++
		if c.IsJourney() {
			return p.enterJourney(rules, t, &cand.Customer, &facts, at, "", &st, fn, enter)
		}
		out = Planned{
			Campaign:   c.Name,
			CustomerID: cand.Customer.ID,
			Email:      cand.Customer.Email,
			Stage:      stage,
			Template:   c.Email.Template,
			SendAt:     at,
			Step:       1,
			Status:     store.StatusPlanned,
			Occurrence: at,
			Queue:      c.Queue,
		}
		if win != nil {
			out.SendAt = win.SendAt(at, p.zones.Load(cand.Customer.Timezone))
		}
		p.assign(&out, c, exp)
		if out.Status == store.StatusHeldOut {
			st.HeldOut++
		}
		return fn(&out)
	})
	if err != nil {
		return st, fmt.Errorf("evaluate campaign %q at %s: %w", c.Name, at.Format(time.RFC3339), err)
	}
	if st.ExprErrors > 0 {
		p.log.Warn("customers left out because an expression failed", "campaign", c.Name, "count", st.ExprErrors)
	}
	return st, nil
}

// experimentOf returns c's experiment, or nil when it has none.
func experimentOf(c *campaign.Campaign) *experiment.Plan {
	if len(c.Variants) == 0 && c.HoldoutBasisPoints == 0 {
		return nil
	}
	e := &experiment.Plan{Campaign: c.Name, HoldoutBasisPoints: c.HoldoutBasisPoints}
	for _, v := range c.Variants {
		e.Variants = append(e.Variants, experiment.Variant{Name: v.Name, Weight: v.Weight})
	}
	return e
}

// assign puts pl in its experiment group: held out, or a variant whose
// template it takes.
func (p *Planner) assign(pl *Planned, c *campaign.Campaign, e *experiment.Plan) {
	if e == nil {
		return
	}
	pl.Variant = e.Assign(pl.CustomerID)
	if pl.Variant == experiment.Holdout {
		pl.Status = store.StatusHeldOut
		return
	}
	if v := c.Variant(pl.Variant); v != nil && v.Template != "" {
		pl.Template = v.Template
	}
}

// logExprError logs the first few expression failures of an evaluation in
// full; the rest are only counted, so one bad expression cannot flood logs.
func (p *Planner) logExprError(n int, campaign, customerID string, err error) {
	if n <= 5 {
		p.log.Warn("expression failed for customer", "campaign", campaign, "customer_id", customerID, "err", err)
	}
}

// Stage calls fn with every customer's stage at the instant at.
func (p *Planner) Stage(ctx context.Context, rules *audience.Rules, at time.Time, fn func(c *audience.Customer, f *audience.Facts) error) error {
	at = at.UTC()
	return p.store.Customers(ctx, func(c *audience.Customer) error {
		facts := audience.FactsAt(c, at)
		stage, err := rules.Stage(&facts)
		if err != nil {
			return fmt.Errorf("customer %q: %w", c.ID, err)
		}
		facts.Stage = stage
		return fn(c, &facts)
	})
}

// Enqueuer puts deliveries on the queue; queue.Client is one.
type Enqueuer interface {
	Enqueue(ctx context.Context, refs []queue.Ref) ([]queue.Queued, error)
	// Assign names the task Enqueue will put each ref on.
	Assign(refs []queue.Ref) []queue.Queued
}

// TickResult is what one tick of one campaign did.
type TickResult struct {
	Stats
	Occurrence time.Time
	// Planned is how many new delivery rows the tick created; a repeated
	// tick at the same occurrence creates none.
	Planned int
	// Enqueued is how many tasks were handed to the queue.
	Enqueued int
	// NewHeldOut and Capped count new rows recorded held out, and skipped
	// by the global frequency cap.
	NewHeldOut, Capped int
	// Entered counts new journeys.
	Entered int
}

// TickOptions tunes Tick. Zero values take the defaults.
type TickOptions struct {
	// BatchSize is how many delivery rows are inserted and enqueued
	// together. Default 2000.
	BatchSize int
	// Enqueued, when set, is called with the occurrence (the entry's start
	// time) of each new delivery handed to the queue, once it is; the
	// scheduler measures the lag of triggers with it. Default none.
	Enqueued func(occurrence time.Time)
}

// Tick plans campaign t at occurrence: it evaluates the audience, inserts
// one delivery row per customer (idempotent on campaign, customer and
// occurrence), commits, then enqueues a task for each new row and marks it
// queued. Rows whose enqueue fails stay planned for the reconciler.
func (p *Planner) Tick(ctx context.Context, rules *audience.Rules, t *audience.Target, occurrence time.Time, q Enqueuer, opts TickOptions) (TickResult, error) {
	occurrence = occurrence.UTC()
	return p.record(ctx, rules, t, occurrence, q, opts,
		func(fn func(*Planned) error, enter func(*store.NewJourney) error) (Stats, error) {
			return p.evaluate(ctx, rules, t, occurrence, fn, enter)
		})
}

// record writes and enqueues what evaluate yields for t, in batches: its
// deliveries, and for a journey its entries, each with its deliveries.
func (p *Planner) record(ctx context.Context, rules *audience.Rules, t *audience.Target, occurrence time.Time, q Enqueuer, opts TickOptions,
	evaluate func(fn func(*Planned) error, enter func(*store.NewJourney) error) (Stats, error)) (TickResult, error) {
	if opts.BatchSize <= 0 {
		opts.BatchSize = 2000
	}
	res := TickResult{Occurrence: occurrence}

	// Evaluation streams from one connection while a second goroutine
	// writes and enqueues, so reading never waits for Redis.
	batches := make(chan tickBatch, 2)
	flushErr := make(chan error, 1)
	cp := capOf(rules)
	go func() {
		var err error
		for b := range batches {
			if err != nil {
				continue // drain so the reader is not blocked
			}
			var f flushed
			f, err = p.flush(ctx, b, cp, q, opts.Enqueued)
			res.Planned += f.planned
			res.Enqueued += f.enqueued
			res.NewHeldOut += f.heldOut
			res.Capped += f.capped
			res.Entered += f.entered
		}
		flushErr <- err
	}()

	var batch tickBatch
	send := func() error {
		select {
		case batches <- batch:
		case <-ctx.Done():
			return ctx.Err()
		}
		batch = tickBatch{}
		return nil
	}
	var enter func(*store.NewJourney) error
	if t.Campaign.IsJourney() {
		// An entry's deliveries follow it: a full batch is sent before
		// the next entry, never between an entry and its deliveries.
		enter = func(j *store.NewJourney) error {
			if len(batch.journeys) >= opts.BatchSize {
				if err := send(); err != nil {
					return err
				}
			}
			batch.journeys = append(batch.journeys, *j)
			return nil
		}
	}
	stats, evalErr := evaluate(func(pl *Planned) error {
		batch.deliveries = append(batch.deliveries, pl.delivery())
		if enter == nil && len(batch.deliveries) == opts.BatchSize {
			return send()
		}
		return nil
	}, enter)
	if evalErr == nil && (len(batch.deliveries) > 0 || len(batch.journeys) > 0) {
		batches <- batch
	}
	close(batches)
	err := errors.Join(evalErr, <-flushErr)
	res.Stats = stats
	return res, err
}

// tickBatch is a batch of a tick's rows: deliveries, and for a journey its
// entries (whose deliveries follow them into the batch, so an entry and
// its deliveries are written together).
type tickBatch struct {
	deliveries []store.NewDelivery
	journeys   []store.NewJourney
}

// capOf returns the global frequency cap of the rules' settings.
func capOf(rules *audience.Rules) freqcap.Cap {
	if c := rules.Set().Settings.FrequencyCap; c != nil {
		return freqcap.Cap{Max: c.Max, Per: c.Per}
	}
	return freqcap.Cap{}
}

// flushed is what one flush did.
type flushed struct {
	planned, enqueued, heldOut, capped, entered int
}

// flush records a batch and enqueues its new planned deliveries, calling
// enqueued (when set) with the occurrence of each one enqueued.
func (p *Planner) flush(ctx context.Context, b tickBatch, cp freqcap.Cap, q Enqueuer, enqueued func(occurrence time.Time)) (flushed, error) {
	if b.journeys != nil {
		return p.flushEntries(ctx, b, cp, q, enqueued)
	}
	in, err := p.store.PlanDeliveries(ctx, b.deliveries, cp)
	if err != nil {
		return flushed{}, err
	}
	return p.enqueue(ctx, in, q, enqueued)
}

// enqueue enqueues the new planned deliveries of in and marks them queued.
func (p *Planner) enqueue(ctx context.Context, in store.Inserted, q Enqueuer, enqueued func(occurrence time.Time)) (flushed, error) {
	f := flushed{planned: in.New(), heldOut: in.HeldOut, capped: in.Capped}
	if len(in.Planned) == 0 {
		return f, nil
	}
	qrefs := make([]queue.Ref, len(in.Planned))
	for i, r := range in.Planned {
		qrefs[i] = queue.Ref{ID: r.ID, Queue: r.Queue, SendAt: r.SendAt, Campaign: r.Campaign}
	}
	// The rows name their task before it exists: a batch task may run as
	// soon as it is enqueued, and claims only what names it. A delivery
	// whose enqueue fails is queued on a task that does not exist, which
	// the reconciler replaces.
	assigned := q.Assign(qrefs)
	ids, tasks := make([]string, len(assigned)), make([]string, len(assigned))
	for i, a := range assigned {
		ids[i], tasks[i] = a.ID, a.Task
	}
	if err := p.store.MarkQueuedBy(ctx, ids, tasks); err != nil {
		return f, err
	}
	done, enqErr := q.Enqueue(ctx, qrefs)
	f.enqueued = len(done)
	if enqueued != nil && len(done) > 0 {
		occurrences := make(map[string]time.Time, len(in.Planned))
		for _, r := range in.Planned {
			occurrences[r.ID] = r.Occurrence
		}
		for _, d := range done {
			enqueued(occurrences[d.ID])
		}
	}
	return f, enqErr
}
