package worker_test

import (
	"context"
	"strings"
	"testing"

	"nurture/internal/importer"
	"nurture/internal/store"
)

// TestErasedBeforeSending: deliveries queued for a person who is then
// erased are not sent, and neither is one whose customer takes the erased
// address after planning: the worker's check at send time sees it.
func TestErasedBeforeSending(t *testing.T) {
	p := newPipeline(t)
	if n := p.tick(); n != 3 {
		t.Fatalf("tick planned %d deliveries, want 3", n)
	}
	ctx := context.Background()
	if _, err := p.st.Erase(ctx, "c1", store.ErasedByAPI); err != nil {
		t.Fatal(err)
	}
	// The CRM moves Flo's record to the erased address after planning.
	line := `{"id":"c6","email":"ANN@example.com","first_name":"Flo","created_at":"2026-11-20T10:00:00Z"}` + "\n"
	if res, err := importer.Customers(ctx, p.st, strings.NewReader(line), "c.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatal(err, res.Problems)
	}
	p.startWorker()
	ds := p.waitFinished()
	if len(ds) != 3 {
		t.Fatalf("deliveries: %+v", ds)
	}
	for k, d := range ds {
		if strings.HasPrefix(k, "welcome/"+store.ErasedPrefix) {
			k = "welcome/(erased)"
		}
		want, ok := map[string][2]string{
			"welcome/(erased)": {store.StatusSkipped, "erased"},
			"welcome/c6":       {store.StatusSkipped, "suppressed"},
			"nudge/c2":         {store.StatusSent, ""},
		}[k]
		if !ok || d.Status != want[0] || d.Reason != want[1] {
			t.Errorf("%s: status %s reason %q, want %v", k, d.Status, d.Reason, want)
		}
	}
	equalLines(t, "received", p.received(), []string{"bo@example.com|We miss you, Bo|It has been 35 days, Bo."})
}
