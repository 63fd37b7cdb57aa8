package scheduler_test

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/metrics"
	"nurture/internal/queue"
	"nurture/internal/scheduler"
	"nurture/internal/store"
	"nurture/internal/testenv"
)

var at, _ = time.Parse(time.RFC3339, testenv.FixtureAt)

// everySecond copies the fixture's campaigns with their schedules changed
// to fire every second, and loads them.
func everySecond(t *testing.T) *content.Content {
	t.Helper()
	dir := t.TempDir()
	files, err := filepath.Glob(filepath.Join(testenv.Fixture("campaigns"), "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		b = []byte(strings.ReplaceAll(string(b), `"0 9 * * *"`, `"@every 1s"`))
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(f)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c, err := content.Load(dir, testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

type env struct {
	st  *store.Store
	rdb redis.UniversalClient
	q   *queue.Client
	c   *content.Content
	log *slog.Logger
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{st: testenv.Store(t), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	testenv.ImportFixture(t, e.st)
	e.rdb = redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { e.rdb.Close() })
	e.q = queue.NewClient(e.rdb, queue.Config{})
	e.c = everySecond(t)
	return e
}

func (e *env) scheduler() *scheduler.Scheduler {
	cfg := scheduler.Config{
		LeaderPoll:     50 * time.Millisecond,
		ReconcileEvery: time.Hour,
		Now:            func() time.Time { return at },
	}
	return scheduler.New(cfg, e.st, e.q, e.c.Rules, nil, e.log)
}

func (e *env) count(t *testing.T) (rows int, statuses map[string]int) {
	t.Helper()
	statuses = map[string]int{}
	err := e.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		rows++
		statuses[d.Status]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows, statuses
}

func (e *env) tasks(t *testing.T) int {
	t.Helper()
	n, err := e.q.Unfinished(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// tickOnce runs a scheduler until the fixture's 3 deliveries are queued
// and their tasks enqueued: a delivery is marked queued just before its
// task is enqueued, so stopping at the first sight of the rows could
// stop the enqueue.
func (e *env) tickOnce(t *testing.T, tasks int) {
	t.Helper()
	s := e.scheduler()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	waitUntil(t, "3 queued deliveries with their tasks", func() bool {
		_, st := e.count(t)
		return st[store.StatusQueued] == 3 && e.tasks(t) == tasks
	})
	cancel()
	<-done
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestTwoSchedulersPlanEachEmailOnce(t *testing.T) {
	e := newEnv(t)
	ctxA, stopA := context.WithCancel(context.Background())
	defer stopA()
	ctxB, stopB := context.WithCancel(context.Background())
	defer stopB()
	a, b := e.scheduler(), e.scheduler()
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); a.Run(ctxA) }()
	go func() { defer wg.Done(); b.Run(ctxB) }()

	waitUntil(t, "a leader", func() bool { return a.IsLeader() || b.IsLeader() })
	if a.IsLeader() && b.IsLeader() {
		t.Fatal("both schedulers lead")
	}
	waitUntil(t, "3 queued deliveries", func() bool {
		_, st := e.count(t)
		return st[store.StatusQueued] == 3
	})
	// Let several more ticks fire: the fixed clock makes every tick the
	// same occurrence, so none may add a delivery or a task.
	time.Sleep(2500 * time.Millisecond)
	if rows, _ := e.count(t); rows != 3 {
		t.Fatalf("%d deliveries, want 3", rows)
	}
	if n := e.tasks(t); n != 3 {
		t.Fatalf("%d tasks queued, want 3", n)
	}

	// The leader goes away; the other takes over and still adds nothing.
	follower := b
	if a.IsLeader() {
		stopA()
	} else {
		follower = a
		stopB()
	}
	waitUntil(t, "the follower to take over", func() bool { return follower.IsLeader() })
	time.Sleep(1500 * time.Millisecond)
	if rows, _ := e.count(t); rows != 3 {
		t.Fatalf("%d deliveries after take-over, want 3", rows)
	}
	stopA()
	stopB()
	wg.Wait()
}

func TestReconcileReenqueuesLostTasks(t *testing.T) {
	e := newEnv(t)
	e.tickOnce(t, 3)

	// Redis loses everything (a restart without persistence).
	if err := e.rdb.FlushDB(context.Background()).Err(); err != nil {
		t.Fatal(err)
	}
	if n := e.tasks(t); n != 0 {
		t.Fatalf("%d tasks after flush", n)
	}
	// A new client, as after a restart: Asynq's client remembers which
	// queues it registered and would not register them again.
	e.q = queue.NewClient(e.rdb, queue.Config{})
	// A reconciler that treats every unfinished delivery as stale.
	r := scheduler.New(scheduler.Config{ReconcileAfter: time.Nanosecond},
		e.st, e.q, e.c.Rules, nil, e.log)
	n, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("reconcile re-enqueued %d, want 3", n)
	}
	if got := e.tasks(t); got != 3 {
		t.Fatalf("%d tasks after reconcile, want 3", got)
	}
	// Tasks still in Redis are not enqueued twice.
	n, err = r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := e.tasks(t); got != 3 {
		t.Fatalf("%d tasks after a second reconcile, want 3 (re-enqueued %d)", got, n)
	}
}

func TestReconcileReplacesArchivedTasks(t *testing.T) {
	e := newEnv(t)
	e.tickOnce(t, 3)

	// Asynq archived every task (say, a worker died on its last attempt),
	// while the rows are still unfinished. An archived task keeps its
	// TaskID, so a plain enqueue would meet a conflict and do nothing.
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	for _, q := range []string{"default", "nudges"} {
		if _, err := insp.ArchiveAllPendingTasks(q); err != nil {
			t.Fatal(err)
		}
	}
	if n := e.tasks(t); n != 0 {
		t.Fatalf("%d live tasks after archiving, want 0", n)
	}
	r := scheduler.New(scheduler.Config{ReconcileAfter: time.Nanosecond},
		e.st, e.q, e.c.Rules, nil, e.log)
	n, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || e.tasks(t) != 3 {
		t.Fatalf("reconcile handed %d deliveries to the queue, %d live tasks; want 3 and 3", n, e.tasks(t))
	}
}

// TestRedisDataLossIsReconciledAtOnce loses the tasks of 3 queued
// deliveries, by killing a real redis-server and starting it again empty,
// or by flushing it, and checks that the leader enqueues them again at
// once, not after ReconcileAfter (left at its 10-minute default).
func TestRedisDataLossIsReconciledAtOnce(t *testing.T) {
	for _, tc := range []struct {
		name      string
		lose      func(t *testing.T, srv *testenv.RedisServer, rdb *redis.Client)
		newLosses int
	}{
		{"restarted empty", func(t *testing.T, srv *testenv.RedisServer, _ *redis.Client) {
			srv.Kill()
			srv.Start()
		}, 1},
		{"flushed", func(t *testing.T, _ *testenv.RedisServer, rdb *redis.Client) {
			if err := rdb.FlushAll(context.Background()).Err(); err != nil {
				t.Fatal(err)
			}
		}, 1},
		// A leader noticed the loss and died before it recovered: the
		// pending mark makes the next check recover it.
		{"noticed, not recovered", func(t *testing.T, _ *testenv.RedisServer, rdb *redis.Client) {
			ctx := context.Background()
			if _, err := rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.FlushAll(ctx)
				p.Set(ctx, "nurture:sentinel", "pending", 0)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testenv.StartRedisServer(t)
			rdb := redis.NewClient(srv.Options())
			t.Cleanup(func() { rdb.Close() })
			e := &env{st: testenv.Store(t), rdb: rdb, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			testenv.ImportFixture(t, e.st)
			e.q = queue.NewClient(rdb, queue.Config{})
			e.c = everySecond(t)
			m := metrics.New()
			s := scheduler.New(scheduler.Config{
				LeaderPoll: 50 * time.Millisecond, ReconcileEvery: time.Hour, RedisCheckEvery: 50 * time.Millisecond,
				Now: func() time.Time { return at },
			}, e.st, e.q, e.c.Rules, m, slog.New(slog.NewTextHandler(tlog{t}, nil)))
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); s.Run(ctx) }()
			t.Cleanup(func() { cancel(); <-done })
			waitUntil(t, "3 queued deliveries with tasks", func() bool {
				_, st := e.count(t)
				return st[store.StatusQueued] == 3 && e.tasks(t) == 3
			})
			waitUntil(t, "the first check done", func() bool {
				return rdb.Get(context.Background(), "nurture:sentinel").Val() == "ok"
			})
			lostBefore := lossesSeen(t, m)

			tc.lose(t, srv, rdb)
			waitUntil(t, "the 3 tasks enqueued again", func() bool {
				n, err := e.q.Unfinished(context.Background())
				return err == nil && n == 3
			})
			if rows, st := e.count(t); rows != 3 || st[store.StatusQueued] != 3 {
				t.Errorf("%d rows %v, want 3 queued", rows, st)
			}
			if got := lossesSeen(t, m); got != lostBefore+tc.newLosses {
				t.Errorf("nurture_infrastructure_errors_total{op=\"data_lost\"} went from %d to %d, want %d more", lostBefore, got, tc.newLosses)
			}
			waitUntil(t, "the loss marked recovered", func() bool {
				return rdb.Get(context.Background(), "nurture:sentinel").Val() == "ok"
			})
		})
	}
}

// lossesSeen reads the count of Redis data losses from the metrics page.
func lossesSeen(t *testing.T, m *metrics.Metrics) int {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, line := range strings.Split(rec.Body.String(), "\n") {
		if v, ok := strings.CutPrefix(line, `nurture_infrastructure_errors_total{op="data_lost",system="redis"} `); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	return 0
}

type tlog struct{ t *testing.T }

func (l tlog) Write(b []byte) (int, error) { l.t.Log(strings.TrimSpace(string(b))); return len(b), nil }

// TestSameInstantPlansInPriorityOrder: two campaigns fire at the same
// instant for the same customers under a cap of one email a week. The
// higher priority takes every slot, whichever cron job goes off first;
// by name, the other would come first.
func TestSameInstantPlansInPriorityOrder(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lc, err := os.ReadFile(filepath.Join(testenv.Fixture("campaigns"), "lifecycle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	write("lifecycle.yaml", string(lc))
	write("settings.yaml", "frequency_cap: {max: 1, per: 168h}\n")
	write("alpha.yaml", "name: alpha\nschedule: \"@every 1s\"\nemail:\n  template: welcome\n")
	write("zulu.yaml", "name: zulu\nschedule: \"@every 1s\"\npriority: 10\nemail:\n  template: nudge\n")
	c, err := content.Load(dir, testenv.Fixture("templates"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t)
	e.c = c
	s := e.scheduler()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); s.Run(ctx) }()
	byCampaign := func() map[string]int {
		out := map[string]int{}
		err := e.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
			out[d.Campaign+" "+d.Status+" "+d.Reason]++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	waitUntil(t, "both campaigns planned", func() bool {
		m := byCampaign()
		return m["alpha skipped frequency cap"] > 0 && m["zulu queued "] == m["alpha skipped frequency cap"]
	})
	cancel()
	<-done
	m := byCampaign()
	if len(m) != 2 {
		t.Errorf("deliveries by campaign and status: %v; want zulu queued and alpha capped only", m)
	}
}

func TestReconcileBatches(t *testing.T) {
	e := newEnv(t)
	e.q = queue.NewClient(e.rdb, queue.Config{Batch: 100, Spread: 1})
	e.tickOnce(t, 2)
	// The fixture's three deliveries: welcome's two share a batch task on
	// "default", nudge's one has its own on "nudges".
	if n := e.tasks(t); n != 2 {
		t.Fatalf("%d tasks after the tick, want 2 (a batch of 2 and a task of 1)", n)
	}
	r := scheduler.New(scheduler.Config{ReconcileAfter: time.Nanosecond}, e.st, e.q, e.c.Rules, nil, e.log)

	// While the batch task exists, the reconciler leaves its deliveries to
	// it and enqueues nothing.
	n, err := r.Reconcile(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 || e.tasks(t) != 2 {
		t.Fatalf("reconcile with the batch alive: %d deliveries handed on, %d tasks; want 3 and 2", n, e.tasks(t))
	}

	// The batch task is lost (say, Redis lost it): its deliveries get tasks
	// of their own, which may claim them.
	insp := asynq.NewInspectorFromRedisClient(e.rdb)
	if _, err := insp.DeleteAllPendingTasks("default"); err != nil {
		t.Fatal(err)
	}
	if n, err = r.Reconcile(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n != 3 || e.tasks(t) != 3 {
		t.Fatalf("reconcile after the batch was lost: %d deliveries handed on, %d tasks; want 3 and 3", n, e.tasks(t))
	}
	infos, err := insp.ListPendingTasks("default")
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, i := range infos {
		if i.Type != queue.TaskSend || i.ID != string(i.Payload) {
			t.Errorf("task %s %s %s, want a delivery's own task", i.Type, i.ID, i.Payload)
		}
		ids = append(ids, i.ID)
	}
	cl, err := e.st.Claim(context.Background(), ids)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cl {
		if !c.Claimed {
			t.Errorf("delivery %s not claimable by its own task after the reconcile (status %s)", c.ID, c.Status)
		}
	}
}
