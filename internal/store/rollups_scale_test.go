package store_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/pages"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestPagesAtScale: on a million deliveries (12 campaigns over a year, 50
// 000 conversions, 200 000 opened) and a year of hourly sweeps, the rollup
// of the million rows agrees with the report read from deliveries, and
// each results page reads the rollups alone: the pages are served through
// a PostgreSQL role that may not read deliveries, customers, events or
// what hangs off them, so a page that did would fail. That is what keeps
// a page fast whatever the number of deliveries; the times are logged
// (best of five), not asserted: a test must not depend on the machine's
// speed.
func TestPagesAtScale(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a million deliveries; skipped with -short")
	}
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.DatabaseURL(t)
	st, err := store.Open(ctx, dbURL, store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	exec := func(what, sql string) time.Duration {
		t.Helper()
		start := time.Now()
		if _, err := st.Pool().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return time.Since(start)
	}
	took := exec("deliveries", `
INSERT INTO deliveries (campaign, customer_id, occurrence, stage, template, queue, status, reason, send_at, sent_at, variant, step)
SELECT 'campaign-' || lpad((i % 12)::text, 2, '0'), 'c' || i, t.at, 'active', 't', 'default',
       (CASE WHEN i % 10 < 7 THEN 'sent' WHEN i % 10 = 7 THEN 'failed' WHEN i % 10 = 8 THEN 'skipped' ELSE 'held_out' END)::delivery_status,
       CASE WHEN i % 10 = 8 THEN 'frequency cap' END,
       t.at, CASE WHEN i % 10 < 7 THEN t.at END,
       CASE WHEN i % 10 = 9 THEN 'holdout' WHEN i % 2 = 0 THEN 'a' ELSE 'b' END, 1 + (i / 12) % 3
FROM generate_series(1, 1000000) AS i,
     LATERAL (SELECT timestamptz '2025-06-02' + (i % 365) * interval '1 day' + (i % 86400) * interval '1 second' AS at) t`)
	t.Logf("1,000,000 deliveries written in %s", took.Round(time.Millisecond))
	exec("conversions", `
INSERT INTO conversions (event_seq, delivery_id, campaign, occurred_at, amount)
SELECT row_number() OVER (), id, campaign, send_at + interval '1 hour', 25.5
FROM (SELECT id, campaign, send_at FROM deliveries WHERE status IN ('sent', 'held_out') LIMIT 50000) d`)
	exec("tracking", `
INSERT INTO delivery_tracking (delivery_id, opens, first_opened_at, last_opened_at, clicks)
SELECT id, 1, send_at + interval '1 hour', send_at + interval '1 hour', (hashtext(id::text) & 1)
FROM deliveries WHERE status = 'sent' LIMIT 200000`)
	exec("stage counts", `
INSERT INTO stage_counts (swept_at, stage, customers, total_spent)
SELECT at, stage, 150000 + n * 1000, (150000 + n * 1000) * 42.5
FROM generate_series(timestamptz '2025-06-02', timestamptz '2026-06-01 23:00', interval '1 hour') AS at,
     unnest(array['new', 'prospect', 'lapsed', 'at_risk', 'loyal', 'active']) WITH ORDINALITY AS s (stage, n)`)
	exec("stage flows", `
INSERT INTO stage_flows (swept_at, from_stage, to_stage, customers)
SELECT at, f, t, 40
FROM generate_series(timestamptz '2025-06-02', timestamptz '2026-06-01 23:00', interval '1 hour') AS at,
     (VALUES ('new', 'active'), ('active', 'at_risk'), ('at_risk', 'active'), ('at_risk', 'lapsed'), ('active', 'loyal'), ('prospect', 'active')) AS p (f, t)`)
	exec("analyze", `ANALYZE`)

	start := time.Now()
	res, err := st.RefreshRollups(ctx, time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("first refresh (every day of every campaign): %d days, %d rows, in %s", res.Days, res.Rows, time.Since(start).Round(time.Millisecond))
	exec("the worker's day", `UPDATE deliveries SET attempts = attempts + 1 WHERE id IN (SELECT id FROM deliveries WHERE send_at >= '2026-05-31' AND campaign = 'campaign-03' LIMIT 1000)`)
	start = time.Now()
	res, err = st.RefreshRollups(ctx, time.Date(2026, 6, 1, 12, 1, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("incremental refresh after 1,000 deliveries changed: %d days, %d rows, in %s", res.Days, res.Rows, time.Since(start).Round(time.Millisecond))

	rolled, err := st.CampaignTotals(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	direct, err := st.Report(ctx, store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	if reportLines(rolled) != reportLines(direct) {
		t.Errorf("rollup totals differ from the report read from deliveries:\n%s\nreport:\n%s", reportLines(rolled), reportLines(direct))
	}

	set := &campaign.Set{Lifecycle: campaign.Lifecycle{Stages: []campaign.Stage{{Name: "new"}, {Name: "prospect"}, {Name: "lapsed"},
		{Name: "at_risk"}, {Name: "loyal"}, {Name: "active"}}}}
	for i := range 12 {
		set.Campaigns = append(set.Campaigns, campaign.Campaign{Name: "campaign-" + twoDigits(i), HoldoutBasisPoints: 1000})
	}
	m := http.NewServeMux()
	for pattern, h := range pages.Handlers(pages.Config{Store: rollupReader(t, st, dbURL), Campaigns: func() *campaign.Set { return set },
		Now: func() time.Time { return time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC) }}) {
		m.Handle(pattern, h)
	}
	for _, path := range []string{"/campaigns", "/campaigns/campaign-03", "/lifecycle", "/lifecycle?from=2025-06-02&to=2026-06-01"} {
		best := time.Hour
		for range 5 {
			rec := httptest.NewRecorder()
			start := time.Now()
			m.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			if d := time.Since(start); d < best {
				best = d
			}
			if rec.Code != 200 {
				t.Fatalf("GET %s: %d %s", path, rec.Code, rec.Body.String())
			}
		}
		t.Logf("GET %s: best of 5 in %s", path, best.Round(100*time.Microsecond))
	}
}

// rollupReader is a Store on dbURL as a role of its own that may read
// every table but the large ones the rollups summarise.
func rollupReader(t *testing.T, st *store.Store, dbURL string) *store.Store {
	t.Helper()
	ctx := context.Background()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	role := "pages_reader_" + hex.EncodeToString(b[:])
	for _, sql := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"GRANT USAGE ON SCHEMA public TO " + role,
		"GRANT SELECT ON ALL TABLES IN SCHEMA public TO " + role,
		"REVOKE SELECT ON deliveries, customers, events, conversions, delivery_tracking, delivery_clicks, journeys FROM " + role,
	} {
		if _, err := st.Pool().Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	t.Cleanup(func() {
		for _, sql := range []string{"DROP OWNED BY " + role, "DROP ROLE " + role} {
			if _, err := st.Pool().Exec(context.Background(), sql); err != nil {
				t.Errorf("%s: %v", sql, err)
			}
		}
	})
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(role)
	reader, err := store.Open(ctx, u.String(), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(reader.Close)
	// The role cannot read deliveries: the guard itself is checked.
	if _, err := reader.Report(ctx, store.ReportFilter{}); err == nil {
		t.Fatal("the rollup reader read deliveries")
	}
	return reader
}

func twoDigits(i int) string { return string(rune('0'+i/10)) + string(rune('0'+i%10)) }
