package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestAttribution: last touch across campaigns, the window's boundaries
// (exactly at the end: in; a second later: out), a held-out delivery, and
// each purchase read once.
func TestAttribution(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	t0 := ts("2026-06-01T09:00:00Z")
	winback := store.NewDelivery{Campaign: "winback", CustomerID: "c1", Occurrence: t0, Stage: "lapsed", Template: "winback", Queue: "default"}
	cart := store.NewDelivery{Campaign: "cart", CustomerID: "c1", Occurrence: t0.Add(24 * time.Hour), Stage: "active", Template: "cart", Queue: "default"}
	held := store.NewDelivery{Campaign: "winback", CustomerID: "c2", Occurrence: t0, Stage: "lapsed", Template: "winback", Queue: "default",
		Variant: "holdout", Status: store.StatusHeldOut}
	never := store.NewDelivery{Campaign: "winback", CustomerID: "c3", Occurrence: t0, Stage: "lapsed", Template: "winback", Queue: "default"}
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{winback, cart, held, never}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{} // campaign/customer → id
	if err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		ids[d.Campaign+"/"+d.CustomerID] = d.ID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// winback reached c1 at t0, cart at t0+24h; c3's winback was never sent.
	for key, at := range map[string]time.Time{"winback/c1": t0, "cart/c1": t0.Add(24 * time.Hour)} {
		if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = $2 WHERE id = $1`, ids[key], at); err != nil {
			t.Fatal(err)
		}
	}
	purchase := func(id, customer string, at time.Time, amount float64) store.EventRecord {
		return store.EventRecord{ID: id, CustomerID: customer, Type: "purchase", OccurredAt: at, Amount: &amount}
	}
	importEvents(t, st,
		purchase("p1", "c1", t0.Add(time.Hour), 10),                 // winback only: sent, cart not yet
		purchase("p2", "c1", t0.Add(30*time.Hour), 20),              // both: cart is the last touch
		purchase("p3", "c1", t0.Add(72*time.Hour), 30),              // cart's 48h window ends exactly here: in
		purchase("p4", "c1", t0.Add(72*time.Hour+time.Second), 40),  // a second later: back to winback's 120h
		purchase("p5", "c1", t0.Add(120*time.Hour+time.Second), 50), // past both windows: nobody's
		purchase("p6", "c2", t0.Add(120*time.Hour), 60),             // the held-out entry, at its window's end
		purchase("p7", "c3", t0.Add(time.Hour), 70),                 // c3 got nothing
		store.EventRecord{ID: "v1", CustomerID: "c1", Type: "page_view", OccurredAt: t0.Add(2 * time.Hour)},
	)
	w := store.Windows{By: map[string]time.Duration{"cart": 48 * time.Hour, "winback": 120 * time.Hour}, Default: 120 * time.Hour}
	res, err := st.Attribute(ctx, w)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 8 || res.Conversions != 5 || fmt.Sprint(res.ByCampaign) != "map[cart:{2 50} winback:{3 110}]" {
		t.Errorf("Attribute = %+v, want 8 events read, 5 conversions: cart 2 (50.00), winback 3 (110.00)", res)
	}
	got := conversions(t, st, ids)
	want := "p1→winback/c1 10.00, p2→cart/c1 20.00, p3→cart/c1 30.00, p4→winback/c1 40.00, p6→winback/c2 60.00"
	if got != want {
		t.Errorf("conversions:\n got %s\nwant %s", got, want)
	}

	// A second call reads nothing again; a new purchase alone is read.
	if res, err := st.Attribute(ctx, w); err != nil || res.Events != 0 || res.ByCampaign != nil {
		t.Errorf("second Attribute = %+v, %v", res, err)
	}
	importEvents(t, st, purchase("p8", "c1", t0.Add(25*time.Hour), 5))
	if res, err := st.Attribute(ctx, w); err != nil || res.Events != 1 || res.Conversions != 1 {
		t.Errorf("third Attribute = %+v, %v", res, err)
	}

	rows, err := st.Report(ctx, store.ReportFilter{Campaign: "winback"})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("%s/%s/%d/%s: %d delivered, %d converted, %.2f", r.Campaign, r.Variant, r.Step, r.Status, r.Deliveries, r.Converted, r.Revenue))
	}
	wantRows := fmt.Sprint([]string{"winback//1/planned: 1 delivered, 0 converted, 0.00", "winback//1/sent: 1 delivered, 1 converted, 50.00",
		"winback/holdout/1/held_out: 1 delivered, 1 converted, 60.00"})
	if fmt.Sprint(lines) != wantRows {
		t.Errorf("report rows:\n got %v\nwant %s", lines, wantRows)
	}
}

// conversions lists the recorded conversions as "event→campaign/customer
// amount", by event id.
func conversions(t *testing.T, st *store.Store, ids map[string]string) string {
	t.Helper()
	names := map[string]string{}
	for k, id := range ids {
		names[id] = k
	}
	rows, err := st.Pool().Query(context.Background(),
		`SELECT e.dedup_key, c.delivery_id::text, c.amount::text FROM conversions c JOIN events e ON e.seq = c.event_seq ORDER BY e.dedup_key`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := ""
	for rows.Next() {
		var ev, id, amount string
		if err := rows.Scan(&ev, &id, &amount); err != nil {
			t.Fatal(err)
		}
		if out != "" {
			out += ", "
		}
		out += ev + "→" + names[id] + " " + amount
	}
	return out
}

// TestAttributionDoesNotWaitForImports: while an import is under way,
// attribution returns at once, busy, and reads nothing; once it commits,
// the next call attributes its purchases.
func TestAttributionDoesNotWaitForImports(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	t0 := ts("2026-06-01T09:00:00Z")
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: "winback", CustomerID: "c1", Occurrence: t0, Stage: "lapsed",
		Template: "winback", Queue: "default", Variant: "holdout", Status: store.StatusHeldOut}}); err != nil {
		t.Fatal(err)
	}
	w := store.Windows{Default: 120 * time.Hour}
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	amount := 10.0
	if _, err := im.Events(ctx, []store.EventRecord{{ID: "p1", CustomerID: "c1", Type: "purchase", OccurredAt: t0.Add(time.Hour), Amount: &amount}}); err != nil {
		t.Fatal(err)
	}
	// A deadline, so that a blocked call fails the test instead of hanging it.
	short, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := st.Attribute(short, w)
	if err != nil || !res.Busy || res.Events != 0 {
		t.Fatalf("Attribute during an import = %+v, %v; want busy, nothing read", res, err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if res, err := st.Attribute(ctx, w); err != nil || res.Busy || res.Events != 1 || res.Conversions != 1 {
		t.Errorf("Attribute after the import = %+v, %v; want 1 event, 1 conversion", res, err)
	}
}

// TestReportCountsAnOptOutOnce: an opt-out through a campaign's link
// counts for the last email of that campaign before it, not for every
// earlier one; the rollups agree.
func TestReportCountsAnOptOutOnce(t *testing.T) {
	ctx := context.Background()
	now := ts("2026-06-01T09:00:00Z")
	st := clockStore(t, &now)
	importCustomers(t, st, store.CustomerRecord{ID: "c1", Email: "c1@example.com", Subscribed: true, CreatedAt: ts("2026-05-01T00:00:00Z")})
	var ds []store.NewDelivery
	for i := range 3 {
		ds = append(ds, newDelivery("winback", "c1", ts("2026-06-01T09:00:00Z").Add(time.Duration(i)*7*24*time.Hour)))
	}
	refs, err := st.InsertDeliveries(ctx, ds)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range refs {
		if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = $2 WHERE id = $1`, r.ID, ds[i].Occurrence); err != nil {
			t.Fatal(err)
		}
	}
	now = ts("2026-06-16T09:00:00Z") // after the third email
	if _, err := st.Unsubscribe(ctx, "c1", "unsubscribe link", "winback"); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RefreshRollups(ctx, now); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() ([]store.ReportRow, error){
		"report":  func() ([]store.ReportRow, error) { return st.Report(ctx, store.ReportFilter{Campaign: "winback"}) },
		"rollups": func() ([]store.ReportRow, error) { return st.CampaignTotals(ctx, "winback") },
	} {
		rows, err := read()
		if err != nil {
			t.Fatal(err)
		}
		unsub := 0
		for _, r := range rows {
			unsub += r.Unsubscribed
		}
		if unsub != 1 {
			t.Errorf("%s: one opt-out counted %d times", name, unsub)
		}
	}
}

// TestEntriesConverted: a purchase attributed to a journey's second step
// counts its entry as converted on the first step's row, in the report
// and in the rollups.
func TestEntriesConverted(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	t0 := ts("2026-06-01T09:00:00Z")
	step := func(n int, at time.Time) store.NewDelivery {
		d := newDelivery("welcome", "c1", t0)
		d.Step, d.SendAt = n, at
		return d
	}
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{step(1, t0), step(2, t0.Add(48*time.Hour))})
	if err != nil || len(refs) != 2 {
		t.Fatal(refs, err)
	}
	for _, r := range refs {
		if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = send_at WHERE id = $1`, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	// A refresh before the purchase: the next one must recount the first
	// step's day although the purchase went to the second step's.
	if _, err := st.RefreshRollups(ctx, t0.Add(49*time.Hour)); err != nil {
		t.Fatal(err)
	}
	amount := 30.0
	importEvents(t, st, store.EventRecord{ID: "p1", CustomerID: "c1", Type: "purchase", OccurredAt: t0.Add(50 * time.Hour), Amount: &amount})
	if _, err := st.Attribute(ctx, store.Windows{Default: 120 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RefreshRollups(ctx, t0.Add(72*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for name, read := range map[string]func() ([]store.ReportRow, error){
		"report":  func() ([]store.ReportRow, error) { return st.Report(ctx, store.ReportFilter{}) },
		"rollups": func() ([]store.ReportRow, error) { return st.CampaignTotals(ctx, "") },
	} {
		rows, err := read()
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, r := range rows {
			got = append(got, fmt.Sprintf("step %d: converted %d, entries converted %d", r.Step, r.Converted, r.EntriesConverted))
		}
		if want := "[step 1: converted 0, entries converted 1 step 2: converted 1, entries converted 0]"; fmt.Sprint(got) != want {
			t.Errorf("%s: %v, want %s", name, got, want)
		}
	}
}
