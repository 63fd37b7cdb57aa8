package worker_test

import (
	"context"
	"testing"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/store"
)

// TestExitWhenCheckedBeforeSend: a triggered email whose exit_when became
// true between planning and sending (the customer bought after leaving
// the cart) is skipped with reason exit_when; another is sent.
func TestExitWhenCheckedBeforeSend(t *testing.T) {
	ctx := context.Background()
	p := newPipeline(t)
	welcome := p.campaign("welcome")
	welcome.Schedule, welcome.Cron = "", nil
	welcome.Trigger = &campaign.Trigger{Event: "cart_abandoned", Within: 24 * time.Hour}
	welcome.ExitWhen = "last_purchase_at != nil && last_purchase_at > event.occurred_at"
	rules, err := audience.Compile(p.campaigns)
	if err != nil {
		t.Fatal(err)
	}
	p.rules = rules

	importEvents := func(evs ...store.EventRecord) {
		t.Helper()
		im, err := p.st.BeginImport(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer im.Rollback(ctx)
		if _, err := im.Events(ctx, evs); err != nil {
			t.Fatal(err)
		}
		if err := im.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	importEvents(
		store.EventRecord{ID: "cart-ann", CustomerID: "c1", Type: "cart_abandoned", OccurredAt: at.Add(-2 * time.Hour)},
		store.EventRecord{ID: "cart-bo", CustomerID: "c2", Type: "cart_abandoned", OccurredAt: at.Add(-2 * time.Hour)},
	)
	p.plant(
		store.NewDelivery{Campaign: "welcome", CustomerID: "c1", Stage: "new", Template: "welcome", EventID: "cart-ann"},
		store.NewDelivery{Campaign: "welcome", CustomerID: "c2", Stage: "at_risk", Template: "welcome", EventID: "cart-bo"},
	)
	// Bo buys after planning, before the worker gets to the email.
	amount := 25.0
	importEvents(store.EventRecord{ID: "order-bo", CustomerID: "c2", Type: "purchase", OccurredAt: at.Add(-time.Hour), Amount: &amount})

	p.startWorker()
	ds := p.waitFinished()
	if d := ds["welcome/c2"]; d.Status != store.StatusSkipped || d.Reason != "exit_when" {
		t.Errorf("welcome/c2: %s %q, want skipped exit_when", d.Status, d.Reason)
	}
	if d := ds["welcome/c1"]; d.Status != store.StatusSent {
		t.Errorf("welcome/c1: %s %q, want sent", d.Status, d.Reason)
	}
	if n := p.smtp.Count(); n != 1 {
		t.Errorf("SMTP server got %d messages, want 1", n)
	}
}
