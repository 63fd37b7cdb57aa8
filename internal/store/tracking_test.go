package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestRecordHits: human and machine-made hits (a scanner, within 2 s of
// the send, before the row says sent) are kept apart, counted with their
// first and last times per delivery and per link, in one batch holding
// several hits of one delivery, and across batches; a hit of a delivery
// that does not exist is reported and not recorded. The report counts
// deliveries opened (a click counts) and clicked by humans.
func TestRecordHits(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	t0 := ts("2026-06-01T09:00:00Z")
	nd := func(customer string) store.NewDelivery {
		return store.NewDelivery{Campaign: "winback", CustomerID: customer, Occurrence: t0, Stage: "lapsed", Template: "winback", Queue: "default"}
	}
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{nd("c1"), nd("c2"), nd("c3"), nd("c4")}); err != nil {
		t.Fatal(err)
	}
	ids := map[string]uuid.UUID{}
	if err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		ids[d.CustomerID] = uuid.MustParse(d.ID)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	// c1, c2 and c3 were sent at t0; c4 is still planned.
	for _, c := range []string{"c1", "c2", "c3"} {
		if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET status = 'sent', sent_at = $2 WHERE id = $1`, ids[c], t0); err != nil {
			t.Fatal(err)
		}
	}
	shop, help := "https://shop.example.com/new", "https://shop.example.com/help"
	open := func(c string, after time.Duration, scanner bool) store.Hit {
		return store.Hit{Delivery: ids[c], At: t0.Add(after), Scanner: scanner}
	}
	click := func(c, url string, after time.Duration, scanner bool) store.Hit {
		return store.Hit{Delivery: ids[c], Click: true, URL: url, At: t0.Add(after), Scanner: scanner}
	}
	counts, err := st.RecordHits(ctx, []store.Hit{
		open("c1", time.Second, false),                  // within 2 s: machine
		click("c1", shop, 1999*time.Millisecond, false), // within 2 s: machine
		open("c1", time.Minute, false),
		open("c1", 2*time.Minute, true), // a scanner, late: machine
		click("c1", shop, 3*time.Minute, false),
		click("c1", help, 4*time.Minute, false),
		click("c2", shop, 2*time.Second, false), // exactly 2 s: human, and no open: the click counts as one in the report
		open("c4", time.Hour, false),            // not sent yet: machine
		{Delivery: uuid.MustParse("00000000-0000-4000-8000-000000000001"), At: t0},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []store.HitCount{
		{Campaign: "", Machine: true, N: 1}, // no row to say when it was sent
		{Campaign: "winback", Click: true, N: 3},
		{Campaign: "winback", Click: true, Machine: true, N: 1},
		{Campaign: "winback", N: 1},
		{Campaign: "winback", Machine: true, N: 3},
	}
	if fmt.Sprint(counts) != fmt.Sprint(want) {
		t.Errorf("counts:\n got %+v\nwant %+v", counts, want)
	}
	// A later batch adds to the same rows.
	if _, err := st.RecordHits(ctx, []store.Hit{open("c1", 30*time.Second, false), click("c1", shop, 10*time.Minute, true)}); err != nil {
		t.Fatal(err)
	}

	tr, err := st.DeliveryTracking(ctx, ids["c1"])
	if err != nil {
		t.Fatal(err)
	}
	got := fmt.Sprintf("opens %d %s..%s clicks %d %s..%s machine %d/%d last %s", tr.Opens, tr.FirstOpenedAt.UTC().Format(time.TimeOnly),
		tr.LastOpenedAt.UTC().Format(time.TimeOnly), tr.Clicks, tr.FirstClickedAt.UTC().Format(time.TimeOnly), tr.LastClickedAt.UTC().Format(time.TimeOnly),
		tr.MachineOpens, tr.MachineClicks, tr.LastMachineAt.UTC().Format(time.TimeOnly))
	if w := "opens 2 09:00:30..09:01:00 clicks 2 09:03:00..09:04:00 machine 2/2 last 09:10:00"; got != w {
		t.Errorf("c1:\n got %s\nwant %s", got, w)
	}
	var links []string
	for _, l := range tr.Links {
		links = append(links, fmt.Sprintf("%s %d+%d", l.URL, l.Clicks, l.MachineClicks))
	}
	if g, w := fmt.Sprint(links), "[https://shop.example.com/help 1+0 https://shop.example.com/new 1+2]"; g != w {
		t.Errorf("c1 links: got %s, want %s", g, w)
	}
	if tr, err := st.DeliveryTracking(ctx, ids["c4"]); err != nil || tr.Opens != 0 || tr.MachineOpens != 1 || tr.FirstOpenedAt != nil {
		t.Errorf("c4: %+v, %v", tr, err)
	}
	if tr, err := st.DeliveryTracking(ctx, ids["c3"]); err != nil || tr.Opens != 0 || tr.Links != nil || tr.LastMachineAt != nil {
		t.Errorf("c3: %+v, %v", tr, err)
	}

	rows, err := st.Report(ctx, store.ReportFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, r := range rows {
		lines = append(lines, fmt.Sprintf("%s/%s: %d, opened %d, clicked %d", r.Campaign, r.Status, r.Deliveries, r.Opened, r.Clicked))
	}
	if g, w := fmt.Sprint(lines), "[winback/planned: 1, opened 0, clicked 0 winback/sent: 3, opened 2, clicked 2]"; g != w {
		t.Errorf("report:\n got %s\nwant %s", g, w)
	}
}
