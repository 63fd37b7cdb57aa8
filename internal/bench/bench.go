package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/queue"
	"nurture/internal/scratch"
	"nurture/internal/store"
)

// The benchmark has a database and a Redis DB of its own: it drops the
// database when it does not hold the expected audience and flushes the
// Redis DB before and after each part.
const (
	// DefaultDatabaseURL is the benchmark's own database.
	DefaultDatabaseURL = "postgres://localhost:5432/nurture_bench?sslmode=disable"
	// DefaultRedisURL is the benchmark's scratch Redis DB. (Tests reserve
	// Redis databases 1 to 13, the demo 15.)
	DefaultRedisURL = "redis://127.0.0.1:6379/14"
)

// AllParts are the parts of the benchmark, in the order they run.
const AllParts = "a,b,c,d,e,f,g,h,i"

// Config is what the benchmark measures, how big, and where. Start from
// DefaultConfig: Run refuses sizes below 1.
type Config struct {
	// Only lists the parts to run, comma-separated: a planning,
	// b enqueueing, c end-to-end sending, d peak RSS of a tick, e planning
	// with the toolkit, f stage sweeps, g event import with triggers
	// polled, h trigger lag, i ingest API. Default AllParts.
	Only string
	// Customers is the size of the generated audience (parts a, c, d).
	// Default 1,000,000.
	Customers int
	// Seed seeds the generated audience. Default 42.
	Seed uint64
	// At is the instant the audience is generated for and the campaigns
	// are planned at. Default 2026-06-01T09:00:00Z.
	At time.Time
	// Tasks is how many tasks part b enqueues. Default 200,000.
	Tasks int
	// Sends is how many deliveries part c plans and sends, and how many
	// messages its smtp-source baseline sends; at most Customers. Default
	// 100,000.
	Sends int
	// Workers is the concurrency of part c's worker process
	// (WORKER_CONCURRENCY), and of its raw sends. Default 256, as serve.
	Workers int
	// SMTPConns is how many SMTP connections part c uses: the worker
	// process's (SMTP_CONNS), smtp-source's sessions and the raw sends'.
	// Default 8.
	SMTPConns int
	// Rounds is how many rounds of part a run; each campaign's fastest
	// counts. Default 2.
	Rounds int
	// Events is how many events part g imports. Default 200,000.
	Events int
	// EventFile is how many events each file of part g holds. Default
	// 10,000.
	EventFile int
	// APIEvents is how many events part i posts to the API, and imports
	// for its baseline. Default 100,000.
	APIEvents int
	// APIBatch is how many events each request of part i carries.
	// Default 500.
	APIBatch int
	// APIClients is how many clients post at once in part i. Default 4.
	APIClients int
	// TriggerRate is the events per second part h imports. Default 1,000.
	TriggerRate int
	// TriggerTime is how long part h imports events. Default 60s.
	TriggerTime time.Duration
	// TriggerPoll is the period of the trigger poll of parts g and h.
	// Default 5s, the scheduler's default.
	TriggerPoll time.Duration
	// Reimport imports the audience again even when the database holds
	// it. Default false.
	Reimport bool
	// Profile is a directory to write a CPU profile of each part to, and
	// of the child processes of parts c and d. Default "": no profiles.
	Profile string

	// DatabaseURL is the benchmark's own database, dropped and re-created
	// when it does not hold the audience; its name must contain "bench".
	// Default DefaultDatabaseURL.
	DatabaseURL string
	// RedisURL is a scratch Redis DB, flushed before and after each part;
	// DB 0 is refused. Default DefaultRedisURL.
	RedisURL string
	// CampaignsDir and TemplatesDir hold the shipped content the
	// benchmark's campaigns are made from. Default "campaigns" and
	// "templates".
	CampaignsDir, TemplatesDir string

	// Executable is the nurture binary that part c runs as its worker
	// process (`Executable serve --role worker`) and parts d and f as
	// `Executable bench tick-child ...` (see RunChild). Default: the
	// running executable.
	Executable string
	// LogLevel is passed to the child processes of parts c, d and f.
	// Default "info".
	LogLevel string
	// Log receives the log of the code measured. Default: discarded.
	Log *slog.Logger
	// Now dates the report. Default time.Now.
	Now func() time.Time
}

// DefaultConfig returns the configuration of a plain `nurture bench`.
func DefaultConfig() Config {
	return Config{
		Only:         AllParts,
		Customers:    1_000_000,
		Seed:         42,
		At:           time.Date(2026, 6, 1, 9, 0, 0, 0, time.UTC),
		Tasks:        200_000,
		Sends:        100_000,
		Workers:      256,
		SMTPConns:    8,
		Rounds:       2,
		Events:       200_000,
		EventFile:    10_000,
		TriggerRate:  1_000,
		APIEvents:    100_000,
		APIBatch:     500,
		APIClients:   4,
		TriggerTime:  time.Minute,
		TriggerPoll:  5 * time.Second,
		DatabaseURL:  DefaultDatabaseURL,
		RedisURL:     DefaultRedisURL,
		CampaignsDir: "campaigns",
		TemplatesDir: "templates",
		LogLevel:     "info",
	}
}

// withDefaults fills the fields that have no size to check.
func (c Config) withDefaults() (Config, error) {
	d := DefaultConfig()
	if c.Only == "" {
		c.Only = d.Only
	}
	if c.At.IsZero() {
		c.At = d.At
	}
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
	if c.LogLevel == "" {
		c.LogLevel = d.LogLevel
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Executable == "" {
		exe, err := os.Executable()
		if err != nil {
			return c, fmt.Errorf("find the nurture executable for part d: %w", err)
		}
		c.Executable = exe
	}
	return c, nil
}

// bench is one run of the benchmark: its connections, its campaign sets
// and the results so far.
type bench struct {
	cfg    Config
	parts  map[string]bool
	log    *slog.Logger
	stderr io.Writer

	st       *store.Scratch
	rdb      *redis.Client
	dir      string           // temporary directory of the campaign sets
	plan     *content.Content // the ten planning campaigns, in dir/plan
	shipped  *content.Content // the shipped campaigns and settings (parts e, g)
	trigger  *content.Content // the one campaign of part h, in dir/trigger
	send     *content.Content // the one campaign of part c, in dir/send
	machine  machineInfo
	imported *importStats // nil when the audience was already there
	results  []result

	// What parts c and e to h measured, for the tests.
	sendStats    *sendStats
	toolkitStats *toolkitStats
	sweepStats   *sweepStats
	ingestStats  *ingestStats
	lagStats     *lagStats
	details      []string // Markdown sections printed after the table
}

// Run runs the parts of the benchmark cfg selects, printing progress on
// stderr and the results on stdout as Markdown, ready to paste into
// BENCHMARKS.md. Only one benchmark runs at a time on a machine.
func Run(ctx context.Context, cfg Config, stdout, stderr io.Writer) error {
	_, err := run(ctx, cfg, stdout, stderr)
	return err
}

// run is Run, returning the finished run for the tests to look into.
func run(ctx context.Context, cfg Config, stdout, stderr io.Writer) (*bench, error) {
	parts, err := parseParts(cfg.Only)
	if err != nil {
		return nil, err
	}
	if cfg, err = cfg.withDefaults(); err != nil {
		return nil, err
	}
	if err := cfg.check(parts); err != nil {
		return nil, err
	}
	unlock, err := lockMachine()
	if err != nil {
		return nil, err
	}
	defer unlock()
	b := &bench{cfg: cfg, parts: parts, log: cfg.Log, stderr: stderr}
	defer b.close()
	if err := b.setUp(ctx); err != nil {
		return nil, err
	}
	steps := map[string]func(context.Context) error{
		"a": b.planning, "b": b.enqueueing, "c": b.sending, "d": b.peakRSS,
		"e": b.toolkit, "f": b.sweeping, "g": b.ingesting, "h": b.triggerLag, "i": b.apiIngest,
	}
	for p := range strings.SplitSeq(AllParts, ",") {
		if !parts[p] {
			continue
		}
		if err := b.profiled(p, func() error { return steps[p](ctx) }); err != nil {
			return nil, fmt.Errorf("bench part %s: %w", p, err)
		}
	}
	b.report(stdout)
	return b, nil
}

// parseParts parses Config.Only (the --only flag).
func parseParts(s string) (map[string]bool, error) {
	if s == "" {
		s = AllParts
	}
	parts := map[string]bool{}
	for p := range strings.SplitSeq(s, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(strings.Split(AllParts, ","), p) {
			return nil, fmt.Errorf("--only %q: want a comma-separated list of a, b, c, d, e, f, g, h and i", s)
		}
		parts[p] = true
	}
	return parts, nil
}

func (c Config) check(parts map[string]bool) error {
	switch {
	case c.Customers < 1 || c.Tasks < 1 || c.Sends < 1 || c.Workers < 1 || c.SMTPConns < 1 || c.Rounds < 1 ||
		c.Events < 1 || c.EventFile < 1 || c.TriggerRate < 1 || c.APIEvents < 1 || c.APIBatch < 1 || c.APIClients < 1:
		return errors.New("--customers, --tasks, --sends, --workers, --smtp-conns, --rounds, --events, --event-file, --trigger-rate, --api-events, --api-batch and --api-clients must be at least 1")
	case c.TriggerTime < 100*time.Millisecond || c.TriggerPoll <= 0:
		return errors.New("--trigger-time must be at least 100ms and --trigger-poll positive")
	case parts["c"] && c.Sends > c.Customers:
		return fmt.Errorf("--sends %d: at most --customers (%d), one delivery per customer", c.Sends, c.Customers)
	case c.Customers > 9_999_999:
		return errors.New("--customers: at most 9,999,999 (customer ids are c0000001 to c9999999)")
	}
	return nil
}

// needsAudience reports whether a part that reads the audience runs.
func (b *bench) needsAudience() bool {
	return b.parts["a"] || b.parts["c"] || b.parts["d"] || b.parts["e"] || b.parts["f"] || b.parts["g"] || b.parts["h"] || b.parts["i"]
}

// setUp connects to PostgreSQL and Redis, describes the machine, writes the
// campaign sets and makes sure the database holds the audience.
func (b *bench) setUp(ctx context.Context) error {
	if err := guard.Check(b.cfg.DatabaseURL, b.cfg.RedisURL); err != nil {
		return err
	}
	var err error
	b.progress("database: migrating %s", scratch.Redact(b.cfg.DatabaseURL))
	if _, err = store.Migrate(ctx, b.cfg.DatabaseURL, b.log); err != nil {
		return err
	}
	if b.st, err = store.OpenScratch(ctx, b.cfg.DatabaseURL, store.Config{}); err != nil {
		return err
	}
	o, err := queue.RedisOptions(b.cfg.RedisURL)
	if err != nil {
		return err
	}
	if b.rdb, err = queue.Dial(ctx, o, 5*time.Second); err != nil {
		return err
	}
	if b.machine, err = describeMachine(ctx, b.st.Store, b.rdb, b.cfg.Now()); err != nil {
		return err
	}
	if b.dir, err = os.MkdirTemp("", "nurture-bench-"); err != nil {
		return err
	}
	if err := b.loadCampaigns(); err != nil {
		return err
	}
	if b.shipped, err = b.loadSet(b.cfg.CampaignsDir); err != nil {
		return err
	}
	if err := b.loadTriggerSet(); err != nil {
		return err
	}
	if b.needsAudience() {
		return b.prepareAudience(ctx)
	}
	return nil
}

// guard refuses URLs that look like real data.
var guard = scratch.Guard{Word: "bench", Database: "the benchmark drops and re-creates its database", Redis: "the benchmark flushes its Redis DB", RedisHint: DefaultRedisURL}

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
	if b.cfg.Profile != "" {
		if err := os.MkdirAll(b.cfg.Profile, 0o755); err != nil {
			return err
		}
		file = filepath.Join(b.cfg.Profile, "part-"+part+".pprof")
	}
	stop, err := startProfile(file)
	if err != nil {
		return err
	}
	defer stop()
	return fn()
}

// indent prefixes each write with spaces, for output nested under a step.
type indent struct{ w io.Writer }

func (i indent) Write(p []byte) (int, error) {
	if _, err := i.w.Write(append([]byte("    "), p...)); err != nil {
		return 0, err
	}
	return len(p), nil
}
