package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/mail"
	"nurture/internal/queue"
	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/worker"
)

// TestStoppingWorkerLeavesTheRestOfABatch stops a worker while it sends a
// batch of 40 deliveries two at a time: it finishes the sends under way
// and starts no more, leaving the rest unclaimed for the batch's next run,
// which another worker makes; every customer gets exactly one email.
func TestStoppingWorkerLeavesTheRestOfABatch(t *testing.T) {
	const customers = 40
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := testenv.Store(t)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	c := planWelcome(t, st, queue.NewClient(rdb, queue.Config{MaxRetry: 3, Batch: 100, Spread: 1}), customers, log)
	smtp := smtptest.Start(t, smtptest.Latency(100*time.Millisecond))
	start := func() (*worker.Server, *worker.Worker, mail.Sender) {
		sender, err := mail.NewSender(ctx, mail.Config{URL: smtp.URL(), Conns: 2}, log)
		if err != nil {
			t.Fatal(err)
		}
		w := worker.New(worker.Config{Now: func() time.Time { return at }, InFlight: 2}, st, queue.NewJournal(rdb), sender,
			&worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates}, nil, log)
		if err := w.Start(ctx); err != nil {
			t.Fatal(err)
		}
		srv := worker.NewServer(rdb, worker.ServerConfig{Concurrency: 2, Queues: []string{"default"},
			PollInterval: 20 * time.Millisecond, RetryBase: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond}, log)
		if err := srv.Start(w); err != nil {
			t.Fatal(err)
		}
		return srv, w, sender
	}
	statuses := func() map[string]int {
		by := map[string]int{}
		err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
			by[fmt.Sprintf("%s attempts=%d", d.Status, d.Attempts)]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return by
	}

	srv, w, sender := start()
	waitUntil(t, time.Minute, "4 messages sent", func() bool { return smtp.Count() >= 4 })
	srv.Shutdown()
	w.Close()
	sender.Close()
	// Stopped: what was under way finished, nothing else was claimed.
	by := statuses()
	sent := by["sent attempts=1"]
	if sent < 4 || sent == customers || by["queued attempts=0"] != customers-sent || smtp.Count() != sent {
		t.Fatalf("after the stop: %v with %d messages at the server; want some sent, the rest queued and never claimed", by, smtp.Count())
	}

	srv, w, sender = start()
	defer func() {
		srv.Shutdown()
		w.Close()
		sender.Close()
	}()
	waitUntil(t, time.Minute, "every delivery sent", func() bool { return statuses()["sent attempts=1"] == customers })
	perID := map[string]int{}
	for _, m := range smtp.Messages() {
		perID[m.MessageID]++
	}
	if len(perID) != customers || smtp.Count() != customers {
		t.Errorf("%d messages with %d Message-IDs, want %d each", smtp.Count(), len(perID), customers)
	}
}
