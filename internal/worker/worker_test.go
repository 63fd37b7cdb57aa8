package worker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/smtptest"
	"nurture/internal/store"
	"nurture/internal/testenv"
	"nurture/internal/throttle"
	"nurture/internal/unsubscribe"
	"nurture/internal/worker"
)

// at is the fire time every test plans at; the fixture's facts are
// relative to it.
var at, _ = time.Parse(time.RFC3339, testenv.FixtureAt)

// pipeline is a store with the fixture imported, a Redis database, the
// fixture's campaigns, and an in-process SMTP server.
type pipeline struct {
	t       *testing.T
	st      *store.Store
	rdb     redis.UniversalClient
	q       *queue.Client
	content *content.Content
	// campaigns and templates are what the worker sees; tests may change
	// them after planning, as a reload does.
	campaigns *campaign.Set
	templates *mail.Templates
	// rules, when set, make the worker check exit_when before sending.
	rules   *audience.Rules
	smtp    *smtptest.Server
	metrics *metrics.Metrics
	links   *unsubscribe.Links // nil: no unsubscribe links
	log     *slog.Logger
	// now is the worker's clock; nil: the fixture's instant.
	now func() time.Time
	// from is the worker's MAIL_FROM; nil: "Shop <hello@example.com>".
	from *string
}

func newPipeline(t *testing.T) *pipeline {
	t.Helper()
	p := &pipeline{t: t, st: testenv.Store(t), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	p.rdb = redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { p.rdb.Close() })
	p.q = queue.NewClient(p.rdb, queue.Config{MaxRetry: 3})
	testenv.ImportFixture(t, p.st)
	c, err := content.Load(testenv.Fixture("campaigns"), testenv.Fixture("templates"))
	if err != nil {
		t.Fatalf("load fixture campaigns: %v", err)
	}
	p.content = c
	p.campaigns = c.Campaigns()
	p.templates = c.Templates
	p.smtp = smtptest.Start(t)
	p.metrics = metrics.New()
	return p
}

// tick plans every campaign at at and returns the number of new deliveries.
func (p *pipeline) tick() int {
	p.t.Helper()
	pl := planner.New(p.st, p.log)
	n := 0
	for _, tg := range p.content.Rules.Targets() {
		res, err := pl.Tick(context.Background(), p.content.Rules, tg, at, atOnce{p.q}, planner.TickOptions{})
		if err != nil {
			p.t.Fatalf("tick %s: %v", tg.Campaign.Name, err)
		}
		n += res.Planned
	}
	return n
}

// atOnce enqueues tasks to run at once, whatever their send time: the
// planner's ProcessAt is a time of the fixture, which on a machine whose
// clock is before it would hold the tasks, and the worker's own check of
// the send time is what the tests are about.
type atOnce struct{ q *queue.Client }

func (a atOnce) Assign(refs []queue.Ref) []queue.Queued { return a.q.Assign(a.now(refs)) }

func (a atOnce) Enqueue(ctx context.Context, refs []queue.Ref) ([]queue.Queued, error) {
	return a.q.Enqueue(ctx, a.now(refs))
}

// now is refs without their send times.
func (a atOnce) now(refs []queue.Ref) []queue.Ref {
	now := make([]queue.Ref, len(refs))
	for i, r := range refs {
		now[i] = queue.Ref{ID: r.ID, Queue: r.Queue, Campaign: r.Campaign}
	}
	return now
}

// startWorker runs a worker until the test ends.
func (p *pipeline) startWorker() {
	p.t.Helper()
	sender, err := mail.NewSender(context.Background(), mail.Config{URL: p.smtp.URL(), Conns: 2}, p.log)
	if err != nil {
		p.t.Fatal(err)
	}
	// The worker renders at the planned instant, so that facts such as
	// inactive_days do not depend on the day the test runs.
	now, from := p.now, "Shop <hello@example.com>"
	if now == nil {
		now = func() time.Time { return at }
	}
	if p.from != nil {
		from = *p.from
	}
	// A 421 slows its domain down: briefly here, for the worker's clock
	// stands still and a delivery deferred past it would never be due.
	w := worker.New(worker.Config{From: from, Unsubscribe: p.links, Now: now,
		Throttle: throttle.Config{BackoffBase: 100 * time.Millisecond, BackoffMax: 400 * time.Millisecond}},
		p.st, queue.NewJournal(p.rdb), sender, &worker.Content{Campaigns: p.campaigns, Templates: p.templates, Rules: p.rules}, p.metrics, p.log)
	runWorker(p.t, p.rdb, w, sender, worker.ServerConfig{
		Concurrency: 8, Queues: []string{"default", "nudges"},
		PollInterval: 20 * time.Millisecond, RetryBase: 50 * time.Millisecond, RetryMax: 200 * time.Millisecond,
	}, p.log)
}

// runWorker starts w under Asynq servers configured by cfg, and stops
// them, w and sender when the test ends.
func runWorker(t *testing.T, rdb redis.UniversalClient, w *worker.Worker, sender mail.Sender, cfg worker.ServerConfig, log *slog.Logger) {
	t.Helper()
	if err := w.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	srv := worker.NewServer(rdb, cfg, log)
	if err := srv.Start(w); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		w.Close()
		sender.Close()
	})
}

// deliveries returns every delivery row, keyed by campaign/customer.
func (p *pipeline) deliveries() map[string]store.DeliveryRow {
	p.t.Helper()
	out := map[string]store.DeliveryRow{}
	err := p.st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		out[d.Campaign+"/"+d.CustomerID] = *d
		return nil
	})
	if err != nil {
		p.t.Fatal(err)
	}
	return out
}

// waitFinished polls until no delivery is planned, queued or sending.
func (p *pipeline) waitFinished() map[string]store.DeliveryRow {
	p.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ds := p.deliveries()
		open := 0
		for _, d := range ds {
			switch d.Status {
			case store.StatusSent, store.StatusFailed, store.StatusSkipped:
			default:
				open++
			}
		}
		if open == 0 {
			return ds
		}
		if time.Now().After(deadline) {
			p.t.Fatalf("%d deliveries still open after 30s: %+v", open, ds)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// received summarises what the SMTP server got: "to|subject|text" lines.
func (p *pipeline) received() []string {
	var out []string
	for _, m := range p.smtp.Messages() {
		out = append(out, fmt.Sprintf("%s|%s|%s", strings.Join(m.To, ","), m.Subject, strings.TrimSpace(m.Text)))
	}
	sort.Strings(out)
	return out
}

func equalLines(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("%s:\ngot:\n  %s\nwant:\n  %s", what, strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}

func TestEndToEnd(t *testing.T) {
	p := newPipeline(t)
	if n := p.tick(); n != 3 {
		t.Fatalf("first tick planned %d deliveries, want 3", n)
	}
	p.startWorker()
	ds := p.waitFinished()

	equalLines(t, "received", p.received(), []string{
		"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
		"bo@example.com|We miss you, Bo|It has been 35 days, Bo.",
		"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
	})
	for _, m := range p.smtp.Messages() {
		if m.To[0] == "flo@example.com" && !strings.Contains(m.HTML, "Hi &lt;b&gt;Flo&lt;/b&gt;, welcome") {
			t.Errorf("HTML part does not escape the first name: %q", m.HTML)
		}
		if m.From != "hello@example.com" {
			t.Errorf("envelope sender %q, want hello@example.com", m.From)
		}
	}

	var keys []string
	for k, d := range ds {
		keys = append(keys, fmt.Sprintf("%s %s attempts=%d stage=%s", k, d.Status, d.Attempts, d.Stage))
		if want := "<" + d.ID + "@example.com>"; d.MessageID != want {
			t.Errorf("%s: message id %q, want %q", k, d.MessageID, want)
		}
		if d.SentAt == nil || d.QueuedAt == nil || d.SendingAt == nil {
			t.Errorf("%s: transition times missing: %+v", k, d)
		}
		if !d.Occurrence.Equal(at) {
			t.Errorf("%s: occurrence %s, want %s", k, d.Occurrence, at)
		}
	}
	sort.Strings(keys)
	equalLines(t, "deliveries", keys, []string{
		"nudge/c2 sent attempts=1 stage=at_risk",
		"welcome/c1 sent attempts=1 stage=new",
		"welcome/c6 sent attempts=1 stage=new",
	})
	byID := map[string]string{}
	for _, d := range ds {
		byID[d.MessageID] = d.CustomerID
	}
	for _, m := range p.smtp.Messages() {
		if byID[m.MessageID] == "" {
			t.Errorf("message to %v has Message-ID %q, which no delivery recorded", m.To, m.MessageID)
		}
	}

	// Metrics count the outcomes by campaign and status.
	rec := httptest.NewRecorder()
	p.metrics.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{
		`nurture_deliveries_total{campaign="nudge",status="sent"} 1`,
		`nurture_deliveries_total{campaign="welcome",status="sent"} 2`,
		`nurture_send_duration_seconds_count 3`,
	} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %s", want)
		}
	}

	// The same tick again plans nothing and sends nothing.
	if n := p.tick(); n != 0 {
		t.Fatalf("repeated tick planned %d deliveries, want 0", n)
	}
	if got := len(p.deliveries()); got != 3 {
		t.Fatalf("%d deliveries after the repeated tick, want 3", got)
	}
	if p.smtp.Count() != 3 {
		t.Fatalf("SMTP server got %d messages, want 3", p.smtp.Count())
	}
}

func TestTemporaryFailureIsRetried(t *testing.T) {
	p := newPipeline(t)
	// 421 on the first DATA and 451 on the second: each delivery that
	// meets one is retried with backoff and then sent. The 421 also holds
	// back the whole domain for a moment (all the fixture's addresses are
	// at example.com), so the retried delivery may be the one that meets
	// the 451 as well.
	p.smtp.FailNext(1, 421, "4.3.2", "service not available, try later")
	p.smtp.FailNext(1, 451, "4.3.0", "local error in processing")
	p.tick()
	p.startWorker()
	ds := p.waitFinished()
	attempts, retries := 0, 0
	for k, d := range ds {
		if d.Status != store.StatusSent {
			t.Errorf("%s: status %s (%s), want sent", k, d.Status, d.LastError)
		}
		attempts += d.Attempts
		if d.Attempts > 1 {
			retries += d.Attempts - 1
			if !strings.HasPrefix(d.LastError, "421 ") && !strings.HasPrefix(d.LastError, "451 ") {
				t.Errorf("retried delivery %s keeps last error %q, want the 421 or 451", k, d.LastError)
			}
		}
	}
	if attempts != 5 || retries != 2 {
		t.Errorf("%d attempts in all, %d retries; want 5 and 2 (3 deliveries, 2 failures)", attempts, retries)
	}
	if p.smtp.Count() != 3 {
		t.Errorf("SMTP server accepted %d messages, want 3", p.smtp.Count())
	}
}

func TestPermanentFailureIsNotRetried(t *testing.T) {
	p := newPipeline(t)
	p.smtp.Reject("bo@example.com", 550, "5.1.1 mailbox unavailable")
	p.tick()
	p.startWorker()
	ds := p.waitFinished()
	d := ds["nudge/c2"]
	if d.Status != store.StatusFailed || d.Attempts != 1 {
		t.Fatalf("nudge/c2: status %s after %d attempts, want failed after 1", d.Status, d.Attempts)
	}
	if !strings.Contains(d.LastError, "550") || !strings.Contains(d.LastError, "mailbox unavailable") {
		t.Errorf("last error %q lacks the server's reply", d.LastError)
	}
	if d.FailedAt == nil {
		t.Error("failed_at not set")
	}
	if got := ds["welcome/c1"].Status; got != store.StatusSent {
		t.Errorf("welcome/c1: %s, want sent", got)
	}
	// The queue must not hold the failed task for retry.
	sizes, err := p.q.Sizes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range sizes {
		if s.Retry != 0 || s.Pending != 0 {
			t.Errorf("queue %s: %d retrying, %d pending; want none", s.Queue, s.Retry, s.Pending)
		}
	}
}

func TestConsentWithdrawnBeforeSending(t *testing.T) {
	p := newPipeline(t)
	p.tick()
	ctx := context.Background()
	if _, err := p.st.Unsubscribe(ctx, "c1", "test", ""); err != nil {
		t.Fatal(err)
	}
	if err := p.st.AddSuppression(ctx, "FLO@example.com", "complaint"); err != nil {
		t.Fatal(err)
	}
	p.startWorker()
	ds := p.waitFinished()
	for k, want := range map[string]string{"welcome/c1": "unsubscribed", "welcome/c6": "suppressed"} {
		d := ds[k]
		if d.Status != store.StatusSkipped || d.Reason != want || d.SkippedAt == nil {
			t.Errorf("%s: status %s reason %q, want skipped %q", k, d.Status, d.Reason, want)
		}
	}
	equalLines(t, "received", p.received(), []string{"bo@example.com|We miss you, Bo|It has been 35 days, Bo."})
}

func TestDisabledCampaignIsSkipped(t *testing.T) {
	p := newPipeline(t)
	p.tick()
	// The nudge campaign is disabled after planning: its delivery is
	// recorded as skipped, not sent and not left behind.
	set := *p.content.Campaigns()
	set.Campaigns = append([]campaign.Campaign(nil), set.Campaigns...)
	for i := range set.Campaigns {
		if set.Campaigns[i].Name == "nudge" {
			set.Campaigns[i].Enabled = false
		}
	}
	p.campaigns = &set
	p.startWorker()
	ds := p.waitFinished()
	if d := ds["nudge/c2"]; d.Status != store.StatusSkipped || d.Reason != "campaign disabled" {
		t.Errorf("nudge/c2: %s %q, want skipped \"campaign disabled\"", d.Status, d.Reason)
	}
	equalLines(t, "received", p.received(), []string{
		"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
		"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
	})
}

// TestRemovedContentIsSkipped reloads, between planning and sending, a set
// without what some deliveries were planned with: each is recorded
// skipped with the reason, and the others are sent.
func TestRemovedContentIsSkipped(t *testing.T) {
	for _, tt := range []struct {
		name, reason, lastError string
		reload                  func(p *pipeline)
	}{
		{"template", "template removed", `template "nudge" not found`, func(p *pipeline) {
			// The campaign stays, and the worker's templates lose nudge's.
			dir := t.TempDir()
			for _, f := range []string{"welcome.subject.tmpl", "welcome.html.tmpl", "welcome.txt.tmpl"} {
				b, err := os.ReadFile(filepath.Join(testenv.Fixture("templates"), f))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(dir, f), b, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			ts, err := mail.LoadTemplates(dir)
			if err != nil {
				t.Fatal(err)
			}
			p.templates = ts
		}},
		{"campaign", "campaign removed", "", func(p *pipeline) {
			set := *p.content.Campaigns()
			set.Campaigns = slices.DeleteFunc(slices.Clone(set.Campaigns), func(c campaign.Campaign) bool { return c.Name == "nudge" })
			p.campaigns = &set
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := newPipeline(t)
			if n := p.tick(); n != 3 {
				t.Fatalf("planned %d, want 3", n)
			}
			tt.reload(p)
			p.startWorker()
			ds := p.waitFinished()
			if d := ds["nudge/c2"]; d.Status != store.StatusSkipped || d.Reason != tt.reason || d.LastError != tt.lastError || d.SkippedAt == nil {
				t.Errorf("nudge/c2: %s %q %q, want skipped %q %q", d.Status, d.Reason, d.LastError, tt.reason, tt.lastError)
			}
			equalLines(t, "received", p.received(), []string{
				"ann@example.com|Welcome, Ann!|Hi Ann, welcome to the shop.",
				"flo@example.com|Welcome, <b>Flo</b>!|Hi <b>Flo</b>, welcome to the shop.",
			})
			if got := counter(t, p.metrics, `nurture_deliveries_total{campaign="nudge",status="skipped"}`); got != 1 {
				t.Errorf("nurture_deliveries_total{campaign=nudge,status=skipped} = %d, want 1", got)
			}
		})
	}
}

func TestUnsubscribeLink(t *testing.T) {
	p := newPipeline(t)
	links, err := unsubscribe.New(unsubscribe.Config{BaseURL: "https://mail.example.com", Secret: "0123456789abcdef-secret",
		Now: func() time.Time { return at }})
	if err != nil {
		t.Fatal(err)
	}
	p.links = links
	p.tick()
	p.startWorker()
	p.waitFinished()

	var ann *smtptest.Received
	for _, m := range p.smtp.Messages() {
		if m.To[0] == "ann@example.com" {
			ann = &m
		}
	}
	if ann == nil {
		t.Fatal("no email to ann@example.com")
	}
	link := links.URL("c1", "welcome") // issued at the worker's clock, as the email's

	for _, want := range []string{
		"List-Unsubscribe: <" + link + ">",
		"List-Unsubscribe-Post: List-Unsubscribe=One-Click",
	} {
		if !strings.Contains(string(ann.Data), want) {
			t.Errorf("email lacks header %q", want)
		}
	}

	// The one-click POST a mail client sends withdraws consent in the
	// database, which the worker re-checks before every send (see
	// TestConsentWithdrawnBeforeSending).
	h := unsubscribe.Handler(links, func(ctx context.Context, id, campaign string) error {
		_, err := p.st.Unsubscribe(ctx, id, "unsubscribe link", campaign)
		return err
	}, p.log)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("POST", strings.TrimPrefix(link, "https://mail.example.com"), strings.NewReader("List-Unsubscribe=One-Click")))
	if rec.Code != 200 {
		t.Fatalf("one-click unsubscribe: %d %s", rec.Code, rec.Body)
	}
	subscribed := true
	err = p.st.Customers(context.Background(), func(c *audience.Customer) error {
		if c.ID == "c1" {
			subscribed = c.Subscribed
		}
		return nil
	})
	if err != nil || subscribed {
		t.Fatalf("c1 still subscribed after the one-click unsubscribe (%v)", err)
	}
	// The opt-out is recorded against the campaign whose email carried it.
	h2, err := p.st.ConsentHistory(context.Background(), "c1")
	if err != nil || len(h2) != 1 || h2[0].Campaign != "welcome" || h2[0].Source != "unsubscribe link" {
		t.Errorf("consent history of c1: %+v, %v; want one opt-out by unsubscribe link from welcome", h2, err)
	}
}
