package demo_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nurture/internal/demo"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

func TestRunRefusesRealDatabases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name, databaseURL, redisURL, want string
	}{
		{"database", "postgres://root@127.0.0.1:5432/nurture?sslmode=disable", demo.DefaultRedisURL,
			`--database-url: the demo empties its database; "nurture" must have "demo" in its name`},
		{"redis DB 0", demo.DefaultDatabaseURL, "redis://127.0.0.1:6379/0",
			`--redis-url redis://127.0.0.1:6379/0: the demo empties its Redis DB; use a DB other than 0, such as redis://127.0.0.1:6379/15`},
		{"redis without DB", demo.DefaultDatabaseURL, "redis://127.0.0.1:6379",
			`--redis-url redis://127.0.0.1:6379: the demo empties its Redis DB; use a DB other than 0, such as redis://127.0.0.1:6379/15`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := demo.DefaultConfig()
			cfg.DatabaseURL, cfg.RedisURL = tc.databaseURL, tc.redisURL
			var stdout, stderr bytes.Buffer
			err := demo.Run(context.Background(), cfg, &stdout, &stderr)
			if err == nil || err.Error() != tc.want {
				t.Fatalf("Run error:\n got %v\nwant %s", err, tc.want)
			}
			if stdout.Len()+stderr.Len() != 0 {
				t.Errorf("Run did something before refusing:\n%s%s", &stdout, &stderr)
			}
		})
	}
}

// demoConfig runs the demo on a scratch database (Run creates and
// migrates it; its name has "demo" in it) and Redis DB of the test's own,
// with the shipped campaigns, customers customers and the clock at now.
func demoConfig(t *testing.T, customers int, now time.Time) demo.Config {
	t.Helper()
	cfg := demo.DefaultConfig()
	cfg.DatabaseURL, _ = testenv.ScratchDatabaseURL(t, "demo")
	cfg.RedisURL = testenv.RedisURL(t)
	cfg.CampaignsDir, cfg.TemplatesDir = "../../campaigns", "../../templates"
	cfg.Customers = customers
	cfg.OutboxDir = filepath.Join(t.TempDir(), "outbox")
	cfg.Now = func() time.Time { return now }
	return cfg
}

func TestRun(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	cfg := demoConfig(t, 200, time.Date(2026, 6, 1, 9, 0, 42, 0, time.UTC)) // a Monday
	dbURL := cfg.DatabaseURL

	var stdout, stderr bytes.Buffer
	if err := demo.Run(ctx, cfg, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	want, err := os.ReadFile("testdata/run.txt")
	if err != nil {
		t.Fatal(err)
	}
	// The scratch database and the outbox have names of their own.
	w := strings.ReplaceAll(string(want), "DATABASE_URL", dbURL)
	w = strings.ReplaceAll(w, "OUTBOX", cfg.OutboxDir)
	_, afterDB, _ := strings.Cut(out, "\n==> audience:")
	if got := "==> audience:" + afterDB; got != w {
		t.Errorf("output, after the database line:\n%s\nwant (testdata/run.txt):\n%s", got, w)
	}

	// The hint's pattern names the one email it promises.
	if m, err := filepath.Glob(filepath.Join(cfg.OutboxDir, "at-risk-nudge", "c0000031-*.eml")); err != nil || len(m) != 1 {
		t.Errorf("the hint's pattern matches %q (%v), want one file", m, err)
	}

	st, err := store.Open(ctx, dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	type key struct {
		campaign string
		step     int
		status   string
	}
	got := map[key]int{}
	sent := map[string]int{} // per campaign
	err = st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		got[key{d.Campaign, d.Step, d.Status}]++
		if d.Status == store.StatusSent {
			sent[d.Campaign]++
		}
		if d.Status == store.StatusHeldOut && d.Variant != "holdout" {
			t.Errorf("held-out delivery %s of %s has variant %q", d.ID, d.Campaign, d.Variant)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k, n := range got {
		switch k.status {
		case store.StatusSent, store.StatusSkipped, store.StatusFailed, store.StatusHeldOut:
		default:
			t.Errorf("%d deliveries of %s step %d left %s", n, k.campaign, k.step, k.status)
		}
	}
	// The journey: 24 new customers enter; c0000001 buys on day 2 and
	// exits before step 2; step 3 is due on day 6 (120h), where its
	// where leaves out the enterprise accounts.
	for _, c := range []struct {
		k    key
		want int
	}{
		{key{"welcome-series", 1, store.StatusSent}, 24},
		{key{"welcome-series", 2, store.StatusSent}, 23},
		{key{"welcome-series", 3, store.StatusSent}, 18},
		{key{"welcome-series", 3, store.StatusSkipped}, 5},
		{key{"winback", 1, store.StatusHeldOut}, 1},
	} {
		if got[c.k] != c.want {
			t.Errorf("%s step %d %s: %d deliveries, want %d", c.k.campaign, c.k.step, c.k.status, got[c.k], c.want)
		}
	}
	// Every trigger fired: the carts of the simulated days, purchases of
	// the week before, customers the large orders made loyal.
	for _, c := range []string{"cart-reminder", "review-request", "loyalty-club"} {
		if sent[c] == 0 {
			t.Errorf("no %s email was sent", c)
		}
	}
	js, err := st.Journeys(ctx, "welcome-series", "c0000001")
	if err != nil {
		t.Fatal(err)
	}
	if len(js) != 1 || js[0].Status != store.JourneyExited || js[0].Reason != "exit_when" || js[0].Step != 1 {
		t.Errorf("c0000001's welcome-series journeys: %+v, want one exited by exit_when after step 1", js)
	}

	files, err := filepath.Glob(filepath.Join(cfg.OutboxDir, "*", "*.eml"))
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, n := range sent {
		total += n
	}
	if len(files) != total || total != 232 {
		t.Errorf("%d .eml files in the outbox, %d deliveries sent, want 232 of both", len(files), total)
	}
}

// TestRunDays replays two days from a Friday evening, twice.
func TestRunDays(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// A Friday at 17:30: the review requests wait for Monday 09:00 in
	// their customers' zones, after the last simulated day.
	cfg := demoConfig(t, 80, time.Date(2026, 6, 5, 17, 30, 0, 0, time.UTC))
	cfg.Days = 2

	var stdout, stderr bytes.Buffer
	if err := demo.Run(ctx, cfg, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	// A second run starts afresh: the stage history, journeys and
	// deliveries of the first change nothing.
	stdout.Reset()
	if err := demo.Run(ctx, cfg, &stdout, &stderr); err != nil {
		t.Fatalf("second Run: %v\n%s%s", err, &stdout, &stderr)
	}
	if again := stdout.String(); again != out {
		t.Errorf("second run:\n%s\nfirst run:\n%s", again, out)
	}
	var days []string
	for line := range strings.Lines(out) {
		if strings.HasPrefix(line, "==> day ") {
			days = append(days, line)
		}
	}
	want := []string{"==> day 1 of 2: 2026-06-05T17:30:00Z\n", "==> day 2 of 2: 2026-06-06T17:30:00Z\n"}
	if !slices.Equal(days, want) {
		t.Errorf("day lines %q, want %q\n%s", days, want, out)
	}
	if !strings.Contains(out, "    sending: the last email waits for its window until 2026-06-08T") {
		t.Errorf("no line on the emails sent after the last day:\n%s", out)
	}
	st, err := store.Open(ctx, cfg.DatabaseURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	open, reviews, monday := 0, 0, 0
	err = st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		switch d.Status {
		case store.StatusSent, store.StatusSkipped, store.StatusFailed, store.StatusHeldOut:
		default:
			open++
		}
		if d.Campaign == "review-request" && d.Status == store.StatusSent {
			reviews++
			// Monday 09:00 in Sydney, the first of the zones to open.
			if !d.SendAt.Before(time.Date(2026, 6, 7, 23, 0, 0, 0, time.UTC)) {
				monday++
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if open != 0 {
		t.Errorf("%d deliveries left open", open)
	}
	if reviews == 0 || monday == 0 {
		t.Errorf("%d review requests sent, %d of them on Monday, want some of both:\n%s", reviews, monday, out)
	}
}

// TestRunOneCustomer: an audience too small for every kind of activity
// still replays its days to the end.
func TestRunOneCustomer(t *testing.T) {
	t.Parallel()
	cfg := demoConfig(t, 1, time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC))
	cfg.Days = 2
	var stdout, stderr bytes.Buffer
	if err := demo.Run(context.Background(), cfg, &stdout, &stderr); err != nil {
		t.Fatalf("Run: %v\n%s%s", err, &stdout, &stderr)
	}
	// The one customer is new: no one to place the large order that makes
	// a customer loyal.
	out := stdout.String()
	if n := strings.Count(out, "    activity: 1 cart abandoned, 1 order\n"); n != 2 {
		t.Errorf("%d activity lines without a large order, want 2:\n%s", n, out)
	}
}
