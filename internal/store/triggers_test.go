package store_test

import (
	"context"
	"slices"
	"strings"
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
		store.EventRecord{ID: "b1", CustomerID: "bob", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T09:00:00.25Z")},
		store.EventRecord{ID: "b2", CustomerID: "bob", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T10:00:00Z")},
		store.EventRecord{ID: "c1", CustomerID: "cy", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T11:00:00Z")})
	// bob's first event was planned at 09:00:00.25 (its occurrence).
	d := newDelivery("cart", "bob", ts("2026-06-02T09:00:00.25Z"))
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
		// 09:00:00.25 + 6h: the cooldown runs until 15:00:00.25 exclusive,
		// to the microsecond, whatever the nanoseconds of now.
		{"cooldown running", store.DueFilter{Now: ts("2026-06-02T15:00:00.25Z").Add(-time.Microsecond), Settled: &store.Settled{Cooldown: 6 * time.Hour}},
			[]string{"a1", "c1"}},
		{"cooldown running, a nanosecond left", store.DueFilter{Now: ts("2026-06-02T15:00:00.25Z").Add(-time.Nanosecond), Settled: &store.Settled{Cooldown: 6 * time.Hour}},
			[]string{"a1", "c1"}},
		{"cooldown over", store.DueFilter{Now: ts("2026-06-02T15:00:00.25Z"), Settled: &store.Settled{Cooldown: 6 * time.Hour}},
			[]string{"a1", "b2", "c1"}},
	} {
		if got := due(c.f); !slices.Equal(got, c.want) {
			t.Errorf("%s: due %v, want %v", c.name, got, c.want)
		}
	}
}

// TestDueStageEntriesCustomer: Customer selects one customer's stage
// entries, simulated ones included.
func TestDueStageEntriesCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	for _, id := range []string{"ann", "bob"} {
		importCustomers(t, st, store.CustomerRecord{ID: id, Email: id + "@example.com", Subscribed: true,
			CreatedAt: ts("2026-05-01T00:00:00Z")})
	}
	at := ts("2026-06-02T12:00:00Z")
	sim := []store.StageEntry{{CustomerID: "ann", Stage: "loyal", ObservedAt: at}, {CustomerID: "bob", Stage: "loyal", ObservedAt: at}}
	for _, c := range []struct {
		customer string
		want     []string
	}{{"", []string{"ann", "bob"}}, {"bob", []string{"bob"}}, {"cy", nil}} {
		var got []string
		err := st.DueEntries(ctx, store.DueFilter{Campaign: "club", Stage: "loyal", Now: at, Within: time.Hour, Simulated: sim, Customer: c.customer},
			func(e *store.DueEntry) error {
				got = append(got, e.Customer.ID)
				return nil
			})
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("customer %q: due %v, %v; want %v", c.customer, got, err, c.want)
		}
	}
}

// TestDueEntriesQueryModes: the due entries are read whatever query mode
// the database URL chooses, the statement description cache disabled
// included (as some connection poolers need).
func TestDueEntriesQueryModes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := testenv.DatabaseURL(t)
	sep := "?"
	if strings.Contains(base, "?") {
		sep = "&"
	}
	for _, mode := range []string{"", "default_query_exec_mode=cache_statement&description_cache_capacity=0",
		"default_query_exec_mode=exec", "default_query_exec_mode=simple_protocol"} {
		url := base
		if mode != "" {
			url += sep + mode
		}
		st, err := store.Open(ctx, url, store.Config{})
		if err != nil {
			t.Fatalf("%s: %v", mode, err)
		}
		err = st.DueEntries(ctx, store.DueFilter{Campaign: "cart", Event: "cart_abandoned", Now: ts("2026-06-02T12:00:00Z"),
			Within: time.Hour, Settled: &store.Settled{Max: 1, Cooldown: time.Hour}}, func(*store.DueEntry) error { return nil })
		if err == nil {
			err = st.ActiveJourneys(ctx, "welcome", []time.Duration{0, time.Hour}, ts("2026-06-02T12:00:00Z"), func(*store.ActiveJourney) error { return nil })
		}
		st.Close()
		if err != nil {
			t.Errorf("mode %q: %v", mode, err)
		}
	}
}
