package planner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/audience"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// at is the instant the fixture is written for.
var at = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)

const day = 24 * time.Hour

// seed imports the fixture's customers and events and builds their
// delivery history. Each campaign of testdata/campaigns selects its own
// inactivity window, so each customer below is a candidate of exactly one
// campaign (paused aside, which is disabled):
//
//	n-*  nudge     at_risk, 30..59 days inactive
//	r-*  reminder  100..109 days, cooldown 720h
//	m-*  capped    200..209 days, max_sends 2
//	w-*  upgrade   300..309 days, where attributes.plan != "enterprise"
//	k-*  consent   400..409 days
//	s-*  scored    500..509 days, where attributes.score >= 3
//	t-*  weekly    0..13 days, cooldown 7d, queue weekly
//
// Customers without events were last active when they signed up.
func seed(t *testing.T, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	var recs []store.CustomerRecord
	add := func(id, email string, created time.Time, attrs string) {
		if email == "" {
			email = id + "@example.com"
		}
		r := store.CustomerRecord{ID: id, Email: email, Subscribed: true, CreatedAt: created}
		if attrs != "" {
			r.Attributes = []byte(attrs)
		}
		recs = append(recs, r)
	}
	// nudge: the inactive_days bounds, at the day boundaries.
	add("n-29", "", at.Add(-30*day+time.Second), "") // 29 days: below min
	add("n-30", "", at.Add(-30*day), "")             // exactly 30: min
	add("n-59", "", at.Add(-59*day), "")             // exactly 59: max
	add("n-59-end", "", at.Add(-60*day+time.Second), "")
	add("n-60", "", at.Add(-60*day), "")     // 60: above max
	add("n-event", "", at.Add(-200*day), "") // active 45 days ago by an event
	add("n-loyal", "", at.Add(-400*day), "") // loyal, not at_risk
	for _, id := range []string{"r-expired", "r-short", "r-failed", "r-skipped", "r-queued",
		"r-future", "r-planned", "r-planned-failed", "r-other", "r-fresh"} {
		add(id, "", at.Add(-105*day), "")
	}
	for _, id := range []string{"m-none", "m-one", "m-two", "m-failed", "m-pending"} {
		add(id, "", at.Add(-205*day), "")
	}
	add("w-pro", "", at.Add(-305*day), `{"plan":"pro"}`)
	add("w-enterprise", "", at.Add(-305*day), `{"plan":"enterprise"}`)
	add("w-none", "", at.Add(-305*day), "")
	add("k-ok", "", at.Add(-405*day), "")
	add("k-unsub", "", at.Add(-405*day), "")
	add("k-supp", "Kay.Supp@Example.COM", at.Add(-405*day), "")
	add("k-supp-upper", "", at.Add(-405*day), "")
	add("k-never", "", at.Add(-405*day), "")
	recs[len(recs)-1].Subscribed = false
	add("s-high", "", at.Add(-505*day), `{"score":5}`)
	add("s-low", "", at.Add(-505*day), `{"score":1}`)
	add("s-missing", "", at.Add(-505*day), "")
	add("t-a", "", at.Add(-1*day), "")
	add("t-b", "", at.Add(-2*day), "")

	amount := 20.0
	events := []store.EventRecord{{CustomerID: "n-event", Type: "visit", OccurredAt: at.Add(-45 * day)}}
	for i := range 5 {
		events = append(events, store.EventRecord{ID: fmt.Sprintf("o%d", i), CustomerID: "n-loyal",
			Type: "purchase", OccurredAt: at.Add(-45*day - time.Duration(i)*time.Hour), Amount: &amount})
	}

	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	if n, err := im.Customers(ctx, recs); err != nil || n != len(recs) {
		t.Fatalf("import customers: %d, %v; want %d", n, err, len(recs))
	}
	if n, err := im.Events(ctx, events); err != nil || n != len(events) {
		t.Fatalf("import events: %d, %v; want %d", n, err, len(events))
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Unsubscribe(ctx, "k-unsub", "unsubscribe link", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSuppression(ctx, "kay.supp@example.com", "bounce"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSuppression(ctx, "K-SUPP-UPPER@EXAMPLE.COM", "complaint"); err != nil {
		t.Fatal(err)
	}

	const cooldown = 720 * time.Hour
	for _, h := range []struct {
		campaign, customer string
		occurrence         time.Time
		status             string
	}{
		{"reminder", "r-expired", at.Add(-cooldown), store.StatusSent},             // at - occurrence == cooldown: in
		{"reminder", "r-short", at.Add(-cooldown + time.Second), store.StatusSent}, // one second short: out
		{"reminder", "r-failed", at.Add(-time.Hour), store.StatusFailed},           // sent nothing: in
		{"reminder", "r-skipped", at.Add(-time.Hour), store.StatusSkipped},         // sent nothing: in
		{"reminder", "r-queued", at.Add(-time.Hour), store.StatusQueued},           // on its way: out
		{"reminder", "r-future", at.Add(time.Hour), store.StatusPlanned},           // not before at: in
		{"reminder", "r-planned", at, store.StatusPlanned},                         // this very tick: out
		{"reminder", "r-planned-failed", at, store.StatusFailed},                   // this very tick, whatever became of it: out
		{"capped", "r-other", at.Add(-time.Hour), store.StatusSent},                // another campaign: in
		{"capped", "m-one", at.Add(-100 * day), store.StatusSent},                  // 1 of 2: in
		{"capped", "m-two", at.Add(-100 * day), store.StatusSent},                  // 2 of 2: out
		{"capped", "m-two", at.Add(-50 * day), store.StatusSent},
		{"capped", "m-failed", at.Add(-100 * day), store.StatusSent}, // 1 of 2: in
		{"capped", "m-failed", at.Add(-50 * day), store.StatusFailed},
		{"capped", "m-failed", at.Add(-20 * day), store.StatusSkipped},
		{"capped", "m-pending", at.Add(-100 * day), store.StatusSent}, // 2 of 2: out
		{"capped", "m-pending", at.Add(-1 * day), store.StatusSending},
	} {
		deliver(t, st, store.NewDelivery{Campaign: h.campaign, CustomerID: h.customer, Occurrence: h.occurrence,
			Stage: "lapsed", Template: h.campaign, Queue: "default"}, h.status)
	}
}

// deliver inserts d and moves it to status the way workers do.
func deliver(t *testing.T, st *store.Store, d store.NewDelivery, status string) {
	t.Helper()
	ctx := context.Background()
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{d})
	if err != nil || len(refs) != 1 {
		t.Fatalf("insert delivery %+v: %v, %v", d, refs, err)
	}
	id := refs[0].ID
	switch status {
	case store.StatusPlanned:
	case store.StatusQueued:
		err = st.MarkQueued(ctx, []string{id})
	case store.StatusSending:
		_, err = st.Claim(ctx, []string{id})
	default:
		if _, err = st.Claim(ctx, []string{id}); err == nil {
			_, err = st.Record(ctx, []store.Outcome{{ID: id, Status: status, Reason: "test"}})
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	row, err := st.Delivery(ctx, id)
	if err != nil || row.Status != status {
		t.Fatalf("delivery %s of %s to %s: status %q, %v; want %q", id, d.Campaign, d.CustomerID, row.Status, err, status)
	}
}

func setup(t *testing.T) (*store.Store, *audience.Rules, *planner.Planner) {
	t.Helper()
	rules, err := audience.Load("testdata/campaigns")
	if err != nil {
		t.Fatal(err)
	}
	st := testenv.Store(t)
	seed(t, st)
	return st, rules, planner.New(st, slog.New(slog.DiscardHandler))
}

func target(t *testing.T, rules *audience.Rules, name string) *audience.Target {
	t.Helper()
	tg := rules.Target(name)
	if tg == nil {
		t.Fatalf("no campaign %q", name)
	}
	return tg
}

// evaluate returns what Evaluate planned for the campaign, in order.
func evaluate(t *testing.T, p *planner.Planner, rules *audience.Rules, campaign string, at time.Time) ([]planner.Planned, planner.Stats) {
	t.Helper()
	var got []planner.Planned
	stats, err := p.Evaluate(context.Background(), rules, target(t, rules, campaign), at, func(pl *planner.Planned) error {
		got = append(got, *pl)
		return nil
	})
	if err != nil {
		t.Fatalf("evaluate %s at %s: %v", campaign, at, err)
	}
	return got, stats
}

// planned is what a campaign whose template has its name plans for
// customers ids, whose emails are ID@example.com.
func planned(campaign, stage string, sendAt time.Time, ids ...string) []planner.Planned {
	var out []planner.Planned
	for _, id := range ids {
		out = append(out, planner.Planned{Campaign: campaign, CustomerID: id, Email: id + "@example.com",
			Stage: stage, Template: campaign, SendAt: sendAt, Step: 1, Status: "planned", Occurrence: sendAt.UTC(), Queue: queueOf(campaign)})
	}
	return out
}

func deliveryCount(t *testing.T, st *store.Store) int {
	t.Helper()
	c, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c.Deliveries
}

func TestEvaluate(t *testing.T) {
	t.Parallel()
	st, rules, p := setup(t)
	before := deliveryCount(t, st)

	tests := []struct {
		campaign string
		want     []planner.Planned
		stats    planner.Stats
	}{
		{
			// n-29 and n-60 are out of bounds and not even candidates;
			// n-loyal is in bounds but loyal.
			campaign: "nudge",
			want:     planned("nudge", "at_risk", at, "n-30", "n-59", "n-59-end", "n-event"),
			stats:    planner.Stats{Campaign: "nudge", Candidates: 5, Matched: 4},
		},
		{
			campaign: "reminder",
			want:     planned("reminder", "lapsed", at, "r-expired", "r-failed", "r-fresh", "r-future", "r-other", "r-skipped"),
			stats:    planner.Stats{Campaign: "reminder", Candidates: 10, Matched: 6, AlreadyPlanned: 2},
		},
		{
			campaign: "capped",
			want:     planned("capped", "lapsed", at, "m-failed", "m-none", "m-one"),
			stats:    planner.Stats{Campaign: "capped", Candidates: 5, Matched: 3},
		},
		{
			// A missing attribute is nil, which is not "enterprise".
			campaign: "upgrade",
			want:     planned("upgrade", "lapsed", at, "w-none", "w-pro"),
			stats:    planner.Stats{Campaign: "upgrade", Candidates: 3, Matched: 2},
		},
		{
			// k-never and k-unsub are unsubscribed, k-supp and
			// k-supp-upper suppressed in another case.
			campaign: "consent",
			want:     planned("consent", "lapsed", at, "k-ok"),
			stats:    planner.Stats{Campaign: "consent", Candidates: 1, Matched: 1},
		},
		{
			// nil >= 3 fails for s-missing, who is left out and counted.
			campaign: "scored",
			want:     planned("scored", "lapsed", at, "s-high"),
			stats:    planner.Stats{Campaign: "scored", Candidates: 3, Matched: 1, ExprErrors: 1},
		},
		{
			campaign: "weekly",
			want:     planned("weekly", "new", at, "t-a", "t-b"),
			stats:    planner.Stats{Campaign: "weekly", Candidates: 2, Matched: 2},
		},
		{
			campaign: "paused",
			stats:    planner.Stats{Campaign: "paused"},
		},
	}
	for _, tc := range tests {
		got, stats := evaluate(t, p, rules, tc.campaign, at)
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: planned\n%s\nwant\n%s", tc.campaign, format(got), format(tc.want))
		}
		if stats != tc.stats {
			t.Errorf("%s: stats %+v, want %+v", tc.campaign, stats, tc.stats)
		}
	}

	// The instant is taken in UTC whatever its zone.
	paris := at.In(time.FixedZone("CEST", 2*60*60))
	if got, _ := evaluate(t, p, rules, "weekly", paris); !reflect.DeepEqual(got, planned("weekly", "new", at, "t-a", "t-b")) {
		t.Errorf("weekly at %s: planned\n%s", paris, format(got))
	}

	if after := deliveryCount(t, st); after != before {
		t.Errorf("Evaluate wrote deliveries: %d, then %d", before, after)
	}
}

func TestEvaluateStopsOnCallbackError(t *testing.T) {
	t.Parallel()
	_, rules, p := setup(t)
	stop := errors.New("stop")
	calls := 0
	stats, err := p.Evaluate(context.Background(), rules, target(t, rules, "nudge"), at, func(*planner.Planned) error {
		calls++
		return stop
	})
	if !errors.Is(err, stop) || calls != 1 {
		t.Errorf("Evaluate = %v after %d call(s), want the callback's error after 1", err, calls)
	}
	if stats.Matched != 1 {
		t.Errorf("stats %+v, want 1 matched", stats)
	}
}

func format(ps []planner.Planned) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "  %+v\n", p)
	}
	return b.String()
}

func TestTickPlansOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, rules, p := setup(t)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	q := queue.NewClient(rdb, queue.Config{})

	unfinished := func(want int) {
		t.Helper()
		n, err := q.Unfinished(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Errorf("%d unfinished tasks, want %d", n, want)
		}
	}
	tick := func(campaign string, occurrence time.Time, want planner.TickResult) {
		t.Helper()
		res, err := p.Tick(ctx, rules, target(t, rules, campaign), occurrence, q, planner.TickOptions{BatchSize: 4})
		if err != nil {
			t.Fatalf("tick %s at %s: %v", campaign, occurrence, err)
		}
		if res != want {
			t.Errorf("tick %s at %s:\n got %+v\nwant %+v", campaign, occurrence, res, want)
		}
	}

	// reminder has 6 customers to plan, across two batches, and two rows
	// at this occurrence already.
	tick("weekly", at, planner.TickResult{Occurrence: at, Planned: 2, Enqueued: 2,
		Stats: planner.Stats{Campaign: "weekly", Candidates: 2, Matched: 2}})
	tick("reminder", at, planner.TickResult{Occurrence: at, Planned: 6, Enqueued: 6,
		Stats: planner.Stats{Campaign: "reminder", Candidates: 10, Matched: 6, AlreadyPlanned: 2}})
	unfinished(8)

	// The same tick again finds everything planned and adds nothing.
	tick("weekly", at, planner.TickResult{Occurrence: at,
		Stats: planner.Stats{Campaign: "weekly", Candidates: 2, AlreadyPlanned: 2}})
	tick("reminder", at, planner.TickResult{Occurrence: at,
		Stats: planner.Stats{Campaign: "reminder", Candidates: 10, AlreadyPlanned: 8}})
	unfinished(8)

	// The rows: one per customer at the occurrence, queued on the
	// campaign's queue; those planned before the tick are untouched.
	var rows []string
	err := st.Deliveries(ctx, func(r *store.DeliveryRow) error {
		if r.Occurrence.Equal(at) {
			rows = append(rows, fmt.Sprintf("%s %s %s %s %s %s", r.Campaign, r.CustomerID, r.Stage, r.Template, r.Queue, r.Status))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"reminder r-expired lapsed reminder default queued",
		"reminder r-failed lapsed reminder default queued",
		"reminder r-fresh lapsed reminder default queued",
		"reminder r-future lapsed reminder default queued",
		"reminder r-other lapsed reminder default queued",
		"reminder r-planned lapsed reminder default planned",
		"reminder r-planned-failed lapsed reminder default failed",
		"reminder r-skipped lapsed reminder default queued",
		"weekly t-a new weekly weekly queued",
		"weekly t-b new weekly weekly queued",
	}
	if !reflect.DeepEqual(rows, want) {
		t.Errorf("deliveries at %s:\n%s\nwant\n%s", at, strings.Join(rows, "\n"), strings.Join(want, "\n"))
	}

	// A dry run at the tick's instant shows nothing more to send.
	for _, c := range []string{"weekly", "reminder"} {
		if got, _ := evaluate(t, p, rules, c, at); len(got) != 0 {
			t.Errorf("%s after its tick: planned\n%s", c, format(got))
		}
	}

	// Later, the cooldown of 7 days decides: one second short, nothing;
	// exactly 7 days later, both again.
	next := at.Add(7 * day)
	got, stats := evaluate(t, p, rules, "weekly", next.Add(-time.Second))
	if len(got) != 0 || stats != (planner.Stats{Campaign: "weekly", Candidates: 2}) {
		t.Errorf("weekly one second before its cooldown ends: planned\n%s stats %+v", format(got), stats)
	}
	got, _ = evaluate(t, p, rules, "weekly", next)
	if want := planned("weekly", "new", next, "t-a", "t-b"); !reflect.DeepEqual(got, want) {
		t.Errorf("weekly when its cooldown ends: planned\n%s\nwant\n%s", format(got), format(want))
	}
	tick("weekly", next, planner.TickResult{Occurrence: next, Planned: 2, Enqueued: 2,
		Stats: planner.Stats{Campaign: "weekly", Candidates: 2, Matched: 2}})
	unfinished(10)
}

func TestTickDisabledPlansNothing(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st, rules, p := setup(t)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	q := queue.NewClient(rdb, queue.Config{})
	before := deliveryCount(t, st)
	res, err := p.Tick(ctx, rules, target(t, rules, "paused"), at, q, planner.TickOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := (planner.TickResult{Occurrence: at, Stats: planner.Stats{Campaign: "paused"}}); res != want {
		t.Errorf("tick of a disabled campaign: %+v, want %+v", res, want)
	}
	if after := deliveryCount(t, st); after != before {
		t.Errorf("tick of a disabled campaign wrote %d deliveries", after-before)
	}
	if n, err := q.Unfinished(ctx); err != nil || n != 0 {
		t.Errorf("tick of a disabled campaign enqueued %d tasks (%v)", n, err)
	}
}

func TestStage(t *testing.T) {
	t.Parallel()
	st, rules, p := setup(t)
	var got []string
	flags := map[string]string{}
	err := p.Stage(context.Background(), rules, at, func(c *audience.Customer, f *audience.Facts) error {
		got = append(got, fmt.Sprintf("%s %s %d", c.ID, f.Stage, f.InactiveDays))
		if !c.Subscribed || c.Suppressed {
			flags[c.ID] = fmt.Sprintf("subscribed=%t suppressed=%t", c.Subscribed, c.Suppressed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// Every customer, consent or not, in byte order of id.
	want := []string{
		"k-never lapsed 405",
		"k-ok lapsed 405",
		"k-supp lapsed 405",
		"k-supp-upper lapsed 405",
		"k-unsub lapsed 405",
		"m-failed lapsed 205",
		"m-none lapsed 205",
		"m-one lapsed 205",
		"m-pending lapsed 205",
		"m-two lapsed 205",
		"n-29 active 29",
		"n-30 at_risk 30",
		"n-59 at_risk 59",
		"n-59-end at_risk 59",
		"n-60 at_risk 60",
		"n-event at_risk 45",
		"n-loyal loyal 45",
		"r-expired lapsed 105",
		"r-failed lapsed 105",
		"r-fresh lapsed 105",
		"r-future lapsed 105",
		"r-other lapsed 105",
		"r-planned lapsed 105",
		"r-planned-failed lapsed 105",
		"r-queued lapsed 105",
		"r-short lapsed 105",
		"r-skipped lapsed 105",
		"s-high lapsed 505",
		"s-low lapsed 505",
		"s-missing lapsed 505",
		"t-a new 1",
		"t-b new 2",
		"w-enterprise lapsed 305",
		"w-none lapsed 305",
		"w-pro lapsed 305",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("stages:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	wantFlags := map[string]string{
		"k-never":      "subscribed=false suppressed=false",
		"k-unsub":      "subscribed=false suppressed=false",
		"k-supp":       "subscribed=true suppressed=true",
		"k-supp-upper": "subscribed=true suppressed=true",
	}
	if !reflect.DeepEqual(flags, wantFlags) {
		t.Errorf("consent: %v, want %v", flags, wantFlags)
	}
	if n := deliveryCount(t, st); n != 17 {
		t.Errorf("%d deliveries after Stage, want the fixture's 17", n)
	}

	// A stage expression that fails stops the listing and says for whom
	// and where.
	bad, err := audience.Load("testdata/bad-stage")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	err = p.Stage(context.Background(), bad, at, func(*audience.Customer, *audience.Facts) error { n++; return nil })
	var ee *audience.EvalError
	if !errors.As(err, &ee) || n != 0 {
		t.Fatalf("Stage with a failing expression: %v after %d customer(s), want an *audience.EvalError at once", err, n)
	}
	if want := `customer "k-never": testdata/bad-stage/lifecycle.yaml:3:28: stage "scored" when: invalid operation: <nil> >= int`; err.Error() != want {
		t.Errorf("Stage error\n got %s\nwant %s", err, want)
	}
}

// queueOf is the queue of the fixture campaigns.
func queueOf(campaign string) string {
	if campaign == "weekly" {
		return "weekly"
	}
	return "default"
}
