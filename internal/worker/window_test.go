package worker_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hibiken/asynq"

	"nurture/internal/campaign"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/window"
)

// clock is a worker clock that a test moves.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock(t time.Time) *clock { return &clock{t: t} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	c.t = t
	c.mu.Unlock()
}

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor polls cond until it holds, failing the test after 30 seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("still waiting after 30s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// metricsText is the process's /metrics page.
func (p *pipeline) metricsText() string {
	rec := httptest.NewRecorder()
	p.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// campaign returns the named campaign of the set the planner and the
// worker share, for a test to change.
func (p *pipeline) campaign(name string) *campaign.Campaign {
	p.t.Helper()
	for i := range p.campaigns.Campaigns {
		if p.campaigns.Campaigns[i].Name == name {
			return &p.campaigns.Campaigns[i]
		}
	}
	p.t.Fatalf("no campaign %q", name)
	return nil
}

// taskInfo returns the Asynq task of delivery id, or nil when there is none.
func (p *pipeline) taskInfo(queueName, id string) *asynq.TaskInfo {
	p.t.Helper()
	insp := asynq.NewInspectorFromRedisClient(p.rdb)
	info, err := insp.GetTaskInfo(queueName, id)
	if errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound) {
		return nil
	}
	if err != nil {
		p.t.Fatal(err)
	}
	return info
}

// runNow moves a waiting task to pending, as the dashboard's "run" does.
func (p *pipeline) runNow(queueName, id string) {
	p.t.Helper()
	if err := asynq.NewInspectorFromRedisClient(p.rdb).RunTask(queueName, id); err != nil {
		p.t.Fatalf("run task %s: %v", id, err)
	}
}

func mustZone(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

// TestBacklogOutsideWindowIsDeferred: deliveries planned without a window
// reach a worker whose clock is outside the window that now applies (a
// backlog after an outage). The worker sends none of them: it puts the row
// back to queued with send_at at the next opening, and the task waits in
// Asynq until then. Neither a re-enqueue by the reconciler nor a task run
// early sends it; once the clock is inside the window it is sent once.
func TestBacklogOutsideWindowIsDeferred(t *testing.T) {
	p := newPipeline(t)
	if n := p.tick(); n != 3 {
		t.Fatalf("tick planned %d, want 3", n)
	}
	// After planning, the nudge campaign gets a window: 08:00 to 12:00 in
	// New York, every day. The welcome campaign has none.
	p.campaign("nudge").SendWindow = &campaign.SendWindow{
		Window:   window.Window{Start: 8 * 60, End: 12 * 60},
		Timezone: "America/New_York", Location: mustZone(t, "America/New_York"),
	}
	// 20:00 UTC is 15:00 in New York (EST, UTC-5): the window has closed.
	// It opens next on Wednesday 25 at 08:00 EST, which is 13:00 UTC.
	clk := newClock(mustTime(t, "2026-11-24T20:00:00Z"))
	wantSendAt := mustTime(t, "2026-11-25T13:00:00Z")
	p.now = clk.Now
	p.startWorker()

	var nudge store.DeliveryRow
	waitFor(t, "the nudge to be deferred and the welcomes sent", func() bool {
		ds := p.deliveries()
		nudge = ds["nudge/c2"]
		return nudge.SendAt.Equal(wantSendAt) && ds["welcome/c1"].Status == store.StatusSent && ds["welcome/c6"].Status == store.StatusSent
	})
	if nudge.Status != store.StatusQueued || nudge.Attempts != 0 || nudge.Reason != "" || nudge.LastError != "" || nudge.MessageID != "" {
		t.Errorf("deferred nudge: status %s attempts %d reason %q error %q message id %q; want queued, 0 attempts, nothing recorded",
			nudge.Status, nudge.Attempts, nudge.Reason, nudge.LastError, nudge.MessageID)
	}
	equalLines(t, "received", p.received(), []string{
		"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
		"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
	})

	// The task waits in Asynq, under the delivery's own id, until the
	// window opens: 17 hours after the worker's clock. A deferral is not
	// a failed attempt.
	var info *asynq.TaskInfo
	waitFor(t, "the task to wait for its window", func() bool {
		info = p.taskInfo("nudges", nudge.ID)
		return info != nil && info.State == asynq.TaskStateRetry
	})
	if info.Retried != 0 {
		t.Errorf("deferred task has %d retries used, want 0", info.Retried)
	}
	if want := "deferred to its send window, until 2026-11-25T13:00:00Z"; info.LastErr != want {
		t.Errorf("deferred task says %q, want %q", info.LastErr, want)
	}
	if min := time.Now().Add(16 * time.Hour); info.NextProcessAt.Before(min) {
		t.Errorf("deferred task runs at %s, want 17 hours from now", info.NextProcessAt)
	}
	metrics := p.metricsText()
	for _, want := range []string{`nurture_deferred_total{campaign="nudge"} 1`, `nurture_deliveries_total{campaign="welcome",status="sent"} 2`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if strings.Contains(metrics, `nurture_deliveries_total{campaign="nudge"`) {
		t.Error("the deferral was counted as a delivery outcome")
	}

	// The reconciler re-enqueues rows left queued: the waiting task keeps
	// the delivery's id, so no second task appears.
	ctx := context.Background()
	done, err := p.q.Requeue(ctx, []queue.Ref{{ID: nudge.ID, Queue: "nudges", SendAt: nudge.SendAt}})
	if err != nil || len(done) != 1 {
		t.Fatalf("requeue: %v %v", done, err)
	}
	sizes, err := p.q.Sizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		if s.Queue == "nudges" && (s.Pending != 0 || s.Scheduled != 0 || s.Retry != 1) {
			t.Errorf("queue nudges after the re-enqueue: %+v, want the one waiting task", s)
		}
	}

	// Run early (from the dashboard, say) while the window is still
	// closed: deferred again, not sent.
	p.runNow("nudges", nudge.ID)
	waitFor(t, "a second deferral", func() bool {
		return strings.Contains(p.metricsText(), `nurture_deferred_total{campaign="nudge"} 2`)
	})
	waitFor(t, "the task to wait again", func() bool {
		i := p.taskInfo("nudges", nudge.ID)
		return i != nil && i.State == asynq.TaskStateRetry
	})
	if got := p.deliveries()["nudge/c2"]; got.Status != store.StatusQueued || !got.SendAt.Equal(wantSendAt) || got.Attempts != 0 {
		t.Errorf("after an early run: %s send_at %s attempts %d, want queued until %s with 0 attempts", got.Status, got.SendAt, got.Attempts, wantSendAt)
	}
	if p.smtp.Count() != 2 {
		t.Fatalf("SMTP server got %d messages, want 2", p.smtp.Count())
	}

	// Inside the window: sent, once.
	clk.Set(mustTime(t, "2026-11-25T13:30:00Z"))
	p.runNow("nudges", nudge.ID)
	ds := p.waitFinished()
	if d := ds["nudge/c2"]; d.Status != store.StatusSent || d.Attempts != 1 || d.MessageID != "<"+d.ID+"@example.com>" {
		t.Errorf("nudge/c2: %s after %d attempts, message id %q; want sent after 1", d.Status, d.Attempts, d.MessageID)
	}
	equalLines(t, "received", p.received(), []string{
		"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
		// Rendered at the worker's clock: one day later than planned.
		"bo@example.com|We miss you, Bo|It has been 36 days, Bo.",
		"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
	})
	waitFor(t, "the task to finish", func() bool { return p.taskInfo("nudges", nudge.ID) == nil })
	if p.smtp.Count() != 3 {
		t.Errorf("SMTP server got %d messages, want 3", p.smtp.Count())
	}
}

// TestEarlyTaskWaitsForSendAt: a task that runs before its delivery's
// send_at (the reconciler, or a Redis that lost its data, enqueued it
// without delay) sends nothing until then, in the customer's zone.
func TestEarlyTaskWaitsForSendAt(t *testing.T) {
	p := newPipeline(t)
	// Welcome emails go out from 10:00 to 18:00 in the customer's zone
	// (the fixture's customers are in UTC); the tick is at 09:00.
	p.campaign("welcome").SendWindow = &campaign.SendWindow{Window: window.Window{Start: 10 * 60, End: 18 * 60}, Timezone: "customer"}
	p.tick()
	ten := mustTime(t, "2026-11-24T10:00:00Z")
	for _, k := range []string{"welcome/c1", "welcome/c6"} {
		if d := p.deliveries()[k]; !d.SendAt.Equal(ten) {
			t.Fatalf("%s planned for %s, want %s", k, d.SendAt, ten)
		}
	}
	clk := newClock(at)
	p.now = clk.Now
	p.startWorker() // the tick enqueued every task to run at once (atOnce)

	waitFor(t, "two deferrals and the nudge sent", func() bool {
		ds := p.deliveries()
		return strings.Contains(p.metricsText(), `nurture_deferred_total{campaign="welcome"} 2`) && ds["nudge/c2"].Status == store.StatusSent
	})
	for _, k := range []string{"welcome/c1", "welcome/c6"} {
		d := p.deliveries()[k]
		if d.Status != store.StatusQueued || !d.SendAt.Equal(ten) || d.Attempts != 0 {
			t.Errorf("%s: %s until %s after %d attempts, want queued until %s", k, d.Status, d.SendAt, d.Attempts, ten)
		}
	}
	equalLines(t, "received", p.received(), []string{"bo@example.com|We miss you, Bo|It has been 35 days, Bo."})

	clk.Set(ten)
	for _, d := range p.deliveries() {
		if d.Campaign == "welcome" {
			waitFor(t, "the task to wait", func() bool {
				i := p.taskInfo("default", d.ID)
				return i != nil && i.State == asynq.TaskStateRetry
			})
			p.runNow("default", d.ID)
		}
	}
	ds := p.waitFinished()
	for k, d := range ds {
		if d.Status != store.StatusSent || d.Attempts != 1 {
			t.Errorf("%s: %s after %d attempts, want sent after 1", k, d.Status, d.Attempts)
		}
	}
	if p.smtp.Count() != 3 {
		t.Errorf("SMTP server got %d messages, want 3", p.smtp.Count())
	}
}

// TestProcessAtHoldsTask: a task enqueued with a send time in the future
// is scheduled in Redis, not pending, so no worker takes it before then.
func TestProcessAtHoldsTask(t *testing.T) {
	p := newPipeline(t)
	ctx := context.Background()
	refs, err := p.st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: "welcome", CustomerID: "c1", Occurrence: at,
		Stage: "new", Template: "welcome", Queue: "default", SendAt: at.Add(time.Hour)}})
	if err != nil || len(refs) != 1 {
		t.Fatalf("insert: %v %v", refs, err)
	}
	later := time.Now().Add(time.Hour) // a time in the future, whatever the day
	if _, err := p.q.Enqueue(ctx, []queue.Ref{{ID: refs[0].ID, Queue: "default", SendAt: later}}); err != nil {
		t.Fatal(err)
	}
	p.startWorker()
	info := p.taskInfo("default", refs[0].ID)
	if info == nil || info.State != asynq.TaskStateScheduled || info.NextProcessAt.Unix() != later.Unix() {
		t.Fatalf("task: %+v, want scheduled at %s", info, later)
	}
	sizes, err := p.q.Sizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		if s.Queue == "default" && (s.Pending != 0 || s.Active != 0 || s.Scheduled != 1) {
			t.Errorf("queue default: %+v, want one scheduled task", s)
		}
	}
	if p.smtp.Count() != 0 {
		t.Errorf("SMTP server got %d messages, want 0", p.smtp.Count())
	}
}

// TestHeldOutIsNeverSent: a task naming a held-out delivery (a stray
// re-enqueue) is acknowledged without sending or changing the row.
func TestHeldOutIsNeverSent(t *testing.T) {
	p := newPipeline(t)
	ctx := context.Background()
	if _, err := p.st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: "welcome", CustomerID: "c1", Occurrence: at,
		Stage: "new", Template: "welcome", Queue: "default", Variant: "holdout", Status: store.StatusHeldOut}}); err != nil {
		t.Fatal(err)
	}
	d := p.deliveries()["welcome/c1"]
	if _, err := p.q.Enqueue(ctx, []queue.Ref{{ID: d.ID, Queue: "default"}}); err != nil {
		t.Fatal(err)
	}
	p.startWorker()
	waitFor(t, "the task to be acknowledged", func() bool { return p.taskInfo("default", d.ID) == nil })
	got := p.deliveries()["welcome/c1"]
	if got.Status != store.StatusHeldOut || got.Attempts != 0 || got.SendingAt != nil || got.MessageID != "" {
		t.Errorf("held-out delivery: %s, %d attempts, sending_at %v, message id %q; want held_out untouched",
			got.Status, got.Attempts, got.SendingAt, got.MessageID)
	}
	if p.smtp.Count() != 0 {
		t.Errorf("SMTP server got %d messages, want 0", p.smtp.Count())
	}
}

// TestDeferralOnLastRetry: a task with no retry left would be archived by
// Asynq whatever its handler returns, so a deferral on it finishes the
// task instead and leaves the queued row to the reconciler.
func TestDeferralOnLastRetry(t *testing.T) {
	p := newPipeline(t)
	ctx := context.Background()
	refs, err := p.st.InsertDeliveries(ctx, []store.NewDelivery{{Campaign: "welcome", CustomerID: "c1", Occurrence: at,
		Stage: "new", Template: "welcome", Queue: "default"}})
	if err != nil || len(refs) != 1 {
		t.Fatalf("insert: %v %v", refs, err)
	}
	id := refs[0].ID
	task := asynq.NewTask(queue.TaskSend, []byte(id), asynq.TaskID(id), asynq.Queue("default"), asynq.MaxRetry(0))
	if _, err := asynq.NewClientFromRedisClient(p.rdb).Enqueue(task); err != nil {
		t.Fatal(err)
	}
	p.campaign("welcome").SendWindow = &campaign.SendWindow{Window: window.Window{Start: 10 * 60, End: 18 * 60}, Timezone: "customer"}
	p.startWorker() // at 09:00 UTC, before the window
	ten := mustTime(t, "2026-11-24T10:00:00Z")
	waitFor(t, "the deferral", func() bool { return p.deliveries()["welcome/c1"].SendAt.Equal(ten) })
	waitFor(t, "the task to finish", func() bool { return p.taskInfo("default", id) == nil })
	if d := p.deliveries()["welcome/c1"]; d.Status != store.StatusQueued || d.Attempts != 0 {
		t.Errorf("welcome/c1: %s after %d attempts, want queued after 0", d.Status, d.Attempts)
	}
	sizes, err := p.q.Sizes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		if s.Archived != 0 || s.Retry != 0 {
			t.Errorf("queue %s: %d archived, %d retrying; want none", s.Queue, s.Archived, s.Retry)
		}
	}
	if p.smtp.Count() != 0 {
		t.Errorf("SMTP server got %d messages, want 0", p.smtp.Count())
	}
}
