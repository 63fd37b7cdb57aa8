package demo

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"slices"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/freqcap"
	"nurture/internal/importer"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/sample"
	"nurture/internal/store"
)

// How the demo keeps time
//
// The demo replays days in seconds, so nothing may wait for the wall
// clock. The planner enqueues through a heldQueue, which marks each
// delivery queued but keeps its task instead of handing it to Redis with
// ProcessAt = send_at. The demo then releases the held tasks in send_at
// order, one send_at at a time: it sets the workers' clock (a simClock) to
// that send_at, enqueues the tasks to run at once and waits until each is
// finished. The planner put every send_at inside its send window, so the
// workers, whose clock reads exactly that send_at, send instead of
// deferring: windows are honoured in simulated time, not skipped.
//
// Each day releases the deliveries due before the next day's evaluation;
// the last day releases the rest (a review request planned on a Friday
// evening waits for Monday morning in its customer's zone).

// simClock is the workers' clock: the simulated instant, set by the demo.
type simClock struct{ ns atomic.Int64 }

func (c *simClock) set(t time.Time)     { c.ns.Store(t.UnixNano()) }
func (c *simClock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func newSimClock(t time.Time) *simClock { c := &simClock{}; c.set(t); return c }

// heldQueue is the planner's Enqueuer in the demo: it accepts every task
// and keeps it until release.
type heldQueue struct{ refs []queue.Ref }

func (h *heldQueue) Enqueue(_ context.Context, refs []queue.Ref) ([]queue.Queued, error) {
	done := make([]queue.Queued, len(refs))
	for i, r := range refs {
		done[i] = queue.Queued{ID: r.ID}
	}
	h.refs = append(h.refs, refs...)
	return done, nil
}

// Assign puts every delivery on its own task.
func (h *heldQueue) Assign(refs []queue.Ref) []queue.Queued {
	out := make([]queue.Queued, len(refs))
	for i, r := range refs {
		out[i] = queue.Queued{ID: r.ID}
	}
	return out
}

// take removes and returns, in send_at then id order, the held tasks
// whose send_at is before until (all of them when until is zero).
func (h *heldQueue) take(until time.Time) []queue.Ref {
	var out, keep []queue.Ref
	for _, r := range h.refs {
		if until.IsZero() || r.SendAt.Before(until) {
			out = append(out, r)
		} else {
			keep = append(keep, r)
		}
	}
	h.refs = keep
	slices.SortFunc(out, func(a, b queue.Ref) int {
		if c := a.SendAt.Compare(b.SendAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out
}

// release sends refs (sorted by send_at) with the workers: for each
// distinct send_at it sets the clock to it, enqueues those tasks to run
// at once and waits until every one is sent, failed or skipped.
func release(ctx context.Context, st *store.Store, q *queue.Client, clock *simClock, refs []queue.Ref) error {
	for len(refs) > 0 {
		n := 1
		for n < len(refs) && refs[n].SendAt.Equal(refs[0].SendAt) {
			n++
		}
		group := refs[:n]
		refs = refs[n:]
		clock.set(group[0].SendAt)
		now := make([]queue.Ref, len(group))
		ids := make([]string, len(group))
		for i, r := range group {
			now[i] = queue.Ref{ID: r.ID, Queue: r.Queue}
			ids[i] = r.ID
		}
		if _, err := q.Enqueue(ctx, now); err != nil {
			return err
		}
		if err := waitFinished(ctx, st, ids); err != nil {
			return err
		}
	}
	return nil
}

// waitFinished polls the deliveries ids until none is open. It gives up
// when none finished for a minute.
func waitFinished(ctx context.Context, st *store.Store, ids []string) error {
	tk := time.NewTicker(10 * time.Millisecond)
	defer tk.Stop()
	progress, lastOpen := time.Now(), -1
	for {
		statuses, err := st.Statuses(ctx, ids)
		if err != nil {
			return err
		}
		open := 0
		for _, id := range ids {
			if !finished(statuses[id]) {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		if open != lastOpen {
			progress, lastOpen = time.Now(), open
		} else if time.Since(progress) > time.Minute {
			return fmt.Errorf("no delivery finished for a minute; %d still open (is the mail server answering?)", open)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
		}
	}
}

// finished reports whether a delivery with status s is done: sent,
// failed, skipped or held out (never sent, by design).
func finished(s string) bool {
	switch s {
	case store.StatusSent, store.StatusFailed, store.StatusSkipped, store.StatusHeldOut:
		return true
	}
	return false
}

// tally is what the deliveries and journeys add up to at one moment.
type tally struct {
	planned, sent, heldOut, capped, open int
	exited                               int
}

func (a tally) minus(b tally) tally {
	return tally{planned: a.planned - b.planned, sent: a.sent - b.sent, heldOut: a.heldOut - b.heldOut,
		capped: a.capped - b.capped, open: a.open - b.open, exited: a.exited - b.exited}
}

func takeTally(ctx context.Context, st *store.Store) (tally, error) {
	var t tally
	err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		t.planned++
		switch {
		case d.Status == store.StatusSent:
			t.sent++
		case d.Status == store.StatusHeldOut:
			t.heldOut++
		case d.Status == store.StatusSkipped && d.Reason == freqcap.Reason:
			t.capped++
		case !finished(d.Status):
			t.open++
		}
		return nil
	})
	if err != nil {
		return t, err
	}
	js, err := st.Journeys(ctx, "", "")
	if err != nil {
		return t, err
	}
	for _, j := range js {
		if j.Status == store.JourneyExited {
			t.exited++
		}
	}
	return t, nil
}

// printExits lists the journeys that exited, with the reason (the first
// maxNotSent, then how many more).
func printExits(ctx context.Context, st *store.Store, out io.Writer) error {
	js, err := st.Journeys(ctx, "", "")
	if err != nil {
		return err
	}
	var exited []store.JourneyRow
	more := 0
	for _, j := range js {
		switch {
		case j.Status != store.JourneyExited:
		case len(exited) == maxNotSent:
			more++
		default:
			exited = append(exited, j)
		}
	}
	if len(exited) == 0 {
		return nil
	}
	fmt.Fprintln(out, "Journeys exited, and why:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, j := range exited {
		fmt.Fprintf(tw, "  %s\t%s\tafter step %d\t%s\n", j.Campaign, j.CustomerID, j.Step, j.Reason)
	}
	tw.Flush()
	if more > 0 {
		fmt.Fprintf(out, "  and %d more\n", more)
	}
	fmt.Fprintln(out)
	return nil
}

// activity is one simulated day of customer behaviour.
type activity struct {
	events []demoEvent
	// story says, in a few words per kind, what happened.
	story []string
}

type demoEvent struct {
	ID         string         `json:"id"`
	CustomerID string         `json:"customer_id"`
	Type       string         `json:"type"`
	OccurredAt time.Time      `json:"occurred_at"`
	Amount     *float64       `json:"amount,omitempty"`
	Properties map[string]any `json:"properties,omitempty"`
}

// customerID is the id the sample generator gives its i-th customer
// (0-based).
func customerID(i int) string { return fmt.Sprintf("c%07d", i+1) }

// dayActivity returns the simulated activity of day d, evaluated at at:
// a few abandoned carts an hour or more before at, a few small orders, and
// one large order that makes a customer loyal. It is a function of seed, d,
// n and at only, and of buyer: a customer in a journey that exits on a
// purchase, who places an order too (none when buyer.customer is empty).
func dayActivity(seed uint64, d, n int, at time.Time, buyer journeyCustomer) activity {
	rng := rand.New(rand.NewPCG(seed, uint64(d)+0x5eed))
	var a activity
	some := max(1, n/100)
	minutes := func(lo, hi int) time.Duration { return time.Duration(lo+rng.IntN(hi-lo)) * time.Minute }
	money := func(lo, hi int) *float64 { v := float64(lo+rng.IntN(hi-lo)) + float64(rng.IntN(100))/100; return &v }
	for k := range some {
		a.events = append(a.events, demoEvent{
			ID: fmt.Sprintf("demo-d%d-cart%d", d, k+1), CustomerID: customerID(rng.IntN(n)), Type: "cart_abandoned",
			OccurredAt: at.Add(-time.Hour - minutes(0, 300)), Properties: map[string]any{"cart_value": 5 + rng.IntN(120)},
		})
	}
	for k := range max(1, n/200) {
		a.events = append(a.events, demoEvent{
			ID: fmt.Sprintf("demo-d%d-order%d", d, k+1), CustomerID: customerID(rng.IntN(n)), Type: "purchase",
			OccurredAt: at.Add(-minutes(10, 600)), Amount: money(10, 50),
		})
	}
	// A large first or early order: a prospect, active or at-risk customer
	// (never more than 300 spent before) passes 500 and becomes loyal at
	// the next stage sweep. Three profiles in eight fit, so 64 draws all
	// but always find one; a tiny audience may have none.
	big := ""
	for range 64 {
		i := rng.IntN(n)
		if p := sample.ProfileOf(i); p == sample.Prospect || p == sample.Active || p == sample.AtRisk {
			big = customerID(i)
			break
		}
	}
	if big != "" {
		a.events = append(a.events, demoEvent{
			ID: fmt.Sprintf("demo-d%d-big", d), CustomerID: big, Type: "purchase",
			OccurredAt: at.Add(-minutes(10, 600)), Amount: money(520, 600),
		})
	}
	if buyer.customer != "" {
		a.events = append(a.events, demoEvent{
			ID: fmt.Sprintf("demo-d%d-first-order", d), CustomerID: buyer.customer, Type: "purchase",
			OccurredAt: at.Add(-minutes(10, 600)), Amount: money(20, 60),
		})
	}
	for i := range a.events {
		a.events[i].OccurredAt = a.events[i].OccurredAt.Truncate(time.Minute)
	}
	story := fmt.Sprintf("%s abandoned, %s", count(some, "cart"), count(max(1, n/200), "order"))
	if big != "" {
		story += ", and a large order from " + big
	}
	a.story = append(a.story, story)
	if buyer.customer != "" {
		a.story = append(a.story, fmt.Sprintf("%s, in the %s journey, places a first order", buyer.customer, buyer.campaign))
	}
	return a
}

// importActivity imports a's events through the importer, as a shop's
// feed would be, with the importer's clock at at.
func importActivity(ctx context.Context, st *store.Store, a activity, at time.Time) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	for _, e := range a.events {
		if err := enc.Encode(e); err != nil {
			return err
		}
	}
	res, err := importer.Events(ctx, st, &buf, "activity.jsonl", importer.Options{Strict: true, Now: func() time.Time { return at }})
	if err != nil {
		return err
	}
	if res.Bad > 0 {
		return fmt.Errorf("simulated activity: %d bad lines, first: %s", res.Bad, res.Problems[0])
	}
	return nil
}

// journeyCustomer is a customer in a campaign's journey.
type journeyCustomer struct{ campaign, customer string }

// journeyBuyer returns a customer with an unfinished journey of a
// campaign that exits on a purchase (the one with the lowest id, in the
// first such campaign by name), or a zero journeyCustomer when there is
// none.
func journeyBuyer(ctx context.Context, st *store.Store, set *campaign.Set) (journeyCustomer, error) {
	for _, c := range set.Campaigns {
		if !c.Enabled || !c.IsJourney() || c.ExitWhen == "" {
			continue
		}
		js, err := st.Journeys(ctx, c.Name, "")
		if err != nil {
			return journeyCustomer{}, err
		}
		best := ""
		for _, j := range js {
			if j.Status == store.JourneyActive && (best == "" || j.CustomerID < best) {
				best = j.CustomerID
			}
		}
		if best != "" {
			return journeyCustomer{c.Name, best}, nil
		}
	}
	return journeyCustomer{}, nil
}

// dayLines keeps, of the planner's lines for one day, those where
// something happened; the first day keeps them all.
type dayLines struct {
	w     io.Writer
	all   bool
	carry []byte
}

func (d *dayLines) Write(p []byte) (int, error) {
	d.carry = append(d.carry, p...)
	for {
		i := bytes.IndexByte(d.carry, '\n')
		if i < 0 {
			return len(p), nil
		}
		line := string(d.carry[:i+1])
		d.carry = d.carry[i+1:]
		if !d.all && (strings.HasSuffix(line, " planned=0 enqueued=0\n") || strings.HasSuffix(line, " disabled\n")) {
			continue
		}
		if _, err := io.WriteString(d.w, line); err != nil {
			return 0, err
		}
	}
}

// replay runs cfg.Days simulated days from at: each day it imports the
// day's activity, does what `run-once --at` does, then sends the day's
// deliveries with the workers, whose clock is clock. It prints a section
// per day.
func replay(ctx context.Context, cfg Config, st *store.Store, p *planner.Planner, c *content.Content, at time.Time,
	clock *simClock, q *queue.Client, out io.Writer) error {
	held := &heldQueue{}
	targets := c.Rules.Targets()
	prev, err := takeTally(ctx, st)
	if err != nil {
		return err
	}
	for d := range cfg.Days {
		now := at.Add(time.Duration(d) * 24 * time.Hour)
		fmt.Fprintf(out, "==> day %d of %d: %s\n", d+1, cfg.Days, now.Format(time.RFC3339))
		in := indent{out}
		var buyer journeyCustomer
		if d == 1 {
			if buyer, err = journeyBuyer(ctx, st, c.Campaigns()); err != nil {
				return err
			}
		}
		a := dayActivity(cfg.Seed, d, cfg.Customers, now, buyer)
		if err := importActivity(ctx, st, a, now); err != nil {
			return err
		}
		for _, s := range a.story {
			fmt.Fprintf(in, "activity: %s\n", s)
		}
		lines := &dayLines{w: in, all: d == 0}
		if _, err := p.RunOnce(ctx, c.Rules, targets, now, held, lines); err != nil {
			return err
		}
		if _, err := p.StepAll(ctx, c.Rules, targets, now, held, lines); err != nil {
			return err
		}
		if d == 0 {
			if err := meanwhile(ctx, st, in); err != nil {
				return err
			}
		}
		until := now.Add(24 * time.Hour)
		last := d == cfg.Days-1
		if last {
			until = time.Time{}
		}
		refs := held.take(until)
		if last && len(refs) > 0 {
			fmt.Fprintf(in, "sending: the last email waits for its window until %s\n", refs[len(refs)-1].SendAt.Format(time.RFC3339))
		}
		if err := release(ctx, st, q, clock, refs); err != nil {
			return err
		}
		t, err := takeTally(ctx, st)
		if err != nil {
			return err
		}
		dt := t.minus(prev)
		prev = t
		fmt.Fprintf(in, "day %d: planned=%d sent=%d held_out=%d capped=%d journeys_exited=%d\n",
			d+1, dt.planned, dt.sent, dt.heldOut, dt.capped, dt.exited)
	}
	if prev.open > 0 {
		return fmt.Errorf("%d deliveries were left unfinished", prev.open)
	}
	return nil
}

// count is n followed by noun, with an s unless n is 1.
func count(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
