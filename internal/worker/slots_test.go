package worker_test

import (
	"context"
	"io"
	"log/slog"
	"sort"
	"strings"
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

// TestRecordingFreesTheSlot runs a worker with one delivery in flight and
// holds back the statements that record outcomes: the second customer is
// still claimed and sent, because a delivery waiting only for its outcome
// to be written takes a place of the other bound instead. The third is
// not: both bounds are full. Once the statements go, all three rows are
// sent and each customer has exactly one email.
func TestRecordingFreesTheSlot(t *testing.T) {
	ctx := context.Background()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	st := testenv.Store(t)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	c := planWelcome(t, st, queue.NewClient(rdb, queue.Config{MaxRetry: 3}), 3, log)
	smtp := smtptest.Start(t)
	sender, err := mail.NewSender(ctx, mail.Config{URL: smtp.URL(), Conns: 2}, log)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{Now: func() time.Time { return at }, InFlight: 1}, st, queue.NewJournal(rdb), sender,
		&worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates}, nil, log)
	gate := make(chan struct{})
	worker.GateRecords(w, gate)
	opened := false
	defer func() {
		if !opened {
			close(gate) // let the worker stop
		}
	}()
	runWorker(t, rdb, w, sender, worker.ServerConfig{Concurrency: 3, Queues: []string{"default"},
		PollInterval: 20 * time.Millisecond}, log)

	waitUntil(t, 10*time.Second, "two emails sent while no outcome is recorded", func() bool { return smtp.Count() == 2 })
	// Nothing to wait for: the third must not start, and a moment shows a
	// worker that would start it.
	time.Sleep(300 * time.Millisecond)
	statuses := map[string]int{}
	err = st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		statuses[d.Status]++
		return nil
	})
	if err != nil || statuses[store.StatusSending] != 2 || statuses[store.StatusQueued] != 1 || smtp.Count() != 2 {
		t.Fatalf("before the outcomes are written: %v (%v), %d emails; want 2 sending, 1 queued, 2 emails", statuses, err, smtp.Count())
	}

	close(gate)
	opened = true
	waitUntil(t, 10*time.Second, "every delivery recorded sent", func() bool {
		sent := 0
		err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
			if d.Status == store.StatusSent {
				sent++
			}
			return nil
		})
		return err == nil && sent == 3
	})
	var to []string
	for _, m := range smtp.Messages() {
		to = append(to, strings.Join(m.To, ","))
	}
	sort.Strings(to)
	if got, want := strings.Join(to, " "), "c000@example.com c001@example.com c002@example.com"; got != want {
		t.Errorf("messages to %q, want %q", got, want)
	}
}
