package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	netmail "net/mail"
	"strconv"
	"time"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/compose"
	"nurture/internal/content"
	"nurture/internal/mail"
	"nurture/internal/store"
	"nurture/internal/suggest"
	"nurture/internal/unsubscribe"
)

// mailFlags are the settings that shape an email as a worker sends it:
// the sender of campaigns that name none, and unsubscribe links.
type mailFlags struct {
	a              *app
	from           string
	unsubscribeURL string
	ttl            time.Duration
	// mailto is UNSUBSCRIBE_MAILTO: the mailbox of mailto unsubscribe
	// requests, offered beside the link.
	mailto string
}

// registerMailFlags registers --from and, with links, --unsubscribe-url
// on fs, as serve has them. Call before parse.
func (a *app) registerMailFlags(fs *flag.FlagSet, links bool) *mailFlags {
	m := &mailFlags{a: a}
	fs.StringVar(&m.from, "from", a.env("MAIL_FROM", ""), "sender of campaigns that name none; empty: settings.yaml's from, else nurture <nurture@localhost> (MAIL_FROM)")
	if links {
		fs.StringVar(&m.unsubscribeURL, "unsubscribe-url", a.env("PUBLIC_URL", a.env("UNSUBSCRIBE_URL", "")), "public base URL of the HTTP role, also read from UNSUBSCRIBE_URL; with SECRET, every email gets a one-click unsubscribe link under it (PUBLIC_URL)")
		m.ttl = a.envDuration("UNSUBSCRIBE_TTL", unsubscribe.DefaultTTL)
		m.mailto = a.env("UNSUBSCRIBE_MAILTO", "")
	}
	return m
}

// links returns the unsubscribe links configured, issued at now, or nil
// when none are.
func (m *mailFlags) links(now func() time.Time) (*unsubscribe.Links, error) {
	if m.unsubscribeURL == "" {
		if m.mailto != "" {
			return nil, errors.New("UNSUBSCRIBE_MAILTO is set without PUBLIC_URL: the mailto address is offered beside the one-click link; set PUBLIC_URL and SECRET")
		}
		return nil, nil
	}
	links, err := unsubscribe.New(unsubscribe.Config{BaseURL: m.unsubscribeURL,
		Secret: m.a.env("SECRET", m.a.getenv("UNSUBSCRIBE_SECRET")), TTL: m.ttl, Now: now, Mailto: m.mailto})
	if err != nil {
		return nil, fmt.Errorf("--unsubscribe-url: %w (set SECRET)", err)
	}
	return links, nil
}

// emailOf is what preview and send-test render: one campaign's email (a
// step, a variant) for one customer at one instant.
type emailOf struct {
	campaign, customer, variant string
	step                        int
	at                          time.Time
}

// sampleFlags registers the flags preview and send-test share.
func sampleFlags(fs *flag.FlagSet) (customer *string, step *int, variant *string) {
	customer = fs.String("customer", "", "the customer whose email it is, by id (required)")
	step = fs.Int("step", 0, "the journey step, from 1 (default 1)")
	variant = fs.String("variant", "", "the experiment variant whose template, subject and sender to use (default: the campaign's own)")
	return customer, step, variant
}

// buildEmail builds s's email with the worker's code. A problem with the
// command line (campaign, step, variant) is an exitError with status 2; a
// customer that does not exist, status 1. For a customer the worker would
// not email, a note goes to stderr.
func (a *app) buildEmail(ctx context.Context, c *content.Content, st *store.Store, cp *compose.Composer, s emailOf, id string, test bool) (*mail.Message, error) {
	set := c.Campaigns()
	camp := set.Campaign(s.campaign)
	if camp == nil {
		var names []string
		for _, c := range set.Campaigns {
			names = append(names, c.Name)
		}
		return nil, exitError{code: 2, msg: fmt.Sprintf("nurture: unknown campaign %q%s", s.campaign, suggest.Hint(s.campaign, names, strconv.Quote))}
	}
	tmpl, err := compose.Template(camp, s.step, s.variant)
	if err != nil {
		return nil, exitError{code: 2, msg: "nurture: --" + err.Error()}
	}
	cu, err := st.Customer(ctx, s.customer)
	if errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("no customer with id %q", s.customer)
	}
	if err != nil {
		return nil, err
	}
	facts := audience.FactsAt(&cu, s.at)
	stage, err := c.Rules.Stage(&facts)
	if err != nil {
		return nil, fmt.Errorf("customer %q: %w", cu.ID, err)
	}
	switch {
	case !cu.Subscribed:
		fmt.Fprintf(a.stderr, "note: customer %q is unsubscribed; a worker would skip this email\n", cu.ID)
	case cu.Suppressed:
		fmt.Fprintf(a.stderr, "note: customer %q's address is suppressed; a worker would skip this email\n", cu.ID)
	}
	if t := campaign.EffectiveTracking(camp, &set.Settings); t.Any() {
		fmt.Fprintf(a.stderr, "note: campaign %q tracks %s; this email's links are shown as written and nothing it does is recorded\n", camp.Name, t)
	}
	msg, err := cp.Message(compose.Input{DeliveryID: id, Campaign: camp, Settings: &set.Settings, Templates: c.Templates,
		Template: tmpl, Variant: s.variant, Customer: &cu, Stage: stage, Now: s.at, NoUnsubscribe: test})
	if err != nil {
		return nil, fmt.Errorf("campaign %q, customer %q: %w", camp.Name, cu.ID, err)
	}
	return msg, nil
}

func (a *app) preview(ctx context.Context, args []string) error {
	fs := a.flags("preview")
	customer, step, variant := sampleFlags(fs)
	atFlag := fs.String("at", "now", "render as of this RFC 3339 time (or now): the customer's facts and stage then")
	format := fs.String("format", "text", "text (the subject and the text part), html (the HTML part) or eml (the whole message)")
	mf := a.registerMailFlags(fs, true)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 || *customer == "" {
		fs.Usage()
		return exitError{code: 2}
	}
	if *format != "text" && *format != "html" && *format != "eml" {
		return exitError{code: 2, msg: fmt.Sprintf("nurture preview: --format %q: want text, html or eml", *format)}
	}
	at, err := parseAt(*atFlag)
	if err != nil {
		return exitError{code: 2, msg: "nurture preview: " + err.Error()}
	}
	links, err := mf.links(func() time.Time { return at })
	if err != nil {
		return err
	}
	c, st, err := a.contentAndStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	cp := compose.New(compose.Config{From: mf.from, Unsubscribe: links})
	s := emailOf{campaign: fs.Arg(0), customer: *customer, variant: *variant, step: *step, at: at}
	// The Message-ID of a preview comes from a placeholder, not a delivery.
	msg, err := a.buildEmail(ctx, c, st, cp, s, "preview", false)
	if err != nil {
		return err
	}
	switch *format {
	case "html":
		_, err = fmt.Fprint(a.stdout, msg.HTML)
	case "eml":
		err = mail.WriteMessage(a.stdout, msg, at)
	default:
		text := msg.Text
		if text == "" {
			text = "(no text part: this email is HTML only; see --format html)\n"
		}
		_, err = fmt.Fprintf(a.stdout, "Subject: %s\n\n%s", msg.Subject, text)
	}
	return err
}

func (a *app) sendTest(ctx context.Context, args []string) error {
	fs := a.flags("send-test")
	customer, step, variant := sampleFlags(fs)
	to := fs.String("to", "", "the address to send the test to, and only to it (required)")
	mf := a.registerMailFlags(fs, false) // no unsubscribe link: see below
	var smtp mail.Config
	fs.StringVar(&smtp.URL, "smtp-url", a.env("SMTP_URL", ""), "SMTP server, e.g. smtp://user:pass@host:587?tls=starttls; empty writes an .eml file to --outbox (SMTP_URL)")
	fs.StringVar(&smtp.OutboxDir, "outbox", a.env("OUTBOX_DIR", "outbox"), "directory for .eml files when no SMTP_URL is set (OUTBOX_DIR)")
	dkim := a.registerDKIMFlags(fs)
	if err := a.parse(fs, args); err != nil {
		return err
	}
	var err error
	if smtp.DKIM, err = dkim.signer(); err != nil {
		return err
	}
	if fs.NArg() != 1 || *customer == "" || *to == "" {
		fs.Usage()
		return exitError{code: 2}
	}
	if addr, err := netmail.ParseAddress(*to); err != nil || addr.Address != *to {
		return exitError{code: 2, msg: fmt.Sprintf("nurture send-test: --to %q is not a bare email address such as qa@example.com", *to)}
	}
	c, st, err := a.contentAndStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	// No unsubscribe link: the person testing must not be able to
	// unsubscribe the customer, as a mail client's one-click button would.
	cp := compose.New(compose.Config{From: mf.from})
	// A Message-ID of its own, shared with no delivery.
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	id := "test-" + hex.EncodeToString(nonce[:])
	s := emailOf{campaign: fs.Arg(0), customer: *customer, variant: *variant, step: *step, at: time.Now().UTC()}
	msg, err := a.buildEmail(ctx, c, st, cp, s, id, true)
	if err != nil {
		return err
	}
	msg.To = *to
	msg.Subject = "[TEST] " + msg.Subject
	delete(msg.Headers, "X-Nurture-Delivery")
	msg.Headers["X-Nurture-Test"] = "customer " + s.customer
	smtp.Conns = 1
	sender, err := mail.NewSender(ctx, smtp, a.log)
	if err != nil {
		return err
	}
	defer sender.Close()
	reply, err := sender.Send(ctx, msg)
	if err != nil {
		return fmt.Errorf("send-test: %w", err)
	}
	fmt.Fprintf(a.stdout, "sent a test of %s for customer %s to %s, from %s: %s\n", s.campaign, s.customer, *to, msg.From, reply)
	return nil
}
