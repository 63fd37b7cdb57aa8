package worker_test

import (
	"bytes"
	"context"
	"fmt"
	"net/mail"
	"sort"
	"testing"

	"nurture/internal/campaign"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// plant writes deliveries as the planner would and enqueues them to run at
// once.
func (p *pipeline) plant(ds ...store.NewDelivery) {
	p.t.Helper()
	ctx := context.Background()
	for i := range ds {
		ds[i].Occurrence, ds[i].Queue = at, "default"
	}
	refs, err := p.st.InsertDeliveries(ctx, ds)
	if err != nil || len(refs) != len(ds) {
		p.t.Fatalf("insert deliveries: %v %v", refs, err)
	}
	if _, err := (atOnce{p.q}).Enqueue(ctx, toQueue(refs)); err != nil {
		p.t.Fatal(err)
	}
}

func toQueue(refs []store.DeliveryRef) []queue.Ref {
	out := make([]queue.Ref, len(refs))
	for i, r := range refs {
		out[i] = queue.Ref{ID: r.ID, Queue: r.Queue, SendAt: r.SendAt}
	}
	return out
}

// senders summarises what the SMTP server got: "to|envelope from|From header|subject".
func (p *pipeline) senders() []string {
	var out []string
	for _, m := range p.smtp.Messages() {
		out = append(out, fmt.Sprintf("%s|%s|%s|%s", m.To[0], m.From, header(m.Data, "From"), m.Subject))
	}
	sort.Strings(out)
	return out
}

func TestVariantOverridesSubjectAndSender(t *testing.T) {
	p := newPipeline(t)
	welcome := p.campaign("welcome")
	welcome.Variants = []campaign.Variant{
		{Name: "a", Weight: 1},
		{Name: "b", Weight: 1, Subject: "{{.FirstName}}, a gift for your {{.DaysSinceSignup}} days with us", From: "Gifts <gifts@example.com>"},
	}
	p.plant(
		store.NewDelivery{Campaign: "welcome", CustomerID: "c1", Stage: "new", Template: "welcome", Variant: "b"},
		store.NewDelivery{Campaign: "welcome", CustomerID: "c6", Stage: "new", Template: "welcome", Variant: "a"},
		// A variant that left the campaign after planning: no overrides.
		store.NewDelivery{Campaign: "welcome", CustomerID: "c2", Stage: "new", Template: "welcome", Variant: "gone"},
	)
	p.startWorker()
	ds := p.waitFinished()
	for k, d := range ds {
		if d.Status != store.StatusSent {
			t.Errorf("%s: %s %q, want sent", k, d.Status, d.Reason)
		}
	}
	equalLines(t, "senders", p.senders(), []string{
		"ann@example.com|gifts@example.com|\"Gifts\" <gifts@example.com>|Ann, a gift for your 3 days with us",
		"bo@example.com|hello@example.com|\"Shop\" <hello@example.com>|Welcome, Bo!",
		"flo@example.com|hello@example.com|\"Shop\" <hello@example.com>|Welcome, <b>Flo</b>!",
	})
}

func TestVariantSubjectErrorIsSkipped(t *testing.T) {
	p := newPipeline(t)
	p.campaign("welcome").Variants = []campaign.Variant{{Name: "b", Weight: 1, Subject: "Hi {{.Firstname}}",
		Pos: campaign.Pos{File: "campaigns/welcome.yaml", Line: 9, Col: 5}}}
	p.plant(store.NewDelivery{Campaign: "welcome", CustomerID: "c1", Stage: "new", Template: "welcome", Variant: "b"})
	p.startWorker()
	d := p.waitFinished()["welcome/c1"]
	want := `template error: campaigns/welcome.yaml: variant "b" subject:1:6: no field Firstname; did you mean FirstName?`
	if d.Status != store.StatusSkipped || d.Reason != want {
		t.Errorf("welcome/c1: %s %q, want skipped %q", d.Status, d.Reason, want)
	}
}

// TestSettingsFromAppliesWithoutMailFrom: the sender of a campaign that
// names none is MAIL_FROM, else settings.yaml's from; a campaign's own
// email.from beats both. Message-IDs take the domain of the sender of
// campaigns that name none.
func TestSettingsFromAppliesWithoutMailFrom(t *testing.T) {
	for _, tc := range []struct {
		name, mailFrom string
		want           []string
		domain         string
	}{
		{"settings", "", []string{
			"ann@example.com|hello@example.com|\"Shop\" <hello@example.com>|Welcome, Ann!",
			"bo@example.com|news@news.example.org|\"Shop News\" <news@news.example.org>|We miss you, Bo",
			"flo@example.com|hello@example.com|\"Shop\" <hello@example.com>|Welcome, <b>Flo</b>!",
		}, "news.example.org"},
		{"MAIL_FROM", "Ops <ops@mail.example.net>", []string{
			"ann@example.com|hello@example.com|\"Shop\" <hello@example.com>|Welcome, Ann!",
			"bo@example.com|ops@mail.example.net|\"Ops\" <ops@mail.example.net>|We miss you, Bo",
			"flo@example.com|hello@example.com|\"Shop\" <hello@example.com>|Welcome, <b>Flo</b>!",
		}, "mail.example.net"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPipeline(t)
			p.campaigns.Settings.From = "Shop News <news@news.example.org>"
			p.from = &tc.mailFrom
			p.tick()
			p.startWorker()
			ds := p.waitFinished()
			equalLines(t, "senders", p.senders(), tc.want)
			for k, d := range ds {
				if want := "<" + d.ID + "@" + tc.domain + ">"; d.MessageID != want {
					t.Errorf("%s: message id %q, want %q", k, d.MessageID, want)
				}
			}
		})
	}
}

// TestJourneyStepRendersItsTemplate: a journey's delivery renders the
// template its row names (its step's), not the campaign's email template,
// which a journey does not have.
func TestJourneyStepRendersItsTemplate(t *testing.T) {
	p := newPipeline(t)
	welcome := p.campaign("welcome")
	welcome.Steps = []campaign.Step{{Template: "welcome"}, {Template: "nudge"}}
	welcome.Email.Template = ""
	p.plant(store.NewDelivery{Campaign: "welcome", CustomerID: "c2", Stage: "at_risk", Template: "nudge", Step: 2})
	p.startWorker()
	d := p.waitFinished()["welcome/c2"]
	if d.Status != store.StatusSent || d.Step != 2 {
		t.Errorf("step 2: %s step %d, want sent step 2", d.Status, d.Step)
	}
	equalLines(t, "received", p.received(), []string{"bo@example.com|We miss you, Bo|It has been 35 days, Bo."})
}

// TestMissingTemplateIsSkipped: a delivery whose template left the loaded
// set after planning is skipped with the template's name, not dropped.
func TestMissingTemplateIsSkipped(t *testing.T) {
	p := newPipeline(t)
	p.plant(store.NewDelivery{Campaign: "welcome", CustomerID: "c1", Stage: "new", Template: "welcome-old"})
	p.startWorker()
	d := p.waitFinished()["welcome/c1"]
	if d.Status != store.StatusSkipped || d.Reason != "template removed" || d.LastError != `template "welcome-old" not found` || d.SkippedAt == nil {
		t.Errorf("welcome/c1: %s %q %q, want skipped %q %q", d.Status, d.Reason, d.LastError, "template removed", `template "welcome-old" not found`)
	}
	if p.smtp.Count() != 0 {
		t.Errorf("SMTP server got %d messages, want 0", p.smtp.Count())
	}
}

// header returns the named header field of a raw message, "" when absent.
func header(data []byte, name string) string {
	m, err := mail.ReadMessage(bytes.NewReader(data))
	if err != nil {
		return ""
	}
	return m.Header.Get(name)
}
