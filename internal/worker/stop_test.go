package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/importer"
	"nurture/internal/mail"
	"nurture/internal/planner"
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
	var lines strings.Builder
	for i := range customers {
		fmt.Fprintf(&lines, `{"id":"c%03d","email":"c%03d@example.com","first_name":"C%d","created_at":"%s"}`+"\n",
			i, i, i, at.Add(-24*time.Hour).Format(time.RFC3339))
	}
	if res, err := importer.Customers(ctx, st, strings.NewReader(lines.String()), "customers.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatalf("import: %v %v", err, res.Problems)
	}
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	q := queue.NewClient(rdb, queue.Config{MaxRetry: 3, Batch: 100, Spread: 1})
	c, err := content.Load(testenv.Fixture("campaigns"), testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := planner.New(st, log).Tick(ctx, c.Rules, c.Rules.Target("welcome"), at, q, planner.TickOptions{}); err != nil || res.Planned != customers {
		t.Fatalf("tick planned %d (%v), want %d", res.Planned, err, customers)
	}
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
