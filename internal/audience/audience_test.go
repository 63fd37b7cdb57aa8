package audience_test

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
)

var update = flag.Bool("update", false, "rewrite testdata/bad/*/want.txt from the current output")

// at is the instant every fixture is evaluated at.
var at = time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)

func daysAgo(d int) time.Time { return at.Add(-time.Duration(d) * 24 * time.Hour) }

func load(t testing.TB, dir string) *audience.Rules {
	t.Helper()
	r, err := audience.Load(dir)
	if err != nil {
		t.Fatalf("load %s:\n%v", dir, err)
	}
	return r
}

func TestShippedCampaigns(t *testing.T) {
	r := load(t, "../../campaigns")
	var names []string
	for _, tg := range r.Targets() {
		names = append(names, tg.Campaign.Name)
	}
	want := "at-risk-nudge,cart-reminder,loyalty-club,loyalty-reward,onboarding,referral-ask,review-request,thank-you,welcome-series,winback"
	if got := strings.Join(names, ","); got != want {
		t.Errorf("Targets() = %s, want %s", got, want)
	}
	var stages []string
	for _, s := range r.Set().Lifecycle.Stages {
		stages = append(stages, s.Name)
	}
	if got, want := strings.Join(stages, ","), "new,prospect,lapsed,at_risk,advocate,loyal,active"; got != want {
		t.Errorf("stages = %s, want %s", got, want)
	}
}

// TestCompileErrors loads each testdata/bad/CASE directory and compares
// every error, from YAML decoding and expression compiling, with
// CASE/want.txt.
func TestCompileErrors(t *testing.T) {
	dirs, err := filepath.Glob("testdata/bad/*")
	if err != nil || len(dirs) == 0 {
		t.Fatal("no test cases", err)
	}
	for _, dir := range dirs {
		t.Run(filepath.Base(dir), func(t *testing.T) {
			_, err := audience.Load(dir)
			var errs campaign.Errors
			if !errors.As(err, &errs) {
				t.Fatalf("Compile: %v (%T), want campaign.Errors", err, err)
			}
			got := strings.ReplaceAll(errs.Error(), dir+string(filepath.Separator), "") + "\n"
			wantFile := filepath.Join(dir, "want.txt")
			if *update {
				if err := os.WriteFile(wantFile, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(wantFile)
			if err != nil {
				t.Fatal(err)
			}
			if got != string(want) {
				t.Errorf("errors differ\ngot:\n%s\nwant:\n%s", got, want)
			}
		})
	}
}

func TestCompile(t *testing.T) {
	if _, err := audience.Compile(nil); err == nil {
		t.Error("Compile(nil) succeeded")
	}
	set, err := campaign.Load("../../campaigns")
	if err != nil {
		t.Fatal(err)
	}
	r, err := audience.Compile(set)
	if err != nil {
		t.Fatal(err)
	}
	if r.Set() != set {
		t.Error("Set() is not the set compiled")
	}
}

func TestLoadMissingDir(t *testing.T) {
	_, err := audience.Load(filepath.Join(t.TempDir(), "nope"))
	if !errors.Is(err, os.ErrNotExist) {
		t.Errorf("err = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestDays(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		d    time.Duration
		want int
	}{
		{0, 0},
		{time.Nanosecond, 0},
		{day - time.Nanosecond, 0},
		{day, 1},
		{day + time.Second, 1},
		{30*day - time.Second, 29},
		{30 * day, 30},
		{-time.Nanosecond, -1},
		{-day + time.Second, -1},
		{-day, -1},
		{-day - time.Second, -2},
		{-2 * day, -2},
	}
	for _, tt := range tests {
		if got := audience.Days(tt.d); got != tt.want {
			t.Errorf("Days(%v) = %d, want %d", tt.d, got, tt.want)
		}
	}
}

func TestFactsAt(t *testing.T) {
	purchase := at.Add(-50 * time.Hour)
	c := &audience.Customer{
		ID: "c1", Email: "a@example.com", Subscribed: true,
		CreatedAt:      daysAgo(20).Add(time.Second), // 19 days 23:59:59
		LastActiveAt:   at.Add(-30 * time.Minute),
		LastPurchaseAt: &purchase,
		OrdersCount:    2, TotalSpent: 30,
	}
	f := audience.FactsAt(c, at)
	if f.DaysSinceSignup != 19 || f.InactiveDays != 0 || f.DaysSincePurchase == nil || *f.DaysSincePurchase != 2 {
		t.Errorf("facts = signup %d, inactive %d, purchase %v; want 19, 0, 2", f.DaysSinceSignup, f.InactiveDays, f.DaysSincePurchase)
	}
	if f.Attributes == nil {
		t.Error("Attributes is nil; expressions on attributes need a map")
	}
	c.LastPurchaseAt = nil
	if f := audience.FactsAt(c, at); f.DaysSincePurchase != nil {
		t.Errorf("DaysSincePurchase = %d without a purchase, want nil", *f.DaysSincePurchase)
	}
}

// TestStage evaluates the shipped lifecycle on hand-computed customers.
func TestStage(t *testing.T) {
	r := load(t, "../../campaigns")
	tests := []struct {
		name string
		c    audience.Customer
		want string
	}{
		{"signed up 14 days ago", audience.Customer{CreatedAt: daysAgo(14), LastActiveAt: daysAgo(14)}, "new"},
		{"signed up 1s short of 15 days", audience.Customer{CreatedAt: daysAgo(15).Add(time.Second), LastActiveAt: daysAgo(1)}, "new"},
		{"signed up 15 days ago", audience.Customer{CreatedAt: daysAgo(15), LastActiveAt: daysAgo(1)}, "prospect"},
		{"never bought, gone 200 days", audience.Customer{CreatedAt: daysAgo(300), LastActiveAt: daysAgo(200)}, "prospect"},
		{"bought, gone 90 days", audience.Customer{OrdersCount: 3, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(90)}, "lapsed"},
		{"bought, gone 89 days", audience.Customer{OrdersCount: 3, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(89)}, "at_risk"},
		{"bought, gone 30 days", audience.Customer{OrdersCount: 3, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(30)}, "at_risk"},
		{"bought, gone 1s short of 30 days", audience.Customer{OrdersCount: 3, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(30).Add(time.Second)}, "active"},
		{"advocate gone 40 days", audience.Customer{OrdersCount: 12, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(40)}, "at_risk"},
		{"10 orders", audience.Customer{OrdersCount: 10, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(2)}, "advocate"},
		{"1 order of 1000", audience.Customer{OrdersCount: 1, TotalSpent: 1000, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(2)}, "advocate"},
		{"9 orders, 999.99", audience.Customer{OrdersCount: 9, TotalSpent: 999.99, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(2)}, "loyal"},
		{"5 orders", audience.Customer{OrdersCount: 5, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(2)}, "loyal"},
		{"4 orders, 500", audience.Customer{OrdersCount: 4, TotalSpent: 500, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(2)}, "loyal"},
		{"4 orders, 499.99", audience.Customer{OrdersCount: 4, TotalSpent: 499.99, CreatedAt: daysAgo(300), LastActiveAt: daysAgo(2)}, "active"},
		{"first order today, signed up today", audience.Customer{OrdersCount: 1, CreatedAt: at, LastActiveAt: at}, "active"},
	}
	for _, tt := range tests {
		f := audience.FactsAt(&tt.c, at)
		got, err := r.Stage(&f)
		if err != nil {
			t.Errorf("%s: %v", tt.name, err)
			continue
		}
		if got != tt.want {
			t.Errorf("%s: stage %q, want %q (facts %+v)", tt.name, got, tt.want, f)
		}
	}
}

// edit changes one thing in TestMatch's base case.
type edit func(c *audience.Customer, f *audience.Facts, h *audience.History)

func stage(s string) edit {
	return func(_ *audience.Customer, f *audience.Facts, _ *audience.History) { f.Stage = s }
}

func inactive(days int) edit {
	return func(_ *audience.Customer, f *audience.Facts, _ *audience.History) { f.InactiveDays = days }
}

func purchased(days int) edit {
	return func(_ *audience.Customer, f *audience.Facts, _ *audience.History) { f.DaysSincePurchase = &days }
}

func attrs(m map[string]any) edit {
	return func(_ *audience.Customer, f *audience.Facts, _ *audience.History) { f.Attributes = m }
}

func sends(n int) edit {
	return func(_ *audience.Customer, _ *audience.Facts, h *audience.History) { h.Sends = n }
}

// lastSent sets the latest occurrence to d before at.
func lastSent(d time.Duration) edit {
	return func(_ *audience.Customer, _ *audience.Facts, h *audience.History) {
		last := at.Add(-d)
		h.LastOccurrence = &last
	}
}

func unsubscribed(c *audience.Customer, _ *audience.Facts, _ *audience.History) { c.Subscribed = false }
func suppressed(c *audience.Customer, _ *audience.Facts, _ *audience.History)   { c.Suppressed = true }

// TestMatch checks each condition of Match at its boundaries, starting from
// a customer in the nudge campaign's audience: at_risk, 45 days inactive,
// never sent to.
func TestMatch(t *testing.T) {
	r := load(t, "testdata/rules")
	tests := []struct {
		name     string
		campaign string
		edits    []edit
		want     bool
	}{
		{"nudge: in audience", "nudge", nil, true},
		{"nudge: inactive exactly min", "nudge", []edit{inactive(30)}, true},
		{"nudge: inactive one below min", "nudge", []edit{inactive(29)}, false},
		{"nudge: inactive exactly max", "nudge", []edit{inactive(59)}, true},
		{"nudge: inactive one above max", "nudge", []edit{inactive(60)}, false},
		{"nudge: other stage", "nudge", []edit{stage("lapsed")}, false},
		{"nudge: unsubscribed", "nudge", []edit{unsubscribed}, false},
		{"nudge: suppressed", "nudge", []edit{suppressed}, false},
		// max_sends 3. The caller counts deliveries in every status but
		// failed and skipped, so those never reach Sends.
		{"nudge: sends one below max", "nudge", []edit{sends(2)}, true},
		{"nudge: sends reached max", "nudge", []edit{sends(3)}, false},
		// cooldown 720h: eligible again once at - last == cooldown.
		{"nudge: cooldown exactly expired", "nudge", []edit{lastSent(720 * time.Hour)}, true},
		{"nudge: cooldown 1s short", "nudge", []edit{lastSent(720*time.Hour - time.Second)}, false},
		{"nudge: sent yesterday", "nudge", []edit{lastSent(24 * time.Hour)}, false},
		// An occurrence at the instant itself is this very tick, not an
		// earlier delivery: planning it again must find the same audience.
		{"nudge: occurrence is now", "nudge", []edit{lastSent(0)}, true},
		{"nudge: occurrence in the future", "nudge", []edit{lastSent(-time.Hour)}, true},

		{"winback: no plan", "winback", []edit{stage("lapsed"), inactive(90)}, true},
		{"winback: nil attributes", "winback", []edit{stage("lapsed"), inactive(90), attrs(nil)}, true},
		{"winback: pro plan", "winback", []edit{stage("lapsed"), inactive(400), attrs(map[string]any{"plan": "pro"})}, true},
		{"winback: enterprise plan", "winback", []edit{stage("lapsed"), inactive(90), attrs(map[string]any{"plan": "enterprise"})}, false},
		{"winback: inactive 89", "winback", []edit{stage("lapsed"), inactive(89)}, false},

		{"thanks: never bought", "thanks", nil, false},
		{"thanks: bought 2 days ago", "thanks", []edit{purchased(2)}, true},
		{"thanks: bought 3 days ago", "thanks", []edit{purchased(3)}, false},

		{"paused: disabled", "paused", nil, false},
		{"everyone: any stage", "everyone", []edit{stage("whatever")}, true},
		{"everyone: no stage", "everyone", []edit{stage("")}, true},
		{"everyone: unsubscribed", "everyone", []edit{unsubscribed}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := audience.Customer{ID: "c1", Email: "a@example.com", Subscribed: true}
			f := audience.Facts{ID: c.ID, Email: c.Email, Stage: "at_risk", InactiveDays: 45, Attributes: map[string]any{}}
			var h audience.History
			for _, e := range tt.edits {
				e(&c, &f, &h)
			}
			target := r.Target(tt.campaign)
			if target == nil {
				t.Fatalf("no target %q", tt.campaign)
			}
			got, err := target.Match(&c, &f, h, at)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("Match = %v, want %v", got, tt.want)
			}
		})
	}
	if r.Target("nope") != nil {
		t.Error(`Target("nope") != nil`)
	}
}

func TestRuntimeErrors(t *testing.T) {
	r := load(t, "testdata/runtime")
	dir := "testdata/runtime"
	c := &audience.Customer{ID: "c1", Subscribed: true}
	f := &audience.Facts{ID: "c1", OrdersCount: 1, Attributes: map[string]any{}}

	_, err := r.Stage(f)
	var ee *audience.EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("Stage: %v (%T), want *EvalError", err, err)
	}
	if got, want := err.Error(), filepath.Join(dir, "lifecycle.yaml")+`:3:51: stage "recent" when: invalid operation: <nil> <= int`; got != want {
		t.Errorf("Stage error\ngot  %s\nwant %s", got, want)
	}

	tests := []struct {
		campaign, want string
	}{
		{"nil-compare", filepath.Join(dir, "nil-compare.yaml") + `:4:52: campaign "nil-compare" audience.where: invalid operation: <nil> > int`},
		{"any-result", filepath.Join(dir, "any-result.yaml") + `:4:10: campaign "any-result" audience.where: invalid operation: bool(string)`},
	}
	f.Attributes["vip"] = "yes"
	for _, tt := range tests {
		ok, err := r.Target(tt.campaign).Match(c, f, audience.History{}, at)
		if ok || err == nil {
			t.Errorf("%s: Match = %v, %v; want an error", tt.campaign, ok, err)
			continue
		}
		if !errors.As(err, &ee) {
			t.Errorf("%s: %T, want *EvalError", tt.campaign, err)
		}
		if err.Error() != tt.want {
			t.Errorf("%s:\ngot  %s\nwant %s", tt.campaign, err, tt.want)
		}
	}
	// An attribute used as a condition: true is true, and a missing one is
	// false rather than an error.
	f.Attributes["vip"] = true
	if ok, err := r.Target("any-result").Match(c, f, audience.History{}, at); !ok || err != nil {
		t.Errorf("vip true: Match = %v, %v; want true", ok, err)
	}
	delete(f.Attributes, "vip")
	if ok, err := r.Target("any-result").Match(c, f, audience.History{}, at); ok || err != nil {
		t.Errorf("vip missing: Match = %v, %v; want false", ok, err)
	}
}

// TestConcurrent runs Stage and Match from many goroutines; run it with -race.
func TestConcurrent(t *testing.T) {
	r := load(t, "../../campaigns")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				c := &audience.Customer{
					ID: "c", Subscribed: true, OrdersCount: (g + i) % 12, TotalSpent: float64(i),
					CreatedAt: daysAgo(400), LastActiveAt: daysAgo(i % 120),
					Attributes: map[string]any{"plan": []string{"pro", "enterprise"}[i%2]},
				}
				f := audience.FactsAt(c, at)
				stage, err := r.Stage(&f)
				if err != nil {
					t.Error(err)
					return
				}
				f.Stage = stage
				for _, tg := range r.Targets() {
					if _, err := tg.Match(c, &f, audience.History{}, at); err != nil {
						t.Error(err)
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

func BenchmarkStage(b *testing.B) {
	r := load(b, "../../campaigns")
	// An active customer goes through every when before the catch-all.
	c := &audience.Customer{OrdersCount: 2, TotalSpent: 120, CreatedAt: daysAgo(400), LastActiveAt: daysAgo(3)}
	f := audience.FactsAt(c, at)
	b.ReportAllocs()
	for b.Loop() {
		if s, err := r.Stage(&f); err != nil || s != "active" {
			b.Fatal(s, err)
		}
	}
}

func BenchmarkMatch(b *testing.B) {
	r := load(b, "../../campaigns")
	c := &audience.Customer{Subscribed: true, OrdersCount: 2, CreatedAt: daysAgo(400), LastActiveAt: daysAgo(120),
		Attributes: map[string]any{"plan": "pro"}}
	f := audience.FactsAt(c, at)
	f.Stage = "lapsed"
	b.Run("where", func(b *testing.B) {
		tg := r.Target("winback")
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := tg.Match(c, &f, audience.History{}, at); !ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("cheap-reject", func(b *testing.B) {
		tg := r.Target("at-risk-nudge")
		b.ReportAllocs()
		for b.Loop() {
			if ok, err := tg.Match(c, &f, audience.History{}, at); ok || err != nil {
				b.Fatal(ok, err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		tg := r.Target("winback")
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if ok, err := tg.Match(c, &f, audience.History{}, at); !ok || err != nil {
					b.Error(ok, err)
					return
				}
			}
		})
	})
}

func TestNeedsAttributes(t *testing.T) {
	r := load(t, "../../campaigns")
	var need []string
	for _, tg := range r.Targets() {
		if tg.NeedsAttributes() {
			need = append(need, tg.Campaign.Name)
		}
	}
	// Only winback's where and welcome-series' last step read attributes
	// (attributes.plan); no stage does.
	if got := strings.Join(need, ","); got != "welcome-series,winback" {
		t.Errorf("campaigns needing attributes: %q, want \"welcome-series,winback\"", got)
	}
}

// TestToolkitExpressions evaluates trigger.where, exit_when and steps'
// where, and the time facts (now, created_at, first_purchase_at, ...)
// with date(), on hand-built facts at the fixed instant at.
func TestToolkitExpressions(t *testing.T) {
	r := load(t, "testdata/toolkit")
	ptr := func(tm time.Time) *time.Time { return &tm }
	amount := 30.0
	base := func() audience.Facts {
		c := &audience.Customer{ID: "c1", Subscribed: true, CreatedAt: daysAgo(100), LastActiveAt: daysAgo(3),
			Attributes: map[string]any{}}
		return audience.FactsAt(c, at)
	}
	event := func(total float64, occurred time.Time) *audience.Event {
		return &audience.Event{ID: "e1", Type: "cart_abandoned", OccurredAt: occurred, Amount: &amount,
			Properties: map[string]any{"total": total}}
	}
	type check struct {
		name string
		eval func(tg *audience.Target, f *audience.Facts) (bool, error)
		edit func(f *audience.Facts)
		want bool
	}
	match := func(tg *audience.Target, f *audience.Facts) (bool, error) {
		c := &audience.Customer{ID: f.ID, Subscribed: true}
		return tg.Match(c, f, audience.History{}, at)
	}
	step := func(i int) func(tg *audience.Target, f *audience.Facts) (bool, error) {
		return func(tg *audience.Target, f *audience.Facts) (bool, error) { return tg.StepWhere(i, f) }
	}
	trigger := (*audience.Target).TriggerWhere
	exit := (*audience.Target).ExitWhen
	tests := map[string][]check{
		"birthday": {
			{"birthday today", match, func(f *audience.Facts) { f.Attributes["birthday"] = "1990-11-24" }, true},
			{"birthday tomorrow", match, func(f *audience.Facts) { f.Attributes["birthday"] = "1990-11-25" }, false},
			{"birthday this day, other month", match, func(f *audience.Facts) { f.Attributes["birthday"] = "1990-10-24" }, false},
			{"no birthday", match, nil, false},
		},
		"cart": {
			{"total 20", trigger, func(f *audience.Facts) { f.Event = event(20, daysAgo(1)) }, true},
			{"total 19.99", trigger, func(f *audience.Facts) { f.Event = event(19.99, daysAgo(1)) }, false},
			{"bought after the event", exit, func(f *audience.Facts) {
				f.Event = event(25, daysAgo(2))
				f.LastPurchaseAt = ptr(daysAgo(1))
			}, true},
			{"bought before the event", exit, func(f *audience.Facts) {
				f.Event = event(25, daysAgo(2))
				f.LastPurchaseAt = ptr(daysAgo(3))
			}, false},
			{"never bought", exit, func(f *audience.Facts) { f.Event = event(25, daysAgo(2)) }, false},
		},
		"journey": {
			{"step 1 has no where", step(0), nil, true},
			{"step 2, first purchase 48h ago", step(1), func(f *audience.Facts) { f.FirstPurchaseAt = ptr(at.Add(-48 * time.Hour)) }, true},
			{"step 2, first purchase 47h ago", step(1), func(f *audience.Facts) { f.FirstPurchaseAt = ptr(at.Add(-47 * time.Hour)) }, false},
			{"step 2, never bought", step(1), nil, false},
			{"step 3, enterprise", step(2), func(f *audience.Facts) { f.Attributes["plan"] = "enterprise" }, false},
			{"step 3, pro", step(2), func(f *audience.Facts) { f.Attributes["plan"] = "pro" }, true},
			{"beyond the steps", step(3), nil, true},
			{"11 orders: exits", exit, func(f *audience.Facts) { f.OrdersCount = 11 }, true},
			{"10 orders: stays", exit, func(f *audience.Facts) { f.OrdersCount = 10 }, false},
			{"no trigger.where", trigger, nil, true},
		},
		"quiet": {
			{"active before now", exit, nil, true},
			{"active at now", exit, func(f *audience.Facts) { f.LastActiveAt = at }, false},
		},
	}
	for name, checks := range tests {
		tg := r.Target(name)
		if tg == nil {
			t.Fatalf("no target %q", name)
		}
		for _, c := range checks {
			f := base()
			if c.edit != nil {
				c.edit(&f)
			}
			got, err := c.eval(tg, &f)
			if err != nil {
				t.Errorf("%s: %s: %v", name, c.name, err)
				continue
			}
			if got != c.want {
				t.Errorf("%s: %s = %v, want %v", name, c.name, got, c.want)
			}
		}
	}
	// A campaign without exit_when never exits.
	f := base()
	if ok, err := r.Target("birthday").ExitWhen(&f); ok || err != nil {
		t.Errorf("birthday ExitWhen = %v, %v; want false", ok, err)
	}

	// The lifecycle reads now and created_at: two weeks after signing up.
	for _, tt := range []struct {
		created time.Time
		want    string
	}{
		{at.Add(-14*24*time.Hour + time.Second), "new"},
		{daysAgo(14), "active"},
	} {
		c := &audience.Customer{CreatedAt: tt.created, LastActiveAt: tt.created}
		f := audience.FactsAt(c, at)
		if got, err := r.Stage(&f); err != nil || got != tt.want {
			t.Errorf("created %s: stage %q, %v; want %q", tt.created, got, err, tt.want)
		}
	}

	var need []string
	for _, tg := range r.Targets() {
		if tg.NeedsAttributes() {
			need = append(need, tg.Campaign.Name)
		}
	}
	// birthday's audience.where and journey's third step read attributes.
	if got := strings.Join(need, ","); got != "birthday,journey" {
		t.Errorf("campaigns needing attributes: %q, want \"birthday,journey\"", got)
	}
}

// TestToolkitRuntimeError checks that an expression failing at run time
// is reported at its position, with the key that holds it.
func TestToolkitRuntimeError(t *testing.T) {
	r := load(t, "testdata/toolkit")
	f := audience.FactsAt(&audience.Customer{ID: "c1", CreatedAt: daysAgo(9), LastActiveAt: daysAgo(9)}, at)
	// No event: event.properties reads nil.
	_, err := r.Target("cart").TriggerWhere(&f)
	var ee *audience.EvalError
	if !errors.As(err, &ee) {
		t.Fatalf("TriggerWhere: %v (%T), want *EvalError", err, err)
	}
	want := filepath.Join("testdata/toolkit", "cart.yaml") + `:4:11: campaign "cart" trigger.where: cannot get properties from event`
	if got := err.Error(); got != want {
		t.Errorf("TriggerWhere error\ngot  %s\nwant %s", got, want)
	}
}
