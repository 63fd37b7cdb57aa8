package store_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// clockStore is a store whose clock reads *now.
func clockStore(t *testing.T, now *time.Time) *store.Store {
	t.Helper()
	return testenv.StoreConfig(t, store.Config{Now: func() time.Time { return *now }})
}

func assertHistory(t *testing.T, st *store.Store, id string, want ...store.ConsentChange) {
	t.Helper()
	got, err := st.ConsentHistory(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) || len(want) > 0 && !reflect.DeepEqual(got, want) {
		t.Errorf("consent history of %s:\n got %+v\nwant %+v", id, got, want)
	}
}

func assertSubscribed(t *testing.T, st *store.Store, want map[string]bool) {
	t.Helper()
	all := customers(t, st)
	for id, w := range want {
		if got := all[id].Subscribed; got != w {
			t.Errorf("%s: subscribed = %t, want %t", id, got, w)
		}
	}
}

func TestPersonalOptOutSurvivesImports(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-06-01T10:00:00Z")
	st := clockStore(t, &now)
	ann := store.CustomerRecord{ID: "ann", Email: "ann@example.com", FirstName: "Ann", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z")}
	importCustomers(t, st, ann, customer("bob", "bob@example.com", "2026-01-01T00:00:00Z"))
	assertHistory(t, st, "ann") // created subscribed: no change yet

	now = ts("2026-06-02T08:30:00Z")
	if changed, err := st.Unsubscribe(ctx, "ann", "unsubscribe link", "winback"); err != nil || !changed {
		t.Fatalf("Unsubscribe = %t, %v; want true, nil", changed, err)
	}
	now = ts("2026-06-02T09:00:00Z")
	if changed, err := st.Unsubscribe(ctx, "ann", "unsubscribe link", ""); err != nil || changed {
		t.Fatalf("second Unsubscribe = %t, %v; want false, nil", changed, err)
	}

	// The CRM's nightly file says subscribed (explicitly or by default):
	// unchanged records change nothing, a changed name changes only the name.
	now = ts("2026-06-03T01:00:00Z")
	if n := importCustomers(t, st, ann); n != 0 {
		t.Errorf("re-import changed %d customers, want 0", n)
	}
	ann.FirstName = "Annie"
	if n := importCustomers(t, st, ann); n != 1 {
		t.Errorf("import with a new name changed %d customers, want 1", n)
	}
	all := customers(t, st)
	if all["ann"].Subscribed || all["ann"].FirstName != "Annie" {
		t.Errorf("after re-imports: %+v", all["ann"])
	}
	if got := candidates(t, st, store.CandidateFilter{Campaign: "c", At: ts("2026-06-04T09:00:00Z")}); len(got) != 1 || got["bob"].Customer.ID != "bob" {
		t.Errorf("candidates after re-imports: %v, want only bob", got)
	}
	// An import saying false keeps the person's own opt-out as it is.
	ann.Subscribed = false
	importCustomers(t, st, ann)
	optOut := store.ConsentChange{Subscribed: false, Source: "unsubscribe link", Campaign: "winback", ChangedAt: ts("2026-06-02T08:30:00Z")}
	assertHistory(t, st, "ann", optOut)

	// Only an explicit re-subscription undoes it; then imports own the
	// consent again.
	now = ts("2026-06-05T12:00:00Z")
	if changed, err := st.Resubscribe(ctx, "ann", "crm-fix"); err != nil || !changed {
		t.Fatalf("Resubscribe = %t, %v; want true, nil", changed, err)
	}
	if changed, err := st.Resubscribe(ctx, "ann", "crm-fix"); err != nil || changed {
		t.Fatalf("second Resubscribe = %t, %v; want false, nil", changed, err)
	}
	assertSubscribed(t, st, map[string]bool{"ann": true, "bob": true})
	now = ts("2026-06-06T01:00:00Z")
	importCustomers(t, st, ann) // subscribed: false
	assertSubscribed(t, st, map[string]bool{"ann": false})
	assertHistory(t, st, "ann", optOut,
		store.ConsentChange{Subscribed: true, Source: "crm-fix", ChangedAt: ts("2026-06-05T12:00:00Z")},
		store.ConsentChange{Subscribed: false, Source: "import", ChangedAt: ts("2026-06-06T01:00:00Z")},
	)
	assertHistory(t, st, "bob")
}

func TestImportOwnsItsOwnOptOuts(t *testing.T) {
	t.Parallel()
	now := ts("2026-06-01T10:00:00Z")
	st := clockStore(t, &now)
	cy := store.CustomerRecord{ID: "cy", Email: "cy@example.com", Subscribed: false, CreatedAt: ts("2026-01-01T00:00:00Z")}
	di := store.CustomerRecord{ID: "di", Email: "di@example.com", Subscribed: true, CreatedAt: ts("2026-01-01T00:00:00Z")}
	importCustomers(t, st, cy, di)

	now = ts("2026-06-02T10:00:00Z")
	cy.Subscribed, di.Subscribed = true, false
	if n := importCustomers(t, st, cy, di); n != 2 {
		t.Errorf("import changed %d customers, want 2", n)
	}
	assertSubscribed(t, st, map[string]bool{"cy": true, "di": false})
	assertHistory(t, st, "cy",
		store.ConsentChange{Subscribed: false, Source: "import", ChangedAt: ts("2026-06-01T10:00:00Z")},
		store.ConsentChange{Subscribed: true, Source: "import", ChangedAt: ts("2026-06-02T10:00:00Z")},
	)
	assertHistory(t, st, "di",
		store.ConsentChange{Subscribed: false, Source: "import", ChangedAt: ts("2026-06-02T10:00:00Z")},
	)

	// The person's opt-out on top of the import's is recorded, and sticks.
	now = ts("2026-06-03T10:00:00Z")
	if changed, err := st.Unsubscribe(context.Background(), "di", "unsubscribe link", ""); err != nil || !changed {
		t.Fatalf("Unsubscribe = %t, %v; want true, nil", changed, err)
	}
	di.Subscribed = true
	now = ts("2026-06-04T10:00:00Z")
	if n := importCustomers(t, st, di); n != 0 {
		t.Errorf("import changed %d customers, want 0", n)
	}
	assertSubscribed(t, st, map[string]bool{"di": false})
	assertHistory(t, st, "di",
		store.ConsentChange{Subscribed: false, Source: "import", ChangedAt: ts("2026-06-02T10:00:00Z")},
		store.ConsentChange{Subscribed: false, Source: "unsubscribe link", ChangedAt: ts("2026-06-03T10:00:00Z")},
	)
}

func TestConsentChangeErrors(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	importCustomers(t, st, customer("ann", "ann@example.com", "2026-01-01T00:00:00Z"))
	for _, tc := range []struct {
		name     string
		err      error
		want     string
		notFound bool
	}{
		{"unsubscribe unknown", second(st.Unsubscribe(ctx, "ghost", "unsubscribe link", "")), `unsubscribe customer "ghost": not found`, true},
		{"resubscribe unknown", second(st.Resubscribe(ctx, "ghost", "crm-fix")), `resubscribe customer "ghost": not found`, true},
		{"unsubscribe without source", second(st.Unsubscribe(ctx, "ann", "", "")), `unsubscribe customer "ann": empty source`, false},
		{"resubscribe without source", second(st.Resubscribe(ctx, "ann", "")), `resubscribe customer "ann": empty source`, false},
	} {
		if tc.err == nil || tc.err.Error() != tc.want || errors.Is(tc.err, store.ErrNotFound) != tc.notFound {
			t.Errorf("%s: %v, want %q (ErrNotFound: %t)", tc.name, tc.err, tc.want, tc.notFound)
		}
	}
	assertSubscribed(t, st, map[string]bool{"ann": true})
	assertHistory(t, st, "ann")
	assertHistory(t, st, "ghost")
}

func second[T any](_ T, err error) error { return err }

// TestOptOutHoldsForTheAddress: a person who opted out under one customer
// id is not emailed under another id with the same address (another
// system's record of them), until they subscribe again under either.
func TestOptOutHoldsForTheAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-06-01T10:00:00Z")
	st := clockStore(t, &now)
	importCustomers(t, st, customer("ann", "ann@example.com", "2026-01-01T00:00:00Z"))
	if _, err := st.Unsubscribe(ctx, "ann", "unsubscribe link", "winback"); err != nil {
		t.Fatal(err)
	}
	// The CRM sends her again under its own id, the address in another case.
	importCustomers(t, st, customer("crm-ann", "Ann@Example.com", "2026-01-01T00:00:00Z"), customer("bob", "bob@example.com", "2026-01-01T00:00:00Z"))
	at := ts("2026-06-04T09:00:00Z")
	if got := candidates(t, st, store.CandidateFilter{Campaign: "c", At: at}); len(got) != 1 || got["bob"].Customer.ID != "bob" {
		t.Errorf("candidates: %v, want only bob", got)
	}
	// A delivery planned before is skipped at send time: the claim says
	// she is not subscribed.
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("c", "crm-ann", at)})
	if err != nil {
		t.Fatal(err)
	}
	claims, err := st.Claim(ctx, []string{refs[0].ID})
	if err != nil || len(claims) != 1 || !claims[0].Claimed || claims[0].Customer.Subscribed {
		t.Fatalf("claim of crm-ann's delivery: %+v, %v; want claimed and not subscribed", claims, err)
	}

	// Subscribing her under the CRM's id clears the opt-out she made
	// under the other, and records it there.
	now = ts("2026-06-05T12:00:00Z")
	if changed, err := st.Resubscribe(ctx, "crm-ann", "support-ticket-9"); err != nil || !changed {
		t.Fatalf("Resubscribe(crm-ann) = %t, %v; want true, nil", changed, err)
	}
	if got := candidates(t, st, store.CandidateFilter{Campaign: "c", At: at}); len(got) != 3 {
		t.Errorf("candidates after re-subscription: %v, want ann, bob and crm-ann", got)
	}
	assertHistory(t, st, "ann",
		store.ConsentChange{Subscribed: false, Source: "unsubscribe link", Campaign: "winback", ChangedAt: ts("2026-06-01T10:00:00Z")},
		store.ConsentChange{Subscribed: true, Source: "support-ticket-9", ChangedAt: ts("2026-06-05T12:00:00Z")},
	)
	assertHistory(t, st, "crm-ann")
}

// TestOptOutStaysWithTheAddress: an import that changes the email of a
// customer who opted out does not free the old address.
func TestOptOutStaysWithTheAddress(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-06-01T10:00:00Z")
	st := clockStore(t, &now)
	importCustomers(t, st, customer("ann", "ann@example.com", "2026-01-01T00:00:00Z"))
	if _, err := st.Unsubscribe(ctx, "ann", "unsubscribe link", ""); err != nil {
		t.Fatal(err)
	}
	importCustomers(t, st, customer("ann", "ann.new@example.com", "2026-01-01T00:00:00Z"),
		customer("other-ann", "ann@example.com", "2026-01-01T00:00:00Z"))
	if got := candidates(t, st, store.CandidateFilter{Campaign: "c", At: ts("2026-06-04T09:00:00Z")}); len(got) != 0 {
		t.Errorf("candidates: %v, want none: ann opted out, and her old address with her", got)
	}
}
