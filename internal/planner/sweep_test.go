package planner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/planner"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// Sweep instants of the stage tests.
var (
	s1 = t0
	s2 = t0.Add(3 * time.Hour)
)

// seedStages imports, before s1, "a" (new) and "b" (active); then, between
// s1 and s2, five purchases that make b loyal, "n" (created after s1, new)
// and "late" (imported after s1 but created long before, at_risk).
func seedStages(t *testing.T, st *store.Store, between func()) {
	t.Helper()
	importLines(t, st, "customers", t0, customerLine("a", t0.Add(-5*day)), customerLine("b", t0.Add(-100*day)))
	importLines(t, st, "events", t0, eventLine("v", "b", "visit", t0.Add(-day)))
	between()
	var buys []string
	for i := range 5 {
		buys = append(buys, fmt.Sprintf(`{"id":"o%d","customer_id":"b","type":"purchase","occurred_at":%q,"amount":10}`,
			i, t0.Add(time.Hour).Format(time.RFC3339)))
	}
	importLines(t, st, "events", s2, buys...)
	importLines(t, st, "customers", s2, customerLine("n", t0.Add(2*time.Hour)), customerLine("late", t0.Add(-50*day)))
}

func TestStageSweep(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	rules := triggerRules(t, nil)
	p := planner.New(st, slog.New(slog.DiscardHandler))
	sweep := func(at time.Time, want store.SweepResult) {
		t.Helper()
		got, err := p.Sweep(ctx, rules, at)
		if err != nil {
			t.Fatal(err)
		}
		if want.At.IsZero() {
			want.At = at
		}
		if got != want {
			t.Errorf("sweep at %s: %+v, want %+v", at.Format(time.RFC3339), got, want)
		}
	}
	seedStages(t, st, func() {
		// The first sweep records baselines only, however new a or b.
		sweep(s1, store.SweepResult{Customers: 2, Baselines: 2})
	})
	// b changed (an entry), n is new since s1 (an entry), late is a
	// baseline: created before s1; a is unchanged, and not written.
	sweep(s2, store.SweepResult{Customers: 4, Baselines: 1, Changes: 2, Entries: 2})
	// Again at the same instant: nothing changed.
	sweep(s2, store.SweepResult{Customers: 4})
	// Earlier than the latest sweep: refused, nothing written.
	sweep(s2.Add(-time.Second), store.SweepResult{Refused: true, Latest: s2})

	for id, want := range map[string][]store.StageChange{
		"a":    {{From: "", To: "new", ObservedAt: s1}},
		"b":    {{From: "", To: "active", ObservedAt: s1}, {From: "active", To: "loyal", ObservedAt: s2, Entry: true}},
		"n":    {{From: "", To: "new", ObservedAt: s2, Entry: true}},
		"late": {{From: "", To: "at_risk", ObservedAt: s2}},
	} {
		got, err := st.StageHistory(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("stage history of %s: %+v, want %+v", id, got, want)
		}
	}
}

// TestStageTrigger: an observed entry into loyal is due at the entry plus
// the delay, and planned once.
func TestStageTrigger(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	q := triggerQueue(t)
	rules := triggerRules(t, func(set *campaign.Set) {
		set.Campaign("loyal-hello").Trigger.Delay = 2 * time.Hour
	})
	loyal := rules.Target("loyal-hello")
	p := planner.New(st, slog.New(slog.DiscardHandler))
	seedStages(t, st, func() {
		if _, err := p.Sweep(ctx, rules, s1); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := p.Sweep(ctx, rules, s2); err != nil {
		t.Fatal(err)
	}
	tick := func(now time.Time, planned int) {
		t.Helper()
		res, err := p.TickTriggered(ctx, rules, loyal, now, q, planner.TickOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if res.Planned != planned {
			t.Errorf("at %s: %+v, want %d planned", now.Format(time.RFC3339), res, planned)
		}
	}
	tick(s2, 0)                              // observed, not due yet
	tick(s2.Add(2*time.Hour-time.Second), 0) // still not due
	tick(s2.Add(2*time.Hour), 1)             // due
	tick(s2.Add(2*time.Hour), 0)             // once
	tick(s2.Add(3*time.Hour), 0)
	want := []row{{"loyal-hello", "b", s2.Add(2 * time.Hour), 1, "", s2.Add(2 * time.Hour), store.StatusPlanned}}
	if got := rows(t, st); !reflect.DeepEqual(got, want) {
		t.Errorf("rows\n%v\nwant\n%v", got, want)
	}
}

// TestStageTriggerWithin: an entry first evaluated within or more after
// its due time is never planned.
func TestStageTriggerWithin(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	q := triggerQueue(t)
	rules := triggerRules(t, nil)
	p := planner.New(st, slog.New(slog.DiscardHandler))
	seedStages(t, st, func() {
		if _, err := p.Sweep(ctx, rules, s1); err != nil {
			t.Fatal(err)
		}
	})
	if _, err := p.Sweep(ctx, rules, s2); err != nil {
		t.Fatal(err)
	}
	res, err := p.TickTriggered(ctx, rules, rules.Target("loyal-hello"), s2.Add(campaign.DefaultWithin), q, planner.TickOptions{})
	if err != nil || res.Candidates != 0 || res.Planned != 0 {
		t.Errorf("within after the entry: %+v, %v; want nothing due", res, err)
	}
	if got := rows(t, st); len(got) != 0 {
		t.Errorf("rows %v, want none", got)
	}
}

// TestPlanMatchesRunOnce: the dry run at s2, with its simulated sweep,
// lists exactly the rows run-once at s2 records: the scheduled campaign,
// the due event and the stage entry the sweep observes.
func TestPlanMatchesRunOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	q := triggerQueue(t)
	rules := triggerRules(t, nil)
	p := planner.New(st, slog.New(slog.DiscardHandler))
	seedStages(t, st, func() {
		if _, err := p.RunOnce(ctx, rules, rules.Targets(), s1, q, io.Discard); err != nil {
			t.Fatal(err)
		}
	})
	importLines(t, st, "events", s2, eventLine("c-a", "a", "cart_abandoned", s2.Add(-90*time.Minute)))
	before := rows(t, st)

	var dry []row
	_, err := p.DryRun(ctx, rules, rules.Targets(), s2, func(pl *planner.Planned) error {
		dry = append(dry, row{pl.Campaign, pl.CustomerID, pl.Occurrence, pl.Step, pl.EventID, pl.SendAt, pl.Status})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := rows(t, st); !reflect.DeepEqual(got, before) {
		t.Errorf("the dry run wrote deliveries:\n%v", got)
	}
	if h, _ := st.StageHistory(ctx, "b"); len(h) != 1 {
		t.Errorf("the dry run wrote stage history: %+v", h)
	}
	if _, err := p.RunOnce(ctx, rules, rules.Targets(), s2, q, io.Discard); err != nil {
		t.Fatal(err)
	}
	var recorded []row
	for _, r := range rows(t, st) {
		if !r.Occurrence.Before(s1.Add(time.Second)) {
			recorded = append(recorded, r)
		}
	}
	sortRows(dry)
	want := []row{
		{"cart", "a", s2.Add(-30 * time.Minute), 1, "c-a", s2, store.StatusPlanned},
		{"loyal-hello", "b", s2, 1, "", s2, store.StatusPlanned},
		{"weekly", "a", s2, 1, "", s2, store.StatusPlanned},
		{"weekly", "n", s2, 1, "", s2, store.StatusPlanned},
	}
	sortRows(want)
	if !reflect.DeepEqual(dry, want) {
		t.Errorf("plan at s2:\n%v\nwant\n%v", dry, want)
	}
	if !reflect.DeepEqual(recorded, dry) {
		t.Errorf("run-once at s2 recorded\n%v\nplan showed\n%v", recorded, dry)
	}
}
