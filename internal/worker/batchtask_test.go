package worker_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/hibiken/asynq"

	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// batchPipeline is a pipeline whose planner enqueues batch tasks.
func batchPipeline(t *testing.T) *pipeline {
	p := newPipeline(t)
	p.q = queue.NewClient(p.rdb, queue.Config{MaxRetry: 3, Batch: 100, Spread: 1})
	return p
}

// tickOnly plans the named campaign at at.
func (p *pipeline) tickOnly(name string) {
	p.t.Helper()
	tg := p.content.Rules.Target(name)
	if _, err := planner.New(p.st, p.log).Tick(context.Background(), p.content.Rules, tg, at, atOnce{p.q}, planner.TickOptions{}); err != nil {
		p.t.Fatal(err)
	}
}

// tasks lists the pending tasks of a queue as "type id payload" lines,
// sorted.
func (p *pipeline) tasks(queueName string) []string {
	p.t.Helper()
	infos, err := asynq.NewInspectorFromRedisClient(p.rdb).ListPendingTasks(queueName)
	if err != nil {
		p.t.Fatal(err)
	}
	var out []string
	for _, i := range infos {
		out = append(out, fmt.Sprintf("%s %s %s", i.Type, i.ID, i.Payload))
	}
	slices.Sort(out)
	return out
}

func TestBatchTasks(t *testing.T) {
	p := batchPipeline(t)
	if n := p.tick(); n != 3 {
		t.Fatalf("tick planned %d deliveries, want 3", n)
	}
	ds := p.deliveries()
	c1, c6, c2 := ds["welcome/c1"].ID, ds["welcome/c6"].ID, ds["nudge/c2"].ID

	// welcome's two deliveries share one batch task, named after the first
	// delivery id (in planning order, by customer id) and carrying its
	// campaign and size; nudge's one delivery has a task of its own, as
	// before.
	equalLines(t, "tasks on default", p.tasks("default"), []string{
		fmt.Sprintf(`%s batch:%s {"campaign":"welcome","size":2,"ids":["%s","%s"]}`, queue.TaskSendBatch, c1, c1, c6),
	})
	equalLines(t, "tasks on nudges", p.tasks("nudges"), []string{
		fmt.Sprintf("%s %s %s", queue.TaskSend, c2, c2),
	})
	// Only the batch may claim its deliveries.
	cl, err := p.st.Claim(context.Background(), []string{c1})
	if err != nil {
		t.Fatal(err)
	}
	if cl[0].Claimed || cl[0].Status != store.StatusQueued {
		t.Fatalf("claim of a batch's delivery by its own task: claimed %v, status %q; want unclaimed and queued", cl[0].Claimed, cl[0].Status)
	}

	p.startWorker()
	ds = p.waitFinished()
	equalLines(t, "received", p.received(), []string{
		"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
		"bo@example.com|We miss you, Bo|It has been 35 days, Bo.",
		"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
	})
	var keys []string
	for k, d := range ds {
		keys = append(keys, fmt.Sprintf("%s %s attempts=%d", k, d.Status, d.Attempts))
		if want := "<" + d.ID + "@example.com>"; d.MessageID != want {
			t.Errorf("%s: message id %q, want %q", k, d.MessageID, want)
		}
	}
	slices.Sort(keys)
	equalLines(t, "deliveries", keys, []string{
		"nudge/c2 sent attempts=1",
		"welcome/c1 sent attempts=1",
		"welcome/c6 sent attempts=1",
	})
	if !strings.Contains(p.metricsText(), `nurture_deliveries_total{campaign="welcome",status="sent"} 2`) {
		t.Errorf("metrics lack the batch's two sends")
	}
}

func TestBatchHandsOnRetries(t *testing.T) {
	p := batchPipeline(t)
	// Ann's first attempt meets a 451: the batch records it queued, hands
	// it on to a task of its own (TaskID = delivery id), which sends it
	// after the backoff; Flo goes out with the batch.
	// Only welcome is planned, so that the batch meets the 451.
	p.smtp.FailNextRcpt(1, 451, "4.3.0", "try again later")
	p.tickOnly("welcome")
	if got := p.tasks("default"); len(got) != 1 || !strings.HasPrefix(got[0], queue.TaskSendBatch+" ") {
		t.Fatalf("tasks %v, want one batch task", got)
	}
	p.startWorker()
	ds := p.waitFinished()
	var keys []string
	for k, d := range ds {
		keys = append(keys, fmt.Sprintf("%s attempts=%d", d.Status, d.Attempts))
		if d.Attempts == 2 && !strings.HasPrefix(d.LastError, "451 ") {
			t.Errorf("%s: last error %q, want the 451", k, d.LastError)
		}
	}
	slices.Sort(keys)
	equalLines(t, "deliveries", keys, []string{"sent attempts=1", "sent attempts=2"})
	if got := p.smtp.MessageIDs(); len(got) != 2 {
		t.Errorf("server got %d distinct messages, want 2: %v", len(got), got)
	} else {
		for id, n := range got {
			if n != 1 {
				t.Errorf("message %s arrived %d times", id, n)
			}
		}
	}
}

func TestBatchPermanentFailure(t *testing.T) {
	p := batchPipeline(t)
	p.smtp.Reject("ann@example.com", 550, "5.1.1 mailbox unavailable")
	p.tick()
	p.startWorker()
	ds := p.waitFinished()
	if d := ds["welcome/c1"]; d.Status != store.StatusFailed || d.Attempts != 1 || !strings.Contains(d.LastError, "550") {
		t.Errorf("welcome/c1: %s after %d attempts (%s), want failed after 1 with the 550", d.Status, d.Attempts, d.LastError)
	}
	if d := ds["welcome/c6"]; d.Status != store.StatusSent {
		t.Errorf("welcome/c6: %s, want sent: one delivery's failure does not hold back its batch", d.Status)
	}
}

func TestBatchRetriesRunOut(t *testing.T) {
	p := batchPipeline(t)
	// Every attempt to Ann meets a 451: the batch's attempt and then the
	// retries of her own task (MaxRetry 3) make 4, as for a delivery that
	// had a task of its own from the start.
	p.smtp.Reject("ann@example.com", 451, "4.3.0 try again later")
	p.tickOnly("welcome")
	p.startWorker()
	ds := p.waitFinished()
	d := ds["welcome/c1"]
	if d.Status != store.StatusFailed || d.Attempts != 4 || d.Reason != "gave up after 4 attempts" {
		t.Errorf("welcome/c1: %s after %d attempts, reason %q; want failed after 4, \"gave up after 4 attempts\"", d.Status, d.Attempts, d.Reason)
	}
	if d := ds["welcome/c6"]; d.Status != store.StatusSent || d.Attempts != 1 {
		t.Errorf("welcome/c6: %s after %d attempts, want sent after 1", d.Status, d.Attempts)
	}
}

func TestBatchRunsAsSoonAsEnqueued(t *testing.T) {
	p := batchPipeline(t)
	// The worker is waiting when the tick enqueues: the batch may run
	// before the tick returns, and still finds its deliveries its own.
	p.startWorker()
	p.tickOnly("welcome")
	var keys []string
	for k, d := range p.waitFinished() {
		keys = append(keys, fmt.Sprintf("%s %s attempts=%d", k, d.Status, d.Attempts))
	}
	slices.Sort(keys)
	equalLines(t, "deliveries", keys, []string{"welcome/c1 sent attempts=1", "welcome/c6 sent attempts=1"})
}
