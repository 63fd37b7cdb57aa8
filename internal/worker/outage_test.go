package worker_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

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
	"nurture/internal/worker"
)

// TestPostgresOutageSendsNothingTwice stops a real PostgreSQL server while
// a worker sends (sends in flight at that moment cannot record their
// outcome), keeps it down, restarts it, and checks that every customer got
// exactly one email and every delivery is recorded sent. Outages of 5 s
// and 30 s run always; NURTURE_CHAOS=1 (make chaos) adds 5 minutes.
func TestPostgresOutageSendsNothingTwice(t *testing.T) {
	outages := []time.Duration{5 * time.Second, 30 * time.Second}
	if os.Getenv("NURTURE_CHAOS") != "" {
		outages = append(outages, 5*time.Minute)
	}
	for _, d := range outages {
		t.Run(d.String(), func(t *testing.T) {
			t.Parallel()
			testOutage(t, d, 0)
		})
		// The same with batch tasks, as serve and run-once enqueue them.
		t.Run(d.String()+"/batches", func(t *testing.T) {
			t.Parallel()
			testOutage(t, d, queue.DefaultBatch)
		})
	}
}

func testOutage(t *testing.T, outage time.Duration, batch int) {
	const customers = 300
	ctx := context.Background()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	pg := testenv.StartCluster(t)
	dbURL := pg.URL("nurture")
	if _, err := store.Migrate(ctx, dbURL, nil); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, dbURL, store.Config{ConnectTimeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	c := planWelcome(t, st, queue.NewClient(rdb, queue.Config{MaxRetry: 3, Batch: batch}), customers, log)

	// Each send takes 200 ms and 16 run at once: sends are always in flight.
	smtp := smtptest.Start(t, smtptest.Latency(200*time.Millisecond))
	sender, err := mail.NewSender(ctx, mail.Config{URL: smtp.URL(), Conns: 16}, log)
	if err != nil {
		t.Fatal(err)
	}
	m := metrics.New()
	journal := queue.NewJournal(rdb)
	w := worker.New(worker.Config{Now: func() time.Time { return at }, DrainInterval: 200 * time.Millisecond},
		st, journal, sender, &worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates}, m, log)
	runWorker(t, rdb, w, sender, worker.ServerConfig{Concurrency: 16, Shards: 2, Queues: []string{"default"},
		PollInterval: 20 * time.Millisecond, RetryBase: 200 * time.Millisecond, RetryMax: time.Second}, log)

	waitUntil(t, time.Minute, "30 messages sent", func() bool { return smtp.Count() >= 30 })
	// Messages in flight when PostgreSQL goes: their outcomes cannot be
	// recorded. The server holds its replies so that some surely are.
	smtp.Hold()
	waitUntil(t, time.Minute, "a message in flight", func() bool { return smtp.Held() > 0 })
	pg.Kill()
	smtp.Release()
	sentAtKill := smtp.Count()
	time.Sleep(outage) // the outage itself: nothing to wait for
	pg.Start()
	t.Logf("PostgreSQL down for %s after %d sends; %d sends by its restart", outage, sentAtKill, smtp.Count())
	restarted := time.Now()
	defer func() { t.Logf("all finished %s after the restart", time.Since(restarted)) }()

	waitUntil(t, 3*time.Minute, "every delivery finished", func() bool {
		open := 0
		err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
			if d.Status != store.StatusSent {
				open++
			}
			return nil
		})
		return err == nil && open == 0
	})

	// Exactly one email per customer, each with its own Message-ID.
	perRcpt, perID := map[string]int{}, map[string]int{}
	for _, msg := range smtp.Messages() {
		perRcpt[strings.Join(msg.To, ",")]++
		perID[msg.MessageID]++
	}
	var dups []string
	for rcpt, n := range perRcpt {
		if n != 1 {
			dups = append(dups, fmt.Sprintf("%s×%d", rcpt, n))
		}
	}
	if len(dups) > 0 || len(perRcpt) != customers || len(perID) != customers {
		t.Errorf("%d recipients, %d Message-IDs, want %d each; duplicates: %v", len(perRcpt), len(perID), customers, dups)
	}
	rows := 0
	err = st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		rows++
		if perID[d.MessageID] != 1 {
			t.Errorf("delivery %s (%s): Message-ID %q received %d times", d.ID, d.CustomerID, d.MessageID, perID[d.MessageID])
		}
		return nil
	})
	if err != nil || rows != customers {
		t.Fatalf("%d delivery rows (%v), want %d", rows, err, customers)
	}
	if n, err := journal.Len(ctx); err != nil || n != 0 {
		t.Errorf("%d outcomes still kept in Redis (%v), want 0", n, err)
	}
	// The outage met sends in flight: without them the test proves nothing.
	kept, recorded := counter(t, m, `nurture_outcomes_kept_total{event="kept"}`), counter(t, m, `nurture_outcomes_kept_total{event="recorded"}`)
	if kept == 0 || kept != recorded {
		t.Errorf("outcomes kept %d, recorded later %d; want the same number, above 0", kept, recorded)
	}
	if sent := counter(t, m, `nurture_deliveries_total{campaign="welcome",status="sent"}`); sent != customers {
		t.Errorf("metrics count %d sent, want %d", sent, customers)
	}
	// The outage is logged, not flooded: the worker's clock stands still,
	// so each kind of trouble is warned about once, and the recovery once.
	// Statements in flight at the kill or the restart may end after a
	// later one changed the news; they must not change it back.
	seen := map[string]int{}
	for _, line := range strings.Split(strings.TrimSpace(logs.String()), "\n") {
		var rec struct {
			Time       time.Time
			Level, Msg string
		}
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		seen[rec.Level+" "+rec.Msg]++
	}
	for msg, want := range map[string]int{
		"WARN PostgreSQL unavailable; outcomes go to Redis, deliveries wait (no retry is used up)": 1,
		"WARN PostgreSQL could not record send outcomes; kept in Redis until it can":               1,
		"INFO PostgreSQL available again": 1,
	} {
		if seen[msg] != want {
			t.Errorf("%d log lines %q, want %d (all: %v)", seen[msg], msg, want, seen)
		}
	}
}

// counter reads one sample from the metrics page, 0 when absent.
func counter(t *testing.T, m *metrics.Metrics, name string) int {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(name) + ` (\S+)$`)
	match := re.FindStringSubmatch(rec.Body.String())
	if match == nil {
		return 0
	}
	f, err := strconv.ParseFloat(match[1], 64)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return int(f)
}

// waitUntil polls cond until it holds, failing the test after limit.
func waitUntil(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %s waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// planWelcome imports n customers who signed up the day before at (stage
// new) and plans the fixture's welcome campaign for them, one email each,
// enqueued with q. It returns the fixture's campaigns and templates.
func planWelcome(t *testing.T, st *store.Store, q *queue.Client, n int, log *slog.Logger) *content.Content {
	t.Helper()
	ctx := context.Background()
	var lines strings.Builder
	for i := range n {
		fmt.Fprintf(&lines, `{"id":"c%03d","email":"c%03d@example.com","first_name":"C%d","created_at":"%s"}`+"\n",
			i, i, i, at.Add(-24*time.Hour).Format(time.RFC3339))
	}
	if res, err := importer.Customers(ctx, st, strings.NewReader(lines.String()), "customers.jsonl", importer.Options{Strict: true}); err != nil || res.Bad > 0 {
		t.Fatalf("import: %v %v", err, res.Problems)
	}
	c, err := content.Load(testenv.Fixture("campaigns"), testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	if res, err := planner.New(st, log).Tick(ctx, c.Rules, c.Rules.Target("welcome"), at, q, planner.TickOptions{}); err != nil || res.Planned != n {
		t.Fatalf("tick planned %d (%v), want %d", res.Planned, err, n)
	}
	return c
}
