package planner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/experiment"
	"nurture/internal/freqcap"
	"nurture/internal/store"
)

// Journey exit and finish reasons, as recorded on the journey.
const (
	ExitWhen         = "exit_when"
	ExitUnsubscribed = "unsubscribed"
	ExitSuppressed   = "suppressed"
	ExitRemoved      = "campaign removed"
	ExitNoCustomer   = "customer removed"
	FinishedHeldOut  = "held out"
	FinishedDone     = "completed"
	// SkipWhere is the reason of a step skipped because its where was
	// false; the journey goes on.
	SkipWhere = "where"
)

// noExit reports whether the campaign's exit_when lets f's customer in:
// true when there is no exit_when or it is false.
func (p *Planner) noExit(t *audience.Target, f *audience.Facts) (bool, error) {
	exit, err := t.ExitWhen(f)
	return !exit && err == nil, err
}

// journeyState is where one journey stands when it is evaluated.
type journeyState struct {
	id       int64
	start    time.Time
	eventID  string
	step     int  // the last step recorded (0: none)
	finished bool // the last step's delivery is finished (true at step 0)
	found    bool // the customer exists
	customer *audience.Customer
	event    *audience.Event
}

// journeyMove is what one evaluation does to a journey: the deliveries of
// the steps it reached, and where that leaves it.
type journeyMove struct {
	rows   []Planned
	step   int
	status string
	reason string
}

// changed reports whether the move records anything.
func (m *journeyMove) changed(from int) bool {
	return len(m.rows) > 0 || m.step != from || m.status != store.JourneyActive
}

// advance decides what the evaluation at now does to journey js of t's
// campaign. Each step whose due time (start + after) has come is checked in
// turn: the customer's consent, then exit_when (which ends the journey
// with its reason), then the step's where (false: the step is recorded
// skipped and the next one considered). The first step that passes is
// planned, sent at the later of its due time and now moved into the send
// window, and the journey waits for its delivery to finish. A journey whose
// last step has finished is done.
func (p *Planner) advance(rules *audience.Rules, t *audience.Target, js *journeyState, now time.Time) (journeyMove, error) {
	c := t.Campaign
	m := journeyMove{step: js.step, status: store.JourneyActive}
	if !js.finished {
		return m, nil
	}
	if js.step >= len(c.Steps) {
		m.status, m.reason = store.JourneyFinished, FinishedDone
		return m, nil
	}
	win := rules.Set().EffectiveWindow(c)
	var facts *audience.Facts
	for next := js.step + 1; next <= len(c.Steps); next++ {
		step := &c.Steps[next-1]
		due := js.start.Add(step.After)
		if due.After(now) {
			break
		}
		switch {
		case !js.found:
			m.status, m.reason = store.JourneyExited, ExitNoCustomer
			return m, nil
		case !js.customer.Subscribed:
			m.status, m.reason = store.JourneyExited, ExitUnsubscribed
			return m, nil
		case js.customer.Suppressed:
			m.status, m.reason = store.JourneyExited, ExitSuppressed
			return m, nil
		}
		if facts == nil {
			f := audience.FactsAt(js.customer, now)
			stage, err := rules.Stage(&f)
			if err != nil {
				return m, err
			}
			f.Stage, f.Event = stage, js.event
			facts = &f
		}
		if exit, err := t.ExitWhen(facts); err != nil {
			return m, err
		} else if exit {
			m.status, m.reason = store.JourneyExited, ExitWhen
			return m, nil
		}
		row := Planned{
			Campaign: c.Name, CustomerID: js.customer.ID, Email: js.customer.Email, Stage: facts.Stage,
			Template: step.Template, SendAt: laterOf(due, now), Step: next, Status: store.StatusPlanned,
			EventID: js.eventID, Occurrence: js.start, Queue: c.Queue,
		}
		if win != nil {
			row.SendAt = win.SendAt(row.SendAt, p.zones.Load(js.customer.Timezone))
		}
		ok, err := t.StepWhere(next-1, facts)
		if err != nil {
			return m, err
		}
		m.step = next
		if !ok {
			row.Status, row.Reason = store.StatusSkipped, SkipWhere
			m.rows = append(m.rows, row)
			if next == len(c.Steps) {
				m.status, m.reason = store.JourneyFinished, FinishedDone
			}
			continue
		}
		m.rows = append(m.rows, row)
		break
	}
	return m, nil
}

func laterOf(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// enterJourney makes the entry of customer cu (facts f, already in the
// audience) into t's journey, started at start: it plans the steps due at
// now (the entry's own evaluation), or records the entry held out. enter
// gets the entry, then fn each delivery.
func (p *Planner) enterJourney(rules *audience.Rules, t *audience.Target, cu *audience.Customer, f *audience.Facts, start time.Time, eventID string, st *Stats, fn func(*Planned) error, enter func(*store.NewJourney) error) error {
	c := t.Campaign
	now := f.Now
	j := store.NewJourney{Campaign: c.Name, CustomerID: cu.ID, Occurrence: start, EventID: eventID, Status: store.JourneyActive}
	var rows []Planned
	if e := experimentOf(c); e != nil && e.Assign(cu.ID) == experiment.Holdout {
		// A held-out journey ends at its first step, recorded and not sent.
		step := &c.Steps[0]
		row := Planned{
			Campaign: c.Name, CustomerID: cu.ID, Email: cu.Email, Stage: f.Stage, Template: step.Template,
			SendAt: laterOf(start.Add(step.After), now), Step: 1, Status: store.StatusHeldOut, Variant: experiment.Holdout,
			EventID: eventID, Occurrence: start, Queue: c.Queue,
		}
		rows = append(rows, row)
		j.Step, j.Status, j.Reason = 1, store.JourneyFinished, FinishedHeldOut
		st.HeldOut++
	} else {
		m, err := p.advance(rules, t, &journeyState{start: start, eventID: eventID, finished: true, found: true, customer: cu, event: f.Event}, now)
		if err != nil {
			st.ExprErrors++
			p.logExprError(st.ExprErrors, c.Name, cu.ID, err)
			return nil
		}
		rows, j.Step, j.Status, j.Reason = m.rows, m.step, m.status, m.reason
	}
	if enter != nil {
		if err := enter(&j); err != nil {
			return err
		}
	}
	for i := range rows {
		if err := fn(&rows[i]); err != nil {
			return err
		}
	}
	return nil
}

// flushEntries records a batch of journey entries with their deliveries
// and enqueues the planned ones.
func (p *Planner) flushEntries(ctx context.Context, b tickBatch, cp freqcap.Cap, q Enqueuer, enqueued func(occurrence time.Time)) (flushed, error) {
	entered, in, err := p.store.EnterJourneys(ctx, b.journeys, b.deliveries, cp)
	if err != nil {
		return flushed{}, err
	}
	f, err := p.enqueue(ctx, in, q, enqueued)
	f.entered = entered
	return f, err
}

// stepOffsets are the offsets from a journey's start of each step, then
// of the moment a journey whose last step finished may end.
func stepOffsets(c *campaign.Campaign) []time.Duration {
	out := make([]time.Duration, 0, len(c.Steps)+1)
	for _, s := range c.Steps {
		out = append(out, s.After)
	}
	return append(out, 0)
}

// JourneyResult is what one evaluation of a journey's due steps did.
type JourneyResult struct {
	Campaign string
	// Moved counts journeys that planned a step, ended or finished.
	Moved int
	// Planned, Enqueued, HeldOut, Capped: as for a tick.
	Planned, Enqueued, Capped int
	// ExprErrors counts journeys left as they were because an
	// expression failed; they are logged.
	ExprErrors int
}

// Steps plans the due steps of every unfinished journey of t's campaign
// at now, ends those that exit, and enqueues what it planned. A journey
// moves only from the step this evaluation read, in one transaction with
// its deliveries, so concurrent evaluations and restarts neither skip nor
// repeat a step.
func (p *Planner) Steps(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, q Enqueuer) (JourneyResult, error) {
	res := JourneyResult{Campaign: t.Campaign.Name}
	if !t.Campaign.IsJourney() || !t.Campaign.Enabled {
		return res, nil
	}
	cp := capOf(rules)
	var (
		moves    []store.JourneyMove
		ds       []store.NewDelivery
		journeys []int64
	)
	flush := func() error {
		if len(moves) == 0 {
			return nil
		}
		moved, in, err := p.store.AdvanceJourneys(ctx, moves, ds, journeys, cp)
		res.Moved += moved
		if err != nil {
			return err
		}
		f, err := p.enqueue(ctx, in, q, nil)
		res.Planned += f.planned
		res.Enqueued += f.enqueued
		res.Capped += f.capped
		moves, ds, journeys = moves[:0], ds[:0], journeys[:0]
		return err
	}
	err := p.dueJourneys(ctx, rules, t, now, &res, func(id int64, from int, m *journeyMove) error {
		moves = append(moves, store.JourneyMove{ID: id, FromStep: from, ToStep: m.step, Status: m.status, Reason: m.reason})
		for i := range m.rows {
			ds = append(ds, m.rows[i].delivery())
			journeys = append(journeys, id)
		}
		if len(moves) >= 1000 {
			return flush()
		}
		return nil
	})
	return res, errors.Join(err, flush())
}

// dryJourneys calls fn with every delivery Steps would record at now.
func (p *Planner) dryJourneys(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, fn func(*Planned) error) error {
	if !t.Campaign.IsJourney() || !t.Campaign.Enabled {
		return nil
	}
	var res JourneyResult
	return p.dueJourneys(ctx, rules, t, now, &res, func(_ int64, _ int, m *journeyMove) error {
		for i := range m.rows {
			if err := fn(&m.rows[i]); err != nil {
				return err
			}
		}
		return nil
	})
}

// dueJourneys calls fn with each unfinished journey of t's campaign that
// the evaluation at now changes.
func (p *Planner) dueJourneys(ctx context.Context, rules *audience.Rules, t *audience.Target, now time.Time, res *JourneyResult, fn func(id int64, from int, m *journeyMove) error) error {
	c := t.Campaign
	now = now.UTC()
	err := p.store.ActiveJourneys(ctx, c.Name, stepOffsets(c), now, func(aj *store.ActiveJourney) error {
		js := journeyState{
			id: aj.ID, start: aj.Occurrence, eventID: aj.EventID, step: aj.Step,
			finished: aj.Step == 0 || aj.LastStatus != "", found: aj.Found, customer: &aj.Customer, event: aj.Event,
		}
		m, err := p.advance(rules, t, &js, now)
		if err != nil {
			res.ExprErrors++
			p.logExprError(res.ExprErrors, c.Name, aj.CustomerID, err)
			return nil
		}
		if !m.changed(aj.Step) {
			return nil
		}
		return fn(aj.ID, aj.Step, &m)
	})
	if err != nil {
		return fmt.Errorf("journey steps of campaign %q at %s: %w", c.Name, now.Format(time.RFC3339), err)
	}
	return nil
}
