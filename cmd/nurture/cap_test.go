package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"nurture/internal/store"
)

// TestCapAcrossProcesses: two run-once processes plan two campaigns for
// the same customers at the same instant, under a global cap of one email
// a week. Whatever their interleaving, no customer gets two emails; the
// loser of each race is recorded skipped with reason "frequency cap".
func TestCapAcrossProcesses(t *testing.T) {
	env := fixtureEnv(t)
	dir := t.TempDir()
	lc, err := os.ReadFile("../../campaigns/lifecycle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{
		"lifecycle.yaml": string(lc),
		"settings.yaml":  "frequency_cap: {max: 1, per: 168h}\n",
		"alpha.yaml":     "name: alpha\nschedule: \"0 9 * * *\"\nemail:\n  template: welcome-1\n",
		"beta.yaml":      "name: beta\nschedule: \"0 9 * * *\"\nemail:\n  template: welcome-2\n",
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env["CAMPAIGNS_DIR"], env["TEMPLATES_DIR"] = dir, "../../templates"
	at := time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	importSample(t, env, 2000, 3, at)
	procs := []*proc{
		startProc(t, env, "run-once", "--at", at.Format(time.RFC3339), "--campaign", "alpha"),
		startProc(t, env, "run-once", "--at", at.Format(time.RFC3339), "--campaign", "beta"),
	}
	for _, p := range procs {
		if code := p.wait(2 * time.Minute); code != 0 {
			t.Fatalf("run-once exited %d:\n%s", code, p.output())
		}
	}
	st := openStore(t, env)
	emails, capped, rows := map[string]int{}, 0, 0
	err = st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		rows++
		switch {
		case d.Status == store.StatusSkipped && d.Reason == "frequency cap":
			capped++
		case d.Status == store.StatusQueued:
			emails[d.CustomerID]++
		default:
			t.Errorf("delivery %s to %s: %s %q", d.Campaign, d.CustomerID, d.Status, d.Reason)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, n := range emails {
		if n != 1 {
			t.Errorf("customer %s has %d emails within the week, want 1", id, n)
		}
	}
	if rows < 1000 || capped != rows/2 || len(emails) != rows/2 {
		t.Errorf("%d rows: %d customers emailed, %d capped; want half each", rows, len(emails), capped)
	}
}
