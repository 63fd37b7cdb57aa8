package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/api"
	"nurture/internal/bounce"
	"nurture/internal/campaign"
	"nurture/internal/content"
	"nurture/internal/httpserver"
	"nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/pages"
	"nurture/internal/planner"
	"nurture/internal/queue"
	"nurture/internal/reload"
	"nurture/internal/report"
	"nurture/internal/scheduler"
	"nurture/internal/store"
	"nurture/internal/tracking"
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
	// tracking makes and checks open and click links (PUBLIC_URL and
	// SECRET); nil when PUBLIC_URL is not set.
	tracking *tracking.Links
	// webhook configures the bounce webhook (WEBHOOK_TOKENS, SNS_VERIFY).
	webhook bounce.HandlerConfig
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
	fs.IntVar(&cfg.concurrency, "concurrency", a.envInt("WORKER_CONCURRENCY", 256), "deliveries processed at once per worker process (WORKER_CONCURRENCY)")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the whole process to this file, finished when it stops (as `nurture bench --profile` does for its worker)")
	a.httpConfig(&cfg.http) // before parse, which reports its malformed values with the others
	a.webhookConfig(&cfg.webhook)
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
	if cfg.tracking, err = mf.tracking(); err != nil {
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
	if *cpuprofile != "" {
		stop, err := startCPUProfile(*cpuprofile)
		if err != nil {
			return err
		}
		defer stop()
	}
	return a.runServe(ctx, cfg, c, hup)
}

// startCPUProfile starts the CPU profiler writing to file, and returns the
// function that stops it and closes the file.
func startCPUProfile(file string) (stop func(), err error) {
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// httpConfig reads the HTTP role's access settings from the environment,
// strictly: a malformed value is recorded for parse to report, naming its
// variable, with the other malformed settings.
func (a *app) httpConfig(c *httpserver.Config) {
	c.AdminUser = a.env("ADMIN_USER", "admin")
	c.AdminPassword = a.getenv("ADMIN_PASSWORD")
	c.MetricsToken = a.getenv("METRICS_TOKEN")
	c.APITokens = a.envTokens("API_TOKENS")
	if v := a.getenv("MONITORING_READONLY"); v != "" {
		ro, err := strconv.ParseBool(v)
		if err != nil {
			a.badEnv("MONITORING_READONLY", v, errors.New("want true or false"))
		}
		c.MonitoringReadOnly = ro
	}
	if v := a.getenv("PPROF"); v != "" {
		on, err := strconv.ParseBool(v)
		if err != nil {
			a.badEnv("PPROF", v, errors.New("want true or false"))
		}
		c.Pprof = on
	}
	if v := a.getenv("API_MAX_BODY"); v != "" {
		n, err := httpserver.ParseSize(v)
		if err != nil {
			a.badEnv("API_MAX_BODY", v, err)
		}
		c.MaxBody = n
	}
}

// envTokens reads a comma-separated list of bearer tokens, each of at
// least 16 characters; a malformed list is recorded for parse to report,
// without the tokens.
func (a *app) envTokens(name string) []string {
	var out []string
	for _, t := range strings.Split(a.getenv(name), ",") {
		if t = strings.TrimSpace(t); t == "" {
			continue
		}
		if len(t) < 16 {
			a.badEnv(name, "...", errors.New("each token needs at least 16 characters"))
			continue
		}
		out = append(out, t)
	}
	return out
}

// webhookConfig reads the bounce webhook's settings from the environment,
// strictly, like httpConfig.
func (a *app) webhookConfig(c *bounce.HandlerConfig) {
	c.Tokens = a.envTokens("WEBHOOK_TOKENS")
	if v := a.getenv("SNS_VERIFY"); v != "" {
		verify, err := strconv.ParseBool(v)
		if err != nil {
			a.badEnv("SNS_VERIFY", v, errors.New("want true or false"))
		}
		c.SNSVerify = verify
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
	q := queue.NewClient(rdb, queue.Config{Batch: queue.DefaultBatch})
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
	if cfg.roles["http"] {
		// Totals of every process's work, from PostgreSQL's results rollups.
		m.WatchResults(func(ctx context.Context) ([]metrics.CampaignResults, error) {
			rows, err := st.CampaignTotals(ctx, "")
			return report.Results(rows), err
		})
	}

	var (
		sched *scheduler.Scheduler
		wk    *worker.Service
		// current is the content running now, for the API's customer view
		// and the webhook's soft bounce limit.
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
		if cfg.tracking == nil {
			warnUntracked(wlog, c)
		}
		wk = worker.NewService(worker.Config{From: cfg.from, Unsubscribe: cfg.unsubscribe, Tracking: cfg.tracking},
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
		hlog := log.With("role", "http")
		var rec *tracking.Recorder
		if cfg.tracking != nil {
			rec = tracking.NewRecorder(tracking.RecorderConfig{}, st, m, hlog)
			if err := rec.Start(ctx); err != nil {
				return err
			}
			// After the server (deferred later, so stopped first): the
			// hits of its last requests are written before the store closes.
			defer func() {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
				defer cancel()
				if err := rec.Stop(sctx); err != nil {
					hlog.Warn("tracking hits not written at shutdown", "err", err)
				}
			}()
		}
		srv, err = startHTTP(ctx, cfg, st, rdb, sched, m, &current, rec, hlog)
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
			if wk != nil && cfg.tracking == nil {
				warnUntracked(log, next)
			}
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

// warnUntracked logs the campaigns of c that ask for tracking, which is
// not configured: their emails go out untracked rather than not at all.
func warnUntracked(log *slog.Logger, c *content.Content) {
	for _, u := range untracked(c.Campaigns()) {
		log.Warn("campaign asks for tracking but PUBLIC_URL is not set: its emails go out untracked; set PUBLIC_URL and SECRET",
			"campaign", u.campaign, "tracks", u.what, "at", u.pos.String())
	}
}

// startHTTP starts the HTTP role: health, metrics, unsubscribe links,
// tracking and the dashboard.
func startHTTP(ctx context.Context, cfg serveConfig, st *store.Store, rdb *redis.Client, sched *scheduler.Scheduler, m *metrics.Metrics,
	current *atomic.Pointer[content.Content], rec *tracking.Recorder, log *slog.Logger) (*httpserver.Server, error) {
	pl := planner.New(st, log)
	explain := func(ctx context.Context, id string, at time.Time) (any, error) {
		return pl.Explain(ctx, current.Load().Rules, id, at)
	}
	bounces := bounce.NewRecorder(st, func() store.SoftBounceLimit { return softBounceLimit(&current.Load().Campaigns().Settings) }, m, log)
	deps := httpserver.Deps{Store: st, Redis: rdb, Metrics: m.Handler(), API: api.Handler(st, api.Config{Explain: explain, Metrics: m}, log),
		Webhook: bounce.Handler(bounces, cfg.webhook, log)}
	if sched != nil {
		deps.Leader = sched.IsLeader
	}
	deps.Public = map[string]http.Handler{}
	deps.Admin = pages.Handlers(pages.Config{
		Store:          st,
		Campaigns:      func() *campaign.Set { return current.Load().Campaigns() },
		MonitoringPath: httpserver.MonitoringPath,
		Now:            time.Now,
		Failed:         func(page string) { m.InfraError("postgres", "page_"+page) },
		Log:            log,
	})
	if cfg.unsubscribe != nil {
		deps.Public[unsubscribe.Path] = unsubscribeHandler(st, cfg.unsubscribe, log)
	}
	if cfg.tracking != nil && rec != nil {
		maps.Copy(deps.Public, tracking.Handlers(cfg.tracking, rec, nil, m, log))
	}
	srv, err := httpserver.New(cfg.http, deps, log)
	if err != nil {
		return nil, err
	}
	if err := srv.Start(ctx); err != nil {
		return nil, errors.Join(err, srv.Stop(ctx))
	}
	log.Info("http listening", "addr", srv.Addr(), "dashboard", httpserver.MonitoringPath, "read_only", cfg.http.MonitoringReadOnly,
		"admin_auth", cfg.http.AdminPassword != "", "metrics_token", cfg.http.MetricsToken != "",
		"webhook_tokens", len(cfg.webhook.Tokens), "sns_verify", cfg.webhook.SNSVerify)
	return srv, nil
}

// softBounceLimit is the settings' soft bounce limit, as the store takes
// it.
func softBounceLimit(s *campaign.Settings) store.SoftBounceLimit {
	n, per := s.SoftBounces()
	return store.SoftBounceLimit{Count: n, Per: per}
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
