package planner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"math"
	"slices"
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
	"nurture/internal/window"
)

// toolkitRules loads testdata/toolkit (campaigns alpha and beta, daily at
// 09:00 UTC) and lets edit change the set before it is compiled.
func toolkitRules(t *testing.T, edit func(*campaign.Set)) *audience.Rules {
	t.Helper()
	rules, err := audience.Load("testdata/toolkit")
	if err != nil {
		t.Fatal(err)
	}
	set := rules.Set()
	edit(set)
	rules, err = audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	return rules
}

// importCustomers imports n customers c00000.. with the given time zones
// in turn, signed up a year before at.
func importCustomers(t *testing.T, st *store.Store, n int, zones ...string) {
	t.Helper()
	ctx := context.Background()
	if len(zones) == 0 {
		zones = []string{"UTC"}
	}
	recs := make([]store.CustomerRecord, n)
	for i := range recs {
		id := fmt.Sprintf("c%05d", i)
		recs[i] = store.CustomerRecord{ID: id, Email: id + "@example.com", Timezone: zones[i%len(zones)], Subscribed: true, CreatedAt: at.Add(-365 * day)}
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
}

func newQueue(t *testing.T) *queue.Client {
	t.Helper()
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return queue.NewClient(rdb, queue.Config{})
}

// statusCounts counts deliveries per "campaign status reason".
func statusCounts(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		out[strings.TrimSpace(d.Campaign+" "+d.Status+" "+d.Reason)]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestGlobalCapUnderConcurrentTicks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := toolkitRules(t, func(s *campaign.Set) {
		s.Settings.FrequencyCap = &campaign.Cap{Max: 1, Per: 168 * time.Hour}
	})
	// Two planners on two pools: two scheduler processes.
	u := testenv.DatabaseURL(t)
	open := func() *store.Store {
		st, err := store.Open(ctx, u, store.Config{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Close)
		return st
	}
	st1, st2 := open(), open()
	importCustomers(t, st1, 500)
	q := newQueue(t)
	log := slog.New(slog.DiscardHandler)
	planners := []*planner.Planner{planner.New(st1, log), planner.New(st2, log)}

	// Both processes tick both campaigns at once, in opposite orders,
	// in small batches so that their transactions interleave.
	var wg sync.WaitGroup
	for i, p := range planners {
		names := []string{"alpha", "beta"}
		if i == 1 {
			slices.Reverse(names)
		}
		for _, name := range names {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := p.Tick(ctx, rules, rules.Target(name), at, q, planner.TickOptions{BatchSize: 50}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	wg.Wait()
	// Each customer has exactly one email that counts, whichever campaign
	// won it; the other campaign's delivery is skipped by the cap.
	perCustomer := map[string]int{}
	err := st1.Deliveries(ctx, func(d *store.DeliveryRow) error {
		if d.Status != store.StatusSkipped {
			perCustomer[d.CustomerID]++
		} else if d.Reason != "frequency cap" {
			t.Errorf("delivery %s skipped with reason %q", d.ID, d.Reason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(perCustomer) != 500 {
		t.Errorf("%d customers have an email, want 500", len(perCustomer))
	}
	for id, n := range perCustomer {
		if n != 1 {
			t.Errorf("customer %s has %d emails within the cap's week, want 1", id, n)
		}
	}
	c := statusCounts(t, st1)
	if got := c["alpha skipped frequency cap"] + c["beta skipped frequency cap"]; got != 500 {
		t.Errorf("%d deliveries capped, want 500 (%v)", got, c)
	}
}

func TestGlobalCapPriorityAndWindow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := toolkitRules(t, func(s *campaign.Set) {
		s.Settings.FrequencyCap = &campaign.Cap{Max: 1, Per: 24 * time.Hour}
		s.Campaign("beta").Priority = 10
	})
	st := testenv.Store(t)
	importCustomers(t, st, 10)
	p := planner.New(st, slog.New(slog.DiscardHandler))
	q := newQueue(t)

	var dry []string
	if _, err := p.DryRun(ctx, rules, rules.Targets(), at, func(pl *planner.Planned) error {
		dry = append(dry, pl.Campaign+" "+pl.CustomerID+" "+strings.TrimSpace(pl.Status+" "+pl.Reason))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// beta outranks alpha: it takes the only slot of the day.
	if len(dry) != 20 || dry[0] != "alpha c00000 skipped frequency cap" || dry[10] != "beta c00000 planned" {
		t.Errorf("dry run, sorted by campaign then customer:\n%s", strings.Join(dry, "\n"))
	}
	if _, err := p.TickAll(ctx, rules, rules.Targets(), at, q, io.Discard); err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"alpha skipped frequency cap": 10, "beta queued": 10}
	if got := statusCounts(t, st); !equalCounts(got, want) {
		t.Errorf("after run-once: %v, want %v", got, want)
	}
	// A day later to the second, the cap allows the next email.
	res, err := p.Tick(ctx, rules, rules.Target("alpha"), at.Add(24*time.Hour), q, planner.TickOptions{})
	if err != nil || res.Planned != 10 || res.Capped != 0 {
		t.Errorf("alpha a day later: %+v, %v; want 10 planned, none capped", res, err)
	}
}

func equalCounts(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

func TestSendWindowSetsSendAt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// at is Monday 1 June 2026, 09:00 UTC.
	rules := toolkitRules(t, func(s *campaign.Set) {
		s.Settings.SendWindow = &campaign.SendWindow{Window: window.Window{Start: 9 * 60, End: 18 * 60}}
		tokyo, err := time.LoadLocation("Asia/Tokyo")
		if err != nil {
			t.Fatal(err)
		}
		s.Campaign("beta").SendWindow = &campaign.SendWindow{Timezone: "Asia/Tokyo", Location: tokyo,
			Window: window.Window{Start: 20 * 60, End: 21 * 60, Days: []time.Weekday{time.Saturday}}}
	})
	st := testenv.Store(t)
	importCustomers(t, st, 4, "Europe/Paris", "America/Los_Angeles", "Australia/Sydney", "Asia/Kolkata")
	p := planner.New(st, slog.New(slog.DiscardHandler))
	var got []string
	if _, err := p.DryRun(ctx, rules, rules.Targets(), at, func(pl *planner.Planned) error {
		got = append(got, pl.Campaign+" "+pl.CustomerID+" "+pl.SendAt.Format(time.RFC3339))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	want := []string{
		// alpha follows the settings' 09:00-18:00 in each customer's zone.
		"alpha c00000 2026-06-01T09:00:00Z", // Paris 11:00: open
		"alpha c00001 2026-06-01T16:00:00Z", // Los Angeles 02:00: opens at 09:00 PDT
		"alpha c00002 2026-06-01T23:00:00Z", // Sydney 19:00: next day 09:00 AEST
		"alpha c00003 2026-06-01T09:00:00Z", // Kolkata 14:30: open
		// beta: Saturdays 20:00-21:00 in Tokyo, for everyone.
		"beta c00000 2026-06-06T11:00:00Z",
		"beta c00001 2026-06-06T11:00:00Z",
		"beta c00002 2026-06-06T11:00:00Z",
		"beta c00003 2026-06-06T11:00:00Z",
	}
	if !slices.Equal(got, want) {
		t.Errorf("send times:\n got %q\nwant %q", got, want)
	}
	// send_window: any ignores the default.
	rules = toolkitRules(t, func(s *campaign.Set) {
		s.Settings.SendWindow = &campaign.SendWindow{Window: window.Window{Start: 9 * 60, End: 18 * 60}}
		s.Campaign("alpha").SendWindow = &campaign.SendWindow{Any: true}
	})
	var alpha []string
	if _, err := p.DryRun(ctx, rules, []*audience.Target{rules.Target("alpha")}, at, func(pl *planner.Planned) error {
		alpha = append(alpha, pl.SendAt.Format(time.RFC3339))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if want := slices.Repeat([]string{"2026-06-01T09:00:00Z"}, 4); !slices.Equal(alpha, want) {
		t.Errorf("send_window: any: %q, want %q", alpha, want)
	}
}

func TestExperimentAssignment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	rules := toolkitRules(t, func(s *campaign.Set) {
		c := s.Campaign("alpha")
		c.Variants = []campaign.Variant{{Name: "a", Weight: 1}, {Name: "b", Weight: 3, Template: "alpha-b"}}
		c.HoldoutBasisPoints = 1000
	})
	st := testenv.Store(t)
	const n = 10000
	importCustomers(t, st, n)
	log := slog.New(slog.DiscardHandler)
	groups := func(p *planner.Planner) map[string]string {
		out := map[string]string{}
		_, err := p.Evaluate(ctx, rules, rules.Target("alpha"), at, func(pl *planner.Planned) error {
			out[pl.CustomerID] = pl.Variant + " " + pl.Template + " " + pl.Status
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	first := groups(planner.New(st, log))
	// Another planner (another process) a week later: the same groups.
	second := groups(planner.New(st, log))
	count := map[string]int{}
	for id, g := range first {
		if second[id] != g {
			t.Fatalf("customer %s: %q, then %q", id, g, second[id])
		}
		count[g]++
	}
	// Holdout 10% of entries; of the rest, a gets 1/4 and b 3/4. The
	// bounds are 5 standard deviations of a binomial draw.
	within := func(name string, got int, share float64, of int) {
		sd := math.Sqrt(float64(of) * share * (1 - share))
		if want := share * float64(of); math.Abs(float64(got)-want) > 5*sd {
			t.Errorf("%s: %d of %d, want %.0f ± %.0f", name, got, of, want, 5*sd)
		}
	}
	held := count["holdout alpha held_out"]
	within("holdout", held, 0.10, n)
	within("variant a", count["a alpha planned"], 0.25, n-held)
	within("variant b", count["b alpha-b planned"], 0.75, n-held)
	if held+count["a alpha planned"]+count["b alpha-b planned"] != n {
		t.Errorf("groups %v do not add up to %d", count, n)
	}
	// A tick records the held-out entries and enqueues only the others.
	res, err := planner.New(st, log).Tick(ctx, rules, rules.Target("alpha"), at, newQueue(t), planner.TickOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if res.NewHeldOut != held || res.Enqueued != n-held || res.Planned != n {
		t.Errorf("tick: %+v, want %d held out and %d enqueued of %d", res, held, n-held, n)
	}
}
