package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"nurture/internal/audience"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// importBatches writes each batch with its own Events call, all in one
// import, and returns what each call inserted.
func importBatches(t testing.TB, st *store.Store, batches ...[]store.EventRecord) []int {
	t.Helper()
	ctx := context.Background()
	im, err := st.BeginImport(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer im.Rollback(ctx)
	var ns []int
	for i, b := range batches {
		n, err := im.Events(ctx, b)
		if err != nil {
			t.Fatalf("batch %d: %v", i, err)
		}
		ns = append(ns, n)
	}
	if err := im.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	return ns
}

// eventAmounts returns the stored amount of each event with an id, as
// text, "" for none.
func eventAmounts(t testing.TB, st *store.Store) map[string]string {
	t.Helper()
	rows, err := st.Pool().Query(context.Background(),
		`SELECT dedup_key, coalesce(amount::text, '') FROM events WHERE dedup_key NOT LIKE 'sha256:%'`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, a string
		if err := rows.Scan(&k, &a); err != nil {
			t.Fatal(err)
		}
		out[k] = a
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func purchase(id, customer, at string, a float64) store.EventRecord {
	return store.EventRecord{ID: id, CustomerID: customer, Type: "purchase", OccurredAt: ts(at), Amount: amount(a)}
}

func visit(id, customer, at string) store.EventRecord {
	return store.EventRecord{ID: id, CustomerID: customer, Type: "visit", OccurredAt: ts(at)}
}

// TestImportEventsRepeatedIDs: an id repeated within a batch, or one
// imported before (by an earlier import, or an earlier batch of the same
// one), inserts one event and counts once in the facts, whatever the
// repeats carry; the first record of an id wins.
func TestImportEventsRepeatedIDs(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	importCustomers(t, st, customer("c1", "a@example.com", "2026-01-01T00:00:00Z"),
		customer("c2", "b@example.com", "2026-01-01T00:00:00Z"))

	// Within one batch.
	if n := importEvents(t, st,
		purchase("p1", "c1", "2026-02-01T00:00:00Z", 10),
		purchase("p1", "c1", "2026-02-05T00:00:00Z", 99), // same id: ignored
		purchase("p2", "c1", "2026-02-02T00:00:00Z", 5),
		visit("v1", "c2", "2026-02-03T00:00:00Z"),
		visit("v1", "c2", "2026-03-03T00:00:00Z"),
	); n != 3 {
		t.Errorf("first import inserted %d events, want 3", n)
	}
	want := map[string]audience.Customer{
		"c1": {ID: "c1", Email: "a@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
			OrdersCount: 2, TotalSpent: 15, FirstPurchaseAt: tp("2026-02-01T00:00:00Z"), LastPurchaseAt: tp("2026-02-02T00:00:00Z"),
			LastActiveAt: ts("2026-02-02T00:00:00Z")},
		"c2": {ID: "c2", Email: "b@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
			LastActiveAt: ts("2026-02-03T00:00:00Z")},
	}
	assertCustomers(t, st, want)

	// Ids already in the table, mixed with new ones, in several batches of
	// one import: the batch that meets them first, and the ones after it.
	ns := importBatches(t, st,
		[]store.EventRecord{purchase("p3", "c2", "2026-04-01T00:00:00Z", 7)},
		[]store.EventRecord{
			purchase("p1", "c1", "2026-05-01T00:00:00Z", 1000), // imported before
			purchase("p4", "c1", "2026-04-10T00:00:00Z", 1.25),
			purchase("p4", "c1", "2026-04-11T00:00:00Z", 1.25),
			visit("v1", "c2", "2026-06-01T00:00:00Z"), // imported before
		},
		[]store.EventRecord{
			purchase("p3", "c2", "2026-06-01T00:00:00Z", 7), // an earlier batch of this import
			purchase("p2", "c1", "2026-06-01T00:00:00Z", 5), // an earlier import
			visit("v2", "c2", "2026-04-20T00:00:00Z"),
		},
		[]store.EventRecord{visit("v2", "c2", "2026-07-01T00:00:00Z"), visit("v3", "c1", "2026-04-15T00:00:00Z")},
	)
	if fmt.Sprint(ns) != "[1 1 1 1]" {
		t.Errorf("batches inserted %v, want [1 1 1 1]", ns)
	}
	want["c1"] = audience.Customer{ID: "c1", Email: "a@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
		OrdersCount: 3, TotalSpent: 16.25, FirstPurchaseAt: tp("2026-02-01T00:00:00Z"), LastPurchaseAt: tp("2026-04-10T00:00:00Z"),
		LastActiveAt: ts("2026-04-15T00:00:00Z")}
	want["c2"] = audience.Customer{ID: "c2", Email: "b@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
		OrdersCount: 1, TotalSpent: 7, FirstPurchaseAt: tp("2026-04-01T00:00:00Z"), LastPurchaseAt: tp("2026-04-01T00:00:00Z"),
		LastActiveAt: ts("2026-04-20T00:00:00Z")}
	assertCustomers(t, st, want)
	if got := counts(t, st).Events; got != 7 {
		t.Errorf("%d events stored, want 7", got)
	}

	// A whole batch imported before inserts nothing and changes nothing.
	if n := importEvents(t, st, purchase("p1", "c1", "2026-02-01T00:00:00Z", 10), visit("v3", "c1", "2026-04-15T00:00:00Z")); n != 0 {
		t.Errorf("re-import inserted %d events", n)
	}
	assertCustomers(t, st, want)
}

func counts(t testing.TB, st *store.Store) store.Counts {
	t.Helper()
	c, err := st.Counts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestImportEventsConcurrent: imports of the same events at the same time
// insert each event once and count it once in the facts.
func TestImportEventsConcurrent(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	importCustomers(t, st, customer("c1", "a@example.com", "2026-01-01T00:00:00Z"),
		customer("c2", "b@example.com", "2026-01-01T00:00:00Z"))
	var first, second []store.EventRecord
	for i := range 40 {
		c := fmt.Sprintf("c%d", 1+i%2)
		first = append(first, purchase(fmt.Sprintf("p%d", i), c, fmt.Sprintf("2026-02-%02dT00:00:00Z", 1+i%28), 1.5))
		second = append(second, visit(fmt.Sprintf("v%d", i), c, fmt.Sprintf("2026-03-%02dT00:00:00Z", 1+i%28)))
	}
	ctx := context.Background()
	const imports = 4
	inserted := make([]int, imports)
	errs := make([]error, imports)
	var wg sync.WaitGroup
	for g := range imports {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[g] = func() error {
				im, err := st.BeginImport(ctx)
				if err != nil {
					return err
				}
				defer im.Rollback(ctx)
				// Half of the imports write the batches the other way round.
				batches := [][]store.EventRecord{first, second}
				if g%2 == 1 {
					batches = [][]store.EventRecord{second, first}
				}
				for _, b := range batches {
					n, err := im.Events(ctx, b)
					if err != nil {
						return err
					}
					inserted[g] += n
				}
				return im.Commit(ctx)
			}()
		}()
	}
	wg.Wait()
	total := 0
	for g := range imports {
		if errs[g] != nil {
			t.Fatalf("import %d: %v", g, errs[g])
		}
		total += inserted[g]
	}
	if total != 80 {
		t.Errorf("imports inserted %v events, %d in all, want 80", inserted, total)
	}
	if got := counts(t, st).Events; got != 80 {
		t.Errorf("%d events stored, want 80", got)
	}
	want := map[string]audience.Customer{
		"c1": {ID: "c1", Email: "a@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
			OrdersCount: 20, TotalSpent: 30, FirstPurchaseAt: tp("2026-02-01T00:00:00Z"), LastPurchaseAt: tp("2026-02-27T00:00:00Z"),
			LastActiveAt: ts("2026-03-27T00:00:00Z")},
		"c2": {ID: "c2", Email: "b@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
			OrdersCount: 20, TotalSpent: 30, FirstPurchaseAt: tp("2026-02-02T00:00:00Z"), LastPurchaseAt: tp("2026-02-28T00:00:00Z"),
			LastActiveAt: ts("2026-03-28T00:00:00Z")},
	}
	assertCustomers(t, st, want)
}

// TestImportEventsUnknownAndLate: events of a customer not imported yet are
// kept and count when the customer arrives; a late event (older than the
// customer's last) leaves last_active_at as it is, but a late purchase
// still counts as an order.
func TestImportEventsUnknownAndLate(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	if n := importEvents(t, st, purchase("p1", "c9", "2026-03-01T00:00:00Z", 20), visit("v1", "c9", "2026-03-05T00:00:00Z")); n != 2 {
		t.Fatalf("inserted %d events of an unknown customer, want 2", n)
	}
	if got := customers(t, st); len(got) != 0 {
		t.Fatalf("events created customers: %v", got)
	}
	importCustomers(t, st, customer("c9", "z@example.com", "2026-01-01T00:00:00Z"))
	want := map[string]audience.Customer{
		"c9": {ID: "c9", Email: "z@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
			OrdersCount: 1, TotalSpent: 20, FirstPurchaseAt: tp("2026-03-01T00:00:00Z"), LastPurchaseAt: tp("2026-03-01T00:00:00Z"),
			LastActiveAt: ts("2026-03-05T00:00:00Z")},
	}
	assertCustomers(t, st, want)

	// Late: a visit and a purchase before the last event.
	importEvents(t, st, visit("v0", "c9", "2026-02-01T00:00:00Z"), purchase("p0", "c9", "2026-02-10T00:00:00Z", 2.5))
	c := want["c9"]
	c.OrdersCount, c.TotalSpent, c.FirstPurchaseAt = 2, 22.5, tp("2026-02-10T00:00:00Z")
	want["c9"] = c
	assertCustomers(t, st, want)
}

// TestImportEventsAmounts: amounts are stored with two decimals, rounded
// half away from zero from their shortest decimal form, the same whichever
// way the batch is written, and total_spent adds exactly what is stored.
func TestImportEventsAmounts(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	importCustomers(t, st, customer("c1", "a@example.com", "2026-01-01T00:00:00Z"),
		customer("c2", "b@example.com", "2026-01-01T00:00:00Z"))
	amounts := []float64{1.005, 0.125, -2.345, 0.1 + 0.2, 2.675, 19.99, 1e13 + 0.5, 0.004, -0.005}
	wantText := []string{"1.01", "0.13", "-2.35", "0.30", "2.68", "19.99", "10000000000000.50", "0.00", "-0.01"}
	var fast, slow []store.EventRecord
	slow = append(slow, visit("seen", "c2", "2026-01-02T00:00:00Z"))
	for i, a := range amounts {
		fast = append(fast, purchase(fmt.Sprintf("f%d", i), "c1", "2026-02-01T00:00:00Z", a))
		slow = append(slow, purchase(fmt.Sprintf("s%d", i), "c2", "2026-02-01T00:00:00Z", a))
	}
	importEvents(t, st, slow[0])
	importEvents(t, st, fast...)
	importEvents(t, st, slow...) // meets "seen": written through the temporary table
	got := eventAmounts(t, st)
	for i := range amounts {
		f, s := got[fmt.Sprintf("f%d", i)], got[fmt.Sprintf("s%d", i)]
		if f != wantText[i] || s != wantText[i] {
			t.Errorf("amount %v stored as %q and %q, want %q", amounts[i], f, s, wantText[i])
		}
	}
	var bad int
	err := st.Pool().QueryRow(context.Background(), `
		SELECT count(*) FROM customers c
		WHERE c.total_spent <> (SELECT coalesce(sum(amount), 0) FROM events e WHERE e.customer_id = c.id AND e.type = 'purchase')`).Scan(&bad)
	if err != nil {
		t.Fatal(err)
	}
	if bad > 0 {
		t.Errorf("%d customers' total_spent is not the sum of their stored amounts", bad)
	}
}

// TestImportEventsManyBatches: an import of more batches than it takes
// savepoints for still skips events imported before.
func TestImportEventsManyBatches(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	importCustomers(t, st, customer("c1", "a@example.com", "2026-01-01T00:00:00Z"))
	var batches [][]store.EventRecord
	for i := range 70 {
		batches = append(batches, []store.EventRecord{visit(fmt.Sprintf("v%d", i), "c1", "2026-02-01T00:00:00Z")})
	}
	batches = append(batches, []store.EventRecord{
		visit("v3", "c1", "2026-05-01T00:00:00Z"),
		purchase("p1", "c1", "2026-03-01T00:00:00Z", 4),
		visit("v69", "c1", "2026-05-01T00:00:00Z"),
	})
	ns := importBatches(t, st, batches...)
	total := 0
	for _, n := range ns {
		total += n
	}
	if total != 71 || ns[len(ns)-1] != 1 {
		t.Errorf("inserted %d events, %d in the last batch; want 71, 1", total, ns[len(ns)-1])
	}
	assertCustomers(t, st, map[string]audience.Customer{
		"c1": {ID: "c1", Email: "a@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z"),
			OrdersCount: 1, TotalSpent: 4, FirstPurchaseAt: tp("2026-03-01T00:00:00Z"), LastPurchaseAt: tp("2026-03-01T00:00:00Z"),
			LastActiveAt: ts("2026-03-01T00:00:00Z")},
	})
}
