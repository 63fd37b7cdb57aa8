package worker_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"nurture/internal/mail"
	"nurture/internal/queue"
	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/worker"
)

// syncBuffer is a log sink safe for concurrent handlers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSMTPTroubleIsLoggedCountedAndRecovers puts the SMTP server behind a
// front that refuses, then hangs, then drops connections, and finally lets
// them through. Each kind of trouble is counted in metrics, warned about
// once (the clock stands still, so the warning interval never passes),
// reported by Health; the recovery is logged, and every customer then gets
// exactly one email.
func TestSMTPTroubleIsLoggedCountedAndRecovers(t *testing.T) {
	p := newPipeline(t)
	// Retries come every 50-100 ms here: enough of them that no delivery
	// gives up while the server is down.
	p.q = queue.NewClient(p.rdb, queue.Config{MaxRetry: 1000})
	if n := p.tick(); n != 3 {
		t.Fatalf("tick planned %d, want 3", n)
	}
	front := smtptest.StartFront(t, p.smtp)
	front.SetMode(smtptest.Refuse)
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	sender, err := mail.NewSender(context.Background(), mail.Config{URL: front.URL(), Conns: 2, Timeout: 300 * time.Millisecond}, log)
	if err != nil {
		t.Fatal(err)
	}
	w := worker.New(worker.Config{From: "Shop <hello@example.com>", Now: func() time.Time { return at }},
		p.st, queue.NewJournal(p.rdb), sender, &worker.Content{Campaigns: p.campaigns, Templates: p.content.Templates}, p.metrics, log)
	runWorker(t, p.rdb, w, sender, worker.ServerConfig{
		Concurrency: 4, Queues: []string{"default", "nudges"},
		PollInterval: 20 * time.Millisecond, RetryBase: 50 * time.Millisecond, RetryMax: 100 * time.Millisecond,
	}, log)

	for _, step := range []struct {
		mode smtptest.Mode
		kind string
	}{
		{smtptest.Refuse, mail.KindRefused},
		{smtptest.Hang, mail.KindTimeout},
		{smtptest.Drop, mail.KindDropped},
	} {
		front.SetMode(step.mode)
		metric := `nurture_send_errors_total{kind="` + step.kind + `"}`
		waitUntil(t, time.Minute, metric+" ≥ 2", func() bool { return counter(t, p.metrics, metric) >= 2 })
		if err := w.Health(); err == nil || !strings.Contains(err.Error(), step.kind) {
			t.Errorf("%s: Health() = %v, want an error naming %s", step.kind, err, step.kind)
		}
	}
	front.SetMode(smtptest.Pass)
	ds := p.waitFinished()
	for k, d := range ds {
		if d.Status != store.StatusSent {
			t.Errorf("%s: %s (%s), want sent", k, d.Status, d.LastError)
		}
	}
	equalLines(t, "received", p.received(), []string{
		"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
		"bo@example.com|We miss you, Bo|It has been 35 days, Bo.",
		"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
	})
	if err := w.Health(); err != nil {
		t.Errorf("Health() after recovery = %v, want nil", err)
	}

	// One warning per kind, then one recovery line.
	var warned []string
	recovered := 0
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Level, Msg, Kind string
			Failures         int
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		switch rec.Msg {
		case "SMTP send failed; the delivery will be retried":
			if rec.Level != "WARN" || rec.Failures != 1 {
				t.Errorf("warning %q: level %s, failures %d; want WARN, 1", line, rec.Level, rec.Failures)
			}
			warned = append(warned, rec.Kind)
		case "SMTP sending recovered":
			recovered++
			if rec.Level != "INFO" || rec.Failures < 6 {
				t.Errorf("recovery %q: want INFO with failures ≥ 6", line)
			}
		}
	}
	if strings.Join(warned, ",") != "connection_refused,timeout,connection_dropped" {
		t.Errorf("warnings for %v, want one each for connection_refused, timeout, connection_dropped", warned)
	}
	if recovered != 1 {
		t.Errorf("%d recovery lines, want 1", recovered)
	}
}
