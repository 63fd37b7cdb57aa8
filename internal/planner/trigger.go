package planner

import (
	"context"
	"fmt"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/store"
)

// Triggered reports whether the campaign starts on an event or a stage
// entry rather than on a schedule.
func Triggered(c *campaign.Campaign) bool { return c.Trigger != nil }

// within is how late after its due time an entry of c may be planned.
func within(tr *campaign.Trigger) time.Duration {
	if tr.Within > 0 {
		return tr.Within
	}
	return campaign.DefaultWithin
}

// dueFilter selects the due entries of the triggered campaign c at now.
func dueFilter(c *campaign.Campaign, now time.Time, simulated []store.StageEntry) store.DueFilter {
	tr := c.Trigger
	return store.DueFilter{
		Campaign: c.Name, Event: tr.Event, Stage: tr.EnteredStage, Journey: c.IsJourney(),
		Now: now, Delay: tr.Delay, Within: within(tr), Simulated: simulated,
	}
}

// DueFilter selects what an evaluation of the triggered campaign c at now
// reads: its due entries, less the events that the customer's history of
// the campaign keeps out already (max_sends or max_entries reached, a
// journey under way, a cooldown running). Those would fail Match whatever
// else the evaluation finds, and left in they are read again at every poll
// until they are too late.
func DueFilter(c *campaign.Campaign, now time.Time, simulated []store.StageEntry) store.DueFilter {
	f := dueFilter(c, now, simulated)
	if f.Event != "" {
		f.Settled = &store.Settled{Max: max(c.Frequency.MaxSends, c.Frequency.MaxEntries), Cooldown: c.Frequency.Cooldown}
	}
	return f
}

// dueEntries calls fn with every entry of the triggered campaign t that is
// due at now (due <= now < due + within), has no delivery yet, and passes
// the audience rules, trigger.where and exit_when at now. simulated are
// stage entries of a dry run's simulated sweep. Entries come in customer
// id order, then start time; a customer's earlier entry in the same
// evaluation counts toward the later ones' cooldown and max_sends.
func (p *Planner) dueEntries(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, simulated []store.StageEntry, fn func(*Entry) error) (Stats, error) {
	c := t.Campaign
	st := Stats{Campaign: c.Name}
	if !c.Enabled || c.Trigger == nil {
		return st, nil
	}
	now = now.UTC()
	f := DueFilter(c, now, simulated)
	var (
		customer  string     // the customer of the entries seen last
		sends     int        // entries given to fn for them in this evaluation
		entered   bool       // one of them entered a journey
		lastStart *time.Time // the latest of those before now
		entry     Entry
	)
	err := p.store.DueEntries(ctx, f, func(e *store.DueEntry) error {
		st.Candidates++
		if e.Customer.ID != customer {
			customer, sends, lastStart, entered = e.Customer.ID, 0, nil, false
		}
		h := e.History
		h.Sends += sends
		h.Active = h.Active || entered
		if lastStart != nil && (h.LastOccurrence == nil || lastStart.After(*h.LastOccurrence)) {
			h.LastOccurrence = lastStart
		}
		facts := audience.FactsAt(&e.Customer, now)
		stage, err := rules.Stage(&facts)
		if err != nil {
			st.ExprErrors++
			p.logExprError(st.ExprErrors, c.Name, e.Customer.ID, err)
			return nil
		}
		facts.Stage = stage
		ok, err := t.Match(&e.Customer, &facts, h, now)
		facts.Event = e.Event
		if err == nil && ok && e.Event != nil {
			ok, err = t.TriggerWhere(&facts)
		}
		if err == nil && ok {
			var exit bool
			exit, err = t.ExitWhen(&facts)
			ok = !exit
		}
		if err != nil {
			st.ExprErrors++
			p.logExprError(st.ExprErrors, c.Name, e.Customer.ID, err)
			return nil
		}
		if !ok {
			return nil
		}
		st.Matched++
		sends++
		entered = c.IsJourney()
		if e.Due.Before(now) {
			d := e.Due
			lastStart = &d
		}
		entry = Entry{Customer: e.Customer, Facts: facts, Start: e.Due, EventID: e.EventID, Event: e.Event}
		return fn(&entry)
	})
	if err != nil {
		return st, fmt.Errorf("due entries of campaign %q at %s: %w", c.Name, now.Format(time.RFC3339), err)
	}
	if st.ExprErrors > 0 {
		p.log.Warn("entries left out because an expression failed", "campaign", c.Name, "count", st.ExprErrors)
	}
	return st, nil
}

// EvaluateTriggered calls fn for every delivery the triggered campaign t
// would record at now: for a single email, one per due entry, with
// occurrence its start time, the event's id, step 1, and send_at now moved
// into the send window; for a journey, the deliveries of the steps each
// entry reaches at once. It writes nothing; fn must not keep the pointer.
func (p *Planner) EvaluateTriggered(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, simulated []store.StageEntry, fn func(*Planned) error) (Stats, error) {
	return p.evaluateTriggered(ctx, rules, t, now, simulated, fn, nil)
}

// evaluateTriggered is EvaluateTriggered; for a journey it also calls
// enter with each entry before fn with its deliveries.
func (p *Planner) evaluateTriggered(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, simulated []store.StageEntry, fn func(*Planned) error, enter func(*store.NewJourney) error) (Stats, error) {
	c := t.Campaign
	now = now.UTC()
	if c.IsJourney() {
		var st Stats
		var err error
		st, err = p.dueEntries(ctx, rules, t, now, simulated, func(e *Entry) error {
			return p.enterJourney(rules, t, &e.Customer, &e.Facts, e.Start, e.EventID, &st, fn, enter)
		})
		return st, err
	}
	win := rules.Set().EffectiveWindow(c)
	exp := experimentOf(c)
	var out Planned
	st, err := p.dueEntries(ctx, rules, t, now, simulated, func(e *Entry) error {
		out = Planned{
			Campaign:   c.Name,
			CustomerID: e.Customer.ID,
			Email:      e.Customer.Email,
			Stage:      e.Facts.Stage,
			Template:   c.Email.Template,
			SendAt:     now,
			Step:       1,
			Status:     store.StatusPlanned,
			EventID:    e.EventID,
			Occurrence: e.Start,
			Queue:      c.Queue,
		}
		if win != nil {
			out.SendAt = win.SendAt(now, p.zones.Load(e.Customer.Timezone))
		}
		p.assign(&out, c, exp)
		return fn(&out)
	})
	return st, err
}

// TickTriggered plans the due entries of the triggered campaign t at now,
// as Tick does for a schedule: rows first, committed, then tasks; for a
// journey, the entries with the deliveries of the steps they reach at
// once. An entry planned before (by an earlier evaluation, or by another
// process at the same time) is left alone: the delivery and journey keys,
// and for events unique indexes on (campaign, event), make it "already
// done".
func (p *Planner) TickTriggered(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, q Enqueuer, opts TickOptions) (TickResult, error) {
	now = now.UTC()
	return p.record(ctx, rules, t, now, q, opts,
		func(fn func(*Planned) error, enter func(*store.NewJourney) error) (Stats, error) {
			return p.evaluateTriggered(ctx, rules, t, now, nil, fn, enter)
		})
}
