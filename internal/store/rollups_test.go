package store_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/audience"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// reportLines prints report rows one per line, for exact comparisons.
func reportLines(rows []store.ReportRow) string {
	var b strings.Builder
	for _, r := range rows {
		fmt.Fprintf(&b, "%s/%s/%d/%s/%s: %d delivered, %d opened, %d clicked, %d unsubscribed, %d bounced, %d complained, %d converted, %.2f\n",
			r.Campaign, r.Variant, r.Step, r.Status, r.Reason, r.Deliveries, r.Opened, r.Clicked, r.Unsubscribed, r.Bounced, r.Complained,
			r.Converted, r.Revenue)
	}
	return b.String()
}

// TestRollups: the first refresh rolls everything up; later ones count
// again only the days of deliveries changed, purchases attributed and
// opt-outs recorded since, and the rollup always agrees with the report
// read from deliveries.
func TestRollups(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	d1, d2 := ts("2026-06-01T09:00:00Z"), ts("2026-06-02T23:59:59Z")
	nd := func(campaign, customer string, at time.Time, variant, status string) store.NewDelivery {
		return store.NewDelivery{Campaign: campaign, CustomerID: customer, Occurrence: at, Stage: "active", Template: "t", Queue: "default",
			Variant: variant, Status: status}
	}
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{
		nd("winback", "c1", d1, "a", ""), nd("winback", "c2", d1, "a", ""), nd("winback", "c3", d1, "holdout", store.StatusHeldOut),
		nd("winback", "c4", d2, "a", ""), nd("cart", "c1", d2, "", ""),
	}); err != nil {
		t.Fatal(err)
	}
	exec := func(sql string, args ...any) {
		t.Helper()
		if _, err := st.Pool().Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	exec(`UPDATE deliveries SET status = 'sent', sent_at = send_at WHERE customer_id IN ('c1', 'c2') AND campaign = 'winback'`)

	// How many days a refresh counts again depends on the transactions
	// running anywhere on the server (the bound is the oldest of them): a
	// refresh must count at least the days changed, and agree with the
	// report read from deliveries.
	refresh := func(full bool, minDays int) {
		t.Helper()
		got, err := st.RefreshRollups(ctx, d2)
		if err != nil {
			t.Fatal(err)
		}
		if got.Full != full || got.Days < minDays || got.Busy {
			t.Errorf("RefreshRollups = %+v, want full %v and at least %d days", got, full, minDays)
		}
		rolled, err := st.CampaignTotals(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		direct, err := st.Report(ctx, store.ReportFilter{})
		if err != nil {
			t.Fatal(err)
		}
		if reportLines(rolled) != reportLines(direct) {
			t.Errorf("rollup totals:\n%s\nreport from deliveries:\n%s", reportLines(rolled), reportLines(direct))
		}
	}
	// First: winback's two days and cart's one.
	refresh(true, 3)
	refresh(false, 0)
	// c4's winback is sent: its day alone is counted again.
	exec(`UPDATE deliveries SET status = 'sent', sent_at = send_at WHERE customer_id = 'c4'`)
	refresh(false, 1)
	// A new delivery (an insert, not an update) counts too.
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{nd("cart", "c2", d1, "", "")}); err != nil {
		t.Fatal(err)
	}
	refresh(false, 1)
	// A purchase of c1 goes to winback on d1 (cart on d2 was never sent),
	// one of c3 to the holdout: only winback's d1 is counted again.
	importCustomers(t, st, store.CustomerRecord{ID: "c1", Email: "c1@example.com", Subscribed: true, CreatedAt: d1.Add(-time.Hour)},
		store.CustomerRecord{ID: "c3", Email: "c3@example.com", Subscribed: true, CreatedAt: d1.Add(-time.Hour)})
	amount, other := 42.5, 7.0
	importEvents(t, st, store.EventRecord{ID: "p1", CustomerID: "c1", Type: "purchase", OccurredAt: d1.Add(time.Hour), Amount: &amount},
		store.EventRecord{ID: "p2", CustomerID: "c3", Type: "purchase", OccurredAt: d1.Add(time.Hour), Amount: &other})
	if _, err := st.Attribute(ctx, store.Windows{Default: 120 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	refresh(false, 1)
	// c1 opts out through winback's link: winback's d1 again (cart's
	// delivery to c1 is another campaign's).
	if _, err := st.Unsubscribe(ctx, "c1", "unsubscribe link", "winback"); err != nil {
		t.Fatal(err)
	}
	refresh(false, 1)
	// c1 opens, then clicks (each a first: counted again), then opens
	// again; c2's address bounces.
	ids := map[string]string{}
	if err := st.Deliveries(ctx, func(d *store.DeliveryRow) error { ids[d.Campaign+"/"+d.CustomerID] = d.ID; return nil }); err != nil {
		t.Fatal(err)
	}
	for _, h := range []store.Hit{
		{Delivery: uuid.MustParse(ids["winback/c1"]), At: d1.Add(time.Hour)},
		{Delivery: uuid.MustParse(ids["winback/c1"]), Click: true, URL: "https://shop.example.com/", At: d1.Add(2 * time.Hour)},
		{Delivery: uuid.MustParse(ids["winback/c1"]), At: d1.Add(3 * time.Hour)},
	} {
		if _, err := st.RecordHits(ctx, []store.Hit{h}); err != nil {
			t.Fatal(err)
		}
		refresh(false, 0)
	}
	exec(`UPDATE deliveries SET bounce = 'hard' WHERE id = $1`, ids["winback/c2"])
	refresh(false, 1)

	rolled, err := st.CampaignTotals(ctx, "winback")
	if err != nil {
		t.Fatal(err)
	}
	want := "winback/a/1/sent/: 3 delivered, 1 opened, 1 clicked, 1 unsubscribed, 1 bounced, 0 complained, 1 converted, 42.50\n" +
		"winback/holdout/1/held_out/: 1 delivered, 0 opened, 0 clicked, 0 unsubscribed, 0 bounced, 0 complained, 1 converted, 7.00\n"
	if got := reportLines(rolled); got != want {
		t.Errorf("winback totals:\n%s\nwant\n%s", got, want)
	}
	days, err := st.CampaignDays(ctx, "winback")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", days), "[{Day:2026-06-01 00:00:00 +0000 UTC Planned:3 Sent:2 Opened:1 Clicked:1 Converted:1 Revenue:42.5} {Day:2026-06-02 00:00:00 +0000 UTC Planned:1 Sent:1 Opened:0 Clicked:0 Converted:0 Revenue:0}]"; got != want {
		t.Errorf("winback days:\n got %s\nwant %s", got, want)
	}
	if at, ok, err := st.RollupsRefreshedAt(ctx); err != nil || !ok || !at.Equal(d2) {
		t.Errorf("RollupsRefreshedAt = %v, %v, %v; want %v", at, ok, err, d2)
	}
}

// TestRollupSeesLateCommits: a delivery written by a transaction that
// began before a refresh and committed after it is counted by the next.
func TestRollupSeesLateCommits(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: "w", CustomerID: "c1", Occurrence: at, Stage: "s", Template: "t", Queue: "default"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RefreshRollups(ctx, at); err != nil {
		t.Fatal(err)
	}
	tx, err := st.Pool().Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = send_at`); err != nil {
		t.Fatal(err)
	}
	totals := func(when, want string) {
		t.Helper()
		if _, err := st.RefreshRollups(ctx, at); err != nil {
			t.Fatal(err)
		}
		rows, err := st.CampaignTotals(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		if got := reportLines(rows); got != want {
			t.Errorf("totals %s: %q, want %q", when, got, want)
		}
	}
	totals("beside the open transaction", "w//1/planned/: 1 delivered, 0 opened, 0 clicked, 0 unsubscribed, 0 bounced, 0 complained, 0 converted, 0.00\n")
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	totals("after its commit", "w//1/sent/: 1 delivered, 0 opened, 0 clicked, 0 unsubscribed, 0 bounced, 0 complained, 0 converted, 0.00\n")
}

// TestRollupFollowsAMove: a delivery whose send time moves to another day
// (a deferral to the next send window) leaves the old day's counts as
// well as joining the new day's.
func TestRollupFollowsAMove(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	d1, d2 := ts("2026-06-01T21:00:00Z"), ts("2026-06-02T08:00:00Z")
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: "w", CustomerID: "c1", Occurrence: d1, Stage: "s", Template: "t", Queue: "default"}}); err != nil {
		t.Fatal(err)
	}
	days := func(when, want string) {
		t.Helper()
		if _, err := st.RefreshRollups(ctx, d2); err != nil {
			t.Fatal(err)
		}
		got, err := st.CampaignDays(ctx, "w")
		if err != nil {
			t.Fatal(err)
		}
		if s := fmt.Sprintf("%+v", got); s != want {
			t.Errorf("days %s:\n got %s\nwant %s", when, s, want)
		}
	}
	days("planned on the first day", "[{Day:2026-06-01 00:00:00 +0000 UTC Planned:1 Sent:0 Opened:0 Clicked:0 Converted:0 Revenue:0}]")
	if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET send_at = $1`, d2); err != nil {
		t.Fatal(err)
	}
	days("moved to the next", "[{Day:2026-06-02 00:00:00 +0000 UTC Planned:1 Sent:0 Opened:0 Clicked:0 Converted:0 Revenue:0}]")
}

// TestSweepRecordsStageCounts: each sweep records the customers and the
// total_spent of each stage, and its changes by from and to stage.
func TestSweepRecordsStageCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	created := ts("2026-05-01T00:00:00Z")
	importCustomers(t, st,
		store.CustomerRecord{ID: "a", Email: "a@example.com", Subscribed: true, CreatedAt: created},
		store.CustomerRecord{ID: "b", Email: "b@example.com", Subscribed: true, CreatedAt: created},
		store.CustomerRecord{ID: "c", Email: "c@example.com", Subscribed: true, CreatedAt: created})
	ten, twenty := 10.0, 20.25
	importEvents(t, st, store.EventRecord{ID: "p1", CustomerID: "b", Type: "purchase", OccurredAt: created, Amount: &ten},
		store.EventRecord{ID: "p2", CustomerID: "c", Type: "purchase", OccurredAt: created, Amount: &twenty})
	stages := map[string]string{"a": "new", "b": "active", "c": "active"}
	stageOf := func(c *audience.Customer) (string, error) { return stages[c.ID], nil }
	s1, s2 := ts("2026-06-01T10:00:00Z"), ts("2026-06-02T10:00:00Z")
	for _, sw := range []struct {
		at     time.Time
		change func()
	}{{s1, func() {}}, {s2, func() { stages["a"], stages["c"] = "active", "at_risk" }}} {
		sw.change()
		if _, err := st.SweepStages(ctx, sw.at, stageOf, store.SweepOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	days, err := st.StageDays(ctx, s1, s2.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	want := "[{SweptAt:2026-06-01 10:00:00 +0000 UTC Stage:active Customers:2 TotalSpent:30.25} " +
		"{SweptAt:2026-06-01 10:00:00 +0000 UTC Stage:new Customers:1 TotalSpent:0} " +
		"{SweptAt:2026-06-02 10:00:00 +0000 UTC Stage:active Customers:2 TotalSpent:10} " +
		"{SweptAt:2026-06-02 10:00:00 +0000 UTC Stage:at_risk Customers:1 TotalSpent:20.25}]"
	if got := fmt.Sprintf("%+v", days); got != want {
		t.Errorf("stage days:\n got %s\nwant %s", got, want)
	}
	flows, err := st.StageFlows(ctx, s1, s2.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", flows), "[{From: To:active Customers:2} {From: To:new Customers:1} {From:active To:at_risk Customers:1} {From:new To:active Customers:1}]"; got != want {
		t.Errorf("flows:\n got %s\nwant %s", got, want)
	}
	if flows, err := st.StageFlows(ctx, s2, s2.Add(time.Second)); err != nil || len(flows) != 2 {
		t.Errorf("flows of the second sweep alone = %+v, %v; want 2", flows, err)
	}

	// Again at the same instant, c back to active: the counts are
	// replaced (at_risk has nobody left), the change is added.
	stages["c"] = "active"
	if _, err := st.SweepStages(ctx, s2, stageOf, store.SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	latest, err := st.StageLatest(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", latest), "[{SweptAt:2026-06-02 10:00:00 +0000 UTC Stage:active Customers:3 TotalSpent:30.25}]"; got != want {
		t.Errorf("latest after a repeated sweep:\n got %s\nwant %s", got, want)
	}
	flows, err = st.StageFlows(ctx, s2, s2.Add(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprintf("%+v", flows), "[{From:active To:at_risk Customers:1} {From:at_risk To:active Customers:1} {From:new To:active Customers:1}]"; got != want {
		t.Errorf("flows after a repeated sweep:\n got %s\nwant %s", got, want)
	}
}
