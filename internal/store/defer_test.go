package store_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestDefer: only the claim that is current can defer a delivery; the
// delivery goes back to queued with its new send time, and the attempt
// the claim counted is given back.
func TestDefer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("w", "c1", at), newDelivery("w", "c2", at), newDelivery("w", "c3", at)})
	if err != nil || len(refs) != 3 {
		t.Fatalf("insert: %v %v", refs, err)
	}
	a, b, c := refs[0].ID, refs[1].ID, refs[2].ID
	if _, err := st.Claim(ctx, []string{a, b}); err != nil { // c stays planned
		t.Fatal(err)
	}
	later := ts("2026-06-02T08:00:00Z")
	stale, err := st.Defer(ctx, []store.Deferral{
		{ID: a, Attempt: 1, SendAt: later},
		{ID: b, Attempt: 2, SendAt: later}, // an older or newer claim than the current one
		{ID: c, Attempt: 1, SendAt: later}, // not being sent
		{ID: "not-a-uuid", Attempt: 1, SendAt: later},
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(stale)
	want := []string{b, c, "not-a-uuid"}
	slices.Sort(want)
	if !slices.Equal(stale, want) {
		t.Errorf("stale = %v, want %v", stale, want)
	}
	if d := mustDelivery(t, st, a); d.Status != store.StatusQueued || !d.SendAt.Equal(later) || d.Attempts != 0 || d.QueuedAt == nil {
		t.Errorf("deferred delivery = %s send_at %s attempts %d queued_at %v; want queued until %s, 0 attempts",
			d.Status, d.SendAt, d.Attempts, d.QueuedAt, later)
	}
	if d := mustDelivery(t, st, b); d.Status != store.StatusSending || !d.SendAt.Equal(at) || d.Attempts != 1 {
		t.Errorf("delivery of another claim = %s send_at %s attempts %d; want sending, unchanged", d.Status, d.SendAt, d.Attempts)
	}
	if d := mustDelivery(t, st, c); d.Status != store.StatusPlanned || !d.SendAt.Equal(at) {
		t.Errorf("planned delivery = %s send_at %s; want planned, unchanged", d.Status, d.SendAt)
	}
	// The next claim counts attempt 1 again.
	cl, err := st.Claim(ctx, []string{a})
	if err != nil || !cl[0].Claimed || cl[0].Attempts != 1 || !cl[0].SendAt.Equal(later) {
		t.Errorf("claim after deferral = %+v, %v; want claimed as attempt 1 with the new send time", cl, err)
	}
}

func TestCustomer(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	testenv.ImportFixture(t, st)
	if err := st.AddSuppression(ctx, "BO@example.com", "bounce"); err != nil {
		t.Fatal(err)
	}
	c, err := st.Customer(ctx, "c2")
	if err != nil || c.ID != "c2" || c.Email != "bo@example.com" || c.FirstName != "Bo" || !c.Suppressed || !c.Subscribed {
		t.Errorf("Customer(c2) = %+v, %v", c, err)
	}
	if _, err := st.Customer(ctx, "nobody"); !errors.Is(err, store.ErrNotFound) || err.Error() != `customer "nobody": not found` {
		t.Errorf("Customer(nobody) = %v, want not found", err)
	}
}
