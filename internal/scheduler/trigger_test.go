package scheduler_test

import (
	"context"
	"fmt"
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/importer"
	"nurture/internal/metrics"
	"nurture/internal/scheduler"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestTriggerPollEnqueuesWithoutCron: a triggered campaign has no cron
// entry; the leader's trigger loop plans and enqueues its due event, and
// counts it and its lag (the clock is an hour past the due time).
func TestTriggerPollEnqueuesWithoutCron(t *testing.T) {
	e := newEnv(t)
	set, err := campaign.Load(testenv.Fixture("campaigns"))
	if err != nil {
		t.Fatal(err)
	}
	welcome := set.Campaign("welcome")
	welcome.Schedule, welcome.Cron = "", nil
	welcome.Audience = campaign.Audience{}
	welcome.Trigger = &campaign.Trigger{Event: "cart_abandoned", Delay: time.Hour}
	set.Campaign("nudge").Enabled = false
	rules, err := audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	res, err := importer.Events(context.Background(), e.st,
		strings.NewReader(`{"id":"cart-1","customer_id":"c2","type":"cart_abandoned","occurred_at":"2026-11-24T07:00:00Z"}`+"\n"),
		"events", importer.Options{Strict: true, Now: func() time.Time { return at }})
	if err != nil || res.Bad > 0 {
		t.Fatalf("import: %v %v", err, res.Problems)
	}

	m := metrics.New()
	s := scheduler.New(scheduler.Config{
		LeaderPoll:     50 * time.Millisecond,
		ReconcileEvery: time.Hour,
		CatchUp:        -1,
		TriggerPoll:    50 * time.Millisecond,
		Now:            func() time.Time { return at }, // 09:00, the event was due at 08:00
	}, e.st, e.q, rules, m, e.log)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	// The row is marked queued just before its task is enqueued, and the
	// lag is counted after: wait for all three.
	metricsText := func() string {
		rec := httptest.NewRecorder()
		m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
		body, _ := io.ReadAll(rec.Body)
		return string(body)
	}
	waitUntil(t, "a queued delivery, its task and its lag", func() bool {
		_, st := e.count(t)
		return st[store.StatusQueued] == 1 && e.tasks(t) == 1 &&
			strings.Contains(metricsText(), "nurture_trigger_lag_seconds_count 1\n")
	})
	cancel()
	<-done

	var got []store.DeliveryRow
	if err := e.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		got = append(got, *d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	due := at.Add(-time.Hour)
	if len(got) != 1 || got[0].Campaign != "welcome" || got[0].CustomerID != "c2" || got[0].EventID != "cart-1" ||
		!got[0].Occurrence.Equal(due) || got[0].Step != 1 || !got[0].SendAt.Equal(at) {
		t.Fatalf("deliveries %+v, want one of welcome to c2 for cart-1 at %s", got, due)
	}
	if n := e.tasks(t); n != 1 {
		t.Errorf("%d tasks in Redis, want 1", n)
	}

	body := metricsText()
	for _, want := range []string{
		`nurture_trigger_entries_total{campaign="welcome"} 1`,
		"nurture_trigger_lag_seconds_sum 3600",
		"nurture_trigger_lag_seconds_count 1",
	} {
		if !strings.Contains(body, want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestPollStartsTriggeredJourneyThenItsStep: an event starts a journey
// whose first step is due two hours after the event; the poll at the
// entry records the journey with no delivery yet, and the poll an hour
// later plans the step, timed from the event.
func TestPollStartsTriggeredJourneyThenItsStep(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	set, err := campaign.Load(testenv.Fixture("campaigns"))
	if err != nil {
		t.Fatal(err)
	}
	welcome := set.Campaign("welcome")
	welcome.Schedule, welcome.Cron = "", nil
	welcome.Audience, welcome.Frequency = campaign.Audience{}, campaign.Frequency{}
	welcome.Trigger = &campaign.Trigger{Event: "cart_abandoned"}
	welcome.Steps = []campaign.Step{{Template: welcome.Email.Template, After: 2 * time.Hour}}
	welcome.Email = campaign.Email{}
	set.Campaign("nudge").Enabled = false
	rules, err := audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	res, err := importer.Events(ctx, e.st,
		strings.NewReader(`{"id":"cart-1","customer_id":"c2","type":"cart_abandoned","occurred_at":"2026-11-24T08:00:00Z"}`+"\n"),
		"events", importer.Options{Strict: true, Now: func() time.Time { return at }})
	if err != nil || res.Bad > 0 {
		t.Fatalf("import: %v %v", err, res.Problems)
	}
	now := at
	s := scheduler.New(scheduler.Config{Now: func() time.Time { return now }}, e.st, e.q, rules, nil, e.log)

	if n := s.PollTriggers(ctx); n != 1 {
		t.Errorf("entry: %d entries, want 1", n)
	}
	s.PollSteps(ctx)
	js, err := e.st.Journeys(ctx, "welcome", "")
	if err != nil || len(js) != 1 || js[0].CustomerID != "c2" || js[0].EventID != "cart-1" ||
		!js[0].Occurrence.Equal(at.Add(-time.Hour)) || js[0].Step != 0 {
		t.Fatalf("journeys %+v, %v; want c2's, started at the event, at step 0", js, err)
	}
	if rows, _ := e.count(t); rows != 0 {
		t.Errorf("%d deliveries before the step is due", rows)
	}

	now = at.Add(time.Hour) // the step is due
	if n := s.PollTriggers(ctx); n != 0 {
		t.Errorf("second poll entered again: %d", n)
	}
	s.PollSteps(ctx)
	if js, err := e.st.Journeys(ctx, "welcome", ""); err != nil || len(js) != 1 {
		t.Errorf("journeys after the step %+v, %v; want the one", js, err)
	}
	var got []store.DeliveryRow
	if err := e.st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		got = append(got, *d)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].CustomerID != "c2" || got[0].Step != 1 || got[0].EventID != "cart-1" ||
		!got[0].Occurrence.Equal(at.Add(-time.Hour)) || !got[0].SendAt.Equal(now) || got[0].Status != store.StatusQueued {
		t.Errorf("deliveries %+v, want c2's step 1 for cart-1, queued", got)
	}
}

// TestPollAttributesPurchases: a purchase after a sent email is
// attributed by the leader's poll, once, and counted in the metrics.
func TestPollAttributesPurchases(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	set, err := campaign.Load(testenv.Fixture("campaigns"))
	if err != nil {
		t.Fatal(err)
	}
	welcome := set.Campaign("welcome")
	welcome.Schedule, welcome.Cron = "", nil
	welcome.Audience = campaign.Audience{}
	welcome.Trigger = &campaign.Trigger{Event: "cart_abandoned"}
	welcome.ConversionWindow = 2 * time.Hour
	set.Campaign("nudge").Enabled = false
	rules, err := audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	imp := func(line string) {
		t.Helper()
		res, err := importer.Events(ctx, e.st, strings.NewReader(line+"\n"), "events", importer.Options{Strict: true, Now: func() time.Time { return at }})
		if err != nil || res.Bad > 0 {
			t.Fatalf("import: %v %v", err, res.Problems)
		}
	}
	imp(`{"id":"cart-1","customer_id":"c2","type":"cart_abandoned","occurred_at":"2026-11-24T08:00:00Z"}`)
	m := metrics.New()
	s := scheduler.New(scheduler.Config{CatchUp: -1, Now: func() time.Time { return at }}, e.st, e.q, rules, m, e.log)
	if n := s.PollTriggers(ctx); n != 1 {
		t.Fatalf("poll planned %d entries, want 1", n)
	}
	var id string
	if err := e.st.Deliveries(ctx, func(d *store.DeliveryRow) error { id = d.ID; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Claim(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	if stale, err := e.st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusSent, SentAt: at}}); err != nil || len(stale) != 0 {
		t.Fatalf("record: %v %v", stale, err)
	}
	// Within the campaign's 2h window, and one past it.
	imp(`{"id":"o1","customer_id":"c2","type":"purchase","occurred_at":"2026-11-24T10:00:00Z","amount":12.5}`)
	imp(`{"id":"o2","customer_id":"c2","type":"purchase","occurred_at":"2026-11-24T11:00:01Z","amount":99}`)
	s.Attribute(ctx)
	s.Attribute(ctx) // reads nothing again
	// The results pages' rollup follows, dated by the scheduler's clock.
	s.RefreshRollups(ctx)
	if got, ok, err := e.st.RollupsRefreshedAt(ctx); err != nil || !ok || !got.Equal(at) {
		t.Errorf("rollups refreshed at %v (%v, %v), want %v", got, ok, err, at)
	}
	if rows, err := e.st.CampaignTotals(ctx, "welcome"); err != nil || len(rows) != 1 ||
		fmt.Sprintf("%+v", rows[0]) != "{Campaign:welcome Variant: Step:1 Status:sent Reason: Deliveries:1 Unsubscribed:0 Bounced:0 Complained:0 Converted:1 Revenue:12.5 Opened:0 Clicked:0 EntriesConverted:1}" {
		t.Errorf("welcome's rollup: %+v, %v", rows, err)
	}

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	for _, want := range []string{`nurture_conversions_total{campaign="welcome"} 1`, `nurture_revenue_total{campaign="welcome"} 12.5`} {
		if !strings.Contains(string(body), want+"\n") {
			t.Errorf("metrics lack %q", want)
		}
	}
}
