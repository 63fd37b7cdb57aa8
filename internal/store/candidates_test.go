package store_test

import (
	"context"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

func intp(n int) *int { return &n }

func candidates(t *testing.T, st *store.Store, f store.CandidateFilter) map[string]store.Candidate {
	t.Helper()
	out := map[string]store.Candidate{}
	last := ""
	err := st.Candidates(context.Background(), f, func(c *store.Candidate) error {
		if c.Customer.ID <= last {
			t.Errorf("candidate %s after %s: not in id order", c.Customer.ID, last)
		}
		last = c.Customer.ID
		out[c.Customer.ID] = *c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func keys[V any](m map[string]V) []string { return slices.Sorted(maps.Keys(m)) }

func TestCandidatesInactiveBounds(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	day := 24 * time.Hour
	µs := time.Microsecond
	// last_active_at is created_at for customers without events.
	active := map[string]time.Time{
		"d29":       at.Add(-30*day + µs), // 29 days and a bit
		"d30":       at.Add(-30 * day),    // exactly 30 days
		"d59":       at.Add(-60*day + µs), // 59 days and almost a day
		"d60":       at.Add(-60 * day),    // exactly 60 days
		"d00":       at,
		"future":    at.Add(day),
		"d45-event": at.Add(-100 * day), // active 45 days ago through an event
	}
	var recs []store.CustomerRecord
	for id, t := range active {
		recs = append(recs, store.CustomerRecord{ID: id, Email: id + "@example.com", Subscribed: true, CreatedAt: t})
	}
	importCustomers(t, st, recs...)
	importEvents(t, st, store.EventRecord{CustomerID: "d45-event", Type: "visit", OccurredAt: at.Add(-45 * day)})

	for _, tc := range []struct {
		name     string
		min, max *int
		want     []string
	}{
		{"30 to 59", intp(30), intp(59), []string{"d30", "d45-event", "d59"}},
		{"at least 30", intp(30), nil, []string{"d30", "d45-event", "d59", "d60"}},
		{"at most 29", nil, intp(29), []string{"d00", "d29", "future"}},
		{"exactly 0", intp(0), intp(0), []string{"d00"}},
		{"unbounded", nil, nil, []string{"d00", "d29", "d30", "d45-event", "d59", "d60", "future"}},
	} {
		got := candidates(t, st, store.CandidateFilter{Campaign: "c", At: at, MinInactive: tc.min, MaxInactive: tc.max})
		if !reflect.DeepEqual(keys(got), tc.want) {
			t.Errorf("%s: candidates %v, want %v", tc.name, keys(got), tc.want)
		}
		// The SQL bounds agree with the facts the planner computes.
		for id, c := range got {
			d := audience.FactsAt(&c.Customer, at).InactiveDays
			if tc.min != nil && d < *tc.min || tc.max != nil && d > *tc.max {
				t.Errorf("%s: %s has inactive_days %d", tc.name, id, d)
			}
		}
	}
}

func TestCandidatesConsentAndSuppressions(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	importCustomers(t, st,
		store.CustomerRecord{ID: "ok", Email: "ok@example.com", FirstName: "Ok", Timezone: "Asia/Tokyo", Subscribed: true,
			CreatedAt: ts("2026-05-01T00:00:00Z"), Attributes: []byte(`{"plan":"pro","seats":3,"tags":["a"]}`)},
		customer("unsub", "unsub@example.com", "2026-05-01T00:00:00Z"),
		store.CustomerRecord{ID: "never", Email: "never@example.com", Subscribed: false, CreatedAt: ts("2026-05-01T00:00:00Z")},
		customer("supp", "Mixed.Case@Example.COM", "2026-05-01T00:00:00Z"),
	)
	if _, err := st.Unsubscribe(ctx, "unsub", "unsubscribe link", ""); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSuppression(ctx, "mixed.case@EXAMPLE.com", "bounce"); err != nil {
		t.Fatal(err)
	}
	if err := st.AddSuppression(ctx, "nobody@example.com", "complaint"); err != nil {
		t.Fatal(err)
	}
	got := candidates(t, st, store.CandidateFilter{Campaign: "c", At: at})
	want := store.Candidate{Customer: audience.Customer{
		ID: "ok", Email: "ok@example.com", FirstName: "Ok", Timezone: "Asia/Tokyo", Subscribed: true,
		CreatedAt: ts("2026-05-01T00:00:00Z"), LastActiveAt: ts("2026-05-01T00:00:00Z"),
		Attributes: map[string]any{"plan": "pro", "seats": 3.0, "tags": []any{"a"}},
	}}
	if len(got) != 1 || !reflect.DeepEqual(got["ok"], want) {
		t.Errorf("candidates:\n got %+v\nwant only %+v", got, want)
	}

	all := customers(t, st)
	for id, wantSupp := range map[string]bool{"ok": false, "unsub": false, "never": false, "supp": true} {
		if all[id].Suppressed != wantSupp {
			t.Errorf("Customers: %s Suppressed = %t, want %t", id, all[id].Suppressed, wantSupp)
		}
	}
	if all["unsub"].Subscribed || !all["ok"].Subscribed {
		t.Errorf("Customers: Subscribed wrong: %+v", all)
	}
	if _, err := st.Resubscribe(ctx, "ghost", "test"); err == nil {
		t.Error("Resubscribe of an unknown customer succeeded")
	}
}

func TestCandidatesHistory(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	importCustomers(t, st,
		customer("a", "a@example.com", "2026-05-01T00:00:00Z"),
		customer("b", "b@example.com", "2026-05-01T00:00:00Z"),
		customer("c", "c@example.com", "2026-05-01T00:00:00Z"),
	)
	// Deliveries of campaign w to a, each left in a status.
	occ := func(days int) time.Time { return at.Add(time.Duration(-days) * 24 * time.Hour) }
	plan := []store.NewDelivery{
		{Campaign: "w", CustomerID: "a", Occurrence: occ(40)},    // sent
		{Campaign: "w", CustomerID: "a", Occurrence: occ(20)},    // queued
		{Campaign: "w", CustomerID: "a", Occurrence: occ(10)},    // failed: neither counted nor last
		{Campaign: "w", CustomerID: "a", Occurrence: occ(5)},     // skipped: neither counted nor last
		{Campaign: "w", CustomerID: "a", Occurrence: at},         // planned at At: counted, not before At
		{Campaign: "w", CustomerID: "a", Occurrence: occ(-1)},    // planned after At: counted, not before At
		{Campaign: "x", CustomerID: "a", Occurrence: occ(1)},     // another campaign
		{Campaign: "w", CustomerID: "b", Occurrence: occ(2)},     // failed only
		{Campaign: "w", CustomerID: "ghost", Occurrence: occ(3)}, // no such customer
	}
	for i := range plan {
		plan[i].Stage, plan[i].Template, plan[i].Queue = "s", "t", "default"
	}
	refs, err := st.InsertDeliveries(ctx, plan)
	if err != nil || len(refs) != len(plan) {
		t.Fatalf("InsertDeliveries = %d refs, %v", len(refs), err)
	}
	id := deliveryIDs(t, st)
	finish := func(d store.NewDelivery, status string) {
		t.Helper()
		ref := id[key(d)]
		if _, err := st.Claim(ctx, []string{ref}); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Record(ctx, []store.Outcome{{ID: ref, Status: status, Reason: "r"}}); err != nil {
			t.Fatal(err)
		}
	}
	finish(plan[0], store.StatusSent)
	if err := st.MarkQueued(ctx, []string{id[key(plan[1])]}); err != nil {
		t.Fatal(err)
	}
	finish(plan[2], store.StatusFailed)
	finish(plan[3], store.StatusSkipped)
	finish(plan[7], store.StatusFailed)

	got := candidates(t, st, store.CandidateFilter{Campaign: "w", At: at})
	want := map[string]audience.History{
		"a": {Sends: 4, LastOccurrence: tp("2026-05-12T09:00:00Z")}, // occ(20)
		"b": {},
		"c": {},
	}
	for id, w := range want {
		g := got[id].History
		if g.Sends != w.Sends || (g.LastOccurrence == nil) != (w.LastOccurrence == nil) ||
			g.LastOccurrence != nil && !g.LastOccurrence.Equal(*w.LastOccurrence) {
			t.Errorf("history of %s = %+v, want %+v", id, g, w)
		}
	}
	if len(got) != 3 {
		t.Errorf("candidates %v, want a, b, c", keys(got))
	}
}

func key(d store.NewDelivery) string {
	return d.Campaign + "/" + d.CustomerID + "/" + d.Occurrence.UTC().Format(time.RFC3339Nano)
}

// deliveryIDs maps campaign/customer/occurrence to delivery id.
func deliveryIDs(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := st.Deliveries(context.Background(), func(r *store.DeliveryRow) error {
		out[key(store.NewDelivery{Campaign: r.Campaign, CustomerID: r.CustomerID, Occurrence: r.Occurrence})] = r.ID
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
