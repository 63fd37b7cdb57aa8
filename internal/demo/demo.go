// Package demo is `nurture demo`: on a machine with a local PostgreSQL and
// Redis, it loads a generated audience into a database of its own, replays
// a few simulated days of activity, campaigns, triggers and journey steps,
// sends the emails and prints what was sent, what was not and why, and
// what to try next.
package demo

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/uuid"

	"nurture/internal/audience"
	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/freqcap"
	"nurture/internal/importer"
	"nurture/internal/mail"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/report"
	"nurture/internal/sample"
	"nurture/internal/scratch"
	"nurture/internal/store"
	"nurture/internal/worker"
)

// The demo uses a database and a Redis database of its own, which it
// empties on every run. (Tests reserve Redis databases 1 to 13, the
// bench 14.)
const (
	// DefaultDatabaseURL is the demo's own database.
	DefaultDatabaseURL = "postgres://localhost:5432/nurture_demo?sslmode=disable"
	// DefaultRedisURL is the demo's own Redis database.
	DefaultRedisURL = "redis://127.0.0.1:6379/15"
)

// Config is where the demo runs and how big its audience is. Start from
// DefaultConfig; Run fills the other zero fields with their defaults.
type Config struct {
	// DatabaseURL is the demo's database, dropped, created and migrated
	// on every run; its name must contain "demo".
	// Default DefaultDatabaseURL.
	DatabaseURL string
	// RedisURL is the demo's Redis database, emptied on every run; DB 0
	// is refused. Default DefaultRedisURL.
	RedisURL string
	// CampaignsDir and TemplatesDir hold the campaigns and templates the
	// demo runs. Default "campaigns" and "templates".
	CampaignsDir, TemplatesDir string
	// Customers is the size of the generated audience. Default 4,000.
	Customers int
	// Seed seeds the generated audience and each simulated day's
	// activity. Default 42.
	Seed uint64
	// Days is how many days the demo replays, one evaluation every 24
	// hours from the start. Default 6: the sixth day is when the welcome
	// series' last step (120h) is due.
	Days int
	// SMTPURL is an SMTP server to send the emails to. Default "": they
	// are written as .eml files to OutboxDir.
	SMTPURL string
	// OutboxDir receives the emails when SMTPURL is empty; the demo
	// empties it first. Default "outbox".
	OutboxDir string
	// SMTPConns is how many SMTP connections the workers share. Default 4.
	SMTPConns int
	// DKIM signs the emails. Default nil: unsigned.
	DKIM *mail.DKIM
	// Log receives the log of the scheduler and workers. Default:
	// discarded.
	Log *slog.Logger
	// Now is the clock: the audience is generated and the first day
	// evaluated at Now, truncated to the minute. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration of a plain `nurture demo`.
func DefaultConfig() Config {
	return Config{
		DatabaseURL:  DefaultDatabaseURL,
		RedisURL:     DefaultRedisURL,
		CampaignsDir: "campaigns",
		TemplatesDir: "templates",
		Customers:    4000,
		Seed:         42,
		Days:         6,
		OutboxDir:    "outbox",
		SMTPConns:    4,
	}
}

func (c Config) withDefaults() Config {
	d := DefaultConfig()
	if c.DatabaseURL == "" {
		c.DatabaseURL = d.DatabaseURL
	}
	if c.RedisURL == "" {
		c.RedisURL = d.RedisURL
	}
	if c.CampaignsDir == "" {
		c.CampaignsDir = d.CampaignsDir
	}
	if c.TemplatesDir == "" {
		c.TemplatesDir = d.TemplatesDir
	}
	if c.Customers <= 0 {
		c.Customers = d.Customers
	}
	if c.Days <= 0 {
		c.Days = d.Days
	}
	if c.OutboxDir == "" {
		c.OutboxDir = d.OutboxDir
	}
	if c.SMTPConns <= 0 {
		c.SMTPConns = d.SMTPConns
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Run empties the demo's database and Redis database, loads a generated
// audience and replays cfg.Days simulated days (see replay): each day
// imports some activity, runs what `run-once --at` runs, and sends that
// day's emails with in-process workers on a simulated clock; on the first
// day one customer unsubscribes and one address bounces before the
// sending. It then prints what was sent, held out and capped per
// campaign, journey step and stage, the deliveries skipped and why, the
// customers each campaign's where left out, and the next three things to
// try. Progress and the table go to stdout; problems with the campaigns go
// to stderr.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	cfg = cfg.withDefaults()
	if err := guard.Check(cfg.DatabaseURL, cfg.RedisURL); err != nil {
		return err
	}
	out := stdout
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	start := cfg.Now()

	c, err := content.Load(cfg.CampaignsDir, cfg.TemplatesDir)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return errors.New("campaigns or templates are invalid; run 'nurture lint' for the list")
	}
	step("campaigns: %d loaded from %s, templates from %s", len(c.Campaigns().Campaigns), cfg.CampaignsDir, cfg.TemplatesDir)

	// A new database on every run: the stage history, journeys and
	// triggers of an earlier run would change what this one plans.
	step("database: re-creating and migrating %s", scratch.Redact(cfg.DatabaseURL))
	admin, name, err := scratch.AdminURL(cfg.DatabaseURL)
	if err != nil {
		return err
	}
	if err := store.DropDatabase(ctx, admin, name); err != nil {
		return err
	}
	if _, err := store.Migrate(ctx, cfg.DatabaseURL, cfg.Log); err != nil {
		return err
	}
	sc, err := store.OpenScratch(ctx, cfg.DatabaseURL, store.Config{})
	if err != nil {
		return err
	}
	defer sc.Close()
	st := sc.Store
	o, err := queue.RedisOptions(cfg.RedisURL)
	if err != nil {
		return err
	}
	rdb, err := queue.Dial(ctx, o, 5*time.Second)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("empty the demo's Redis database: %w", err)
	}

	at := start.UTC().Truncate(time.Minute)
	step("audience: generating %d customers (seed %d) as of %s", cfg.Customers, cfg.Seed, at.Format(time.RFC3339))
	if err := loadSample(ctx, st, cfg.Customers, cfg.Seed, at); err != nil {
		return err
	}

	p := planner.New(st, cfg.Log)
	left, err := leftOutByWhere(ctx, p, c.Rules, at)
	if err != nil {
		return err
	}

	mcfg := mail.Config{URL: cfg.SMTPURL, OutboxDir: cfg.OutboxDir, Conns: cfg.SMTPConns, DKIM: cfg.DKIM}
	if mcfg.URL == "" {
		if err := os.RemoveAll(cfg.OutboxDir); err != nil {
			return err
		}
	}
	sender, err := mail.NewSender(ctx, mcfg, cfg.Log)
	if err != nil {
		return err
	}
	defer sender.Close()
	clock := newSimClock(at)
	wc := &worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates}
	w := worker.New(worker.Config{Now: clock.now}, st, queue.NewJournal(rdb), sender, wc, nil, cfg.Log)
	srv := worker.NewServer(rdb, worker.ServerConfig{Concurrency: 32, Queues: worker.Queues(wc), PollInterval: 20 * time.Millisecond, RetryBase: time.Second}, cfg.Log)
	if err := srv.Start(w); err != nil {
		return err
	}
	step("replay: %d days from %s; the workers' clock is simulated, so each email goes out at its send_at, inside its send window", cfg.Days, at.Format(time.RFC3339))
	replayErr := replay(ctx, cfg, st, p, c, at, clock, queue.NewClient(rdb, queue.Config{}), out)
	srv.Shutdown()
	w.Close()
	if replayErr != nil {
		return replayErr
	}

	fmt.Fprintln(out)
	if err := printCounts(ctx, st, c.Campaigns(), out); err != nil {
		return err
	}
	fmt.Fprintln(out)
	first, err := printNotSent(ctx, st, out)
	if err != nil {
		return err
	}
	if err := printExits(ctx, st, out); err != nil {
		return err
	}
	printLeftOut(out, left)
	fmt.Fprintln(out)
	if err := printReport(ctx, st, c.Campaigns(), clock.now(), out); err != nil {
		return err
	}
	fmt.Fprintln(out)
	if mcfg.URL == "" {
		abs, _ := filepath.Abs(cfg.OutboxDir)
		fmt.Fprintf(out, "The emails are .eml files in %s (open one in any mail client).\n", abs)
	} else {
		fmt.Fprintf(out, "The emails went to %s.\n", scratch.Redact(mcfg.URL))
	}
	fmt.Fprintf(out, "Done in %s.\n\n", cfg.Now().Sub(start).Round(100*time.Millisecond))
	printNext(out, cfg, at, first, left)
	return nil
}

// engage records the opens and clicks of the replay's readers, as the
// HTTP role would from the tracking pixel and links: of the emails sent,
// about four in ten are opened an hour or so later and about one in
// eight clicked, chosen by a hash of the campaign and customer, so every
// run shows the same figures; and a link scanner fetches the pixel of one
// email in seven a second after it arrives, which the report leaves out.
func engage(ctx context.Context, st *store.Store) error {
	var hits []store.Hit
	err := st.DeliveriesWhere(ctx, store.DeliveryFilter{Status: store.StatusSent}, func(d *store.DeliveryRow) error {
		id, err := uuid.Parse(d.ID)
		if err != nil || d.SentAt == nil {
			return err
		}
		h := fnv.New32a()
		h.Write([]byte(d.Campaign + "/" + d.CustomerID + "/" + fmt.Sprint(d.Step)))
		n := int(h.Sum32() % 1000)
		sent := *d.SentAt
		if n%7 == 0 {
			hits = append(hits, store.Hit{Delivery: id, At: sent.Add(time.Second), Scanner: true})
		}
		if n < 400 {
			hits = append(hits, store.Hit{Delivery: id, At: sent.Add(time.Hour + time.Duration(n)*time.Minute)})
		}
		if n < 120 {
			hits = append(hits, store.Hit{Delivery: id, Click: true, URL: "https://shop.example.com/" + d.Campaign,
				At: sent.Add(time.Hour + time.Duration(n+5)*time.Minute)})
		}
		return nil
	})
	if err != nil {
		return err
	}
	_, err = st.RecordHits(ctx, hits)
	return err
}

// printReport attributes the replay's purchases to the emails before
// them and prints what `nurture report` would.
func printReport(ctx context.Context, st *store.Store, set *campaign.Set, now time.Time, out io.Writer) error {
	if err := engage(ctx, st); err != nil {
		return err
	}
	if _, err := st.Attribute(ctx, report.Windows(set)); err != nil {
		return err
	}
	rows, err := st.Report(ctx, store.ReportFilter{})
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "What the campaigns earned (nurture report): simulated opens and clicks, and the replay's orders attributed to the last email before them:")
	report.WriteText(indent{out}, report.Build(rows, report.Campaigns(set)))
	// The pages read daily rollups, which the scheduler's leader keeps;
	// the demo runs none, so it brings them up to date itself.
	_, err = st.RefreshRollups(ctx, now)
	return err
}

// nurtureCmd is how the hints run nurture: it works as printed from the
// repository root, with nothing installed.
const nurtureCmd = "go run ./cmd/nurture"

// printNext prints the next three things to try, as commands that work as
// printed from the repository root. first is a delivery that was sent, to
// show its email (nil when none was); left says which campaigns have a
// where to change.
func printNext(out io.Writer, cfg Config, at time.Time, first *store.DeliveryRow, left []whereCount) {
	flags := fmt.Sprintf(" --database-url '%s'", cfg.DatabaseURL)
	if d := DefaultConfig(); cfg.CampaignsDir != d.CampaignsDir || cfg.TemplatesDir != d.TemplatesDir {
		flags += fmt.Sprintf(" --campaigns %s --templates %s", cfg.CampaignsDir, cfg.TemplatesDir)
	}
	fmt.Fprintln(out, "Next, four things to try:")
	if first != nil && cfg.SMTPURL == "" {
		fmt.Fprintf(out, "  1. Read the %s email to %s, as their mail client will show it:\n", first.Campaign, first.CustomerID)
		fmt.Fprintf(out, "       cat %s\n", mail.OutboxGlob(cfg.OutboxDir, first.Campaign, first.CustomerID))
	} else {
		fmt.Fprintln(out, "  1. Read the emails in your mail server's inbox.")
	}
	// The campaign whose where leaves out the fewest customers: dropping
	// it is a small change, easy to follow in the plan.
	campaign, change, fewest := "", "its audience", 0
	for _, c := range left {
		if c.n > 0 && (fewest == 0 || c.n < fewest) {
			campaign, change, fewest = c.campaign, "drop its where", c.n
		}
	}
	if campaign == "" && first != nil {
		campaign = first.Campaign
	}
	if campaign != "" {
		fmt.Fprintf(out, "  2. Change a campaign: edit %s (%s), then see who it would reach:\n",
			filepath.Join(cfg.CampaignsDir, campaign+".yaml"), change)
		fmt.Fprintf(out, "       %s plan --at %s --campaign %s%s\n", nurtureCmd, at.Format(time.RFC3339), campaign, flags)
	} else {
		fmt.Fprintf(out, "  2. Change a campaign in %s, then see who it would reach:\n", cfg.CampaignsDir)
		fmt.Fprintf(out, "       %s plan --at %s%s\n", nurtureCmd, at.Format(time.RFC3339), flags)
	}
	fmt.Fprintln(out, "  3. Walk through examples/, a small audience in every stage (README, \"Tutorial\"):")
	fmt.Fprintf(out, "       %s migrate\n", nurtureCmd)
	fmt.Fprintf(out, "       %s import customers examples/customers.jsonl\n", nurtureCmd)
	fmt.Fprintf(out, "       %s import events examples/events.jsonl\n", nurtureCmd)
	// The replayed days run ahead of the clock the server reads the
	// lifecycle's default period by: the link names them.
	last := at.AddDate(0, 0, max(cfg.Days-1, 0))
	fmt.Fprintln(out, "  4. See the report and the lifecycle as pages: serve the demo's database, then open")
	fmt.Fprintf(out, "     http://127.0.0.1:8080/campaigns and http://127.0.0.1:8080/lifecycle?from=%s&to=%s\n",
		at.Format(time.DateOnly), last.Format(time.DateOnly))
	fmt.Fprintf(out, "       %s serve --role http --database-url '%s'\n", nurtureCmd, cfg.DatabaseURL)
}

// meanwhile does what happens in real life between planning and sending:
// the customer of the first delivery clicks an unsubscribe link, and the
// address of the last one bounces and is suppressed. The workers then
// record those deliveries as skipped, with the reason. It prints what it
// did.
func meanwhile(ctx context.Context, st *store.Store, out io.Writer) error {
	var firstID, firstCampaign, lastID string
	err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		if firstID == "" {
			firstID, firstCampaign = d.CustomerID, d.Campaign
		}
		lastID = d.CustomerID
		return nil
	})
	if err != nil {
		return err
	}
	if firstID == "" {
		fmt.Fprintln(out, "nothing was planned")
		return nil
	}
	if _, err := st.Unsubscribe(ctx, firstID, "unsubscribe link", firstCampaign); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s clicks an unsubscribe link\n", firstID)
	if lastID == firstID {
		return nil
	}
	var email string
	err = st.Customers(ctx, func(c *audience.Customer) error {
		if c.ID == lastID {
			email = c.Email
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := st.AddSuppression(ctx, email, "bounce"); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s (%s) bounces and is suppressed\n", email, lastID)
	return nil
}

// maxNotSent bounds the deliveries printNotSent lists one by one.
const maxNotSent = 10

// printNotSent lists the deliveries that were skipped (other than by the
// frequency cap) or failed, with the reason, and returns the first delivery that was sent (nil if none).
func printNotSent(ctx context.Context, st *store.Store, out io.Writer) (*store.DeliveryRow, error) {
	var first *store.DeliveryRow
	var notSent []store.DeliveryRow
	more := 0
	err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		switch {
		case d.Status == store.StatusSent && first == nil:
			r := *d
			first = &r
		case d.Status == store.StatusSkipped && d.Reason == freqcap.Reason:
			// Counted in the table's CAPPED column.
		case d.Status == store.StatusSkipped || d.Status == store.StatusFailed:
			if len(notSent) == maxNotSent {
				more++
				return nil
			}
			notSent = append(notSent, *d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if len(notSent) == 0 {
		return first, nil
	}
	fmt.Fprintln(out, "Not sent, and why:")
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, d := range notSent {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", d.Campaign, d.CustomerID, d.Status, d.Reason)
	}
	tw.Flush()
	if more > 0 {
		fmt.Fprintf(out, "  and %d more\n", more)
	}
	fmt.Fprintln(out)
	return first, nil
}

// whereCount is how many customers a campaign's where left out.
type whereCount struct {
	campaign, where string
	stages          []string
	n               int
}

// leftOutByWhere counts, for each campaign with a where, the customers
// that every other condition of its audience takes in (consent, stage,
// inactive days; the demo's database holds no earlier deliveries) and its
// where leaves out, at the instant at.
func leftOutByWhere(ctx context.Context, p *planner.Planner, rules *audience.Rules, at time.Time) ([]whereCount, error) {
	var targets []*audience.Target
	var counts []whereCount
	for _, t := range rules.Targets() {
		if cp := t.Campaign; cp.Enabled && cp.Audience.Where != "" {
			targets = append(targets, t)
			counts = append(counts, whereCount{campaign: cp.Name, where: cp.Audience.Where, stages: cp.Audience.Stages})
		}
	}
	if len(targets) == 0 {
		return nil, nil
	}
	err := p.Stage(ctx, rules, at, func(c *audience.Customer, f *audience.Facts) error {
		if !c.Subscribed || c.Suppressed {
			return nil
		}
		for i, t := range targets {
			a := &t.Campaign.Audience
			if len(a.Stages) > 0 && !slices.Contains(a.Stages, f.Stage) ||
				a.MinInactive != nil && f.InactiveDays < *a.MinInactive ||
				a.MaxInactive != nil && f.InactiveDays > *a.MaxInactive {
				continue
			}
			if ok, err := t.Match(c, f, audience.History{}, at); err == nil && !ok {
				counts[i].n++
			}
		}
		return nil
	})
	return counts, err
}

// printLeftOut prints how many customers each campaign's where left out.
func printLeftOut(out io.Writer, counts []whereCount) {
	if len(counts) == 0 {
		return
	}
	fmt.Fprintln(out, "Left out by a rule:")
	for _, c := range counts {
		who := "customers"
		if len(c.stages) > 0 {
			who = strings.Join(c.stages, " or ") + " customers"
		}
		fmt.Fprintf(out, "  %s: %d %s left out by where: %s\n", c.campaign, c.n, who, c.where)
	}
}

// guard refuses URLs that look like real data.
var guard = scratch.Guard{Word: "demo", Database: "the demo empties its database", Redis: "the demo empties its Redis DB", RedisHint: DefaultRedisURL}

// loadSample imports a generated audience through the importer, as a user's
// files would be.
func loadSample(ctx context.Context, st *store.Store, n int, seed uint64, at time.Time) error {
	dir, err := os.MkdirTemp("", "nurture-sample-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	cpath, epath := filepath.Join(dir, "customers.jsonl"), filepath.Join(dir, "events.jsonl")
	if err := sample.WriteFiles(cpath, epath, n, seed, at); err != nil {
		return err
	}
	for _, f := range []struct {
		path string
		imp  func(context.Context, *store.Store, io.Reader, string, importer.Options) (importer.Result, error)
	}{{cpath, importer.Customers}, {epath, importer.Events}} {
		r, err := os.Open(f.path)
		if err != nil {
			return err
		}
		res, err := f.imp(ctx, st, r, filepath.Base(f.path), importer.Options{Strict: true})
		r.Close()
		if err != nil {
			return err
		}
		if res.Bad > 0 {
			return fmt.Errorf("sample %s: %d bad lines, first: %s", f.path, res.Bad, res.Problems[0])
		}
	}
	return nil
}

// printCounts prints the deliveries per campaign, journey step and stage,
// one column per outcome: sent, held out, skipped by the frequency cap,
// skipped for another reason (listed below the table), failed.
func printCounts(ctx context.Context, st *store.Store, set *campaign.Set, out io.Writer) error {
	type key struct {
		campaign string
		step     int
		stage    string
	}
	type row struct{ sent, heldOut, capped, skipped, failed int }
	rows := map[key]*row{}
	err := st.Deliveries(ctx, func(d *store.DeliveryRow) error {
		k := key{d.Campaign, 0, d.Stage}
		if c := set.Campaign(d.Campaign); c != nil && c.IsJourney() {
			k.step = d.Step
		}
		r := rows[k]
		if r == nil {
			r = &row{}
			rows[k] = r
		}
		switch {
		case d.Status == store.StatusSent:
			r.sent++
		case d.Status == store.StatusHeldOut:
			r.heldOut++
		case d.Status == store.StatusSkipped && d.Reason == freqcap.Reason:
			r.capped++
		case d.Status == store.StatusSkipped:
			r.skipped++
		case d.Status == store.StatusFailed:
			r.failed++
		}
		return nil
	})
	if err != nil {
		return err
	}
	keys := make([]key, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.campaign != b.campaign {
			return a.campaign < b.campaign
		}
		if a.step != b.step {
			return a.step < b.step
		}
		return a.stage < b.stage
	})
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CAMPAIGN\tSTEP\tSTAGE\tSENT\tHELD_OUT\tCAPPED\tSKIPPED\tFAILED\t")
	var total row
	for _, k := range keys {
		r := rows[k]
		step := ""
		if k.step > 0 {
			step = strconv.Itoa(k.step)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t\n", k.campaign, step, k.stage, r.sent, r.heldOut, r.capped, r.skipped, r.failed)
		total.sent += r.sent
		total.heldOut += r.heldOut
		total.capped += r.capped
		total.skipped += r.skipped
		total.failed += r.failed
	}
	fmt.Fprintf(tw, "TOTAL\t\t\t%d\t%d\t%d\t%d\t%d\t\n", total.sent, total.heldOut, total.capped, total.skipped, total.failed)
	return tw.Flush()
}

// indent prefixes each write with spaces, for output nested under a step.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if string(p) == "\n" {
		return i.w.Write(p) // no trailing spaces on a blank line
	}
	if _, err := i.w.Write(append([]byte("    "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
