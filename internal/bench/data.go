package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/importer"
	"nurture/internal/sample"
	"nurture/internal/store"
)

// benchSendCampaign is the campaign of part c: every customer up to the
// --sends-th, once.
const benchSendCampaign = "bench-send"

// benchVariants are the campaigns planned beside the shipped ones, with
// other stages, inactivity bounds and where expressions, so that ten
// campaigns exercise both the SQL pre-filter and the expressions.
func benchVariants() map[string]string {
	return map[string]string{
		"winback-enterprise.yaml": `name: winback-enterprise
description: Lapsed enterprise accounts, handed to their account managers
enabled: true
schedule: "0 9 * * *"
audience:
  stages: [lapsed]
  inactive_days: {min: 90, max: 365}
  where: attributes.plan == "enterprise"
frequency:
  cooldown: 720h
  max_sends: 3
email:
  template: winback
`,
		"at-risk-paid.yaml": `name: at-risk-paid
description: Paying customers quiet for six weeks
enabled: true
schedule: "0 12 * * *"
audience:
  stages: [at_risk]
  inactive_days: {min: 42, max: 89}
  where: attributes.plan in ["pro", "enterprise"] && total_spent >= 50
frequency:
  cooldown: 336h
email:
  template: at-risk
`,
		"prospect-nudge.yaml": `name: prospect-nudge
description: Prospects still visiting, a month or more after signing up
enabled: true
schedule: "0 15 * * *"
audience:
  stages: [prospect]
  inactive_days: {max: 14}
  where: days_since_signup >= 30 && timezone != "Asia/Tokyo"
frequency:
  cooldown: 720h
  max_sends: 2
email:
  template: onboarding
`,
		"free-upsell.yaml": `name: free-upsell
description: Free-plan buyers who come back
enabled: true
schedule: "0 16 * * 2"
audience:
  stages: [active, loyal, advocate]
  inactive_days: {max: 29}
  where: attributes.plan == "free" && orders_count >= 2
frequency:
  cooldown: 2160h
  max_sends: 2
email:
  template: loyalty-reward
`,
	}
}

// benchSendYAML is the campaign of part c, over customers c0000001 to
// lastID.
func benchSendYAML(lastID, template string) string {
	return fmt.Sprintf(`name: %s
description: Every customer up to %s, once
enabled: true
schedule: "0 9 * * *"
audience:
  where: id <= %q
frequency:
  max_sends: 1
email:
  template: %s
`, benchSendCampaign, lastID, lastID, template)
}

// sampleID is the id sample.Write gives its n-th customer (1-based). Part c
// checks that it planned exactly --sends deliveries, so a change of format
// cannot go unnoticed.
func sampleID(n int) string { return fmt.Sprintf("c%07d", n) }

// loadCampaigns writes and loads the campaign sets: the shipped campaigns
// and the variants for planning, and the campaign of part c.
func (b *bench) loadCampaigns() error {
	planDir, sendDir := filepath.Join(b.dir, "plan"), filepath.Join(b.dir, "send")
	if err := copyCampaigns(b.cfg.CampaignsDir, planDir); err != nil {
		return err
	}
	for name, text := range benchVariants() {
		if err := os.WriteFile(filepath.Join(planDir, name), []byte(text), 0o644); err != nil {
			return err
		}
	}
	var err error
	if b.plan, err = b.loadSet(planDir); err != nil {
		return err
	}
	if err := os.MkdirAll(sendDir, 0o755); err != nil {
		return err
	}
	if err := copyFile(filepath.Join(b.cfg.CampaignsDir, campaign.LifecycleFile), filepath.Join(sendDir, campaign.LifecycleFile)); err != nil {
		return err
	}
	tmpl := b.plan.Rules.Targets()[0].Campaign.Email.Template
	lastID := sampleID(min(b.cfg.Sends, b.cfg.Customers))
	if err := os.WriteFile(filepath.Join(sendDir, benchSendCampaign+".yaml"), []byte(benchSendYAML(lastID, tmpl)), 0o644); err != nil {
		return err
	}
	b.send, err = b.loadSet(sendDir)
	return err
}

// loadSet loads one campaign set, printing every problem.
func (b *bench) loadSet(dir string) (*content.Content, error) {
	c, err := content.Load(dir, b.cfg.TemplatesDir)
	if err != nil {
		fmt.Fprintln(b.stderr, err)
		return nil, fmt.Errorf("the benchmark's campaigns, made from %s, are invalid", b.cfg.CampaignsDir)
	}
	return c, nil
}

// copyCampaigns copies the lifecycle and campaign files of src to dst.
func copyCampaigns(src, dst string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return fmt.Errorf("read campaigns directory: %w", err)
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range entries {
		if e.Type().IsRegular() && filepath.Ext(e.Name()) == ".yaml" && !strings.HasPrefix(e.Name(), ".") {
			if err := copyFile(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

func copyFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// importStats says how long loading the audience took.
type importStats struct {
	customers, events                   int
	generate, customersTime, eventsTime time.Duration
	vacuum                              time.Duration
}

// sampleSize is how many customers and events a sample holds.
type sampleSize struct{ customers, events int }

// prepareAudience makes sure the database holds the sample audience of
// --customers customers with --seed, and nothing else; otherwise it
// re-creates the database and imports the audience through the importer.
// The marker is the number of customers and events, which differs for
// another size or seed.
func (b *bench) prepareAudience(ctx context.Context) error {
	b.progress("audience: counting the sample of %d customers (seed %d)", b.cfg.Customers, b.cfg.Seed)
	want, err := countSample(b.cfg.Customers, b.cfg.Seed, b.cfg.At)
	if err != nil {
		return err
	}
	have, err := b.st.Counts(ctx)
	if err != nil {
		return err
	}
	if !b.cfg.Reimport && have.Customers == want.customers && have.Events == want.events && have.Suppressions == 0 {
		b.progress("audience: reusing the %d customers and %d events already in the database", have.Customers, have.Events)
		b.add(result{name: "Import of the audience", value: "skipped: the database held it from an earlier run (`--reimport` measures it)"})
		return nil
	}
	if b.cfg.Reimport {
		b.progress("audience: re-creating the database (--reimport)")
	} else {
		b.progress("audience: re-creating the database (it holds %d customers and %d events; want %d and %d)",
			have.Customers, have.Events, want.customers, want.events)
	}
	if err := b.recreateDatabase(ctx); err != nil {
		return err
	}
	b.imported, err = b.importSample(ctx)
	if err != nil {
		return err
	}
	s := b.imported
	if s.customers != want.customers || s.events != want.events {
		return fmt.Errorf("imported %d customers and %d events, want %d and %d", s.customers, s.events, want.customers, want.events)
	}
	b.add(result{
		name: fmt.Sprintf("Import of the audience: %s customers, %s events (`importer`, strict, JSON Lines files)",
			count(float64(s.customers)), count(float64(s.events))),
		value: fmt.Sprintf("%s customers/s (%s), %s events/s (%s); generating the files took %s, VACUUM ANALYZE %s",
			count(rate(s.customers, s.customersTime)), secs(s.customersTime), count(rate(s.events, s.eventsTime)), secs(s.eventsTime),
			secs(s.generate), secs(s.vacuum)),
	})
	return nil
}

// countSample counts the lines sample.Write generates, without keeping them.
func countSample(n int, seed uint64, at time.Time) (sampleSize, error) {
	var c, e lineCounter
	if err := sample.Write(&c, &e, n, seed, at); err != nil {
		return sampleSize{}, err
	}
	return sampleSize{customers: int(c), events: int(e)}, nil
}

// lineCounter counts the lines written to it.
type lineCounter int

func (l *lineCounter) Write(p []byte) (int, error) {
	*l += lineCounter(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// recreateDatabase drops the database, creates it and migrates it.
func (b *bench) recreateDatabase(ctx context.Context) error {
	admin, name, err := adminURL(b.cfg.DatabaseURL)
	if err != nil {
		return err
	}
	b.st.Close()
	b.st = nil
	if err := store.DropDatabase(ctx, admin, name); err != nil {
		return err
	}
	if _, err := store.Migrate(ctx, b.cfg.DatabaseURL, b.log); err != nil {
		return err
	}
	b.st, err = store.OpenScratch(ctx, b.cfg.DatabaseURL, store.Config{})
	return err
}

// adminURL returns the URL of the postgres database on the server of u,
// and the name of u's database.
func adminURL(u string) (admin, name string, err error) {
	pu, err := url.Parse(u)
	if err != nil {
		return "", "", fmt.Errorf("parse database URL: %w", err)
	}
	name = strings.TrimPrefix(pu.Path, "/")
	pu.Path = "/postgres"
	return pu.String(), name, nil
}

// importSample generates the audience as JSON Lines files and imports them
// as a user would, timing each step.
func (b *bench) importSample(ctx context.Context) (*importStats, error) {
	var s importStats
	cpath, epath := filepath.Join(b.dir, "customers.jsonl"), filepath.Join(b.dir, "events.jsonl")
	defer os.Remove(cpath)
	defer os.Remove(epath)
	b.progress("audience: generating %d customers as of %s", b.cfg.Customers, b.cfg.At.Format(time.RFC3339))
	start := time.Now()
	if err := sample.WriteFiles(cpath, epath, b.cfg.Customers, b.cfg.Seed, b.cfg.At); err != nil {
		return nil, err
	}
	s.generate = time.Since(start)
	var err error
	if s.customers, s.customersTime, err = b.importFile(ctx, "customers", cpath, importer.Customers); err != nil {
		return nil, err
	}
	if s.events, s.eventsTime, err = b.importFile(ctx, "events", epath, importer.Events); err != nil {
		return nil, err
	}
	b.progress("audience: vacuum and analyze")
	start = time.Now()
	if err := b.st.Vacuum(ctx); err != nil {
		return nil, err
	}
	s.vacuum = time.Since(start)
	return &s, nil
}

type importFunc func(context.Context, *store.Store, io.Reader, string, importer.Options) (importer.Result, error)

// importFile imports one file strictly and returns the lines imported and
// the time it took.
func (b *bench) importFile(ctx context.Context, kind, path string, imp importFunc) (int, time.Duration, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	b.progress("audience: importing %s", kind)
	next := time.Now().Add(5 * time.Second)
	opts := importer.Options{Strict: true, Progress: func(lines int) {
		if time.Now().After(next) {
			fmt.Fprintf(b.stderr, "    %d %s lines\n", lines, kind)
			next = time.Now().Add(5 * time.Second)
		}
	}}
	start := time.Now()
	res, err := imp(ctx, b.st.Store, f, filepath.Base(path), opts)
	elapsed := time.Since(start)
	if err != nil {
		return 0, 0, err
	}
	if res.Bad > 0 {
		return 0, 0, fmt.Errorf("sample %s: %d bad lines, first: %s", kind, res.Bad, res.Problems[0])
	}
	b.progress("audience: %d %s in %s (%s/s)", res.Imported, kind, elapsed.Round(time.Millisecond), count(rate(res.Imported, elapsed)))
	return res.Imported, elapsed, nil
}
