package store_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

func ts(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func tp(s string) *time.Time {
	t := ts(s)
	return &t
}

func amount(f float64) *float64 { return &f }

func importCustomers(t testing.TB, st *store.Store, recs ...store.CustomerRecord) int {
	t.Helper()
	ctx := context.Background()
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	n, err := im.Customers(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

func importEvents(t testing.TB, st *store.Store, recs ...store.EventRecord) int {
	t.Helper()
	ctx := context.Background()
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	n, err := im.Events(ctx, recs)
	if err != nil {
		t.Fatal(err)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return n
}

// customers returns every customer by id.
func customers(t testing.TB, st *store.Store) map[string]audience.Customer {
	t.Helper()
	out := map[string]audience.Customer{}
	err := st.Customers(context.Background(), func(c *audience.Customer) error {
		out[c.ID] = *c
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func customer(id, email, created string) store.CustomerRecord {
	return store.CustomerRecord{ID: id, Email: email, Subscribed: true, CreatedAt: ts(created)}
}

func TestImportFacts(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)

	// Events arrive before their customers.
	batchA := []store.EventRecord{
		{CustomerID: "c1", Type: "purchase", OccurredAt: ts("2026-03-01T10:00:00Z"), Amount: amount(40)},
		{CustomerID: "c1", Type: "visit", OccurredAt: ts("2026-03-05T08:00:00Z"), Properties: []byte(`{"page": "/", "n": 1}`)},
		{CustomerID: "c2", Type: "purchase", OccurredAt: ts("2026-02-01T00:00:00Z"), Amount: amount(10)},
		// The same event twice in one batch counts once.
		{CustomerID: "c2", Type: "visit", OccurredAt: ts("2026-02-02T00:00:00Z")},
		{CustomerID: "c2", Type: "visit", OccurredAt: ts("2026-02-02T00:00:00Z")},
	}
	if n := importEvents(t, st, batchA...); n != 4 {
		t.Errorf("batch A inserted %d events, want 4", n)
	}
	if got := customers(t, st); len(got) != 0 {
		t.Fatalf("events created customers: %v", got)
	}

	if n := importCustomers(t, st,
		store.CustomerRecord{ID: "c1", Email: "ann@example.com", FirstName: "Ann", Timezone: "Europe/Paris",
			Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"), Attributes: []byte(`{"plan":"pro"}`)},
		customer("c2", "bob@example.com", "2026-04-01T00:00:00Z"),
		customer("c3", "cy@example.com", "2026-01-10T00:00:00Z"),
	); n != 3 {
		t.Errorf("customers imported = %d, want 3", n)
	}

	// Out of order: a purchase before the first one, one after the last.
	batchB := []store.EventRecord{
		{CustomerID: "c1", Type: "purchase", OccurredAt: ts("2026-02-15T00:00:00Z"), Amount: amount(2.5)},
		{ID: "e-1", CustomerID: "c1", Type: "purchase", OccurredAt: ts("2026-03-10T12:30:00Z"), Amount: amount(7.25)},
		{CustomerID: "c3", Type: "signup", OccurredAt: ts("2026-01-05T00:00:00Z")},
		{CustomerID: "c4", Type: "purchase", OccurredAt: ts("2026-05-01T00:00:00Z")}, // no amount
	}
	if n := importEvents(t, st, batchB...); n != 4 {
		t.Errorf("batch B inserted %d events, want 4", n)
	}

	want := map[string]audience.Customer{
		"c1": {ID: "c1", Email: "ann@example.com", FirstName: "Ann", Timezone: "Europe/Paris", Subscribed: true,
			CreatedAt: ts("2026-01-01T00:00:00Z"), Attributes: map[string]any{"plan": "pro"},
			OrdersCount: 3, TotalSpent: 49.75,
			FirstPurchaseAt: tp("2026-02-15T00:00:00Z"), LastPurchaseAt: tp("2026-03-10T12:30:00Z"),
			LastActiveAt: ts("2026-03-10T12:30:00Z")},
		"c2": {ID: "c2", Email: "bob@example.com", Timezone: "UTC", Subscribed: true,
			CreatedAt: ts("2026-04-01T00:00:00Z"), OrdersCount: 1, TotalSpent: 10,
			FirstPurchaseAt: tp("2026-02-01T00:00:00Z"), LastPurchaseAt: tp("2026-02-01T00:00:00Z"),
			LastActiveAt: ts("2026-04-01T00:00:00Z")}, // signed up after its events
		"c3": {ID: "c3", Email: "cy@example.com", Timezone: "UTC", Subscribed: true,
			CreatedAt: ts("2026-01-10T00:00:00Z"), LastActiveAt: ts("2026-01-10T00:00:00Z")},
	}
	assertCustomers(t, st, want)

	// Re-importing the same events changes nothing; neither does an event
	// whose id was seen, whatever its content.
	if n := importEvents(t, st, batchA...); n != 0 {
		t.Errorf("re-import of batch A inserted %d events", n)
	}
	if n := importEvents(t, st, append(batchB,
		store.EventRecord{ID: "e-1", CustomerID: "c1", Type: "purchase", OccurredAt: ts("2026-06-01T00:00:00Z"), Amount: amount(1000)},
		// Same properties, other key order and spacing: the same event.
		store.EventRecord{CustomerID: "c1", Type: "visit", OccurredAt: ts("2026-03-05T08:00:00Z"), Properties: []byte(`{"n":1,"page":"/"}`)},
	)...); n != 0 {
		t.Errorf("re-import of batch B inserted %d events", n)
	}
	assertCustomers(t, st, want)

	// Re-importing a customer keeps its facts; an absent created_at keeps
	// the stored one; identical records change nothing.
	if n := importCustomers(t, st,
		store.CustomerRecord{ID: "c1", Email: "ann@example.com", FirstName: "Annie", Timezone: "Europe/Paris",
			Subscribed: true, Attributes: []byte(`{"plan": "pro"}`)},
		customer("c2", "bob@example.com", "2026-04-01T00:00:00Z"),
		customer("c3", "cy@example.com", "2026-01-10T00:00:00Z"),
	); n != 1 {
		t.Errorf("customers changed = %d, want 1", n)
	}
	c1 := want["c1"]
	c1.FirstName = "Annie"
	want["c1"] = c1
	assertCustomers(t, st, want)

	// The customer of events imported earlier arrives: it gets their facts.
	importCustomers(t, st, customer("c4", "di@example.com", "2026-01-01T00:00:00Z"))
	want["c4"] = audience.Customer{ID: "c4", Email: "di@example.com", Timezone: "UTC", Subscribed: true,
		CreatedAt: ts("2026-01-01T00:00:00Z"), OrdersCount: 1,
		FirstPurchaseAt: tp("2026-05-01T00:00:00Z"), LastPurchaseAt: tp("2026-05-01T00:00:00Z"),
		LastActiveAt: ts("2026-05-01T00:00:00Z")}
	assertCustomers(t, st, want)
}

func TestImportRepeatedIDLastWins(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	n := importCustomers(t, st,
		customer("c1", "first@example.com", "2026-01-01T00:00:00Z"),
		customer("c1", "second@example.com", "2026-01-02T00:00:00Z"),
	)
	if n != 1 {
		t.Errorf("imported %d, want 1", n)
	}
	if got := customers(t, st)["c1"].Email; got != "second@example.com" {
		t.Errorf("email = %q, want the last record's", got)
	}
}

func TestImportRollback(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := im.Customers(ctx, []store.CustomerRecord{customer("c1", "a@example.com", "2026-01-01T00:00:00Z")}); err != nil {
		t.Fatal(err)
	}
	if err := im.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	if got := customers(t, st); len(got) != 0 {
		t.Errorf("customers after rollback: %v", got)
	}
}

// TestImportFactsAnyOrder imports the same customers and events in random
// orders and batches, repeated records included, and checks the facts
// against a computation from the events.
func TestImportFactsAnyOrder(t *testing.T) {
	t.Parallel()
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	base := ts("2026-01-01T00:00:00Z")
	var custs []store.CustomerRecord
	for i := range 20 {
		custs = append(custs, customer(fmt.Sprintf("c%02d", i), fmt.Sprintf("c%d@example.com", i),
			base.Add(time.Duration(rng.IntN(90*24))*time.Hour).Format(time.RFC3339)))
	}
	var events []store.EventRecord
	for i := range 300 {
		e := store.EventRecord{
			CustomerID: fmt.Sprintf("c%02d", rng.IntN(22)), // c20, c21 never arrive
			Type:       []string{"purchase", "visit", "open"}[rng.IntN(3)],
			OccurredAt: base.Add(time.Duration(rng.IntN(120*24*60)) * time.Minute),
		}
		if rng.IntN(2) == 0 {
			e.ID = fmt.Sprintf("e%d", i)
		}
		if e.Type == "purchase" && rng.IntN(4) > 0 {
			e.Amount = amount(float64(rng.IntN(100000)) / 100)
		}
		events = append(events, e)
	}

	want := map[string]audience.Customer{}
	for _, c := range custs {
		w := audience.Customer{ID: c.ID, Email: c.Email, Timezone: "UTC", Subscribed: true, CreatedAt: c.CreatedAt, LastActiveAt: c.CreatedAt}
		for _, e := range events {
			if e.CustomerID != c.ID {
				continue
			}
			if e.OccurredAt.After(w.LastActiveAt) {
				w.LastActiveAt = e.OccurredAt
			}
			if e.Type != "purchase" {
				continue
			}
			w.OrdersCount++
			if e.Amount != nil {
				w.TotalSpent += *e.Amount
			}
			if w.FirstPurchaseAt == nil || e.OccurredAt.Before(*w.FirstPurchaseAt) {
				w.FirstPurchaseAt = &e.OccurredAt
			}
			if w.LastPurchaseAt == nil || e.OccurredAt.After(*w.LastPurchaseAt) {
				w.LastPurchaseAt = &e.OccurredAt
			}
		}
		w.TotalSpent = float64(int64(w.TotalSpent*100+0.5)) / 100
		want[c.ID] = w
	}

	for round := range 3 {
		st := testenv.Store(t)
		// Every record once, some twice, in random batches of either kind.
		type item struct {
			c *store.CustomerRecord
			e *store.EventRecord
		}
		var items []item
		for i := range custs {
			items = append(items, item{c: &custs[i]})
			if rng.IntN(3) == 0 {
				items = append(items, item{c: &custs[i]})
			}
		}
		for i := range events {
			items = append(items, item{e: &events[i]})
			if rng.IntN(3) == 0 {
				items = append(items, item{e: &events[i]})
			}
		}
		rng.Shuffle(len(items), func(i, j int) { items[i], items[j] = items[j], items[i] })
		for len(items) > 0 {
			n := min(len(items), 1+rng.IntN(40))
			batch := items[:n]
			items = items[n:]
			var cs []store.CustomerRecord
			var es []store.EventRecord
			for _, it := range batch {
				if it.c != nil {
					cs = append(cs, *it.c)
				} else {
					es = append(es, *it.e)
				}
			}
			// Customers first or events first, in one import.
			ctx := context.Background()
			im, err := st.BeginImport(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if rng.IntN(2) == 0 {
				_, err = im.Customers(ctx, cs)
				if err == nil {
					_, err = im.Events(ctx, es)
				}
			} else {
				_, err = im.Events(ctx, es)
				if err == nil {
					_, err = im.Customers(ctx, cs)
				}
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := im.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
		t.Run(fmt.Sprint("round", round), func(t *testing.T) { assertCustomers(t, st, want) })
	}
}

func assertCustomers(t *testing.T, st *store.Store, want map[string]audience.Customer) {
	t.Helper()
	got := customers(t, st)
	ids := make([]string, 0, len(want))
	for id := range want {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		w := want[id]
		g, ok := got[id]
		if !ok {
			t.Errorf("customer %s missing", id)
			continue
		}
		if !sameCustomer(g, w) {
			t.Errorf("customer %s:\n got %s\nwant %s", id, showCustomer(g), showCustomer(w))
		}
	}
	if len(got) != len(want) {
		t.Errorf("%d customers, want %d", len(got), len(want))
	}
}

func sameCustomer(a, b audience.Customer) bool {
	sameTime := func(x, y *time.Time) bool {
		if x == nil || y == nil {
			return x == y
		}
		return x.Equal(*y)
	}
	if len(a.Attributes) == 0 && len(b.Attributes) == 0 {
		a.Attributes, b.Attributes = nil, nil
	}
	return a.ID == b.ID && a.Email == b.Email && a.FirstName == b.FirstName && a.Timezone == b.Timezone &&
		a.Subscribed == b.Subscribed && a.Suppressed == b.Suppressed && a.CreatedAt.Equal(b.CreatedAt) &&
		reflect.DeepEqual(a.Attributes, b.Attributes) && a.OrdersCount == b.OrdersCount &&
		a.TotalSpent == b.TotalSpent && sameTime(a.FirstPurchaseAt, b.FirstPurchaseAt) &&
		sameTime(a.LastPurchaseAt, b.LastPurchaseAt) && a.LastActiveAt.Equal(b.LastActiveAt)
}

func showCustomer(c audience.Customer) string {
	show := func(t *time.Time) string {
		if t == nil {
			return "nil"
		}
		return t.UTC().Format(time.RFC3339)
	}
	return fmt.Sprintf("{%s %s %q tz=%s sub=%t supp=%t created=%s attrs=%v orders=%d spent=%v first=%s last=%s active=%s}",
		c.ID, c.Email, c.FirstName, c.Timezone, c.Subscribed, c.Suppressed, c.CreatedAt.UTC().Format(time.RFC3339),
		c.Attributes, c.OrdersCount, c.TotalSpent, show(c.FirstPurchaseAt), show(c.LastPurchaseAt),
		c.LastActiveAt.UTC().Format(time.RFC3339))
}

// TestLateEventsWriteNoCustomer: events that change no fact (older than
// the customer's last event, no purchase) leave the customer's row as it
// is, while a later one moves last_event_at.
func TestLateEventsWriteNoCustomer(t *testing.T) {
	ctx := context.Background()
	st := testenv.Store(t)
	importCustomers(t, st, store.CustomerRecord{ID: "c1", Email: "a@example.com", CreatedAt: ts("2026-01-01T00:00:00Z")})
	importEvents(t, st, store.EventRecord{ID: "e1", CustomerID: "c1", Type: "visit", OccurredAt: ts("2026-06-10T00:00:00Z")})
	version := func() string {
		var v string
		if err := st.Pool().QueryRow(ctx, `SELECT xmin::text FROM customers WHERE id = 'c1'`).Scan(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	before := version()
	if n := importEvents(t, st, store.EventRecord{ID: "e0", CustomerID: "c1", Type: "visit", OccurredAt: ts("2026-06-01T00:00:00Z")}); n != 1 {
		t.Fatalf("late event: %d inserted", n)
	}
	if after := version(); after != before {
		t.Errorf("a late event rewrote the customer (xmin %s → %s)", before, after)
	}
	importEvents(t, st, store.EventRecord{ID: "e2", CustomerID: "c1", Type: "visit", OccurredAt: ts("2026-06-20T00:00:00Z")})
	c, err := st.Customer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	if version() == before || !c.LastActiveAt.Equal(ts("2026-06-20T00:00:00Z")) {
		t.Errorf("a later event: last active %v", c.LastActiveAt)
	}
}
