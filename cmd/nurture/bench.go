package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// The benchmark has a database and a Redis DB of its own: it drops the
// database when it does not hold the expected audience and flushes the
// Redis DB before and after each part.
const (
	defaultBenchDatabaseURL = "postgres://localhost:5432/nurture_bench?sslmode=disable"
	defaultBenchRedisURL    = "redis://127.0.0.1:6379/14"
)

// benchParts are the parts of the benchmark, in the order they run.
const benchParts = "a,b,c,d"

// benchConfig is what `nurture bench` measures, and how big.
type benchConfig struct {
	parts     map[string]bool
	customers int    // audience size for planning and the 1M tick
	seed      uint64 // seed of the generated audience
	at        time.Time
	tasks     int // tasks enqueued in part b
	sends     int // deliveries sent in part c
	workers   int // worker concurrency in part c
	smtpConns int // SMTP connections in part c
	rounds    int // rounds of part a, the fastest of which counts
	reimport  bool
	profile   string // directory for CPU profiles, or ""
}

// bench is one run of `nurture bench`: its connections, its campaign sets
// and the results so far.
type bench struct {
	cfg      benchConfig
	log      *slog.Logger
	logLevel string // passed on to the child of part d
	stderr   io.Writer

	databaseURL, redisURL  string
	campaignsDir, tmplsDir string // the shipped content the sets are built from

	st       *store.Scratch
	rdb      *redis.Client
	dir      string           // temporary directory of the campaign sets
	plan     *content.Content // the ten planning campaigns, in dir/plan
	send     *content.Content // the one campaign of part c, in dir/send
	machine  machineInfo
	imported *importStats // nil when the audience was already there
	results  []benchResult
	details  []string // Markdown sections printed after the table
}

func (a *app) bench(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == benchChildCommand {
		return a.benchChild(ctx, args[1:])
	}
	cfg, err := a.benchFlags(args)
	if err != nil {
		return err
	}
	unlock, err := lockMachine()
	if err != nil {
		return err
	}
	defer unlock()
	b := &bench{cfg: cfg, log: a.log, logLevel: a.logLevel, stderr: a.stderr, databaseURL: a.databaseURL, redisURL: a.redisURL,
		campaignsDir: a.campaignsDir, tmplsDir: a.templatesDir}
	defer b.close()
	if err := b.setUp(ctx); err != nil {
		return err
	}
	parts := map[string]func(context.Context) error{
		"a": b.planning, "b": b.enqueueing, "c": b.sending, "d": b.peakRSS,
	}
	for p := range strings.SplitSeq(benchParts, ",") {
		if !cfg.parts[p] {
			continue
		}
		if err := b.profiled(p, func() error { return parts[p](ctx) }); err != nil {
			return fmt.Errorf("bench part %s: %w", p, err)
		}
	}
	b.report(a.stdout)
	return nil
}

// benchFlags parses the bench command line.
func (a *app) benchFlags(args []string) (benchConfig, error) {
	fs := a.flags("bench", "[--only a,b,c,d] [--customers N] [--tasks N] [--sends N]")
	only := fs.String("only", benchParts, "parts to run: a planning, b enqueueing, c end-to-end sending, d peak RSS of a tick")
	var cfg benchConfig
	fs.IntVar(&cfg.customers, "customers", 1_000_000, "customers in the generated audience (parts a, c, d)")
	fs.Uint64Var(&cfg.seed, "seed", 42, "seed of the generated audience")
	fs.IntVar(&cfg.tasks, "tasks", 200_000, "tasks to enqueue (part b)")
	fs.IntVar(&cfg.sends, "sends", 100_000, "deliveries to plan and send (part c)")
	fs.IntVar(&cfg.workers, "workers", 128, "worker concurrency, and concurrency of the raw sends (part c)")
	fs.IntVar(&cfg.smtpConns, "smtp-conns", 8, "SMTP connections (part c)")
	fs.IntVar(&cfg.rounds, "rounds", 2, "rounds of part a; each campaign's fastest round counts")
	fs.BoolVar(&cfg.reimport, "reimport", false, "import the audience again even when the database holds it")
	fs.StringVar(&cfg.profile, "profile", "", "write a CPU profile of each part to this directory")
	fs.Lookup("database-url").DefValue = defaultBenchDatabaseURL
	fs.Lookup("database-url").Usage = "PostgreSQL URL of the benchmark's own database, dropped and re-created when it does not hold the audience (BENCH_DATABASE_URL)"
	fs.Lookup("redis-url").DefValue = defaultBenchRedisURL
	fs.Lookup("redis-url").Usage = "URL of a scratch Redis DB, flushed before and after each part (BENCH_REDIS_URL)"
	if err := a.parse(fs, args); err != nil {
		return cfg, err
	}
	if !isSet(fs, "database-url") {
		a.databaseURL = a.env("BENCH_DATABASE_URL", defaultBenchDatabaseURL)
	}
	if !isSet(fs, "redis-url") {
		a.redisURL = a.env("BENCH_REDIS_URL", defaultBenchRedisURL)
	}
	cfg.at = time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC)
	var err error
	if cfg.parts, err = parseParts(*only); err != nil {
		return cfg, err
	}
	return cfg, cfg.check()
}

// parseParts parses --only.
func parseParts(s string) (map[string]bool, error) {
	parts := map[string]bool{}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(strings.Split(benchParts, ","), p) {
			return nil, fmt.Errorf("--only %q: want a comma-separated list of a, b, c and d", s)
		}
		parts[p] = true
	}
	return parts, nil
}

func (c benchConfig) check() error {
	switch {
	case c.customers < 1 || c.tasks < 1 || c.sends < 1 || c.workers < 1 || c.smtpConns < 1 || c.rounds < 1:
		return errors.New("--customers, --tasks, --sends, --workers, --smtp-conns and --rounds must be at least 1")
	case c.parts["c"] && c.sends > c.customers:
		return fmt.Errorf("--sends %d: at most --customers (%d), one delivery per customer", c.sends, c.customers)
	case c.customers > 9_999_999:
		return errors.New("--customers: at most 9,999,999 (customer ids are c0000001 to c9999999)")
	}
	return nil
}

// needsAudience reports whether a part that reads the audience runs.
func (c benchConfig) needsAudience() bool { return c.parts["a"] || c.parts["c"] || c.parts["d"] }

// setUp connects to PostgreSQL and Redis, describes the machine, writes the
// campaign sets and makes sure the database holds the audience.
func (b *bench) setUp(ctx context.Context) error {
	if err := checkScratch(b.databaseURL, b.redisURL); err != nil {
		return err
	}
	var err error
	b.progress("database: migrating %s", redact(b.databaseURL))
	if _, err = store.Migrate(ctx, b.databaseURL, b.log); err != nil {
		return err
	}
	if b.st, err = store.OpenScratch(ctx, b.databaseURL, store.Config{}); err != nil {
		return err
	}
	o, err := queue.RedisOptions(b.redisURL)
	if err != nil {
		return err
	}
	if b.rdb, err = queue.Dial(ctx, o, 5*time.Second); err != nil {
		return err
	}
	if b.machine, err = describeMachine(ctx, b.st.Store, b.rdb); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "nurture-bench-"); err != nil {
		return err
	}
	if err := b.loadCampaigns(); err != nil {
		return err
	}
	if b.cfg.needsAudience() {
		return b.prepareAudience(ctx)
	}
	return nil
}

// checkScratch refuses URLs that look like real data: the benchmark drops
// its database and flushes its Redis DB.
func checkScratch(databaseURL, redisURL string) error {
	u, err := url.Parse(databaseURL)
	if err != nil {
		return fmt.Errorf("--database-url: %w", err)
	}
	if db := path.Base(u.Path); !strings.Contains(db, "bench") {
		return fmt.Errorf("--database-url: the benchmark drops and re-creates its database; %q must have \"bench\" in its name", db)
	}
	o, err := queue.RedisOptions(redisURL)
	if err != nil {
		return err
	}
	if o.DB == 0 {
		return fmt.Errorf("--redis-url %s: the benchmark flushes its Redis DB; use a DB other than 0, such as %s", redact(redisURL), defaultBenchRedisURL)
	}
	return nil
}

func (b *bench) close() {
	if b.rdb != nil {
		b.rdb.Close()
	}
	if b.st != nil {
		b.st.Close()
	}
	if b.dir != "" {
		os.RemoveAll(b.dir)
	}
}

// progress reports on stderr; results go to stdout.
func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.stderr, "==> "+format+"\n", args...)
}

// profiled runs fn, under the CPU profiler when --profile is set.
func (b *bench) profiled(part string, fn func() error) error {
	file := ""
	if b.cfg.profile != "" {
		if err := os.MkdirAll(b.cfg.profile, 0o755); err != nil {
			return err
		}
		file = filepath.Join(b.cfg.profile, "part-"+part+".pprof")
	}
	stop, err := startProfile(file)
	if err != nil {
		return err
	}
	defer stop()
	return fn()
}
