package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	netmail "net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/mail"
	"nurture/internal/queue"
	"nurture/internal/store"
	"nurture/internal/unsubscribe"
)

// app holds what every command shares: standard streams, the environment
// and the common flags (each command registers those it needs).
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
	// envErrs are malformed environment values, met while flags took
	// their defaults; parse reports them.
	envErrs []envError
}

// Defaults that work on a developer machine with local PostgreSQL and Redis.
const (
	defaultDatabaseURL = "postgres://localhost:5432/nurture?sslmode=disable"
	defaultRedisURL    = "redis://127.0.0.1:6379/0"
)

// env returns the environment variable name, or def when it is unset or
// empty. A malformed value (see checkSetting) is recorded for parse to
// report, unless the flag it is the default of is given.
func (a *app) env(name, def string) string {
	v := a.getenv(name)
	if v == "" {
		return def
	}
	if err := checkSetting(name, v); err != nil {
		a.badEnv(name, v, err)
	}
	return v
}

// envInt is env for a whole number; a value that is not one is recorded
// like any malformed value, and def is used meanwhile.
func (a *app) envInt(name string, def int) int {
	v := a.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		a.badEnv(name, v, errors.New("not a whole number"))
		return def
	}
	if err := checkSetting(name, v); err != nil {
		a.badEnv(name, v, err)
	}
	return n
}

// envDuration is env for a duration: Go's form (720h, 90m) or whole days
// (60d); it must be positive.
func (a *app) envDuration(name string, def time.Duration) time.Duration {
	v := a.getenv(name)
	if v == "" {
		return def
	}
	d, err := parseDays(v)
	if err != nil || d <= 0 {
		a.badEnv(name, v, errors.New("want a positive duration such as 60d or 720h"))
		return def
	}
	return d
}

// parseDays parses a Go duration, or a whole number of days such as 60d.
func parseDays(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.Atoi(n)
		if err != nil {
			return 0, err
		}
		return time.Duration(days) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}

func (a *app) badEnv(name, v string, err error) {
	a.envErrs = append(a.envErrs, envError{name: name, msg: fmt.Sprintf("%s=%q: %v", name, hidePassword(v), err)})
}

// envError is a malformed environment value.
type envError struct {
	name string // the variable
	msg  string
}

// Bounds of the whole-number settings. Beyond the upper ones a typo (an
// extra zero or two) would exhaust memory, connections or file
// descriptors rather than speed anything up.
const (
	maxConcurrency = 10000
	maxSMTPConns   = 1000
)

// checkSetting checks the value of the setting read from the environment
// variable name (or given by the flag that defaults to it). Settings that
// take any string (directories) are not checked.
func checkSetting(name, v string) error {
	switch name {
	case "DATABASE_URL", "BENCH_DATABASE_URL":
		return store.CheckURL(v)
	case "REDIS_URL", "BENCH_REDIS_URL":
		_, err := redis.ParseURL(v)
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // *url.Error repeats the URL, password included
		}
		return err
	case "SMTP_URL":
		if v == "" {
			return nil // the flag's way of choosing the file outbox
		}
		return mail.CheckURL(v)
	case "LOG_LEVEL":
		var level slog.Level
		if level.UnmarshalText([]byte(v)) != nil {
			return errors.New("want debug, info, warn or error")
		}
	case "ROLES":
		_, err := parseRoles(v)
		return err
	case "MAIL_FROM":
		if _, err := netmail.ParseAddress(v); err != nil {
			return errors.New(`not an email address such as "Shop <hello@example.com>"`)
		}
	case "HTTP_ADDR":
		_, port, err := net.SplitHostPort(v)
		if err != nil {
			return errors.New("want host:port or :port, such as :8080")
		}
		if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
			return fmt.Errorf("port %q is not a number from 0 to 65535", port)
		}
	case "UNSUBSCRIBE_URL", "PUBLIC_URL":
		if v == "" {
			return nil // the flag's way of turning links off
		}
		if u, err := url.Parse(v); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return errors.New("want an absolute http(s) URL such as https://mail.example.com")
		}
	case "UNSUBSCRIBE_MAILTO":
		return unsubscribe.CheckMailto(v)
	case "DKIM_KEY_FILE":
		if v == "" {
			return nil
		}
		_, err := mail.LoadDKIMKey(v)
		return err
	case "DKIM_SELECTOR":
		if v == "" {
			return nil
		}
		return mail.CheckDKIMSelector(v)
	case "WORKER_CONCURRENCY":
		return checkRange(v, 1, maxConcurrency)
	case "SMTP_CONNS":
		return checkRange(v, 1, maxSMTPConns)
	}
	return nil
}

func checkRange(v string, lo, hi int) error {
	n, err := strconv.Atoi(v)
	switch {
	case err != nil:
		return errors.New("not a whole number")
	case n < lo:
		return fmt.Errorf("must be at least %d", lo)
	case n > hi:
		return fmt.Errorf("must be at most %d", hi)
	}
	return nil
}

// dkimFlags are the DKIM settings of the commands that send email.
type dkimFlags struct {
	keyFile, selector string
}

// registerDKIMFlags registers --dkim-key-file and --dkim-selector on fs.
// Call before parse, which checks each value: the key file must hold a
// usable RSA key, the selector must be DNS labels.
func (a *app) registerDKIMFlags(fs *flag.FlagSet) *dkimFlags {
	d := &dkimFlags{}
	fs.StringVar(&d.keyFile, "dkim-key-file", a.env("DKIM_KEY_FILE", ""), "PEM file of the RSA private key (1024 bits or more) that DKIM-signs every email; needs --dkim-selector (DKIM_KEY_FILE)")
	fs.StringVar(&d.selector, "dkim-selector", a.env("DKIM_SELECTOR", ""), "DKIM selector: receivers look the public key up at SELECTOR._domainkey.FROM_DOMAIN (DKIM_SELECTOR)")
	return d
}

// signer returns the DKIM signer configured, or nil when neither setting
// is. One without the other ends the command with status 2, as a
// malformed setting does.
func (d *dkimFlags) signer() (*mail.DKIM, error) {
	const both = "set both to sign emails with DKIM, or neither"
	switch {
	case d.keyFile == "" && d.selector == "":
		return nil, nil
	case d.selector == "":
		return nil, exitError{code: 2, msg: "nurture: DKIM_KEY_FILE (--dkim-key-file) is set but DKIM_SELECTOR (--dkim-selector) is not; " + both}
	case d.keyFile == "":
		return nil, exitError{code: 2, msg: "nurture: DKIM_SELECTOR (--dkim-selector) is set but DKIM_KEY_FILE (--dkim-key-file) is not; " + both}
	}
	return mail.LoadDKIM(d.keyFile, d.selector)
}

// parseRoles parses the comma-separated roles of serve.
func parseRoles(s string) (map[string]bool, error) {
	roles := map[string]bool{}
	for r := range strings.SplitSeq(s, ",") {
		r = strings.TrimSpace(r)
		switch r {
		case "scheduler", "worker", "http":
			roles[r] = true
		case "":
		default:
			return nil, fmt.Errorf("unknown role %q (want scheduler, worker, http)", r)
		}
	}
	if len(roles) == 0 {
		return nil, errors.New("no role given (want scheduler, worker, http)")
	}
	return roles, nil
}

// envOf returns the environment variable a flag defaults to, which by
// convention ends its usage text in parentheses: "... (SMTP_URL)".
func envOf(f *flag.Flag) string {
	rest, ok := strings.CutSuffix(f.Usage, ")")
	if !ok {
		return ""
	}
	i := strings.LastIndex(rest, "(")
	name := rest[i+1:]
	if i < 0 || name == "" || strings.TrimLeft(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") != "" {
		return "" // "(part c)": not a variable
	}
	return name
}

// hidePassword masks the password of a URL that may not parse.
func hidePassword(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return s
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return s
	}
	user, _, ok := strings.Cut(rest[:at], ":")
	if !ok {
		return s
	}
	return scheme + "://" + user + ":xxxxx" + rest[at:]
}

// flags returns a FlagSet for the command name with the common flags it
// needs registered (see commands), and a usage that prints its
// description and example. A flag that defaults to an environment
// variable ends its usage with the variable's name in parentheses: parse
// relies on it to check the flag's value like the variable's, and to let
// a flag given on the command line override a malformed variable. Only
// the variables of registered flags are read, so a command is not
// stopped by a malformed setting it does not use.
func (a *app) flags(name string) *flag.FlagSet {
	c := lookupCommand(name)
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(a.stderr)
	// A command accepts every common flag, as scripts may pass them all
	// (DESIGN.md: every command takes --campaigns and --templates), but
	// reads, checks and lists in -h only those it needs.
	hidden := map[string]bool{}
	common := func(n needs, name string, p *string, env, def, usage string) {
		if c.needs&n != 0 {
			fs.StringVar(p, name, a.env(env, def), usage)
			return
		}
		fs.String(name, "", "ignored by this command")
		hidden[name] = true
	}
	common(needDB, "database-url", &a.databaseURL, "DATABASE_URL", defaultDatabaseURL, "PostgreSQL URL (DATABASE_URL)")
	common(needRedis, "redis-url", &a.redisURL, "REDIS_URL", defaultRedisURL, "Redis URL (REDIS_URL)")
	common(needContent, "campaigns", &a.campaignsDir, "CAMPAIGNS_DIR", "campaigns", "directory of lifecycle.yaml and campaign files (CAMPAIGNS_DIR)")
	common(needContent, "templates", &a.templatesDir, "TEMPLATES_DIR", "templates", "directory of email templates (TEMPLATES_DIR)")
	common(needLog, "log-level", &a.logLevel, "LOG_LEVEL", "info", "debug, info, warn or error (LOG_LEVEL)")
	fs.Usage = func() {
		fmt.Fprintf(a.stderr, "Usage: %s\n\n", strings.TrimSpace("nurture "+name+" "+c.args))
		if c.description != "" {
			fmt.Fprintf(a.stderr, "%s\n\nExample:\n  %s\n\n", c.description, c.example)
		}
		fmt.Fprintln(a.stderr, "Flags:")
		shown := flag.NewFlagSet(name, flag.ContinueOnError)
		shown.SetOutput(a.stderr)
		fs.VisitAll(func(f *flag.Flag) {
			if !hidden[f.Name] {
				shown.Var(f.Value, f.Name, f.Usage)
				shown.Lookup(f.Name).DefValue = f.DefValue
			}
		})
		shown.PrintDefaults()
	}
	return fs
}

// parse parses args and sets up logging; -h prints usage and ends the
// command with status 0, bad flags and malformed settings with status 2.
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
	if err := a.checkSettings(fs); err != nil {
		return err
	}
	level := slog.LevelInfo // for commands without --log-level
	if a.logLevel != "" {
		if err := level.UnmarshalText([]byte(a.logLevel)); err != nil {
			return err // not reached: checkSettings checked it
		}
	}
	a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: level}))
	return nil
}

// checkSettings prints every malformed setting: each flag given on the
// command line whose value fails checkSetting, and each malformed
// environment variable whose flag was not given. It then ends the command
// with status 2, as the flag package does for a value of the wrong type.
func (a *app) checkSettings(fs *flag.FlagSet) error {
	var problems []string
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) {
		env := envOf(f)
		if env == "" {
			return
		}
		given[env] = true
		if err := checkSetting(env, f.Value.String()); err != nil {
			problems = append(problems, fmt.Sprintf("--%s %q: %v", f.Name, hidePassword(f.Value.String()), err))
		}
	})
	for _, e := range a.envErrs {
		if !given[e.name] {
			problems = append(problems, e.msg)
		}
	}
	for _, p := range problems {
		fmt.Fprintln(a.stderr, "nurture:", p)
	}
	if len(problems) > 0 {
		return exitError{code: 2}
	}
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

// contentAndStore loads campaigns and templates, then opens the store;
// the caller closes the store.
func (a *app) contentAndStore(ctx context.Context) (*content.Content, *store.Store, error) {
	c, err := a.loadContent()
	if err != nil {
		return nil, nil, err
	}
	st, err := a.openStore(ctx)
	if err != nil {
		return nil, nil, err
	}
	return c, st, nil
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
	return queue.NewClient(rdb, queue.Config{Batch: queue.DefaultBatch}), func() { rdb.Close() }, nil
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
