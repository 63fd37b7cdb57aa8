package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// app holds what every command shares: standard streams, the environment
// and the common flags.
type app struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string

	databaseURL  string
	redisURL     string
	campaignsDir string
	templatesDir string
	logLevel     string
	log          *slog.Logger
}

// Defaults that work on a developer machine with local PostgreSQL and Redis.
const (
	defaultDatabaseURL = "postgres://localhost:5432/nurture?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

func (a *app) env(name, def string) string {
	if v := a.getenv(name); v != "" {
		return v
	}
	return def
}

func (a *app) envInt(name string, def int) int {
	if v := a.getenv(name); v != "" {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

// flags returns a FlagSet with the common flags registered.
func (a *app) flags(name, args string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	fs.StringVar(&a.databaseURL, "database-url", a.env("DATABASE_URL", defaultDatabaseURL), "PostgreSQL URL (DATABASE_URL)")
	fs.StringVar(&a.redisURL, "redis-url", a.env("REDIS_URL", defaultRedisURL), "Redis URL (REDIS_URL)")
	fs.StringVar(&a.campaignsDir, "campaigns", a.env("CAMPAIGNS_DIR", "campaigns"), "directory of lifecycle.yaml and campaign files (CAMPAIGNS_DIR)")
	fs.StringVar(&a.templatesDir, "templates", a.env("TEMPLATES_DIR", "templates"), "directory of email templates (TEMPLATES_DIR)")
	fs.StringVar(&a.logLevel, "log-level", a.env("LOG_LEVEL", "info"), "debug, info, warn or error (LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: nurture %s %s\n\nFlags:\n", name, args)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and sets up logging; -h prints usage and ends the
// command with status 0, bad flags with status 2.
func (a *app) parse(fs *flag.FlagSet, args []string) error {
	// Flags may come before, between or after the arguments
	// (`import events FILE --strict`): parse up to each argument, set it
	// aside, and go on after it.
	var positional []string
	for {
		if err := fs.Parse(args); err != nil {
			if err == flag.ErrHelp {
				return exitError{code: 0}
			}
			return exitError{code: 2}
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if err := fs.Parse(append([]string{"--"}, positional...)); err != nil {
		return exitError{code: 2}
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", a.logLevel)
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// loadContent loads campaigns and templates, printing every problem.
func (a *app) loadContent() (*content.Content, error) {
	c, err := content.Load(a.campaignsDir, a.templatesDir)
	if err != nil {
		fmt.Fprintln(a.stderr, err)
		return nil, exitError{code: 1, msg: "nurture: campaigns or templates are invalid; run 'nurture lint' for the list"}
	}
	return c, nil
}

// openStore connects to PostgreSQL and refuses a database with pending
// migrations.
func (a *app) openStore(ctx context.Context) (*store.Store, error) {
	return store.Open(ctx, a.databaseURL, store.Config{})
}

// openRedis connects to Redis within a few seconds.
func (a *app) openRedis(ctx context.Context) (*redis.Client, error) {
	o, err := queue.RedisOptions(a.redisURL)
	if err != nil {
		return nil, err
	}
	return queue.Dial(ctx, o, 5*time.Second)
}

// openQueue connects to Redis and returns a queue client over it; close
// releases the connection.
func (a *app) openQueue(ctx context.Context) (q *queue.Client, close func(), err error) {
	rdb, err := a.openRedis(ctx)
	if err != nil {
		return nil, nil, err
	}
	return queue.NewClient(rdb, queue.Config{}), func() { rdb.Close() }, nil
}

// parseAt parses the --at flag: RFC 3339, or "now".
func parseAt(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, fmt.Errorf("--at is required: an RFC 3339 time such as 2026-11-24T09:00:00Z, or now")
	}
	if strings.EqualFold(s, "now") {
		return time.Now().UTC().Truncate(time.Second), nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("--at %q is not an RFC 3339 time such as 2026-11-24T09:00:00Z", s)
	}
	return t.UTC(), nil
}

// isSet reports whether the flag was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) {
		if f.Name == name {
			set = true
		}
	})
	return set
}
