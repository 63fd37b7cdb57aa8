package store_test

import (
	"context"
	"errors"
	"testing"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

func TestOpenScratchRefusesRealDatabase(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ url, want string }{
		// Port 1: the refusal must come before any connection.
		{"postgres://root@127.0.0.1:1/nurture?sslmode=disable",
			`database "nurture": not a scratch database: its name must contain "demo", "bench" or "test" before its tables may be emptied`},
		{"postgres://root@127.0.0.1:1/shop_production",
			`database "shop_production": not a scratch database: its name must contain "demo", "bench" or "test" before its tables may be emptied`},
	} {
		sc, err := store.OpenScratch(context.Background(), tc.url, store.Config{})
		if sc != nil || !errors.Is(err, store.ErrNotScratch) {
			t.Fatalf("OpenScratch(%s) = %v, %v; want ErrNotScratch", tc.url, sc, err)
		}
		if err.Error() != tc.want {
			t.Errorf("OpenScratch(%s) error:\n got %s\nwant %s", tc.url, err, tc.want)
		}
	}
}

func TestScratchHelpers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	// Test databases are named nurture_test_*, which OpenScratch accepts.
	sc, err := store.OpenScratch(ctx, testenv.DatabaseURL(t), store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sc.Close)
	at := ts("2026-06-01T09:00:00Z")
	importCustomers(t, sc.Store,
		store.CustomerRecord{ID: "c1", Email: "ann@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: at, Attributes: []byte(`{}`)},
		store.CustomerRecord{ID: "c2", Email: "bob@example.com", Timezone: "UTC", Subscribed: true, CreatedAt: at, Attributes: []byte(`{}`)})
	importEvents(t, sc.Store, store.EventRecord{ID: "e1", CustomerID: "c1", Type: "purchase", OccurredAt: at, Amount: amount(10)})
	if err := sc.AddSuppression(ctx, "bob@example.com", "bounce"); err != nil {
		t.Fatal(err)
	}
	if _, err := sc.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("w", "c1", at), newDelivery("w", "c2", at)}); err != nil {
		t.Fatal(err)
	}
	counts := func() store.Counts {
		t.Helper()
		c, err := sc.Counts(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if got, want := counts(), (store.Counts{Customers: 2, Events: 1, Suppressions: 1, Deliveries: 2}); got != want {
		t.Fatalf("counts before = %+v, want %+v", got, want)
	}

	if err := sc.ClearDeliveries(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := counts(), (store.Counts{Customers: 2, Events: 1, Suppressions: 1}); got != want {
		t.Errorf("counts after ClearDeliveries = %+v, want %+v", got, want)
	}
	if err := sc.Vacuum(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := counts(), (store.Counts{Customers: 2, Events: 1, Suppressions: 1}); got != want {
		t.Errorf("counts after Vacuum = %+v, want %+v", got, want)
	}
	if err := sc.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := counts(), (store.Counts{}); got != want {
		t.Errorf("counts after Reset = %+v, want %+v", got, want)
	}
}
