package planner_test

import (
	"context"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// journeyRules loads testdata/journey and turns welcome into a three-step
// journey: welcome-1 at entry, welcome-2 48 hours and welcome-3 120 hours
// after it.
func journeyRules(t *testing.T) *audience.Rules {
	t.Helper()
	rules, err := audience.Load("testdata/journey")
	if err != nil {
		t.Fatal(err)
	}
	set := rules.Set()
	c := set.Campaign("welcome")
	c.Email = campaign.Email{}
	c.Steps = []campaign.Step{{Template: "welcome-1"}, {Template: "welcome-2", After: 48 * time.Hour}, {Template: "welcome-3", After: 120 * time.Hour}}
	rules, err = audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// journeySetup imports customers j1, j2, j3, signed up a day before at.
func journeySetup(t *testing.T) (*store.Store, *planner.Planner, *queue.Client) {
	t.Helper()
	ctx := context.Background()
	st := testenv.Store(t)
	var recs []store.CustomerRecord
	for _, id := range []string{"j1", "j2", "j3"} {
		recs = append(recs, store.CustomerRecord{ID: id, Email: id + "@example.com", Subscribed: true, CreatedAt: at.Add(-day)})
	}
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	if _, err := im.Customers(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return st, planner.New(st, slog.New(slog.DiscardHandler)), queue.NewClient(rdb, queue.Config{})
}

// journeyRows lists deliveries as "customer step template status" and
// journeys as "customer step status reason", sorted.
func journeyRows(t *testing.T, st *store.Store) (deliveries, journeys []string) {
	t.Helper()
	ctx := context.Background()
	err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		deliveries = append(deliveries, strings.Join([]string{d.CustomerID, strconv.Itoa(d.Step), d.Template, d.Status}, " "))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	js, err := st.Journeys(ctx, "", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		journeys = append(journeys, strings.TrimSpace(strings.Join([]string{j.CustomerID, j.Occurrence.Format("01-02"), strconv.Itoa(j.Step), j.Status, j.Reason}, " ")))
	}
	slices.Sort(deliveries)
	slices.Sort(journeys)
	return deliveries, journeys
}

// finish records an outcome for every unfinished delivery of the customers.
func finish(t *testing.T, st *store.Store, status string, customers ...string) {
	t.Helper()
	ctx := context.Background()
	var ids []string
	err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		if slices.Contains(customers, d.CustomerID) && (d.Status == store.StatusQueued || d.Status == store.StatusPlanned) {
			ids = append(ids, d.ID)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, ids); err != nil {
		t.Fatal(err)
	}
	var outs []store.Outcome
	for _, id := range ids {
		outs = append(outs, store.Outcome{ID: id, Status: status, Reason: "test"})
	}
	if _, err := st.Record(ctx, outs); err != nil {
		t.Fatal(err)
	}
}

func assertRows(t *testing.T, st *store.Store, when string, wantDeliveries, wantJourneys []string) {
	t.Helper()
	d, j := journeyRows(t, st)
	if !slices.Equal(d, wantDeliveries) {
		t.Errorf("%s: deliveries\n got %q\nwant %q", when, d, wantDeliveries)
	}
	if !slices.Equal(j, wantJourneys) {
		t.Errorf("%s: journeys\n got %q\nwant %q", when, j, wantJourneys)
	}
}

func TestJourneyStepsInOrderOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := journeyRules(t)
	st, p, q := journeySetup(t)
	welcome := rules.Target("welcome")
	steps := func(now time.Time) planner.JourneyResult {
		t.Helper()
		res, err := p.Steps(ctx, rules, welcome, now, q)
		if err != nil {
			t.Fatalf("steps at %s: %v", now, err)
		}
		return res
	}

	// The entry plans step 1 at once (after: 0).
	res, err := p.Tick(ctx, rules, welcome, at, q, planner.TickOptions{BatchSize: 2})
	if err != nil {
		t.Fatal(err)
	}
	if res.Entered != 3 || res.Planned != 3 || res.Enqueued != 3 {
		t.Errorf("entry tick: %+v, want 3 entered, planned and enqueued", res)
	}
	assertRows(t, st, "after entry",
		[]string{"j1 1 welcome-1 queued", "j2 1 welcome-1 queued", "j3 1 welcome-1 queued"},
		[]string{"j1 06-01 1 active", "j2 06-01 1 active", "j3 06-01 1 active"})

	// Step 2 is due at +48h, but never before step 1 finished.
	if r := steps(at.Add(49 * time.Hour)); r.Moved != 0 {
		t.Errorf("steps with step 1 unfinished moved %d journeys", r.Moved)
	}
	finish(t, st, store.StatusSent, "j1", "j2")
	finish(t, st, store.StatusFailed, "j3")
	if r := steps(at.Add(47 * time.Hour)); r.Moved != 0 {
		t.Errorf("steps before step 2 is due moved %d journeys", r.Moved)
	}
	// A tick the next day enters nobody: their journeys are unfinished.
	res, err = p.Tick(ctx, rules, welcome, at.Add(day), q, planner.TickOptions{})
	if err != nil || res.Entered != 0 || res.Planned != 0 {
		t.Errorf("tick a day later: %+v, %v; want nothing", res, err)
	}
	if r := steps(at.Add(48 * time.Hour)); r.Moved != 3 || r.Planned != 3 {
		t.Errorf("steps when step 2 is due: %+v, want 3 moved and planned", r)
	}
	if r := steps(at.Add(48 * time.Hour)); r.Moved != 0 {
		t.Errorf("steps again at the same instant moved %d journeys", r.Moved)
	}

	// Step 3 from two evaluations at once: planned once each.
	finish(t, st, store.StatusSent, "j1", "j2", "j3")
	var wg sync.WaitGroup
	moved := make([]int, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := p.Steps(ctx, rules, welcome, at.Add(121*time.Hour), q)
			if err != nil {
				t.Error(err)
			}
			moved[i] = r.Moved
		}()
	}
	wg.Wait()
	if moved[0]+moved[1] != 3 {
		t.Errorf("two concurrent evaluations moved %v journeys, want 3 in all", moved)
	}
	// The journey is done once its last step is.
	finish(t, st, store.StatusSent, "j1", "j2", "j3")
	if r := steps(at.Add(122 * time.Hour)); r.Moved != 3 || r.Planned != 0 {
		t.Errorf("steps after the last step: %+v, want 3 finished", r)
	}
	assertRows(t, st, "at the end",
		[]string{
			"j1 1 welcome-1 sent", "j1 2 welcome-2 sent", "j1 3 welcome-3 sent",
			"j2 1 welcome-1 sent", "j2 2 welcome-2 sent", "j2 3 welcome-3 sent",
			"j3 1 welcome-1 failed", "j3 2 welcome-2 sent", "j3 3 welcome-3 sent",
		},
		[]string{"j1 06-01 3 finished completed", "j2 06-01 3 finished completed", "j3 06-01 3 finished completed"})
}

func TestJourneyExits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := journeyRules(t)
	st, p, q := journeySetup(t)
	welcome := rules.Target("welcome")
	if _, err := p.Tick(ctx, rules, welcome, at, q, planner.TickOptions{}); err != nil {
		t.Fatal(err)
	}
	finish(t, st, store.StatusSent, "j1", "j2", "j3")
	if _, err := st.Unsubscribe(ctx, "j1", "unsubscribe link", "welcome"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSuppression(ctx, "j2@example.com", "bounce"); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Steps(ctx, rules, welcome, at.Add(48*time.Hour), q); err != nil {
		t.Fatal(err)
	}
	assertRows(t, st, "after exits",
		[]string{"j1 1 welcome-1 sent", "j2 1 welcome-1 sent", "j3 1 welcome-1 sent", "j3 2 welcome-2 queued"},
		[]string{"j1 06-01 1 exited unsubscribed", "j2 06-01 1 exited suppressed", "j3 06-01 2 active"})

	// The campaign goes away: the journey under way ends with that reason.
	set := rules.Set()
	others := &campaign.Set{Lifecycle: set.Lifecycle}
	none, err := audience.Compile(others)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.StepAll(ctx, none, none.Targets(), at.Add(49*time.Hour), q, io.Discard); err != nil {
		t.Fatal(err)
	}
	_, j := journeyRows(t, st)
	if want := "j3 06-01 2 exited campaign removed"; j[2] != want {
		t.Errorf("journey of a removed campaign: %q, want %q", j[2], want)
	}
}

func TestJourneyPlanMatchesRunOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := journeyRules(t)
	st, p, q := journeySetup(t)
	dry := func(now time.Time) []string {
		t.Helper()
		var out []string
		_, err := p.DryRun(ctx, rules, rules.Targets(), now, func(pl *planner.Planned) error {
			out = append(out, strings.Join([]string{pl.CustomerID, strconv.Itoa(pl.Step), pl.Template, pl.Status, pl.SendAt.Format(time.RFC3339)}, " "))
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	// recorded lists the deliveries of steps after step since, as the
	// dry run prints them (they were planned before the queue took them).
	recorded := func(since int) []string {
		t.Helper()
		var out []string
		err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
			if d.Step > since {
				out = append(out, strings.Join([]string{d.CustomerID, strconv.Itoa(d.Step), d.Template, store.StatusPlanned, d.SendAt.Format(time.RFC3339)}, " "))
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	wantEntry := dry(at)
	if len(wantEntry) != 3 {
		t.Fatalf("dry run at entry: %q, want three step-1 emails", wantEntry)
	}
	if _, err := p.TickAll(ctx, rules, rules.Targets(), at, q, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := recorded(0); !slices.Equal(got, wantEntry) {
		t.Errorf("run-once at entry recorded\n%q\nplan said\n%q", got, wantEntry)
	}
	finish(t, st, store.StatusSent, "j1", "j2", "j3")
	later := at.Add(50 * time.Hour)
	wantSteps := dry(later)
	if len(wantSteps) != 3 {
		t.Fatalf("dry run at step 2: %q, want three step-2 emails", wantSteps)
	}
	if _, err := p.StepAll(ctx, rules, rules.Targets(), later, q, io.Discard); err != nil {
		t.Fatal(err)
	}
	if got := recorded(1); !slices.Equal(got, wantSteps) {
		t.Errorf("run-once at step 2 recorded\n%q\nplan said\n%q", got, wantSteps)
	}
}
