package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/api"
	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/httpserver"
	"nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/pages"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/reload"
	"nurture/internal/scheduler"
	"nurture/internal/store"
	"nurture/internal/unsubscribe"
	"nurture/internal/worker"
)

// serveConfig is what serve reads beyond the common flags.
type serveConfig struct {
	roles map[string]bool
	http  httpserver.Config
	smtp  mail.Config
	// from is MAIL_FROM; empty: settings.yaml's from, else the default.
	from        string
	concurrency int
	// sched holds the scheduler's trigger poll and stage sweep periods.
	sched scheduler.Config
	// unsubscribe makes unsubscribe links (PUBLIC_URL and SECRET).
	unsubscribe *unsubscribe.Links
}

func (a *app) serve(ctx context.Context, args []string) error {
	fs := a.flags("serve")
	roles := fs.String("role", a.env("ROLES", "scheduler,worker,http"), "comma-separated roles to run: scheduler, worker, http (ROLES)")
	var cfg serveConfig
	fs.StringVar(&cfg.http.Addr, "http-addr", a.env("HTTP_ADDR", httpserver.DefaultAddr), "listen address of the dashboard, /healthz and /metrics; a non-loopback address needs ADMIN_PASSWORD (HTTP_ADDR)")
	fs.StringVar(&cfg.smtp.URL, "smtp-url", a.env("SMTP_URL", ""), "SMTP server, e.g. smtp://user:pass@host:587?tls=starttls; empty writes .eml files to --outbox (SMTP_URL)")
	fs.IntVar(&cfg.smtp.Conns, "smtp-conns", a.envInt("SMTP_CONNS", 8), "SMTP connections per worker process (SMTP_CONNS)")
	fs.StringVar(&cfg.smtp.OutboxDir, "outbox", a.env("OUTBOX_DIR", "outbox"), "directory for .eml files when no SMTP_URL is set (OUTBOX_DIR)")
	mf := a.registerMailFlags(fs, true)
	dkim := a.registerDKIMFlags(fs)
	cfg.sched.TriggerPoll = a.envDuration("TRIGGER_POLL", 5*time.Second)
	cfg.sched.SweepEvery = a.envDuration("STAGE_SWEEP_EVERY", time.Hour)
	fs.IntVar(&cfg.concurrency, "concurrency", a.envInt("WORKER_CONCURRENCY", 128), "deliveries processed at once per worker process (WORKER_CONCURRENCY)")
	a.httpConfig(&cfg.http) // before parse, which reports its malformed values with the others
	err := a.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.roles, err = parseRoles(*roles)
	if err != nil {
		return fmt.Errorf("--role: %w", err) // not reached: parse checked it
	}
	if cfg.roles["http"] {
		if err := cfg.http.Validate(); err != nil {
			return err
		}
	}
	cfg.from = mf.from
	if cfg.smtp.DKIM, err = dkim.signer(); err != nil {
		return err
	}
	if cfg.unsubscribe, err = mf.links(nil); err != nil {
		return err
	}
	// Take SIGHUP from the start: its default action would end the process.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	c, err := a.loadContent()
	if err != nil {
		return err
	}
	return a.runServe(ctx, cfg, c, hup)
}

// httpConfig reads the HTTP role's access settings from the environment,
// strictly: a malformed value is recorded for parse to report, naming its
// variable, with the other malformed settings.
func (a *app) httpConfig(c *httpserver.Config) {
	c.AdminUser = a.env("ADMIN_USER", "admin")
	c.AdminPassword = a.getenv("ADMIN_PASSWORD")
	c.MetricsToken = a.getenv("METRICS_TOKEN")
	for _, t := range strings.Split(a.getenv("API_TOKENS"), ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if len(t) < 16 {
			a.badEnv("API_TOKENS", "...", errors.New("each token needs at least 16 characters"))
			continue
		}
		c.APITokens = append(c.APITokens, t)
	}
	if v := a.getenv("MONITORING_READONLY"); v != "" {
		ro, err := strconv.ParseBool(v)
		if err != nil {
			a.badEnv("MONITORING_READONLY", v, errors.New("want true or false"))
		}
		c.MonitoringReadOnly = ro
	}
	if v := a.getenv("API_MAX_BODY"); v != "" {
		n, err := httpserver.ParseSize(v)
		if err != nil {
			a.badEnv("API_MAX_BODY", v, err)
		}
		c.MaxBody = n
	}
}

// retry calls connect until it succeeds or ctx ends, logging each failure
// (which names what and where) and backing off from 1s to 30s.
func retry[T any](ctx context.Context, log *slog.Logger, what string, connect func(context.Context) (T, error)) (T, error) {
	delay := time.Second
	for {
		v, err := connect(ctx)
		if err == nil {
			return v, nil
		}
		if errors.Is(err, store.ErrPendingMigrations) {
			return v, err // retrying cannot fix this; the operator must migrate
		}
		if ctx.Err() != nil {
			return v, ctx.Err()
		}
		log.Error(what+" unavailable; retrying", "err", err, "retry_in", delay)
		select {
		case <-ctx.Done():
			return v, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(delay*2, 30*time.Second)
	}
}

func (a *app) runServe(ctx context.Context, cfg serveConfig, c *content.Content, hup <-chan os.Signal) error {
	log := a.log
	// Roles run under a context of their own, so that a failing start-up
	// stops the roles already running before the connections close.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	st, err := retry(ctx, log, "PostgreSQL", a.openStore)
	if err != nil {
		return err
	}
	defer st.Close()
	rdb, err := retry(ctx, log, "Redis", a.openRedis)
	if err != nil {
		return err
	}
	defer rdb.Close()
	q := queue.NewClient(rdb, queue.Config{})
	m := metrics.New()
	m.WatchQueues(func(ctx context.Context) ([]metrics.QueueSize, error) {
		sizes, err := q.Sizes(ctx)
		var out []metrics.QueueSize
		for _, s := range sizes {
			out = append(out,
				metrics.QueueSize{Queue: s.Queue, State: "pending", N: s.Pending},
				metrics.QueueSize{Queue: s.Queue, State: "active", N: s.Active},
				metrics.QueueSize{Queue: s.Queue, State: "scheduled", N: s.Scheduled},
				metrics.QueueSize{Queue: s.Queue, State: "retry", N: s.Retry},
				metrics.QueueSize{Queue: s.Queue, State: "archived", N: s.Archived})
		}
		return out, err
	})

	var (
		sched *scheduler.Scheduler
		wk    *worker.Service
		// current is the content running now, for the API's customer view.
		current atomic.Pointer[content.Content]
	)
	current.Store(c)
	if cfg.roles["scheduler"] {
		sched = scheduler.New(cfg.sched, st, q, c.Rules, m, log.With("role", "scheduler"))
		if err := sched.Start(ctx); err != nil {
			return err
		}
		// Ticks see the stop at once; they finish before the connections close.
		defer sched.Stop(context.WithoutCancel(ctx))
	}
	if cfg.roles["worker"] {
		wlog := log.With("role", "worker")
		if _, err := retry(ctx, wlog, "mail transport", func(ctx context.Context) (struct{}, error) {
			return struct{}{}, mail.Check(ctx, cfg.smtp)
		}); err != nil {
			return err
		}
		sender, err := mail.NewSender(ctx, cfg.smtp, wlog)
		if err != nil {
			return err
		}
		defer sender.Close()
		if dk := cfg.smtp.DKIM; dk != nil {
			wlog.Info("emails are DKIM-signed; publish the key at SELECTOR._domainkey.FROM_DOMAIN",
				"selector", dk.Selector(), "key_bits", dk.Bits())
		}
		wk = worker.NewService(worker.Config{From: cfg.from, Unsubscribe: cfg.unsubscribe},
			worker.ServerConfig{Concurrency: cfg.concurrency}, st, rdb, sender, workerContent(c), m, wlog)
		if err := wk.Start(ctx); err != nil {
			return err
		}
		// The worker stops before the sender closes (deferred earlier): its
		// unfinished tasks go back to the queue.
		defer wk.Stop(context.WithoutCancel(ctx))
	}
	var (
		srv      *httpserver.Server
		httpDone <-chan struct{} // nil, so never ready, without the role
	)
	if cfg.roles["http"] {
		if wk != nil {
			// A worker process reports its SMTP trouble in /healthz.
			cfg.http.Checks = append(cfg.http.Checks, httpserver.Check{Name: "smtp", Check: func(context.Context) error {
				return wk.Worker().Health()
			}})
		}
		srv, err = startHTTP(ctx, cfg, st, rdb, sched, m, &current, log.With("role", "http"))
		if err != nil {
			return err
		}
		httpDone = srv.Done()
	}

	// Edits under the campaigns and templates directories, and SIGHUP,
	// reload both, all or nothing.
	reloader := reload.NewReloader(reload.ReloaderConfig{CampaignsDir: a.campaignsDir, TemplatesDir: a.templatesDir}, c,
		func(ctx context.Context, next *content.Content) error {
			current.Store(next)
			if sched != nil {
				sched.Reload(next.Rules)
			}
			if wk != nil {
				return wk.Reload(ctx, workerContent(next))
			}
			return nil
		}, m, log)
	reloadOn := func(ctx context.Context, cause string) { _ = reloader.Reload(ctx, cause) } // it logs and counts
	watcher, err := reload.New(reload.Config{Dirs: []string{a.campaignsDir, a.templatesDir},
		Suffixes: []string{".yaml", ".yml", ".tmpl"}, Signals: hup}, reloadOn, log)
	if err == nil {
		err = watcher.Start(ctx)
	}
	if err != nil {
		log.Warn("not watching campaigns and templates for changes; reload them with SIGHUP", "err", err)
	} else {
		hup = nil // the watcher takes the signals
		defer watcher.Stop(context.WithoutCancel(ctx))
	}

	log.Info("nurture serving", "roles", roleList(cfg.roles), "campaigns", len(c.Campaigns().Campaigns),
		"watching", watcher != nil && hup == nil)
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			var err error
			if srv != nil {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				err = srv.Stop(sctx)
				cancel()
			}
			return err // the deferred Stops end the watcher and the scheduler, and return the worker's unfinished tasks to the queue
		case <-httpDone:
			return srv.Stop(ctx) // serving failed: Stop returns why
		case <-hup: // only when the watcher could not start
			reloadOn(ctx, "SIGHUP")
		}
	}
}

func roleList(roles map[string]bool) string {
	var out []string
	for r := range roles {
		out = append(out, r)
	}
	slices.Sort(out)
	return strings.Join(out, ",")
}

func workerContent(c *content.Content) *worker.Content {
	return &worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates, Rules: c.Rules}
}

// startHTTP starts the HTTP role: health, metrics, unsubscribe links and
// the dashboard.
func startHTTP(ctx context.Context, cfg serveConfig, st *store.Store, rdb *redis.Client, sched *scheduler.Scheduler, m *metrics.Metrics,
	current *atomic.Pointer[content.Content], log *slog.Logger) (*httpserver.Server, error) {
	pl := planner.New(st, log)
	explain := func(ctx context.Context, id string, at time.Time) (any, error) {
		return pl.Explain(ctx, current.Load().Rules, id, at)
	}
	deps := httpserver.Deps{Store: st, Redis: rdb, Metrics: m.Handler(), API: api.Handler(st, api.Config{Explain: explain, Metrics: m}, log)}
	if sched != nil {
		deps.Leader = sched.IsLeader
	}
	deps.Admin = pages.Handlers(pages.Config{
		Store:          st,
		Campaigns:      func() *campaign.Set { return current.Load().Campaigns() },
		MonitoringPath: httpserver.MonitoringPath,
		Now:            time.Now,
		Failed:         func(page string) { m.InfraError("postgres", "page_"+page) },
		Log:            log,
	})
	if cfg.unsubscribe != nil {
		deps.Public = map[string]http.Handler{unsubscribe.Path: unsubscribeHandler(st, cfg.unsubscribe, log)}
	}
	srv, err := httpserver.New(cfg.http, deps, log)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, errors.Join(err, srv.Stop(ctx))
	}
	log.Info("http listening", "addr", srv.Addr(), "dashboard", httpserver.MonitoringPath, "read_only", cfg.http.MonitoringReadOnly,
		"admin_auth", cfg.http.AdminPassword != "", "metrics_token", cfg.http.MetricsToken != "")
	return srv, nil
}

// unsubscribeHandler serves unsubscribe links: a confirm page, and the
// POST that records the opt-out.
func unsubscribeHandler(st *store.Store, links *unsubscribe.Links, log *slog.Logger) http.Handler {
	return unsubscribe.Handler(links, func(ctx context.Context, customerID, campaign string) error {
		_, err := st.Unsubscribe(ctx, customerID, "unsubscribe link", campaign)
		if errors.Is(err, store.ErrNotFound) {
			return nil // deleted since: nothing left to email
		}
		return err
	}, log)
}
