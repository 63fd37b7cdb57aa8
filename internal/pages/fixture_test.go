package pages_test

import (
	"context"
	"html"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/store"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		panic(err)
	}
	return t
}

// campaigns is the configuration of the fixture: winback, with a holdout
// and its own queue, and welcome, configured but never sent.
func campaigns() *campaign.Set {
	return &campaign.Set{
		Lifecycle: campaign.Lifecycle{Stages: []campaign.Stage{{Name: "new"}, {Name: "active"}, {Name: "at_risk"}}},
		Campaigns: []campaign.Campaign{
			{Name: "welcome", Description: "Say hello"},
			{Name: "winback", Description: "Win back customers drifting away", Queue: "retention", HoldoutBasisPoints: 1000},
		},
	}
}

// seed writes the fixture, whose figures the tests compute by hand:
//
// winback, on 2026-06-01: c1 and c2 sent (variant a), c3 skipped
// (unsubscribed), c4 held out; on 2026-06-02: c5 sent, c6 failed.
// c1 opens and clicks, c5 opens; c6's address bounces (hard), c2
// complains (which unsubscribes them through winback).
// Purchases: c1 40 (winback's), c4 15 (the holdout's), c5 60 (winback's).
//
// Stage sweeps: 2026-06-01 10:00 c1 c2 new, c3 c4 active, c5 c6 at_risk;
// 22:00 c1 active; 2026-06-02 10:00 c2 and c5 active.
func seed(t testing.TB, st *store.Store) {
	t.Helper()
	ctx := context.Background()
	d1, d2 := ts("2026-06-01T09:00:00Z"), ts("2026-06-02T09:00:00Z")
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	var customers []store.CustomerRecord
	for _, id := range []string{"c1", "c2", "c3", "c4", "c5", "c6"} {
		customers = append(customers, store.CustomerRecord{ID: id, Email: id + "@example.com", Subscribed: true, CreatedAt: d1.AddDate(0, -1, 0)})
	}
	if _, err := im.Customers(ctx, customers); err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	nd := func(customer string, at time.Time, variant, status, reason string) store.NewDelivery {
		return store.NewDelivery{Campaign: "winback", CustomerID: customer, Occurrence: at, Stage: "at_risk", Template: "winback",
			Queue: "retention", Variant: variant, Status: status, Reason: reason}
	}
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{
		nd("c1", d1, "a", "", ""), nd("c2", d1, "a", "", ""), nd("c3", d1, "a", store.StatusSkipped, "unsubscribed"),
		nd("c4", d1, "holdout", store.StatusHeldOut, ""), nd("c5", d2, "a", "", ""), nd("c6", d2, "a", "", ""),
	})
	if err != nil || len(refs) != 4 { // the planned ones: c1, c2, c5, c6
		t.Fatalf("InsertDeliveries = %d refs, %v", len(refs), err)
	}
	// The worker's way: claim, then record what the server said.
	ids := []string{refs[0].ID, refs[1].ID, refs[2].ID, refs[3].ID}
	if _, err := st.Claim(ctx, ids); err != nil {
		t.Fatal(err)
	}
	var outs []store.Outcome
	for i, id := range ids[:3] {
		outs = append(outs, store.Outcome{ID: id, Status: store.StatusSent, SentAt: []time.Time{d1, d1, d2}[i]})
	}
	// The Message-IDs nurture gives: <delivery id@sender's domain>.
	msgC2, msgC6 := "<"+ids[1]+"@mail.example.com>", "<"+ids[3]+"@mail.example.com>"
	outs[1].MessageID = msgC2
	outs = append(outs, store.Outcome{ID: ids[3], Status: store.StatusFailed, Reason: "550 no such user", Error: "550 no such user",
		MessageID: msgC6})
	if stale, err := st.Record(ctx, outs); err != nil || len(stale) > 0 {
		t.Fatalf("Record: stale %v, %v", stale, err)
	}
	// c1 opens and clicks, c5 opens; c6's address bounces, c2 complains.
	if _, err := st.RecordHits(ctx, []store.Hit{
		{Delivery: uuid.MustParse(ids[0]), At: d1.Add(30 * time.Minute)},
		{Delivery: uuid.MustParse(ids[0]), Click: true, URL: "https://shop.example.com/", At: d1.Add(40 * time.Minute)},
		{Delivery: uuid.MustParse(ids[2]), At: d2.Add(time.Hour)},
	}); err != nil {
		t.Fatal(err)
	}
	for _, b := range []store.Bounce{
		{Key: "b1", Kind: store.BounceHard, Email: "c6@example.com", MessageID: msgC6, Source: "webhook", OccurredAt: d2.Add(time.Minute)},
		{Key: "b2", Kind: store.BounceComplaint, Email: "c2@example.com", MessageID: msgC2, Source: "webhook", OccurredAt: d1.Add(time.Hour)},
	} {
		if res, err := st.RecordBounce(ctx, b, store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour}); err != nil || res.DeliveryID == "" {
			t.Fatalf("RecordBounce %s = %+v, %v; want it linked to its delivery", b.Key, res, err)
		}
	}
	im, err = st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	buy := func(id, customer string, at time.Time, amount float64) store.EventRecord {
		return store.EventRecord{ID: id, CustomerID: customer, Type: "purchase", OccurredAt: at, Amount: &amount}
	}
	if _, err := im.Events(ctx, []store.EventRecord{buy("p1", "c1", d1.Add(time.Hour), 40), buy("p2", "c4", d1.Add(2*time.Hour), 15),
		buy("p3", "c5", d2.Add(time.Hour), 60)}); err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Attribute(ctx, store.Windows{Default: 120 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RefreshRollups(ctx, ts("2026-06-02T12:00:00Z")); err != nil {
		t.Fatal(err)
	}

	stages := map[string]string{"c1": "new", "c2": "new", "c3": "active", "c4": "active", "c5": "at_risk", "c6": "at_risk"}
	stageOf := func(c *audience.Customer) (string, error) { return stages[c.ID], nil }
	for _, sw := range []struct {
		at     string
		change map[string]string
	}{
		{"2026-06-01T10:00:00Z", nil},
		{"2026-06-01T22:00:00Z", map[string]string{"c1": "active"}},
		{"2026-06-02T10:00:00Z", map[string]string{"c2": "active", "c5": "active"}},
	} {
		for id, s := range sw.change {
			stages[id] = s
		}
		if _, err := st.SweepStages(ctx, ts(sw.at), stageOf, store.SweepOptions{}); err != nil {
			t.Fatal(err)
		}
	}
}

var (
	reTable = regexp.MustCompile(`(?s)<table[^>]*id="([a-z]+)"[^>]*>(.*?)</table>`)
	reRow   = regexp.MustCompile(`(?s)<tr[^>]*>(.*?)</tr>`)
	reCell  = regexp.MustCompile(`(?s)<t[dh][^>]*>(.*?)</t[dh]>`)
	reTag   = regexp.MustCompile(`(?s)<[^>]*>`)
	reSpace = regexp.MustCompile(`\s+`)
)

// tableRows returns the rows of the table with the given id in page, each
// as its cells' text joined by " | ".
func tableRows(t testing.TB, page, id string) []string {
	t.Helper()
	for _, m := range reTable.FindAllStringSubmatch(page, -1) {
		if m[1] != id {
			continue
		}
		var rows []string
		for _, r := range reRow.FindAllStringSubmatch(m[2], -1) {
			var cells []string
			for _, c := range reCell.FindAllStringSubmatch(r[1], -1) {
				text := html.UnescapeString(reTag.ReplaceAllString(c[1], ""))
				cells = append(cells, strings.TrimSpace(reSpace.ReplaceAllString(text, " ")))
			}
			rows = append(rows, strings.TrimSpace(reSpace.ReplaceAllString(strings.Join(cells, " | "), " ")))
		}
		return rows
	}
	t.Fatalf("no table %q in the page:\n%s", id, page)
	return nil
}

// checkRows compares the rows of a table with want, exactly.
func checkRows(t testing.TB, page, id string, want ...string) {
	t.Helper()
	got := tableRows(t, page, id)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("table %s:\n got\n%s\nwant\n%s", id, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

const reportHead = "Campaign | Variant | Step | Planned | Sent | Failed | Skipped | Held out | Unfinished | Opened | Clicked | Unsubscribed | Bounced | Complained | Converted | Conv. rate | Revenue | Holdout conv. | Uplift (95% CI)"

// The fixture's report lines, computed by hand: winback sent 3, 2
// opened, 1 clicked, 1 unsubscribed (the complaint), 1 bounced, 1
// complained, 2 converted (40 + 60), the holdout 1 of 1; uplift 2/3 − 1/1
// with Newcombe's interval.
var (
	welcomeLine = "welcome | | | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0.0% | 0.00 | |"
	winbackLine = "winback | | | 6 | 3 | 1 | 1 | 1 | 0 | 2 | 1 | 1 | 1 | 1 | 2 | 66.7% | 100.00 | 1 (100.0%) | -33.3 pts [-79.2, +50.5]"
	variantA    = "winback | a | | 5 | 3 | 1 | 1 | 0 | 0 | 2 | 1 | 1 | 1 | 1 | 2 | 66.7% | 100.00 | |"
	holdoutLine = "winback | holdout | | 1 | 0 | 0 | 0 | 1 | 0 | 0 | 0 | 0 | 0 | 0 | 0 | 0.0% | 0.00 | 1 (100.0%) |"
)
