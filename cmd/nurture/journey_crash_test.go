package main

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"nurture/internal/smtptest"
	"nurture/internal/store"
)

// TestJourneyAcrossKilledWorker runs a two-step journey through a worker
// killed with SIGKILL mid-send and restarted, and through two schedulers
// (run-once processes) planning the second step at once: every customer
// gets step 1 and then step 2, each once (a resend only of an email in
// flight at the kill, with its Message-ID), and every journey finishes.
func TestJourneyAcrossKilledWorker(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Asynq to recover the dead worker's tasks (about a minute)")
	}
	env := fixtureEnv(t)
	dir := t.TempDir()
	lc, err := os.ReadFile("../../campaigns/lifecycle.yaml")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"lifecycle.yaml": string(lc),
		"series.yaml": "name: series\nschedule: \"0 * * * *\"\nfrequency:\n  max_entries: 1\n" +
			"steps:\n  - template: welcome-1\n  - template: welcome-2\n    after: 1h\n",
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	env["CAMPAIGNS_DIR"], env["TEMPLATES_DIR"] = dir, "../../templates"
	// Entries three hours ago, step 2 due two hours ago: every send time
	// is past, so the worker (on the wall clock) sends at once.
	start := time.Now().UTC().Truncate(time.Hour).Add(-3 * time.Hour)
	importSample(t, env, 300, 7, start)
	if _, stderr, code := cli(t, env, "run-once", "--at", start.Format(time.RFC3339)); code != 0 {
		t.Fatal(stderr)
	}
	st := openStore(t, env)
	byStep := func() (total int, sent map[int]int, inFlight map[string]bool) {
		sent, inFlight = map[int]int{}, map[string]bool{}
		err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
			total++
			switch d.Status {
			case store.StatusSent:
				sent[d.Step]++
			case store.StatusSending:
				inFlight[d.ID] = true
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return total, sent, inFlight
	}
	entries, _, _ := byStep()
	if entries < 200 {
		t.Fatalf("only %d entries planned", entries)
	}

	sink := smtptest.Start(t, smtptest.Latency(15*time.Millisecond))
	env["SMTP_URL"], env["SMTP_CONNS"], env["WORKER_CONCURRENCY"] = sink.URL(), "4", "16"
	w := startProc(t, env, "serve", "--role", "worker")
	sink.WaitFor(t, entries/3, 60*time.Second)
	w.cmd.Process.Signal(syscall.SIGKILL)
	w.wait(10 * time.Second)
	_, sent, inFlight := byStep()
	if sent[1] == entries {
		t.Fatal("every step 1 was sent before the kill; the test proves nothing")
	}
	startProc(t, env, "serve", "--role", "worker")
	waitSent := func(step, want int) {
		t.Helper()
		deadline := time.Now().Add(4 * time.Minute)
		for {
			if _, sent, _ := byStep(); sent[step] == want {
				return
			}
			if time.Now().After(deadline) {
				_, sent, _ := byStep()
				t.Fatalf("step %d: %d of %d sent", step, sent[step], want)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitSent(1, entries)

	// Two schedulers plan the due step 2 at the same instant.
	later := start.Add(2 * time.Hour).Format(time.RFC3339)
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, stderr, code := cli(t, env, "run-once", "--at", later); code != 0 {
				t.Error(stderr)
			}
		}()
	}
	wg.Wait()
	if total, _, _ := byStep(); total != 2*entries {
		t.Fatalf("%d deliveries after step 2 was planned, want %d", total, 2*entries)
	}
	waitSent(2, entries)
	if _, stderr, code := cli(t, env, "run-once", "--at", start.Add(3*time.Hour).Format(time.RFC3339)); code != 0 {
		t.Fatal(stderr)
	}
	js, err := st.Journeys(context.Background(), "series", "")
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range js {
		if j.Status != store.JourneyFinished || j.Step != 2 {
			t.Errorf("journey of %s: %s at step %d, want finished at step 2", j.CustomerID, j.Status, j.Step)
		}
	}
	if len(js) != entries {
		t.Errorf("%d journeys, want %d", len(js), entries)
	}

	// Each delivery's message arrived; twice only if it was in flight at
	// the kill.
	received := map[string]int{}
	for _, m := range sink.Messages() {
		received[m.MessageID]++
	}
	err = st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		switch n := received[d.MessageID]; {
		case n == 0:
			t.Errorf("step %d to %s is sent but never arrived", d.Step, d.CustomerID)
		case n > 1 && !inFlight[d.ID]:
			t.Errorf("step %d to %s arrived %d times but was not in flight at the kill", d.Step, d.CustomerID, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(received) != 2*entries {
		t.Errorf("%d distinct messages, want %d", len(received), 2*entries)
	}
}
