package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"nurture/internal/sample"
	"nurture/internal/smtptest"
	"nurture/internal/store"
)

// TestWorkerKilledMidBatch kills a worker process with SIGKILL while it
// sends, restarts it, and checks that every delivery ends sent and that
// the only emails received twice are ones that were in flight at the kill.
func TestWorkerKilledMidBatch(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Asynq to recover the dead worker's tasks (about a minute)")
	}
	env := fixtureEnv(t)
	env["CAMPAIGNS_DIR"], env["TEMPLATES_DIR"] = sendNowCampaigns(t), "../../templates"
	at := time.Now().UTC().Truncate(time.Second)

	importSample(t, env, 600, 7, at)
	if _, stderr, code := cli(t, env, "run-once", "--at", at.Format(time.RFC3339)); code != 0 {
		t.Fatal(stderr)
	}

	st := openStore(t, env)
	statuses := func() (total int, by map[string]int) {
		counts, err := st.DeliveryCounts(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		by = map[string]int{}
		for _, c := range counts {
			by[c.Status] += c.N
			total += c.N
		}
		return total, by
	}
	total, _ := statuses()
	if total < 300 {
		t.Fatalf("only %d deliveries planned", total)
	}

	sink := smtptest.Start(t, smtptest.Latency(15*time.Millisecond))
	env["SMTP_URL"] = sink.URL()
	env["SMTP_CONNS"] = "4"
	env["WORKER_CONCURRENCY"] = "16"
	w := startProc(t, env, "serve", "--role", "worker")
	sink.WaitFor(t, total/3, 60*time.Second)
	w.cmd.Process.Signal(syscall.SIGKILL)
	w.wait(10 * time.Second)

	// What was in flight at the kill: claimed, not recorded.
	inFlight := map[string]bool{}
	err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		if d.Status == store.StatusSending {
			inFlight[d.ID] = true
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_, by := statuses()
	if by[store.StatusSent] == total {
		t.Fatal("every delivery was sent before the kill; the test proves nothing")
	}
	t.Logf("killed with %d sent, %d in flight, %d received", by[store.StatusSent], by[store.StatusSending], sink.Count())

	startProc(t, env, "serve", "--role", "worker")
	deadline := time.Now().Add(4 * time.Minute)
	for {
		_, by = statuses()
		if by[store.StatusSent] == total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after restart: %v of %d", by, total)
		}
		time.Sleep(200 * time.Millisecond)
	}

	received := map[string]int{}
	for _, m := range sink.Messages() {
		received[m.MessageID]++
	}
	dups := 0
	err = st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		n := received[d.MessageID]
		switch {
		case n == 0:
			t.Errorf("delivery %s is sent but its message %s never arrived", d.ID, d.MessageID)
		case n > 1 && !inFlight[d.ID]:
			t.Errorf("message %s arrived %d times but was not in flight at the kill", d.MessageID, n)
		case n > 2:
			t.Errorf("message %s arrived %d times", d.MessageID, n)
		case n == 2:
			dups++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(received) != total {
		t.Errorf("%d distinct messages received, want %d", len(received), total)
	}
	t.Logf("%d deliveries, %d received twice (of %d in flight at the kill)", total, dups, len(inFlight))
}

// sendNowCampaigns copies the shipped lifecycle and the six scheduled
// single-email campaigns into a directory of their own, without
// settings.yaml (its send window would hold emails until working hours)
// and without winback's experiment (held-out entries are never sent): a
// tick at any instant plans emails that go out at once.
func sendNowCampaigns(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"lifecycle", "at-risk-nudge", "loyalty-reward", "onboarding", "referral-ask", "thank-you", "winback"} {
		src, err := os.ReadFile(filepath.Join("../../campaigns", name+".yaml"))
		if err != nil {
			t.Fatal(err)
		}
		text := string(src)
		if name == "winback" {
			i := strings.Index(text, "\n# holdout:")
			if i < 0 {
				t.Fatal("campaigns/winback.yaml: no holdout comment to cut the experiment at")
			}
			text = text[:i+1]
		}
		text = strings.Replace(text, "enabled: false", "enabled: true", 1)
		if err := os.WriteFile(filepath.Join(dir, name+".yaml"), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// importSample imports a generated audience of n customers (and their
// events) as of at, with seed.
func importSample(t *testing.T, env map[string]string, n int, seed uint64, at time.Time) {
	t.Helper()
	dir := t.TempDir()
	cpath, epath := filepath.Join(dir, "customers.jsonl"), filepath.Join(dir, "events.jsonl")
	if err := sample.WriteFiles(cpath, epath, n, seed, at); err != nil {
		t.Fatal(err)
	}
	for _, args := range [][]string{{"customers", cpath}, {"events", epath}} {
		if _, stderr, code := cli(t, env, "import", args[0], args[1]); code != 0 {
			t.Fatal(stderr)
		}
	}
}
