package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/importer"
	"nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/throttle"
	"nurture/internal/worker"
)

// throttled is a store whose customers each get one welcome email, with
// the fixture's campaigns and a settings.yaml of the test's own.
type throttled struct {
	t       *testing.T
	st      *store.Store
	redis   *redis.Options
	content *content.Content
	smtp    *smtptest.Server
}

// newThrottled imports one customer per address (signed up the day before
// at, so the welcome campaign plans one email each), loads the fixture's
// campaigns with settings as settings.yaml, and plans and enqueues the
// welcome emails.
func newThrottled(t *testing.T, settings string, emails []string) *throttled {
	t.Helper()
	ctx := context.Background()
	tt := &throttled{t: t, st: testenv.Store(t), redis: testenv.Redis(t), smtp: smtptest.Start(t)}
	var lines strings.Builder
	for i, e := range emails {
		fmt.Fprintf(&lines, `{"id":"t%03d","email":%q,"created_at":"%s"}`+"\n", i, e, at.Add(-24*time.Hour).Format(time.RFC3339))
	}
	if res, err := importer.Customers(ctx, tt.st, strings.NewReader(lines.String()), "customers.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatalf("import: %v %v", err, res.Problems)
	}
	dir := t.TempDir()
	for _, name := range []string{"lifecycle.yaml", "welcome.yaml", "nudge.yaml"} {
		b, err := os.ReadFile(filepath.Join(testenv.Fixture("campaigns"), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "settings.yaml"), []byte(settings), 0o644); err != nil {
		t.Fatal(err)
	}
	c, err := content.Load(dir, testenv.Fixture("templates"))
	if err != nil {
		t.Fatalf("load campaigns: %v", err)
	}
	tt.content = c
	rdb := redis.NewClient(tt.redis)
	defer rdb.Close()
	q := queue.NewClient(rdb, queue.Config{MaxRetry: 5})
	res, err := planner.New(tt.st, slog.New(slog.DiscardHandler)).Tick(ctx, c.Rules, c.Rules.Target("welcome"), at, atOnce{q}, planner.TickOptions{})
	if err != nil || res.Planned != len(emails) {
		t.Fatalf("tick planned %d (%v), want %d", res.Planned, err, len(emails))
	}
	return tt
}

// startWorker runs one worker, as a process of its own would: its own
// Redis client, SMTP connections and metrics. Its clock runs from at.
func (tt *throttled) startWorker(tc throttle.Config, log *slog.Logger) *metrics.Metrics {
	tt.t.Helper()
	rdb := redis.NewClient(tt.redis)
	tt.t.Cleanup(func() { rdb.Close() })
	sender, err := mail.NewSender(context.Background(), mail.Config{URL: tt.smtp.URL(), Conns: 2}, log)
	if err != nil {
		tt.t.Fatal(err)
	}
	start := time.Now()
	now := func() time.Time { return at.Add(time.Since(start)) }
	m := metrics.New()
	w := worker.New(worker.Config{From: "Shop <hello@example.com>", Now: now, Throttle: tc},
		tt.st, queue.NewJournal(rdb), sender, &worker.Content{Campaigns: tt.content.Campaigns(), Templates: tt.content.Templates}, m, log)
	runWorker(tt.t, rdb, w, sender, worker.ServerConfig{
		Concurrency: 4, Queues: []string{"default"},
		PollInterval: 20 * time.Millisecond, RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}, log)
	return m
}

// waitSent polls until every delivery is sent, and fails the test if one
// ends otherwise.
func (tt *throttled) waitSent(n int) {
	tt.t.Helper()
	waitUntil(tt.t, time.Minute, fmt.Sprintf("%d deliveries sent", n), func() bool {
		sent := 0
		err := tt.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
			switch d.Status {
			case store.StatusSent:
				sent++
			case store.StatusFailed, store.StatusSkipped:
				tt.t.Fatalf("delivery to %s %s: %s %s", d.CustomerID, d.Status, d.Reason, d.LastError)
			}
			return nil
		})
		return err == nil && sent == n
	})
}

// sentOnce checks that the server accepted n messages, each Message-ID once.
func (tt *throttled) sentOnce(n int) {
	tt.t.Helper()
	ids := tt.smtp.MessageIDs()
	if len(ids) != n || tt.smtp.Count() != n {
		tt.t.Errorf("server accepted %d messages with %d Message-IDs, want %d each", tt.smtp.Count(), len(ids), n)
	}
	for id, k := range ids {
		if k != 1 {
			tt.t.Errorf("Message-ID %s accepted %d times", id, k)
		}
	}
}

// busiestWindow is the most arrival times within any window of length d
// (from one arrival to just before d after it).
func busiestWindow(times []time.Time, d time.Duration) int {
	most := 0
	for i := range times {
		n := 0
		for j := i; j < len(times) && times[j].Sub(times[i]) < d; j++ {
			n++
		}
		most = max(most, n)
	}
	return most
}

// arrivals returns the accepted messages' arrival times at the server,
// oldest first, for recipients at domain.
func arrivals(s *smtptest.Server, domain string) []time.Time {
	var out []time.Time
	for _, a := range s.Attempts() {
		if a.Code == 250 && strings.HasSuffix(strings.ToLower(a.To[0]), "@"+domain) {
			out = append(out, a.At)
		}
	}
	return out
}

// TestRateLimitAcrossWorkers runs two workers, each with its own Redis
// client and SMTP connections as two processes have, against one SMTP
// server: the emails to gmail.com never arrive faster than its rate,
// counted at the server, while other domains are not held to it.
func TestRateLimitAcrossWorkers(t *testing.T) {
	const gmail, others = 20, 8
	var emails []string
	for i := range gmail + others {
		if i%2 == 1 && i/2 < others {
			emails = append(emails, fmt.Sprintf("u%02d@example.org", i))
		} else {
			emails = append(emails, fmt.Sprintf("u%02d@Gmail.com", i))
		}
	}
	tt := newThrottled(t, "rate_limits: {global: 1000/s, domains: {gmail.com: 5/s}}\n", emails)
	// Four handlers each: waits for gmail.com reach 1.4s, so some go past
	// MaxWait and are deferred, and run again later.
	tc := throttle.Config{MaxWait: 500 * time.Millisecond}
	m1 := tt.startWorker(tc, slog.New(slog.DiscardHandler))
	m2 := tt.startWorker(tc, slog.New(slog.DiscardHandler))
	tt.waitSent(gmail + others)
	tt.sentOnce(gmail + others)

	times := arrivals(tt.smtp, "gmail.com")
	if len(times) != gmail {
		t.Fatalf("%d messages to gmail.com arrived, want %d", len(times), gmail)
	}
	t.Logf("gmail.com: %d messages from %s to %s; busiest second %d, busiest two seconds %d",
		len(times), times[0].Format("15:04:05.000"), times[len(times)-1].Format("15:04:05.000"),
		busiestWindow(times, time.Second), busiestWindow(times, 2*time.Second))
	// 5/s: in any second at most 5, plus the one a window can start with
	// (GCRA's burst of one).
	if most := busiestWindow(times, time.Second); most > 6 {
		t.Errorf("%d messages to gmail.com within one second, want at most 6 (5/s); arrivals: %v", most, times)
	}
	if most := busiestWindow(times, 2*time.Second); most > 11 {
		t.Errorf("%d messages to gmail.com within two seconds, want at most 11", most)
	}
	// example.org is held only by the global rate.
	if n := len(arrivals(tt.smtp, "example.org")); n != others {
		t.Errorf("%d messages to example.org, want %d", n, others)
	}

	// Both workers sent, and both waited for slots; some waits were too
	// long and were deferred instead.
	for i, m := range []*metrics.Metrics{m1, m2} {
		if n := counter(t, m, `nurture_deliveries_total{campaign="welcome",status="sent"}`); n == 0 {
			t.Errorf("worker %d sent nothing: the test did not share the limit", i+1)
		}
	}
	waited := counter(t, m1, `nurture_throttle_waits_total{outcome="waited"}`) + counter(t, m2, `nurture_throttle_waits_total{outcome="waited"}`)
	deferred := counter(t, m1, `nurture_throttle_waits_total{outcome="deferred"}`) + counter(t, m2, `nurture_throttle_waits_total{outcome="deferred"}`)
	if waited == 0 || deferred == 0 {
		t.Errorf("%d sends waited and %d were deferred, want some of each", waited, deferred)
	}
}

// TestDomainBackoffAfter421 has the server answer 421 three times in a
// row: after each, no message to the domain arrives during its backoff
// (400ms, 800ms, 1.6s), the episode is logged once when it starts and once
// when it ends, and every delivery is finally sent once.
func TestDomainBackoffAfter421(t *testing.T) {
	const n = 10
	var emails []string
	for i := range n {
		emails = append(emails, fmt.Sprintf("g%02d@gmail.com", i))
	}
	// 5/s keeps one email to the domain in flight at a time, so that a 421
	// is recorded before the next email to the domain leaves.
	tt := newThrottled(t, "rate_limits: {domains: {gmail.com: 5/s}}\n", emails)
	tt.smtp.FailNext(3, 421, "4.7.0", "too many messages, slow down")
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	base := 400 * time.Millisecond
	m := tt.startWorker(throttle.Config{MaxWait: 5 * time.Second, BackoffBase: base, BackoffMax: 10 * time.Second}, log)
	tt.waitSent(n)
	tt.sentOnce(n)

	atts := tt.smtp.Attempts()
	var fails []time.Time
	for _, a := range atts {
		if a.Code == 421 {
			fails = append(fails, a.At)
		}
	}
	if len(fails) != 3 {
		t.Fatalf("%d 421 replies, want 3: %+v", len(fails), atts)
	}
	for k, f := range fails {
		backoff := base << k
		for _, a := range atts {
			if a.At.After(f) && a.At.Sub(f) < backoff {
				t.Errorf("a message (reply %d) arrived %s after 421 #%d, within its backoff of %s", a.Code, a.At.Sub(f), k+1, backoff)
			}
		}
	}

	lines := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct{ Level, Msg, Domain string }
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		if rec.Domain != "" {
			lines[rec.Level+" "+rec.Msg+" "+rec.Domain]++
		}
	}
	want := map[string]int{
		"WARN recipient domain asked us to slow down; its deliveries wait gmail.com": 1,
		"INFO recipient domain accepts email again; backoff over gmail.com":          1,
	}
	if fmt.Sprint(lines) != fmt.Sprint(want) {
		t.Errorf("log lines naming a domain:\n%v\nwant\n%v", lines, want)
	}
	for metric, want := range map[string]int{
		`nurture_domain_backoffs_total{event="started"}`:    1,
		`nurture_domain_backoffs_total{event="extended"}`:   2,
		`nurture_domain_backoffs_total{event="recovered"}`:  1,
		`nurture_send_errors_total{kind="temporary_reply"}`: 3,
	} {
		if got := counter(t, m, metric); got != want {
			t.Errorf("%s = %d, want %d", metric, got, want)
		}
	}
}

// TestThrottleRedisDown checks that a worker whose Redis is gone sends
// nothing and says so: the delivery waits, no retry is used up.
func TestThrottleRedisDown(t *testing.T) {
	tt := newThrottled(t, "rate_limits: {domains: {gmail.com: 5/s}}\n", []string{"a@gmail.com"})
	// A worker whose throttle keys live on a Redis that does not answer:
	// the journal (and so the throttle) uses this client.
	down := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer down.Close()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	sender, err := mail.NewSender(context.Background(), mail.Config{URL: tt.smtp.URL(), Conns: 1}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer sender.Close()
	m := metrics.New()
	w := worker.New(worker.Config{Now: func() time.Time { return at }}, tt.st, queue.NewJournal(down), sender,
		&worker.Content{Campaigns: tt.content.Campaigns(), Templates: tt.content.Templates}, m, log)
	defer w.Close()
	var id string
	err = tt.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error { id = d.ID; return nil })
	if err != nil || id == "" {
		t.Fatalf("no delivery: %v", err)
	}
	err = w.ProcessTask(context.Background(), asynq.NewTask(queue.TaskSend, []byte(id)))
	if err == nil || !strings.Contains(err.Error(), worker.ErrInfrastructure.Error()) {
		t.Fatalf("ProcessTask with Redis down = %v, want an infrastructure error", err)
	}
	if tt.smtp.Count() != 0 {
		t.Errorf("%d messages sent without a throttle check", tt.smtp.Count())
	}
	if n := counter(t, m, `nurture_infrastructure_errors_total{op="throttle",system="redis"}`); n != 1 {
		t.Errorf("redis throttle errors counted %d, want 1", n)
	}
	if !strings.Contains(logs.String(), `"msg":"Redis unavailable; deliveries wait for it"`) {
		t.Errorf("no warning logged: %s", logs.String())
	}
}

// TestDomainBackoffAfter452 checks that a 452 to RCPT (too many
// recipients, insufficient storage) slows the domain down as a 421 does,
// and that other temporary replies do not.
func TestDomainBackoffAfter452(t *testing.T) {
	tt := newThrottled(t, "", []string{"a@outlook.com", "b@outlook.com", "c@outlook.com"})
	tt.smtp.FailNextRcpt(1, 452, "4.5.3", "too many recipients")
	tt.smtp.FailNext(1, 451, "4.3.0", "local error in processing")
	m := tt.startWorker(throttle.Config{BackoffBase: 200 * time.Millisecond}, slog.New(slog.DiscardHandler))
	tt.waitSent(3)
	tt.sentOnce(3)
	for metric, want := range map[string]int{
		`nurture_domain_backoffs_total{event="started"}`:    1,
		`nurture_domain_backoffs_total{event="extended"}`:   0,
		`nurture_domain_backoffs_total{event="recovered"}`:  1,
		`nurture_send_errors_total{kind="temporary_reply"}`: 2,
	} {
		if got := counter(t, m, metric); got != want {
			t.Errorf("%s = %d, want %d", metric, got, want)
		}
	}
}
