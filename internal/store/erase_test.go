package store_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"nurture/internal/audience"
	"nurture/internal/freqcap"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

// Distinctive strings of the person erased in these tests: none may be
// left in any table afterwards.
const (
	zqID      = "cust-zq-5521"
	zqEmail   = "Zelda.Quixote-7731@Example.org"
	zqName    = "Zelquinna"
	zqAttr    = "plan-xyzzy-9042"
	zqEventID = "order-zq-881"
	zqTicket  = "ticket-from-zelquinna"
)

// dumpTables returns every row of every table of the database as text,
// by table.
func dumpTables(t *testing.T, st *store.Store) map[string][]string {
	t.Helper()
	ctx := context.Background()
	rows, err := st.Pool().Query(ctx, `SELECT table_name::text FROM information_schema.tables
		WHERE table_schema = 'public' AND table_type = 'BASE TABLE' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, table := range tables {
		rows, err := st.Pool().Query(ctx, fmt.Sprintf(`SELECT t::text FROM %s t`, pgx.Identifier{table}.Sanitize()))
		if err != nil {
			t.Fatal(err)
		}
		if out[table], err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// findPersonal returns "table: row" for each row that holds one of the
// strings, compared without regard to case.
func findPersonal(dump map[string][]string, personal ...string) []string {
	var found []string
	for table, rows := range dump {
		for _, row := range rows {
			for _, p := range personal {
				if strings.Contains(strings.ToLower(row), strings.ToLower(p)) {
					found = append(found, table+": "+row)
				}
			}
		}
	}
	return found
}

func countsByStatus(t *testing.T, st *store.Store) map[string]int {
	t.Helper()
	counts, err := st.DeliveryCounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for _, c := range counts {
		out[c.Campaign+"/"+c.Status] += c.N
	}
	return out
}

// seedPerson stores the person zqID in every table that can hold them, and
// bob next to them, and returns the ids of zq's deliveries by what became
// of them.
func seedPerson(t *testing.T, st *store.Store, now *time.Time) map[string]string {
	t.Helper()
	ctx := context.Background()
	created := ts("2026-05-01T00:00:00Z")
	importCustomers(t, st,
		store.CustomerRecord{ID: zqID, Email: zqEmail, FirstName: zqName, Subscribed: true, CreatedAt: created,
			Attributes: []byte(`{"plan":"` + zqAttr + `","nickname":"` + zqName + `"}`)},
		store.CustomerRecord{ID: "bob", Email: "bob@example.com", FirstName: "Bob", Subscribed: true, CreatedAt: created,
			Attributes: []byte(`{"plan":"basic"}`)})
	importEvents(t, st,
		store.EventRecord{ID: zqEventID, CustomerID: zqID, Type: "purchase", OccurredAt: ts("2026-05-10T10:00:00Z"),
			Amount: amount(42.5), Properties: []byte(`{"gift_for":"` + zqName + `","sku":"` + zqAttr + `"}`)},
		store.EventRecord{CustomerID: zqID, Type: "cart_abandoned", OccurredAt: ts("2026-05-11T10:00:00Z"),
			Properties: []byte(`{"email":"` + zqEmail + `"}`)},
		store.EventRecord{ID: "order-bob-1", CustomerID: "bob", Type: "purchase", OccurredAt: ts("2026-05-10T10:00:00Z"), Amount: amount(10)})
	// Consent history with a source the caller wrote, an opt-out of the
	// address, and the address on the suppression list.
	*now = ts("2026-05-12T08:00:00Z")
	if _, err := st.Unsubscribe(ctx, zqID, "unsubscribe link", "welcome"); err != nil {
		t.Fatal(err)
	}
	*now = ts("2026-05-13T08:00:00Z")
	if _, err := st.Resubscribe(ctx, zqID, zqTicket); err != nil {
		t.Fatal(err)
	}
	*now = ts("2026-05-14T08:00:00Z")
	if _, err := st.Unsubscribe(ctx, zqID, "unsubscribe link", "winback"); err != nil {
		t.Fatal(err)
	}
	if err := st.Suppress(ctx, store.Suppression{Email: zqEmail, Reason: "bounce", Source: "ses"}); err != nil {
		t.Fatal(err)
	}
	// Stage history.
	stageOf := func(c *audience.Customer) (string, error) { return "new", nil }
	if _, err := st.SweepStages(ctx, ts("2026-05-15T00:00:00Z"), stageOf, store.SweepOptions{}); err != nil {
		t.Fatal(err)
	}
	// A journey, active, entered from the purchase event.
	at := ts("2026-05-16T09:00:00Z")
	j := store.NewJourney{Campaign: "journey", CustomerID: zqID, Occurrence: at, EventID: zqEventID, Step: 1, Status: store.JourneyActive}
	jd := store.NewDelivery{Campaign: "journey", CustomerID: zqID, Occurrence: at, Stage: "new", Template: "j1", Queue: "default",
		Step: 1, EventID: zqEventID}
	if _, _, err := st.EnterJourneys(ctx, []store.NewJourney{j}, []store.NewDelivery{jd}, freqcap.Cap{}); err != nil {
		t.Fatal(err)
	}
	// Deliveries: sent (with a reply quoting the address), failed (with
	// an error quoting it), skipped for a template error naming the
	// first name, queued, planned; and bob's.
	var ds []store.NewDelivery
	for i := range 5 { // sent, failed, template, queued, planned
		ds = append(ds, newDelivery("winback", zqID, at.Add(time.Duration(i)*24*time.Hour)))
	}
	ds = append(ds, newDelivery("winback", "bob", at))
	refs, err := st.InsertDeliveries(ctx, ds)
	if err != nil || len(refs) != 6 {
		t.Fatalf("InsertDeliveries = %v, %v", refs, err)
	}
	ids := map[string]string{"sent": refs[0].ID, "failed": refs[1].ID, "template": refs[2].ID, "queued": refs[3].ID,
		"planned": refs[4].ID, "bob": refs[5].ID}
	err = st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		if d.Campaign == "journey" {
			ids["journey"] = d.ID
		}
		return nil
	})
	if err != nil || ids["journey"] == "" {
		t.Fatal("the journey's delivery:", err)
	}
	if err := st.MarkQueued(ctx, []string{ids["sent"], ids["failed"], ids["template"], ids["queued"], ids["bob"], ids["journey"]}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, []string{ids["sent"], ids["failed"], ids["template"], ids["bob"], ids["journey"]}); err != nil {
		t.Fatal(err)
	}
	stale, err := st.Record(ctx, []store.Outcome{
		{ID: ids["sent"], Status: store.StatusSent, MessageID: "<m1@example.com>", Reply: "250 2.0.0 accepted for <" + zqEmail + ">"},
		{ID: ids["failed"], Status: store.StatusFailed, Reason: "rejected", Error: "550 5.1.1 <" + zqEmail + ">: no such user"},
		{ID: ids["template"], Status: store.StatusSkipped, Reason: "template error: welcome:3: " + zqName + " is not a number"},
		{ID: ids["bob"], Status: store.StatusSent, MessageID: "<m2@example.com>", Reply: "250 ok"},
		{ID: ids["journey"], Status: store.StatusSent, MessageID: "<m3@example.com>", Reply: "250 ok"},
	})
	if err != nil || len(stale) != 0 {
		t.Fatalf("Record = %v, %v", stale, err)
	}
	// Bounces: a hard one of the sent email quoting the address, and a
	// soft one of the address alone.
	limit := store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour}
	for _, b := range []store.Bounce{
		{Key: "dsn:1", Kind: store.BounceHard, Email: zqEmail, MessageID: "<m1@example.com>", Reason: "5.1.1 550 <" + zqEmail + ">: no such user",
			Source: "dsn", OccurredAt: ts("2026-05-17T09:00:00Z")},
		{Key: "webhook:2", Kind: store.BounceSoft, Email: zqEmail, Source: "webhook", OccurredAt: ts("2026-05-18T09:00:00Z")},
	} {
		if _, err := st.RecordBounce(ctx, b, limit); err != nil {
			t.Fatal(err)
		}
	}
	return ids
}

func TestEraseLeavesNothingPersonal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-05-01T00:00:00Z")
	st := clockStore(t, &now)
	ids := seedPerson(t, st, &now)
	// A link clicked in the sent email names the person.
	if _, err := st.Pool().Exec(ctx, `WITH t AS (INSERT INTO delivery_tracking (delivery_id, clicks) VALUES ($1, 1))
		INSERT INTO delivery_clicks (delivery_id, url, clicks) VALUES ($1, $2, 1)`, ids["sent"], "https://shop.example.com/cart?who="+zqID); err != nil {
		t.Fatal(err)
	}

	personal := []string{zqID, zqEmail, zqName, zqAttr, zqEventID, zqTicket}
	before := dumpTables(t, st)
	// The seed must put the strings where the erasure has to find them,
	// or this test could not fail.
	for _, table := range []string{"customers", "events", "deliveries", "journeys", "consent_changes", "suppressions",
		"opted_out_addresses", "customer_stages", "stage_changes", "delivery_clicks", "bounces"} {
		if len(findPersonal(map[string][]string{table: before[table]}, personal...)) == 0 {
			t.Errorf("before the erasure, table %s holds nothing of the person", table)
		}
	}
	countsBefore := countsByStatus(t, st)

	now = ts("2026-06-01T12:00:00Z")
	res, err := st.Erase(ctx, zqID, store.ErasedByAPI)
	if err != nil {
		t.Fatal(err)
	}
	want := store.Erasure{Customer: true, Deliveries: 6, Cancelled: 2, Events: 2, Journeys: 1, ConsentChanges: 3, StageChanges: 1}
	if res != want {
		t.Errorf("Erase = %+v\nwant   %+v", res, want)
	}

	if found := findPersonal(dumpTables(t, st), personal...); len(found) > 0 {
		t.Errorf("after the erasure, personal data is left:\n%s", strings.Join(found, "\n"))
	}

	// Counts per campaign and status are those of before, but for the two
	// deliveries no worker had claimed, now skipped.
	wantCounts := countsBefore
	wantCounts["winback/queued"]--
	wantCounts["winback/planned"]--
	wantCounts["winback/skipped"] += 2
	for k, v := range wantCounts {
		if v == 0 {
			delete(wantCounts, k)
		}
	}
	if got := countsByStatus(t, st); !reflect.DeepEqual(got, wantCounts) {
		t.Errorf("delivery counts after the erasure = %v, want %v", got, wantCounts)
	}
	for name, wantStatus := range map[string][2]string{
		"sent": {store.StatusSent, ""}, "failed": {store.StatusFailed, "rejected"}, "template": {store.StatusSkipped, "template error"},
		"queued": {store.StatusSkipped, "erased"}, "planned": {store.StatusSkipped, "erased"}, "journey": {store.StatusSent, ""},
	} {
		d := mustDelivery(t, st, ids[name])
		if d.Status != wantStatus[0] || d.Reason != wantStatus[1] || !store.IsErasedID(d.CustomerID) || d.LastError != "" || d.SMTPReply != "" {
			t.Errorf("%s delivery after the erasure: %+v", name, d)
		}
		if name == "journey" && (d.EventID == "" || !strings.HasPrefix(d.EventID, d.CustomerID+":")) {
			t.Errorf("journey delivery's event id %q, want the token's", d.EventID)
		}
	}
	if d := mustDelivery(t, st, ids["bob"]); d.CustomerID != "bob" || d.SMTPReply != "250 ok" {
		t.Errorf("bob's delivery changed: %+v", d)
	}
	js, err := st.Journeys(ctx, "journey", "")
	if err != nil || len(js) != 1 || js[0].Status != store.JourneyExited || !store.IsErasedID(js[0].CustomerID) {
		t.Errorf("journeys after the erasure: %+v, %v", js, err)
	}

	// The customer is gone: not found, not listed; bob is untouched.
	if _, err := st.Customer(ctx, zqID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Customer(%s) after the erasure: %v, want ErrNotFound", zqID, err)
	}
	if got := customers(t, st); len(got) != 1 || got["bob"].Attributes["plan"] != "basic" {
		t.Errorf("customers after the erasure: %v", got)
	}
	var log []string
	rows, _ := st.Pool().Query(ctx, `SELECT e::text FROM erasures e`)
	if log, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil ||
		!reflect.DeepEqual(log, []string{`(1,"2026-06-01 12:00:00+00",api,t,6,2,1,3,1)`}) {
		t.Errorf("erasure log: %q, %v", log, err)
	}

	// Erasing again, or an id never seen, is ErrNotFound and changes nothing.
	dump := dumpTables(t, st)
	for _, id := range []string{zqID, "nobody"} {
		if _, err := st.Erase(ctx, id, store.ErasedByCLI); !errors.Is(err, store.ErrNotFound) ||
			err.Error() != fmt.Sprintf("erase customer %q: not found", id) {
			t.Errorf("Erase(%s) again: %v, want ErrNotFound", id, err)
		}
	}
	if again := dumpTables(t, st); !reflect.DeepEqual(again, dump) {
		t.Errorf("a second erasure changed the database")
	}
	if _, err := st.Erase(ctx, "bob", "webhook"); err == nil || err.Error() != `erase customer "bob": unknown source "webhook"` {
		t.Errorf("Erase with an unknown source: %v", err)
	}
}

// TestErasedAddressIsSuppressed: a re-import of the address, under a new id
// or the old one and in any case, is left out of planning and suppressed
// at the claim.
func TestErasedAddressIsSuppressed(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-06-01T00:00:00Z")
	st := clockStore(t, &now)
	created := ts("2026-05-01T00:00:00Z")
	importCustomers(t, st,
		store.CustomerRecord{ID: zqID, Email: zqEmail, FirstName: zqName, Subscribed: true, CreatedAt: created},
		customer("bob", "bob@example.com", "2026-05-01T00:00:00Z"))
	if _, err := st.Erase(ctx, zqID, store.ErasedByCLI); err != nil {
		t.Fatal(err)
	}
	importCustomers(t, st,
		store.CustomerRecord{ID: "zq-again", Email: strings.ToUpper(zqEmail), FirstName: "Z", Subscribed: true, CreatedAt: created},
		store.CustomerRecord{ID: zqID, Email: zqEmail, FirstName: zqName, Subscribed: true, CreatedAt: created},
		customer("cy", "cy@example.com", "2026-05-01T00:00:00Z"))

	f := store.CandidateFilter{Campaign: "winback", At: ts("2026-06-02T09:00:00Z")}
	if got := keys(candidates(t, st, f)); !reflect.DeepEqual(got, []string{"bob", "cy"}) {
		t.Errorf("candidates = %v, want bob and cy", got)
	}
	f.Journey = true
	if got := keys(candidates(t, st, f)); !reflect.DeepEqual(got, []string{"bob", "cy"}) {
		t.Errorf("journey candidates = %v, want bob and cy", got)
	}
	all := customers(t, st)
	for id, want := range map[string]bool{"zq-again": true, zqID: true, "bob": false, "cy": false} {
		if all[id].Suppressed != want {
			t.Errorf("customer %s: suppressed = %t, want %t", id, all[id].Suppressed, want)
		}
	}
	// A delivery planned before the re-import reached the list (or by a
	// path that does not read candidates) is suppressed when claimed.
	at := ts("2026-06-02T09:00:00Z")
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("winback", "zq-again", at), newDelivery("winback", zqID, at),
		newDelivery("winback", "bob", at)})
	if err != nil || len(refs) != 3 {
		t.Fatal(refs, err)
	}
	claims, err := st.Claim(ctx, []string{refs[0].ID, refs[1].ID, refs[2].ID})
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []bool{true, true, false} {
		if c := claims[i]; !c.Claimed || !c.CustomerFound || c.Customer.Suppressed != want {
			t.Errorf("claim of %s: claimed %t found %t suppressed %t, want suppressed %t", c.Customer.ID, c.Claimed,
				c.CustomerFound, c.Customer.Suppressed, want)
		}
	}
	c, err := st.Customer(ctx, "zq-again")
	if err != nil || !c.Suppressed {
		t.Errorf("Customer(zq-again) = %+v, %v; want suppressed", c, err)
	}
	// Triggered campaigns see the new record's events with the customer
	// suppressed; the erased person's own events start nothing.
	importEvents(t, st,
		store.EventRecord{CustomerID: "zq-again", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T08:00:00Z")},
		store.EventRecord{CustomerID: "bob", Type: "cart_abandoned", OccurredAt: ts("2026-06-02T08:00:00Z")})
	due := map[string]bool{}
	err = st.DueEntries(ctx, store.DueFilter{Campaign: "cart", Event: "cart_abandoned", Now: at, Within: 24 * time.Hour},
		func(e *store.DueEntry) error {
			due[e.Customer.ID] = e.Customer.Suppressed
			return nil
		})
	if err != nil || !reflect.DeepEqual(due, map[string]bool{"zq-again": true, "bob": false}) {
		t.Errorf("due entries (customer: suppressed) = %v, %v", due, err)
	}
}

// TestEraseWaitsForASend: a delivery a worker claimed before the erasure
// is waited for; what its outcome wrote about the person is blanked.
func TestEraseWaitsForASend(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.StoreConfig(t, store.Config{ErasureWait: time.Minute})
	importCustomers(t, st, store.CustomerRecord{ID: zqID, Email: zqEmail, FirstName: zqName, Subscribed: true,
		CreatedAt: ts("2026-05-01T00:00:00Z")})
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("winback", zqID, ts("2026-06-01T09:00:00Z"))})
	if err != nil {
		t.Fatal(err)
	}
	id := refs[0].ID
	claims, err := st.Claim(ctx, []string{id})
	if err != nil || !claims[0].Claimed {
		t.Fatal(claims, err)
	}

	type result struct {
		res store.Erasure
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := st.Erase(ctx, zqID, store.ErasedByAPI)
		done <- result{res, err}
	}()
	// The erasure has committed once the delivery carries the token; it
	// must then wait for the worker's outcome.
	deadline := time.Now().Add(30 * time.Second)
	for !store.IsErasedID(mustDelivery(t, st, id).CustomerID) {
		if time.Now().After(deadline) {
			t.Fatal("the erasure did not commit within 30s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("Erase returned before the send finished: %+v, %v", r.res, r.err)
	default:
	}
	stale, err := st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusSent, MessageID: "<m@example.com>",
		Reply: "250 accepted for " + zqEmail, Attempt: 1}})
	if err != nil || len(stale) != 0 {
		t.Fatal(stale, err)
	}
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Erase still waiting 30s after the send finished")
	}
	if r.err != nil || r.res.Sending != 1 || r.res.StillSending != 0 || r.res.Deliveries != 1 || r.res.Cancelled != 0 {
		t.Errorf("Erase = %+v, %v", r.res, r.err)
	}
	if d := mustDelivery(t, st, id); d.Status != store.StatusSent || d.SMTPReply != "" || d.MessageID != "<m@example.com>" {
		t.Errorf("delivery after the erasure: %+v", d)
	}
	if found := findPersonal(dumpTables(t, st), zqID, zqEmail, zqName); len(found) > 0 {
		t.Errorf("personal data left:\n%s", strings.Join(found, "\n"))
	}
}

// TestEraseStopsWaiting: a delivery left in sending by a worker that died
// holds the erasure up for Config.ErasureWait only, and is reported.
func TestEraseStopsWaiting(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := testenv.StoreConfig(t, store.Config{ErasureWait: 200 * time.Millisecond})
	importCustomers(t, st, customer(zqID, zqEmail, "2026-05-01T00:00:00Z"))
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery("winback", zqID, ts("2026-06-01T09:00:00Z"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Claim(ctx, []string{refs[0].ID}); err != nil {
		t.Fatal(err)
	}
	res, err := st.Erase(ctx, zqID, store.ErasedByCLI)
	if err != nil || res.Sending != 1 || res.StillSending != 1 {
		t.Errorf("Erase = %+v, %v; want one delivery still sending", res, err)
	}
	// The worker that claims it again finds no customer.
	claims, err := st.Claim(ctx, []string{refs[0].ID})
	if err != nil || !claims[0].Claimed || claims[0].CustomerFound || !store.IsErasedID(claims[0].Customer.ID) {
		t.Errorf("claim after the erasure: %+v, %v", claims, err)
	}
}

// TestLateNoticesAfterErasure: a complaint and a click that arrive after
// the person was erased write nothing personal back: the address stays a
// hash, the link is counted but not kept.
func TestLateNoticesAfterErasure(t *testing.T) {
	ctx := context.Background()
	now := ts("2026-05-01T00:00:00Z")
	st := clockStore(t, &now)
	ids := seedPerson(t, st, &now)
	now = ts("2026-06-01T12:00:00Z")
	if _, err := st.Erase(ctx, zqID, store.ErasedByAPI); err != nil {
		t.Fatal(err)
	}
	now = ts("2026-06-02T12:00:00Z")
	res, err := st.RecordBounce(ctx, store.Bounce{Key: "fbl:late", Kind: store.BounceComplaint, Email: strings.ToUpper(zqEmail),
		MessageID: "<m1@example.com>", Source: "ses", OccurredAt: now}, store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour})
	if err != nil || !res.Erased || res.Suppressed {
		t.Errorf("late complaint: %+v %v, want erased and nothing recorded", res, err)
	}
	counts, err := st.RecordHits(ctx, []store.Hit{{Delivery: uuid.MustParse(ids["sent"]), Click: true,
		URL: "https://shop.example.com/cart?who=" + zqID, At: now}})
	if err != nil || len(counts) != 1 || counts[0].N != 1 {
		t.Errorf("late click: %+v %v, want it counted", counts, err)
	}
	for _, f := range findPersonal(dumpTables(t, st), zqEmail, zqID) {
		t.Errorf("after late notices: %s", f)
	}
}
