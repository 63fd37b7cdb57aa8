package store_test

import (
	"context"
	"errors"
	"maps"
	"reflect"
	"slices"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

func newDelivery(campaign, customer string, occ time.Time) store.NewDelivery {
	return store.NewDelivery{Campaign: campaign, CustomerID: customer, Occurrence: occ, Stage: "at_risk", Template: "winback", Queue: "default"}
}

func mustDelivery(t *testing.T, st *store.Store, id string) store.DeliveryRow {
	t.Helper()
	d, err := st.Delivery(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestInsertDeliveriesIsIdempotent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	first := []store.NewDelivery{newDelivery("w", "c1", at), newDelivery("w", "c2", at)}
	refs, err := st.InsertDeliveries(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	if len(refs) != 2 || refs[0].Queue != "default" || refs[0].ID == refs[1].ID {
		t.Fatalf("first InsertDeliveries = %+v, want 2 new deliveries", refs)
	}
	refs, err = st.InsertDeliveries(ctx, first)
	if err != nil || len(refs) != 0 {
		t.Fatalf("second InsertDeliveries = %+v, %v; want none", refs, err)
	}
	// Only the new one of a mixed batch; another occurrence is another delivery.
	next := newDelivery("w", "c1", at.Add(24*time.Hour))
	next.Queue = "bulk"
	refs, err = st.InsertDeliveries(ctx, append(first, next))
	if err != nil || len(refs) != 1 || refs[0].Queue != "bulk" {
		t.Fatalf("mixed InsertDeliveries = %+v, %v; want the one new", refs, err)
	}
	d := mustDelivery(t, st, refs[0].ID)
	if d.Status != store.StatusPlanned || d.Campaign != "w" || d.CustomerID != "c1" || !d.Occurrence.Equal(at.Add(24*time.Hour)) ||
		d.Stage != "at_risk" || d.Template != "winback" || d.Attempts != 0 || d.QueuedAt != nil {
		t.Errorf("new delivery = %+v", d)
	}
}

func TestInsertDeliveriesLargeBatch(t *testing.T) {
	t.Parallel()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	ds := make([]store.NewDelivery, 12345)
	for i := range ds {
		ds[i] = newDelivery("w", string(rune('a'+i%26))+time.Duration(i).String(), at)
	}
	refs, err := st.InsertDeliveries(context.Background(), ds)
	if err != nil || len(refs) != len(ds) {
		t.Fatalf("InsertDeliveries = %d refs, %v", len(refs), err)
	}
}

func TestDeliveryLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	importCustomers(t, st,
		store.CustomerRecord{ID: "c1", Email: "Ann@Example.com", FirstName: "Ann", Timezone: "Europe/Paris", Subscribed: true,
			CreatedAt: ts("2026-01-01T00:00:00Z"), Attributes: []byte(`{"plan":"pro"}`)},
		customer("c2", "bob@example.com", "2026-01-01T00:00:00Z"),
	)
	importEvents(t, st, store.EventRecord{CustomerID: "c1", Type: "purchase", OccurredAt: ts("2026-02-01T00:00:00Z"), Amount: amount(12.5)})
	if err := st.AddSuppression(ctx, "ann@example.COM", "complaint"); err != nil {
		t.Fatal(err)
	}
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{
		newDelivery("w", "c1", at), newDelivery("w", "c2", at), newDelivery("w", "gone", at),
	})
	if err != nil || len(refs) != 3 {
		t.Fatalf("InsertDeliveries = %+v, %v", refs, err)
	}
	id := deliveryIDs(t, st)
	d1, d2, d3 := id["w/c1/2026-06-01T09:00:00Z"], id["w/c2/2026-06-01T09:00:00Z"], id["w/gone/2026-06-01T09:00:00Z"]

	// planned → queued, only once.
	if err := st.MarkQueued(ctx, []string{d1, d2, "not-a-uuid"}); err != nil {
		t.Fatal(err)
	}
	q1 := mustDelivery(t, st, d1)
	if q1.Status != store.StatusQueued || q1.QueuedAt == nil {
		t.Fatalf("after MarkQueued: %+v", q1)
	}
	if err := st.MarkQueued(ctx, []string{d1}); err != nil {
		t.Fatal(err)
	}
	if again := mustDelivery(t, st, d1); !again.QueuedAt.Equal(*q1.QueuedAt) {
		t.Errorf("MarkQueued of a queued delivery moved queued_at")
	}

	// Claim: in input order, claimed with the current customer, unknown ids unclaimed.
	const unknown = "00000000-0000-0000-0000-000000000000"
	claims, err := st.Claim(ctx, []string{d2, unknown, d1, "junk", d3})
	if err != nil {
		t.Fatal(err)
	}
	wantC1 := audience.Customer{ID: "c1", Email: "Ann@Example.com", FirstName: "Ann", Timezone: "Europe/Paris",
		Subscribed: true, Suppressed: true, CreatedAt: ts("2026-01-01T00:00:00Z"), Attributes: map[string]any{"plan": "pro"},
		OrdersCount: 1, TotalSpent: 12.5, FirstPurchaseAt: tp("2026-02-01T00:00:00Z"), LastPurchaseAt: tp("2026-02-01T00:00:00Z"),
		LastActiveAt: ts("2026-02-01T00:00:00Z")}
	want := []store.Claim{
		{ID: d2, Campaign: "w", Occurrence: at, Stage: "at_risk", Template: "winback", Step: 1, SendAt: at, Status: store.StatusSending, Attempts: 1, Claimed: true,
			CustomerFound: true, Customer: audience.Customer{ID: "c2", Email: "bob@example.com", Timezone: "UTC", Subscribed: true,
				CreatedAt: ts("2026-01-01T00:00:00Z"), LastActiveAt: ts("2026-01-01T00:00:00Z")}},
		{ID: unknown},
		{ID: d1, Campaign: "w", Occurrence: at, Stage: "at_risk", Template: "winback", Step: 1, SendAt: at, Status: store.StatusSending, Attempts: 1, Claimed: true,
			CustomerFound: true, Customer: wantC1},
		{ID: "junk"},
		{ID: d3, Campaign: "w", Occurrence: at, Stage: "at_risk", Template: "winback", Step: 1, SendAt: at, Status: store.StatusSending, Attempts: 1, Claimed: true,
			Customer: audience.Customer{ID: "gone"}},
	}
	assertClaims(t, claims, want)
	if s := mustDelivery(t, st, d1); s.Status != store.StatusSending || s.SendingAt == nil || s.Attempts != 1 {
		t.Errorf("after Claim: %+v", s)
	}

	// Outcomes: sent, skipped, retry; an unknown outcome is refused.
	if _, err := st.Record(ctx, []store.Outcome{{ID: d1, Status: "bounced"}}); err == nil {
		t.Error("Record accepted an unknown status")
	}
	_, err = st.Record(ctx, []store.Outcome{
		{ID: d1, Status: store.StatusSent, MessageID: "<d1@nurture>", Reply: "250 2.0.0 Ok: queued"},
		{ID: d2, Status: store.StatusRetry, Error: "421 try later", MessageID: "<d2@nurture>"},
		{ID: d3, Status: store.StatusSkipped, Reason: "customer no longer exists"},
		{ID: unknown, Status: store.StatusSent},
	})
	if err != nil {
		t.Fatal(err)
	}
	sent := mustDelivery(t, st, d1)
	if sent.Status != store.StatusSent || sent.SentAt == nil || sent.MessageID != "<d1@nurture>" || sent.SMTPReply != "250 2.0.0 Ok: queued" {
		t.Errorf("sent delivery = %+v", sent)
	}
	retried := mustDelivery(t, st, d2)
	if retried.Status != store.StatusQueued || retried.LastError != "421 try later" || retried.MessageID != "<d2@nurture>" || retried.SentAt != nil {
		t.Errorf("retried delivery = %+v", retried)
	}
	skipped := mustDelivery(t, st, d3)
	if skipped.Status != store.StatusSkipped || skipped.SkippedAt == nil || skipped.Reason != "customer no longer exists" {
		t.Errorf("skipped delivery = %+v", skipped)
	}

	// A finished delivery is never claimed nor changed again.
	claims, err = st.Claim(ctx, []string{d1, d3, d2})
	if err != nil {
		t.Fatal(err)
	}
	if c := claims[0]; c.Claimed || c.Status != store.StatusSent || c.Attempts != 1 || c.Campaign != "w" {
		t.Errorf("Claim of a sent delivery = %+v", c)
	}
	if c := claims[1]; c.Claimed || c.Status != store.StatusSkipped {
		t.Errorf("Claim of a skipped delivery = %+v", c)
	}
	if c := claims[2]; !c.Claimed || c.Attempts != 2 {
		t.Errorf("Claim of a retried delivery = %+v", c)
	}
	if _, err := st.Record(ctx, []store.Outcome{
		{ID: d1, Status: store.StatusFailed, Reason: "rejected", Error: "550 no"},
		{ID: d3, Status: store.StatusSent},
		{ID: d2, Status: store.StatusFailed, Reason: "gave up after 2 attempts", Error: "421 still later"},
	}); err != nil {
		t.Fatal(err)
	}
	if after := mustDelivery(t, st, d1); !reflect.DeepEqual(after, sent) {
		t.Errorf("Record changed a sent delivery:\n got %+v\nwant %+v", after, sent)
	}
	if after := mustDelivery(t, st, d3); !reflect.DeepEqual(after, skipped) {
		t.Errorf("Record changed a skipped delivery:\n got %+v\nwant %+v", after, skipped)
	}
	failed := mustDelivery(t, st, d2)
	if failed.Status != store.StatusFailed || failed.FailedAt == nil || failed.Reason != "gave up after 2 attempts" ||
		failed.LastError != "421 still later" || failed.Attempts != 2 {
		t.Errorf("failed delivery = %+v", failed)
	}

	counts, err := st.DeliveryCounts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantCounts := []store.DeliveryCount{
		{Campaign: "w", Stage: "at_risk", Status: "sent", N: 1},
		{Campaign: "w", Stage: "at_risk", Status: "failed", N: 1},
		{Campaign: "w", Stage: "at_risk", Status: "skipped", N: 1},
	}
	if !reflect.DeepEqual(counts, wantCounts) {
		t.Errorf("DeliveryCounts = %+v, want %+v", counts, wantCounts)
	}

	if _, err := st.Delivery(ctx, unknown); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delivery(unknown) = %v, want ErrNotFound", err)
	}
	if _, err := st.Delivery(ctx, "junk"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Delivery(junk) = %v, want ErrNotFound", err)
	}
}

func TestUnfinishedAndTouch(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	var ids []string
	for _, c := range []string{"c1", "c2", "c3", "c4"} {
		refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("w", c, at)})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, refs[0].ID)
	}
	// c1 planned, c2 queued, c3 sending, c4 sent.
	if err := st.MarkQueued(ctx, ids[1:]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, ids[2:]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Record(ctx, []store.Outcome{{ID: ids[3], Status: store.StatusSent}}); err != nil {
		t.Fatal(err)
	}

	const anyAge = -time.Hour // idle for at least -1h: every row
	refs, err := st.Unfinished(ctx, anyAge, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := refIDs(refs); !slices.Equal(got, ids[:3]) {
		t.Errorf("Unfinished = %v, want %v (oldest first)", got, ids[:3])
	}
	if refs, _ := st.Unfinished(ctx, anyAge, 2); len(refs) != 2 {
		t.Errorf("Unfinished with limit 2 = %d rows", len(refs))
	}
	if refs, _ := st.Unfinished(ctx, time.Hour, 10); len(refs) != 0 {
		t.Errorf("Unfinished before they were made = %v", refs)
	}

	// Touch: planned becomes queued, and touched rows become the newest.
	if err := st.Touch(ctx, []string{ids[0], ids[3]}); err != nil {
		t.Fatal(err)
	}
	if d := mustDelivery(t, st, ids[0]); d.Status != store.StatusQueued || d.QueuedAt == nil {
		t.Errorf("touched planned delivery = %+v", d)
	}
	if d := mustDelivery(t, st, ids[3]); d.Status != store.StatusSent {
		t.Errorf("touched sent delivery = %+v", d)
	}
	refs, err = st.Unfinished(ctx, anyAge, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := refIDs(refs), []string{ids[1], ids[2], ids[0]}; !slices.Equal(got, want) {
		t.Errorf("Unfinished after Touch = %v, want %v", got, want)
	}
}

func refIDs(refs []store.DeliveryRef) []string {
	var out []string
	for _, r := range refs {
		out = append(out, r.ID)
	}
	return out
}

func assertClaims(t *testing.T, got, want []store.Claim) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d claims, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		gc, wc := g.Customer, w.Customer
		g.Customer, w.Customer = audience.Customer{}, audience.Customer{}
		if !g.Occurrence.Equal(w.Occurrence) {
			t.Errorf("claim %d occurrence %s, want %s", i, g.Occurrence, w.Occurrence)
		}
		g.Occurrence, w.Occurrence = time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("claim %d:\n got %+v\nwant %+v", i, g, w)
		}
		if !sameCustomer(gc, wc) {
			t.Errorf("claim %d customer:\n got %s\nwant %s", i, showCustomer(gc), showCustomer(wc))
		}
	}
}

func TestRecordRefusesASupersededAttempt(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("w", "c1", ts("2026-06-01T09:00:00Z"))})
	if err != nil {
		t.Fatal(err)
	}
	id := refs[0].ID
	// Attempt 1 is still running when a second copy of the task claims the
	// delivery again (attempt 2).
	for want := 1; want <= 2; want++ {
		cl, err := st.Claim(ctx, []string{id})
		if err != nil || !cl[0].Claimed || cl[0].Attempts != want {
			t.Fatalf("claim %d: %+v, %v", want, cl, err)
		}
	}
	// Attempt 1 reports a temporary failure: refused, the row stays with 2.
	stale, err := st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusRetry, Error: "451 try later", Attempt: 1}})
	if err != nil || !reflect.DeepEqual(stale, []string{id}) {
		t.Fatalf("record of attempt 1: stale %v, %v; want [%s]", stale, err, id)
	}
	if d := mustDelivery(t, st, id); d.Status != store.StatusSending || d.LastError != "" {
		t.Fatalf("after the stale outcome: %s %q, want sending with no error", d.Status, d.LastError)
	}
	// Attempt 2 sends; its outcome applies. Text PostgreSQL would refuse
	// (invalid UTF-8, NUL) is cleaned rather than failing the batch.
	stale, err = st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusSent, MessageID: "<m@x>", Reply: "250 ok\x00\xff", Attempt: 2}})
	if err != nil || len(stale) != 0 {
		t.Fatalf("record of attempt 2: stale %v, %v", stale, err)
	}
	if d := mustDelivery(t, st, id); d.Status != store.StatusSent || d.SMTPReply != "250 ok\uFFFD" || d.Attempts != 2 {
		t.Fatalf("after attempt 2: %s %q attempts=%d", d.Status, d.SMTPReply, d.Attempts)
	}
}

func TestDeliveriesWhere(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{
		newDelivery("w", "c2", at), newDelivery("w", "c1", at.Add(24*time.Hour)), newDelivery("w", "c1", at),
		newDelivery("a", "c1", at),
	})
	if err != nil || len(refs) != 4 {
		t.Fatalf("insert: %v %v", refs, err)
	}
	if err := st.MarkQueued(ctx, []string{refs[0].ID}); err != nil {
		t.Fatal(err)
	}
	list := func(f store.DeliveryFilter) []string {
		var out []string
		err := st.DeliveriesWhere(ctx, f, func(d *store.DeliveryRow) error {
			out = append(out, d.Campaign+"/"+d.CustomerID+"/"+d.Occurrence.Format("01-02")+"/"+d.Status)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	for _, tt := range []struct {
		f    store.DeliveryFilter
		want []string
	}{
		{store.DeliveryFilter{}, []string{"a/c1/06-01/planned", "w/c1/06-01/planned", "w/c1/06-02/planned", "w/c2/06-01/queued"}},
		{store.DeliveryFilter{Campaign: "w"}, []string{"w/c1/06-01/planned", "w/c1/06-02/planned", "w/c2/06-01/queued"}},
		{store.DeliveryFilter{CustomerID: "c1"}, []string{"a/c1/06-01/planned", "w/c1/06-01/planned", "w/c1/06-02/planned"}},
		{store.DeliveryFilter{Campaign: "w", Status: "queued"}, []string{"w/c2/06-01/queued"}},
		{store.DeliveryFilter{Status: "sent"}, nil},
	} {
		if got := list(tt.f); !slices.Equal(got, tt.want) {
			t.Errorf("%+v: %v, want %v", tt.f, got, tt.want)
		}
	}
}

// openRows returns deliveries_open as id → updated_at, and checks it
// against the unfinished rows of deliveries.
func openRows(t *testing.T, st *store.Store) map[string]time.Time {
	t.Helper()
	ctx := context.Background()
	read := func(query string) map[string]time.Time {
		rows, err := st.Pool().Query(ctx, query)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		out := map[string]time.Time{}
		for rows.Next() {
			var id string
			var at time.Time
			if err := rows.Scan(&id, &at); err != nil {
				t.Fatal(err)
			}
			out[id] = at
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	open := read(`SELECT id::text, updated_at FROM deliveries_open`)
	want := read(`SELECT id::text, updated_at FROM deliveries WHERE NOT finished`)
	if !maps.EqualFunc(open, want, time.Time.Equal) {
		t.Fatalf("deliveries_open = %v\nunfinished deliveries = %v", open, want)
	}
	return open
}

// Every writer of deliveries keeps deliveries_open, the reconciler's list
// of unfinished deliveries, exact: planning, claims, outcomes, retries,
// deferrals, touches, a finished row opened again by hand, and deletes.
func TestOpenDeliveriesFollowEveryWriter(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	at := ts("2026-06-01T09:00:00Z")
	held := newDelivery("w", "held", at)
	held.Status = store.StatusHeldOut
	batch := []store.NewDelivery{held}
	for _, c := range []string{"c1", "c2", "c3", "c4", "c5", "c6"} {
		batch = append(batch, newDelivery("w", c, at))
	}
	refs, err := st.InsertDeliveries(ctx, batch)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]string{}
	for _, r := range refs {
		d := mustDelivery(t, st, r.ID)
		ids[d.CustomerID] = r.ID
	}
	if open := openRows(t, st); len(open) != 6 {
		t.Fatalf("after planning, %d open; want the 6 planned, not the held-out one", len(open))
	}
	all := []string{ids["c1"], ids["c2"], ids["c3"], ids["c4"], ids["c5"], ids["c6"]}
	if err := st.MarkQueued(ctx, all); err != nil {
		t.Fatal(err)
	}
	before := openRows(t, st)
	cl, err := st.Claim(ctx, all[:5])
	if err != nil {
		t.Fatal(err)
	}
	// A claim keeps updated_at (the reconciler reads sending_at too).
	if after := openRows(t, st); !maps.EqualFunc(after, before, time.Time.Equal) {
		t.Fatalf("a claim changed deliveries_open: %v, was %v", after, before)
	}
	attempt := func(id string) int {
		for _, c := range cl {
			if c.ID == id {
				return c.Attempts
			}
		}
		t.Fatalf("%s not claimed", id)
		return 0
	}
	stale, err := st.Record(ctx, []store.Outcome{
		{ID: ids["c1"], Status: store.StatusSent, Attempt: attempt(ids["c1"])},
		{ID: ids["c2"], Status: store.StatusFailed, Reason: "rejected", Attempt: attempt(ids["c2"])},
		{ID: ids["c3"], Status: store.StatusRetry, Error: "451 later", Attempt: attempt(ids["c3"])},
	})
	if err != nil || len(stale) != 0 {
		t.Fatalf("Record: stale %v, %v", stale, err)
	}
	stale, err = st.Defer(ctx, []store.Deferral{{ID: ids["c4"], Attempt: attempt(ids["c4"]), SendAt: at.Add(time.Hour)}})
	if err != nil || len(stale) != 0 {
		t.Fatalf("Defer: stale %v, %v", stale, err)
	}
	if err := st.Touch(ctx, []string{ids["c6"]}); err != nil {
		t.Fatal(err)
	}
	open := openRows(t, st)
	if _, ok := open[ids["c1"]]; ok || len(open) != 4 {
		t.Fatalf("after sent, failed, retry, deferral and touch: %d open %v; want c3 to c6", len(open), open)
	}
	for _, c := range []string{"c3", "c4", "c6"} {
		if !open[ids[c]].After(before[ids[c]]) {
			t.Errorf("%s: updated_at %s in deliveries_open, not after %s", c, open[ids[c]], before[ids[c]])
		}
	}
	// By hand: a sent delivery opened again, another deleted.
	if _, err := st.Pool().Exec(ctx, `UPDATE deliveries SET status = 'queued', updated_at = now() WHERE id = $1`, ids["c1"]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Pool().Exec(ctx, `DELETE FROM deliveries WHERE id = ANY ($1::uuid[])`, []string{ids["c5"], ids["c2"]}); err != nil {
		t.Fatal(err)
	}
	open = openRows(t, st)
	got := slices.Sorted(maps.Keys(open))
	want := []string{ids["c1"], ids["c3"], ids["c4"], ids["c6"]}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("open at the end = %v, want c1, c3, c4, c6 = %v", got, want)
	}
	// The reconciler finds them through it, oldest first.
	refs, err = st.Unfinished(ctx, -time.Hour, 10)
	if err != nil {
		t.Fatal(err)
	}
	if got := refIDs(refs); len(got) != 4 || got[len(got)-1] != ids["c1"] {
		t.Errorf("Unfinished = %v; want 4, the reopened c1 last", got)
	}
	qs, err := st.ActiveQueues(ctx)
	if err != nil || !slices.Equal(qs, []string{"default"}) {
		t.Errorf("ActiveQueues = %v, %v", qs, err)
	}
}

// One delivery named twice in one claim (two tasks in one batch of
// claims) is claimed once; the other comes back unclaimed, as it is now.
func TestClaimOneDeliveryTwice(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.Store(t)
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("w", "c1", ts("2026-06-01T09:00:00Z"))})
	if err != nil {
		t.Fatal(err)
	}
	id := refs[0].ID
	claims, err := st.ClaimBy(ctx, []string{id, id}, []string{"", ""})
	if err != nil {
		t.Fatal(err)
	}
	if claims[0].Claimed == claims[1].Claimed {
		t.Fatalf("claimed %v and %v; want exactly one", claims[0].Claimed, claims[1].Claimed)
	}
	for _, c := range claims {
		if c.Status != store.StatusSending || c.Attempts != 1 || c.Campaign != "w" || c.Template != "winback" {
			t.Errorf("claim = %+v; want sending, attempt 1, of campaign w", c)
		}
	}
	if d := mustDelivery(t, st, id); d.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", d.Attempts)
	}
}
