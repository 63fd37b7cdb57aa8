package store_test

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"nurture/internal/store"
)

// sentDelivery plans, claims and records as sent one delivery of campaign
// to customer, with the Message-ID nurture gives it (<id@example.com>),
// and returns its id and Message-ID.
func sentDelivery(t *testing.T, st *store.Store, campaign, customer string) (id, msgID string) {
	t.Helper()
	ctx := context.Background()
	refs, err := st.InsertDeliveries(ctx, []store.NewDelivery{newDelivery(campaign, customer, ts("2026-06-01T09:00:00Z"))})
	if err != nil || len(refs) != 1 {
		t.Fatalf("insert: %v, %v", refs, err)
	}
	id = refs[0].ID
	msgID = "<" + id + "@example.com>"
	if _, err := st.Claim(ctx, []string{id}); err != nil {
		t.Fatal(err)
	}
	if stale, err := st.Record(ctx, []store.Outcome{{ID: id, Status: store.StatusSent, MessageID: msgID}}); err != nil || len(stale) != 0 {
		t.Fatalf("record: %v, %v", stale, err)
	}
	return id, msgID
}

func suppressionsOf(t *testing.T, st *store.Store) map[string]string {
	t.Helper()
	list, err := st.Suppressions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, sp := range list {
		out[sp.Email] = sp.Reason + "/" + sp.Source
	}
	return out
}

func TestSoftBouncesSuppressAtTheLimit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-07-01T12:00:00Z")
	st := clockStore(t, &now)
	limit := store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour}
	soft := func(key string, at time.Time) store.BounceResult {
		t.Helper()
		res, err := st.RecordBounce(ctx, store.Bounce{Key: key, Kind: store.BounceSoft, Email: "Ann@Example.com", Reason: "mailbox full", Source: "webhook", OccurredAt: at}, limit)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	// One from 31 days ago is outside the 30 days counted.
	soft("old", now.Add(-31*24*time.Hour))
	soft("s1", now.Add(-20*24*time.Hour))
	if res := soft("s2", now.Add(-time.Hour)); res.Suppressed {
		t.Fatalf("2 soft bounces within 720h (and one older): suppressed")
	}
	if got := suppressionsOf(t, st); len(got) != 0 {
		t.Fatalf("after 2: suppressions %v, want none", got)
	}
	if res := soft("s2", now.Add(-time.Hour)); !res.Duplicate || res.Suppressed {
		t.Fatalf("s2 again = %+v, want a duplicate that does nothing", res)
	}
	if got := suppressionsOf(t, st); len(got) != 0 {
		t.Fatalf("after s2 twice: suppressions %v, want none", got)
	}
	if res := soft("s3", now); !res.Suppressed {
		t.Fatalf("the third soft bounce within 720h did not suppress: %+v", res)
	}
	if got, want := suppressionsOf(t, st), map[string]string{"ann@example.com": "bounce/webhook"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("suppressions %v, want %v", got, want)
	}
}

func TestHardBounceAndComplaint(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-07-01T12:00:00Z")
	st := clockStore(t, &now)
	importCustomers(t, st, customer("c1", "ann@example.com", "2026-01-01T00:00:00Z"), customer("c2", "bob@example.com", "2026-01-01T00:00:00Z"),
		customer("c3", "Bob@Example.com", "2026-01-01T00:00:00Z"))
	d1, msg1 := sentDelivery(t, st, "winback", "c1")
	limit := store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour}

	// A soft bounce then a hard one on the same delivery: the hard one wins.
	at1, at2 := ts("2026-07-01T10:00:00Z"), ts("2026-07-01T11:00:00Z")
	res, err := st.RecordBounce(ctx, store.Bounce{Key: "k1", Kind: store.BounceSoft, Email: "ann@example.com", MessageID: msg1, Source: "dsn", OccurredAt: at1}, limit)
	if err != nil || res.DeliveryID != d1 || res.CustomerID != "c1" || res.Campaign != "winback" || res.Suppressed {
		t.Fatalf("soft = %+v, %v", res, err)
	}
	res, err = st.RecordBounce(ctx, store.Bounce{Key: "k2", Kind: store.BounceHard, Email: "ann@example.com", MessageID: msg1, Reason: "5.1.1", Source: "dsn", OccurredAt: at2}, limit)
	if err != nil || res.DeliveryID != d1 || !res.Suppressed || len(res.Unsubscribed) != 0 {
		t.Fatalf("hard = %+v, %v", res, err)
	}
	// A complaint without a Message-ID unsubscribes every customer with the address.
	res, err = st.RecordBounce(ctx, store.Bounce{Key: "k3", Kind: store.BounceComplaint, Email: "BOB@example.com", Source: "ses", OccurredAt: at2}, limit)
	if err != nil || res.DeliveryID != "" || !res.Suppressed || !reflect.DeepEqual(res.Unsubscribed, []string{"c2", "c3"}) {
		t.Fatalf("complaint = %+v, %v", res, err)
	}
	// A complaint about a delivery unsubscribes its customer with its campaign.
	res, err = st.RecordBounce(ctx, store.Bounce{Key: "k4", Kind: store.BounceComplaint, Email: "ann@example.com", MessageID: msg1, Source: "ses", OccurredAt: now}, limit)
	if err != nil || res.DeliveryID != d1 || res.Suppressed || !reflect.DeepEqual(res.Unsubscribed, []string{"c1"}) {
		t.Fatalf("complaint on d1 = %+v, %v", res, err)
	}
	assertHistory(t, st, "c1", store.ConsentChange{Subscribed: false, Source: "complaint", Campaign: "winback", ChangedAt: now})
	assertHistory(t, st, "c3", store.ConsentChange{Subscribed: false, Source: "complaint", ChangedAt: now})
	if got, want := suppressionsOf(t, st), map[string]string{"ann@example.com": "bounce/dsn", "bob@example.com": "complaint/ses"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("suppressions %v, want %v", got, want)
	}
	got, err := st.DeliveryBounces(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.DeliveryBounce{{DeliveryID: d1, Bounce: "hard", BouncedAt: &at2, ComplainedAt: &now}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("delivery bounces %+v, want %+v", got, want)
	}
	// The report counts the delivery as bounced and complained about.
	report, err := st.Report(ctx, store.ReportFilter{})
	if err != nil || len(report) != 1 || report[0].Campaign != "winback" || report[0].Status != store.StatusSent ||
		report[0].Bounced != 1 || report[0].Complained != 1 {
		t.Fatalf("report %+v, %v", report, err)
	}
	rows, err := st.Bounces(ctx)
	if err != nil || len(rows) != 4 || rows[0].DeliveryID != d1 || rows[2].DeliveryID != "" || rows[2].Email != "bob@example.com" || !rows[3].ReceivedAt.Equal(now) {
		t.Fatalf("bounces %+v, %v", rows, err)
	}
}

// TestBounceLinksByMessageID: a notice is linked to the delivery whose id
// its Message-ID carries only when the whole Message-ID is the one that
// delivery recorded; anything else is kept unlinked.
func TestBounceLinksByMessageID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	now := ts("2026-07-01T12:00:00Z")
	st := clockStore(t, &now)
	importCustomers(t, st, customer("c1", "ann@example.com", "2026-01-01T00:00:00Z"))
	d1, msg1 := sentDelivery(t, st, "winback", "c1")
	limit := store.SoftBounceLimit{Count: 3, Per: 720 * time.Hour}
	for i, tc := range []struct{ msgID, want string }{
		{"<" + d1 + "@other.example>", ""},                // the id, another domain
		{"<" + strings.ToUpper(d1) + "@example.com>", ""}, // not as recorded
		{"<d1@example.com>", ""},                          // not one of ours
		{"<" + d1 + "@example.com", ""},                   // cut short
		{msg1, d1},
	} {
		res, err := st.RecordBounce(ctx, store.Bounce{Key: fmt.Sprintf("k%d", i), Kind: store.BounceSoft, Email: "ann@example.com",
			MessageID: tc.msgID, Source: "dsn", OccurredAt: now}, limit)
		if err != nil || res.DeliveryID != tc.want {
			t.Errorf("Message-ID %q: linked to %q (%v), want %q", tc.msgID, res.DeliveryID, err, tc.want)
		}
	}
}
