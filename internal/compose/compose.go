// Package compose builds the email of one delivery: the template the
// delivery names, rendered with the customer's facts, an experiment
// variant's subject and sender overrides, the sender chosen by precedence,
// the Message-ID and the unsubscribe headers. The worker, `nurture
// preview` and `nurture send-test` all build their messages here, so a
// preview is exactly what a worker would send.
package compose

import (
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	nmail "nurture/internal/mail"
	"nurture/internal/tracking"
	"nurture/internal/unsubscribe"
)

// DefaultFrom is the sender when neither the campaign, MAIL_FROM nor
// settings.yaml names one.
const DefaultFrom = "nurture <nurture@localhost>"

// Config configures a Composer. Zero values take the documented defaults.
type Config struct {
	// From is MAIL_FROM: the sender of campaigns that name none. Empty:
	// settings.yaml's from, else DefaultFrom.
	From string
	// MessageIDDomain is the right-hand side of Message-IDs. Default: the
	// domain of From, else of settings.yaml's from, else "localhost".
	MessageIDDomain string
	// Unsubscribe, when set, gives every email a one-click unsubscribe
	// link: List-Unsubscribe headers and {{.UnsubscribeURL}} in templates.
	Unsubscribe *unsubscribe.Links
	// Tracking, when set, adds the open pixel and click redirects to the
	// emails of campaigns that track opens or clicks. Default nil: no
	// email is tracked.
	Tracking *tracking.Links
}

// Composer builds messages; it is safe for concurrent use.
type Composer struct {
	cfg Config
	// idDomain is the last sender whose domain messageIDDomain parsed,
	// with that domain: every email of a campaign set has the same one.
	idDomain atomic.Pointer[senderDomain]
}

// senderDomain is a sender address and the domain of its address.
type senderDomain struct{ from, domain string }

// New returns a Composer.
func New(cfg Config) *Composer { return &Composer{cfg: cfg} }

// Input is one email to build.
type Input struct {
	// DeliveryID names the delivery: the Message-ID is derived from it.
	DeliveryID string
	// Campaign is the delivery's campaign, and Settings the settings of
	// the set it was loaded with (nil: none).
	Campaign *campaign.Campaign
	Settings *campaign.Settings
	// Templates is the loaded template set, and Template the name the
	// delivery was planned with: the campaign's, a journey step's or a
	// variant's.
	Templates *nmail.Templates
	Template  string
	// Variant is the delivery's experiment group, "" without one. A
	// variant the campaign no longer has gets no overrides.
	Variant string
	// Customer is the recipient as they are now, and Stage their stage.
	Customer *audience.Customer
	Stage    string
	// Now is the instant facts such as inactive_days are computed at.
	Now time.Time
	// NoUnsubscribe leaves out the unsubscribe link, for a test send to
	// someone who is not the customer.
	NoUnsubscribe bool
}

// ErrTemplateNotFound is returned, wrapped, for a delivery whose template
// is not in the loaded set (it was removed after the delivery was
// planned). The error's text is `template "NAME" not found`.
var ErrTemplateNotFound = errors.New("not found")

// Message builds in's email. A template that is missing wraps
// ErrTemplateNotFound; one that fails to render returns the template's
// error (a mail.TemplateError naming the file, or mail.ErrTooLarge).
func (c *Composer) Message(in Input) (*nmail.Message, error) {
	camp := in.Campaign
	if !in.Templates.Has(in.Template) {
		return nil, fmt.Errorf("template %q %w", in.Template, ErrTemplateNotFound)
	}
	var v *campaign.Variant
	if in.Variant != "" {
		v = camp.Variant(in.Variant)
	}
	facts := audience.FactsAt(in.Customer, in.Now)
	facts.Stage = in.Stage
	data := nmail.NewData(&facts, camp.Name)
	headers := map[string]string{"X-Nurture-Campaign": camp.Name}
	if in.DeliveryID != "" {
		headers["X-Nurture-Delivery"] = in.DeliveryID
	}
	if c.cfg.Unsubscribe != nil && !in.NoUnsubscribe {
		data.UnsubscribeURL = c.cfg.Unsubscribe.URL(in.Customer.ID, camp.Name)
		headers["List-Unsubscribe"] = "<" + data.UnsubscribeURL + ">"
		if m := c.cfg.Unsubscribe.Mailto(in.Customer.ID, camp.Name); m != "" {
			headers["List-Unsubscribe"] += ", <" + m + ">"
		}
		headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
	}
	r, err := in.Templates.Render(in.Template, data)
	if err != nil {
		return nil, err
	}
	if err := c.track(r, in, data.UnsubscribeURL); err != nil {
		return nil, err
	}
	subject := r.Subject
	if v != nil && v.Subject != "" {
		where := fmt.Sprintf("variant %q subject", v.Name)
		if v.Pos.File != "" {
			where = v.Pos.File + ": " + where
		}
		if subject, err = nmail.RenderSubject(where, v.Subject, data); err != nil {
			return nil, err
		}
	}
	return &nmail.Message{
		ID:         in.DeliveryID,
		Campaign:   camp.Name,
		CustomerID: in.Customer.ID,
		MessageID:  nmail.MessageID(in.DeliveryID, c.messageIDDomain(in.Settings)),
		From:       c.From(camp, v, in.Settings),
		To:         in.Customer.Email,
		Subject:    subject,
		HTML:       r.HTML,
		Text:       r.Text,
		Headers:    headers,
	}, nil
}

// track rewrites r's links and adds its open pixel, as in's campaign
// asks, when tracking is configured and in is a delivery (a preview or a
// test send is not: nothing of it could be recorded).
func (c *Composer) track(r *nmail.Rendered, in Input, unsubscribeURL string) error {
	if c.cfg.Tracking == nil {
		return nil
	}
	t := campaign.EffectiveTracking(in.Campaign, in.Settings)
	if !t.Any() {
		return nil
	}
	id, err := uuid.Parse(in.DeliveryID)
	if err != nil {
		return nil
	}
	rw := tracking.Rewrite{Delivery: id, Opens: t.Opens, Clicks: t.Clicks, Keep: []string{unsubscribeURL}}
	if r.HTML, err = c.cfg.Tracking.HTML(r.HTML, rw); err != nil {
		return fmt.Errorf("campaign %q: %w", in.Campaign.Name, err)
	}
	r.Text = c.cfg.Tracking.Text(r.Text, rw)
	return nil
}

// From returns the sender of camp's emails in variant v (nil: none), by
// precedence: the variant's from, the campaign's email.from, MAIL_FROM,
// settings.yaml's from, DefaultFrom.
func (c *Composer) From(camp *campaign.Campaign, v *campaign.Variant, settings *campaign.Settings) string {
	switch {
	case v != nil && v.From != "":
		return v.From
	case camp.Email.From != "":
		return camp.Email.From
	}
	return c.defaultFrom(settings)
}

// defaultFrom is the sender of campaigns that name none.
func (c *Composer) defaultFrom(settings *campaign.Settings) string {
	switch {
	case c.cfg.From != "":
		return c.cfg.From
	case settings != nil && settings.From != "":
		return settings.From
	}
	return DefaultFrom
}

// messageIDDomain is the domain of Message-IDs: configured, or that of the
// default sender. It does not follow a campaign's own sender, so that
// every email of a process carries ids of one domain.
func (c *Composer) messageIDDomain(settings *campaign.Settings) string {
	if c.cfg.MessageIDDomain != "" {
		return c.cfg.MessageIDDomain
	}
	from := c.defaultFrom(settings)
	if last := c.idDomain.Load(); last != nil && last.from == from {
		return last.domain
	}
	domain := "localhost"
	if a, err := mail.ParseAddress(from); err == nil {
		if at := strings.LastIndexByte(a.Address, '@'); at >= 0 {
			domain = a.Address[at+1:]
		}
	}
	c.idDomain.Store(&senderDomain{from: from, domain: domain})
	return domain
}

// Template is the template a delivery of camp names for a journey's step
// (from 1; 0 is the first) and an experiment variant ("": none): the
// step's or the campaign's, or the variant's override. A step or variant
// the campaign does not have is an error that says which it has.
func Template(camp *campaign.Campaign, step int, variant string) (string, error) {
	tmpl := camp.Email.Template
	switch {
	case camp.IsJourney():
		n := max(step, 1)
		if n > len(camp.Steps) || step < 0 {
			return "", fmt.Errorf("step %d: campaign %q has steps 1 to %d", step, camp.Name, len(camp.Steps))
		}
		tmpl = camp.Steps[n-1].Template
	case step > 1 || step < 0:
		return "", fmt.Errorf("step %d: campaign %q is a single email, not a journey; leave the step out", step, camp.Name)
	}
	if variant == "" {
		return tmpl, nil
	}
	v := camp.Variant(variant)
	if v == nil {
		if len(camp.Variants) == 0 {
			return "", fmt.Errorf("variant %q: campaign %q has no variants", variant, camp.Name)
		}
		names := make([]string, len(camp.Variants))
		for i, v := range camp.Variants {
			names[i] = v.Name
		}
		return "", fmt.Errorf("variant %q: campaign %q has no such variant; its variants are %s", variant, camp.Name, strings.Join(names, ", "))
	}
	if v.Template != "" {
		tmpl = v.Template
	}
	return tmpl, nil
}
