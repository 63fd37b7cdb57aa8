package store_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestDueEntriesFilters: Customer reads one customer's due events alone,
// and Settled leaves out those whose history decides them (max reached,
// or an entry within the cooldown), up to the cooldown's last microsecond.
func TestDueEntriesFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	for _, id := range []string{"ann", "bob", "cy"} {
		importCustomers(t, st, store.CustomerRecord{ID: id, Email: id + "@example.com", Subscribed: true,
			CreatedAt: ts("2026-05-01T00:00:00Z")})
	}
	at := ts("2026-06-02T12:00:00Z")
	importEvents(t, st,
		store.EventRecord{ID: "a1", CustomerID: "ann", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T08:00:00Z")},
		store.EventRecord{ID: "b1", CustomerID: "bob", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T09:00:00Z")},
		store.EventRecord{ID: "b2", CustomerID: "bob", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T10:00:00Z")},
		store.EventRecord{ID: "c1", CustomerID: "cy", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T11:00:00Z")})
	// bob's first event was planned at 09:00 (its occurrence).
	d := newDelivery("cart", "bob", ts("2026-06-02T09:00:00Z"))
	d.EventID = "b1"
	if _, err := st.InsertDeliveries(ctx, []store.NewDelivery{d}); err != nil {
		t.Fatal(err)
	}
	due := func(f store.DueFilter) []string {
		t.Helper()
		f.Campaign, f.Event, f.Within = "cart", "cart_abandoned", 24*time.Hour
		var ids []string
		if err := st.DueEntries(ctx, f, func(e *store.DueEntry) error {
			ids = append(ids, e.EventID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		slices.Sort(ids)
		return ids
	}
	for _, c := range []struct {
		name string
		f    store.DueFilter
		want []string
	}{
		{"everyone's", store.DueFilter{Now: at}, []string{"a1", "b2", "c1"}},
		{"bob's", store.DueFilter{Now: at, Customer: "bob"}, []string{"b2"}},
		{"nobody's", store.DueFilter{Now: at, Customer: "dee"}, nil},
		{"no limits", store.DueFilter{Now: at, Settled: &store.Settled{}}, []string{"a1", "b2", "c1"}},
		{"max 1", store.DueFilter{Now: at, Settled: &store.Settled{Max: 1}}, []string{"a1", "c1"}},
		{"max 2", store.DueFilter{Now: at, Settled: &store.Settled{Max: 2}}, []string{"a1", "b2", "c1"}},
		// 09:00 + 6h: the cooldown runs until 15:00 exclusive.
		{"cooldown running", store.DueFilter{Now: ts("2026-06-02T15:00:00Z").Add(-time.Microsecond), Settled: &store.Settled{Cooldown: 6 * time.Hour}},
			[]string{"a1", "c1"}},
		{"cooldown over", store.DueFilter{Now: ts("2026-06-02T15:00:00Z"), Settled: &store.Settled{Cooldown: 6 * time.Hour}},
			[]string{"a1", "b2", "c1"}},
	} {
		if got := due(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}
}
