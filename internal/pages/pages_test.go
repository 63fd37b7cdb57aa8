package pages_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/campaign"
	"nurture/internal/httpserver"
	"nurture/internal/metrics"
	"nurture/internal/pages"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

func mux(st *store.Store, now time.Time) *http.ServeMux {
	m := http.NewServeMux()
	for pattern, h := range pages.Handlers(pages.Config{
		Store: st, Campaigns: func() *campaign.Set { return campaigns() }, Now: func() time.Time { return now },
	}) {
		m.Handle(pattern, h)
	}
	return m
}

func get(t testing.TB, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec.Code, rec.Body.String()
}

func TestCampaignsPage(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	seed(t, st)
	code, page := get(t, mux(st, ts("2026-06-02T12:00:00Z")), "/campaigns")
	if code != 200 {
		t.Fatalf("GET /campaigns: %d\n%s", code, page)
	}
	checkRows(t, page, "report", reportHead, welcomeLine, winbackLine, variantA, holdoutLine)
	for _, want := range []string{`<a href="/campaigns/winback">winback</a>`, `<a href="/campaigns/welcome">welcome</a>`,
		"as of 2026-06-02 12:00:00 UTC", "winback skipped: unsubscribed: 1", `name="viewport"`} {
		if !strings.Contains(page, want) {
			t.Errorf("/campaigns lacks %q", want)
		}
	}
}

func TestCampaignPage(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	seed(t, st)
	h := mux(st, ts("2026-06-02T12:00:00Z"))
	code, page := get(t, h, "/campaigns/winback")
	if code != 200 {
		t.Fatalf("GET /campaigns/winback: %d\n%s", code, page)
	}
	checkRows(t, page, "report", reportHead, winbackLine, variantA, holdoutLine)
	checkRows(t, page, "days", "Day | Planned | Sent | Opened | Clicked | Converted | Conv. rate | Revenue",
		"2026-06-01 | 4 | 2 | 1 | 1 | 1 | 50.0% | 40.00",
		"2026-06-02 | 2 | 1 | 1 | 0 | 1 | 100.0% | 60.00")
	for _, want := range []string{`<a id="queue" href="/monitoring/queues/retention">`, `<a href="/campaigns">`,
		"Win back customers drifting away", "<svg", `<polyline fill="none" stroke="#2563eb" stroke-width="2" points="64.0,12.0 628.0,108.0"/>`} {
		if !strings.Contains(page, want) {
			t.Errorf("/campaigns/winback lacks %q", want)
		}
	}

	// Configured, never sent: a page of zeros.
	code, page = get(t, h, "/campaigns/welcome")
	if code != 200 {
		t.Fatalf("GET /campaigns/welcome: %d", code)
	}
	checkRows(t, page, "report", reportHead, welcomeLine)
	checkRows(t, page, "days", "Day | Planned | Sent | Opened | Clicked | Converted | Conv. rate | Revenue")

	code, page = get(t, h, "/campaigns/nope")
	if code != 404 || page != "No campaign \"nope\": neither in the campaign files nor among the deliveries.\n" {
		t.Errorf("GET /campaigns/nope: %d %q", code, page)
	}
}

func TestLifecyclePage(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	seed(t, st)
	// The default period, the 30 days to 2026-06-20, holds every sweep.
	h := mux(st, ts("2026-06-20T08:00:00Z"))
	code, page := get(t, h, "/lifecycle")
	if code != 200 {
		t.Fatalf("GET /lifecycle: %d\n%s", code, page)
	}
	if !strings.Contains(page, "From 2026-05-22 to 2026-06-20") {
		t.Errorf("default period is not the 30 days to 2026-06-20")
	}
	checkRows(t, page, "history", "Day | new | active | at_risk | All",
		"2026-06-01 | 1 | 3 | 2 | 6",
		"2026-06-02 | 0 | 5 | 1 | 6")
	checkRows(t, page, "flows", "from \\ to | new | active | at_risk",
		"(first seen) | 2 | 2 | 2",
		"new | – | 2 | 0",
		"active | 0 | – | 0",
		"at_risk | 0 | 1 | –")
	checkRows(t, page, "stages", "Stage | Customers | Revenue | Average value",
		"new | 0 | 0.00 | 0.00",
		"active | 5 | 115.00 | 23.00",
		"at_risk | 1 | 0.00 | 0.00",
		"all | 6 | 115.00 | 19.17")
	for _, want := range []string{"new → active", "at_risk → active", "latest sweep (2026-06-02 10:00:00 UTC)"} {
		if !strings.Contains(page, want) {
			t.Errorf("/lifecycle lacks %q", want)
		}
	}

	// One day: its last sweep, and its changes alone.
	code, page = get(t, h, "/lifecycle?from=2026-06-02&to=2026-06-02")
	if code != 200 {
		t.Fatalf("GET /lifecycle one day: %d", code)
	}
	checkRows(t, page, "history", "Day | new | active | at_risk | All", "2026-06-02 | 0 | 5 | 1 | 6")
	checkRows(t, page, "flows", "from \\ to | new | active | at_risk",
		"(first seen) | 0 | 0 | 0", "new | – | 1 | 0", "active | 0 | – | 0", "at_risk | 0 | 1 | –")

	for path, want := range map[string]string{
		"/lifecycle?from=June":                     "bad period: from=\"June\" is not a date as YYYY-MM-DD\n",
		"/lifecycle?from=2026-06-03&to=2026-06-02": "bad period: from 2026-06-03 is after to 2026-06-02\n",
	} {
		if code, body := get(t, h, path); code != 400 || body != want {
			t.Errorf("GET %s: %d %q, want 400 %q", path, code, body, want)
		}
	}
}

// server runs the HTTP role with the pages behind the admin password.
func server(t testing.TB, st *store.Store, now time.Time) string {
	t.Helper()
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	s, err := httpserver.New(httpserver.Config{Addr: "127.0.0.1:0", AdminUser: "admin", AdminPassword: "s3cret pass"},
		httpserver.Deps{Store: st, Redis: rdb, Metrics: metrics.New().Handler(), Admin: pages.Handlers(pages.Config{
			Store: st, Campaigns: func() *campaign.Set { return campaigns() }, Now: func() time.Time { return now },
		})}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := s.Stop(ctx); err != nil {
			t.Errorf("Stop: %v", err)
		}
	})
	return "http://" + s.Addr()
}

// TestPagesNeedTheLogin: without the admin password, or with a wrong one,
// every page answers 401.
func TestPagesNeedTheLogin(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	base := server(t, st, ts("2026-06-02T12:00:00Z"))
	for _, path := range []string{"/campaigns", "/campaigns/winback", "/lifecycle"} {
		for _, pass := range []string{"", "wrong"} {
			req, _ := http.NewRequest("GET", base+path, nil)
			if pass != "" {
				req.SetBasicAuth("admin", pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 401 {
				t.Errorf("GET %s with password %q: %d, want 401", path, pass, resp.StatusCode)
			}
		}
		req, _ := http.NewRequest("GET", base+path, nil)
		req.SetBasicAuth("admin", "s3cret pass")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Errorf("GET %s with the password: %d, want 200", path, resp.StatusCode)
		}
	}
}
