package importer_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"nurture/internal/importer"
	"nurture/internal/testenv"
)

// TestGroupConcurrentBatches: batches written at once by many callers,
// some repeating events of others, each get their own exact counts, and
// the facts move by every event once.
func TestGroupConcurrentBatches(t *testing.T) {
	st := testenv.Store(t)
	ctx := context.Background()
	g := importer.NewGroup(st)
	now := func() time.Time { return time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC) }
	opts := importer.BatchOptions{Now: now}

	res, err := g.CustomerBatch(ctx, [][]byte{
		[]byte(`{"id":"c1","email":"ann@example.com","created_at":"2026-01-01T00:00:00Z"}`),
		[]byte(`{"id":"c2","email":"bo@example.com","created_at":"2026-01-01T00:00:00Z"}`),
	}, opts)
	if err != nil || res.Accepted != 2 {
		t.Fatalf("customers: %+v %v", res, err)
	}
	// Caller k posts purchases k*10 .. k*10+19 of one yuan each: every
	// purchase but the first ten and the last ten comes from two callers.
	const callers = 16
	event := func(i int) []byte {
		return fmt.Appendf(nil, `{"id":"p%d","customer_id":"c%d","type":"purchase","occurred_at":"2026-11-20T10:%02d:00Z","amount":1}`, i, 1+i%2, i%60)
	}
	results := make([]importer.BatchResult, callers)
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for k := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var items [][]byte
			for i := k * 10; i < k*10+20; i++ {
				items = append(items, event(i))
			}
			results[k], errs[k] = g.EventBatch(ctx, items, opts)
		}()
	}
	wg.Wait()
	accepted := 0
	for k := range callers {
		if errs[k] != nil || results[k].Accepted+results[k].Duplicates != 20 || len(results[k].Problems) != 0 {
			t.Errorf("caller %d: %+v %v", k, results[k], errs[k])
		}
		accepted += results[k].Accepted
	}
	const distinct = callers*10 + 10
	if accepted != distinct {
		t.Errorf("%d events accepted in all, want %d", accepted, distinct)
	}
	c1, err := st.Customer(ctx, "c1")
	if err != nil {
		t.Fatal(err)
	}
	c2, err := st.Customer(ctx, "c2")
	if err != nil {
		t.Fatal(err)
	}
	if c1.OrdersCount+c2.OrdersCount != distinct || c1.TotalSpent+c2.TotalSpent != distinct {
		t.Errorf("facts: c1 %d orders %.2f, c2 %d orders %.2f; want %d in all", c1.OrdersCount, c1.TotalSpent, c2.OrdersCount, c2.TotalSpent, distinct)
	}

	// An invalid batch among valid ones fails alone, and writes nothing.
	res, err = g.EventBatch(ctx, [][]byte{event(1000), []byte(`{"id":"x","customer_id":"c1","type":"purchase"}`)}, opts)
	if err != nil || res.Accepted != 0 || len(res.Problems) != 1 || res.Problems[0] != (importer.ItemProblem{Index: 1, Field: "occurred_at", Message: `missing "occurred_at"`}) {
		t.Errorf("invalid batch: %+v %v", res, err)
	}
	if n, err := st.Counts(ctx); err != nil || n.Events != distinct {
		t.Errorf("%d events stored, want %d (%v)", n.Events, distinct, err)
	}
}
