package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"text/tabwriter"
	"time"

	"nurture/internal/importer"
	"nurture/internal/mail"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/sample"
	"nurture/internal/store"
	"nurture/internal/worker"
)

// The demo uses a database and a Redis database of its own, which it
// empties on every run. (Tests reserve Redis databases 1 to 13, the
// bench 14.)
const (
	defaultDemoDatabaseURL = "postgres://localhost:5432/nurture_demo?sslmode=disable"
	defaultDemoRedisURL    = "redis://127.0.0.1:6379/15"
)

func (a *app) demo(ctx context.Context, args []string) error {
	fs := a.flags("demo", "[--customers N]")
	n := fs.Int("customers", 4000, "size of the generated audience")
	seed := fs.Uint64("seed", 42, "seed of the generated audience")
	outbox := fs.String("outbox", a.env("OUTBOX_DIR", "outbox"), "directory for .eml files when no SMTP_URL is set (OUTBOX_DIR)")
	smtpURL := fs.String("smtp-url", a.env("SMTP_URL", ""), "send to this SMTP server instead of the outbox (SMTP_URL)")
	conns := a.envInt("SMTP_CONNS", 4) // read before parse, which reports a malformed value
	fs.Lookup("database-url").DefValue = defaultDemoDatabaseURL
	fs.Lookup("redis-url").DefValue = defaultDemoRedisURL
	if err := a.parse(fs, args); err != nil {
		return err
	}
	// The demo empties its database and drains its queues: it never uses
	// DATABASE_URL or REDIS_URL, only the flags (or its own defaults), so
	// it cannot touch a real installation by accident.
	if !isSet(fs, "database-url") {
		a.databaseURL = defaultDemoDatabaseURL
	}
	if !isSet(fs, "redis-url") {
		a.redisURL = defaultDemoRedisURL
	}
	out := a.stdout
	step := func(format string, args ...any) { fmt.Fprintf(out, "==> "+format+"\n", args...) }
	start := time.Now()

	c, err := a.loadContent()
	if err != nil {
		return err
	}
	step("campaigns: %d loaded from %s, templates from %s", len(c.Campaigns().Campaigns), a.campaignsDir, a.templatesDir)

	step("database: migrating %s", redact(a.databaseURL))
	if _, err := store.Migrate(ctx, a.databaseURL, a.log); err != nil {
		return err
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return err
	}
	defer st.Close()
	if err := st.Reset(ctx); err != nil {
		return err
	}
	rdb, err := a.openRedis(ctx)
	if err != nil {
		return err
	}
	defer rdb.Close()
	if err := rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("empty the demo's Redis database: %w", err)
	}

	at := time.Now().UTC().Truncate(time.Minute)
	step("audience: generating %d customers (seed %d) as of %s", *n, *seed, at.Format(time.RFC3339))
	if err := loadSample(ctx, st, *n, *seed, at); err != nil {
		return err
	}

	step("tick: planning every campaign at %s", at.Format(time.RFC3339))
	q := queue.NewClient(rdb, queue.Config{})
	results, err := tickAll(ctx, planner.New(st, a.log), c.Rules, c.Rules.Targets(), at, q, indent{out})
	if err != nil {
		return err
	}
	planned := 0
	for _, r := range results {
		planned += r.Planned
	}

	mcfg := mail.Config{URL: *smtpURL, OutboxDir: *outbox, Conns: conns}
	if mcfg.URL == "" {
		if err := os.RemoveAll(*outbox); err != nil {
			return err
		}
	}
	sender, err := mail.NewSender(ctx, mcfg, a.log)
	if err != nil {
		return err
	}
	defer sender.Close()
	w := worker.New(worker.Config{}, st, sender, &worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates}, nil, a.log)
	srv := worker.NewServer(rdb, worker.ServerConfig{Concurrency: 32, Queues: queuesOf(c), PollInterval: 100 * time.Millisecond, RetryBase: time.Second}, a.log)
	step("workers: sending %d emails (32 at a time)", planned)
	if err := srv.Start(w); err != nil {
		return err
	}
	drainErr := drain(ctx, st, planned, indent{out})
	srv.Shutdown()
	w.Close()
	if drainErr != nil {
		return drainErr
	}

	counts, err := st.DeliveryCounts(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintln(out)
	printCounts(out, counts)
	fmt.Fprintln(out)
	if mcfg.URL == "" {
		abs, _ := filepath.Abs(*outbox)
		fmt.Fprintf(out, "The emails are .eml files in %s (open one in any mail client).\n", abs)
	} else {
		fmt.Fprintf(out, "The emails went to %s.\n", redact(mcfg.URL))
	}
	fmt.Fprintf(out, "Done in %s. To look around:\n", time.Since(start).Round(100*time.Millisecond))
	db := fmt.Sprintf("--database-url '%s'", a.databaseURL)
	fmt.Fprintf(out, "  nurture stage --at %s %s      # every customer's stage\n", at.Format(time.RFC3339), db)
	fmt.Fprintf(out, "  nurture plan --at %s %s  # a tick a week later, with cooldowns\n", at.Add(7*24*time.Hour).Format(time.RFC3339), db)
	fmt.Fprintf(out, "  psql '%s' -c 'SELECT campaign, status, count(*) FROM deliveries GROUP BY 1, 2'\n", a.databaseURL)
	return nil
}

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

// drain waits until every delivery is sent, failed or skipped, printing
// progress about once a second.
func drain(ctx context.Context, st *store.Store, total int, out io.Writer) error {
	tk := time.NewTicker(200 * time.Millisecond)
	defer tk.Stop()
	last := time.Now()
	progress, lastDone := time.Now(), -1
	for {
		counts, err := st.DeliveryCounts(ctx)
		if err != nil {
			return err
		}
		done, open := 0, 0
		for _, c := range counts {
			switch c.Status {
			case "sent", "failed", "skipped":
				done += c.N
			default:
				open += c.N
			}
		}
		if open == 0 || time.Since(last) >= time.Second {
			fmt.Fprintf(out, "%d/%d finished\n", done, total)
			last = time.Now()
		}
		if open == 0 {
			return nil
		}
		if done != lastDone {
			progress, lastDone = time.Now(), done
		} else if time.Since(progress) > time.Minute {
			return fmt.Errorf("no delivery finished for a minute; %d still open (is the mail server answering?)", open)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
		}
	}
}

// printCounts prints deliveries per campaign and stage, one column per
// status.
func printCounts(out io.Writer, counts []store.DeliveryCount) {
	type key struct{ campaign, stage string }
	rows := map[key]map[string]int{}
	for _, c := range counts {
		k := key{c.Campaign, c.Stage}
		if rows[k] == nil {
			rows[k] = map[string]int{}
		}
		rows[k][c.Status] += c.N
	}
	keys := make([]key, 0, len(rows))
	for k := range rows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].campaign != keys[j].campaign {
			return keys[i].campaign < keys[j].campaign
		}
		return keys[i].stage < keys[j].stage
	})
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "CAMPAIGN\tSTAGE\tSENT\tSKIPPED\tFAILED\t")
	var sent, skipped, failed int
	for _, k := range keys {
		r := rows[k]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t\n", k.campaign, k.stage, r["sent"], r["skipped"], r["failed"])
		sent, skipped, failed = sent+r["sent"], skipped+r["skipped"], failed+r["failed"]
	}
	fmt.Fprintf(tw, "TOTAL\t\t%d\t%d\t%d\t\n", sent, skipped, failed)
	tw.Flush()
}

// indent prefixes each write with spaces, for output nested under a step.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := i.w.Write(append([]byte("    "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
