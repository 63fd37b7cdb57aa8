package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/hibiken/asynq"
	"github.com/hibiken/asynqmon"
	"github.com/redis/go-redis/v9"

	"nurture/internal/content"
	"nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/queue"
	"nurture/internal/scheduler"
	"nurture/internal/store"
	"nurture/internal/unsubscribe"
	"nurture/internal/worker"
)

// serveConfig is what serve reads beyond the common flags.
type serveConfig struct {
	roles       map[string]bool
	httpAddr    string
	smtp        mail.Config
	from        string
	concurrency int
	// unsubscribeURL and the UNSUBSCRIBE_SECRET make unsubscribe links.
	unsubscribeURL string
	unsubscribe    *unsubscribe.Links
}

func (a *app) serve(ctx context.Context, args []string) error {
	fs := a.flags("serve", "[--role scheduler,worker,http]")
	roles := fs.String("role", a.env("ROLES", "scheduler,worker,http"), "comma-separated roles to run: scheduler, worker, http (ROLES)")
	var cfg serveConfig
	fs.StringVar(&cfg.httpAddr, "http-addr", a.env("HTTP_ADDR", ":8080"), "listen address of the dashboard, /healthz and /metrics (HTTP_ADDR)")
	fs.StringVar(&cfg.smtp.URL, "smtp-url", a.env("SMTP_URL", ""), "SMTP server, e.g. smtp://user:pass@host:587?tls=starttls; empty writes .eml files to --outbox (SMTP_URL)")
	fs.IntVar(&cfg.smtp.Conns, "smtp-conns", a.envInt("SMTP_CONNS", 8), "SMTP connections per worker process (SMTP_CONNS)")
	fs.StringVar(&cfg.smtp.OutboxDir, "outbox", a.env("OUTBOX_DIR", "outbox"), "directory for .eml files when no SMTP_URL is set (OUTBOX_DIR)")
	fs.StringVar(&cfg.from, "from", a.env("MAIL_FROM", "nurture <nurture@localhost>"), "sender of campaigns that name none (MAIL_FROM)")
	fs.StringVar(&cfg.unsubscribeURL, "unsubscribe-url", a.env("UNSUBSCRIBE_URL", ""), "public base URL of the HTTP role; with UNSUBSCRIBE_SECRET, every email gets a one-click unsubscribe link under it (UNSUBSCRIBE_URL)")
	fs.IntVar(&cfg.concurrency, "concurrency", a.envInt("WORKER_CONCURRENCY", 128), "deliveries processed at once per worker process (WORKER_CONCURRENCY)")
	err := a.parse(fs, args)
	if err != nil {
		return err
	}
	cfg.roles, err = parseRoles(*roles)
	if err != nil {
		return fmt.Errorf("--role: %w", err) // not reached: parse checked it
	}
	if cfg.unsubscribeURL != "" {
		links, err := unsubscribe.New(cfg.unsubscribeURL, a.getenv("UNSUBSCRIBE_SECRET"))
		if err != nil {
			return fmt.Errorf("--unsubscribe-url: %w (set UNSUBSCRIBE_SECRET)", err)
		}
		cfg.unsubscribe = links
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
		wg    sync.WaitGroup
		sched *scheduler.Scheduler
		wk    *workerRole
	)
	defer wg.Wait() // after cancel (deferred later, so run first)
	defer cancel()
	if cfg.roles["scheduler"] {
		sched = scheduler.New(scheduler.Config{}, st, q, c.Rules, m, log.With("role", "scheduler"))
		wg.Add(1)
		go func() {
			defer wg.Done()
			sched.Run(ctx)
		}()
	}
	if cfg.roles["worker"] {
		wk, err = startWorker(ctx, cfg, st, rdb, c, m, log.With("role", "worker"))
		if err != nil {
			return err
		}
		defer wk.stop()
	}
	var srv *http.Server
	if cfg.roles["http"] {
		srv = &http.Server{Addr: cfg.httpAddr, Handler: httpHandler(st, rdb, sched, m, cfg.unsubscribe, log), ReadHeaderTimeout: 10 * time.Second}
		errc := make(chan error, 1)
		go func() { errc <- srv.ListenAndServe() }()
		select {
		case err := <-errc:
			return fmt.Errorf("http: listen on %s: %w", cfg.httpAddr, err)
		case <-time.After(100 * time.Millisecond):
		}
		log.Info("http listening", "addr", cfg.httpAddr, "dashboard", "/monitoring/", "metrics", "/metrics")
	}

	log.Info("nurture serving", "roles", roleList(cfg.roles), "campaigns", len(c.Campaigns().Campaigns))
	for {
		select {
		case <-ctx.Done():
			log.Info("shutting down")
			if srv != nil {
				sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
				srv.Shutdown(sctx)
				cancel()
			}
			wg.Wait()  // the scheduler stops at once: ticks see ctx end
			return nil // the deferred wk.stop returns unfinished tasks to the queue
		case <-hup:
			next, err := content.Load(a.campaignsDir, a.templatesDir)
			if err != nil {
				log.Error("reload refused; the previous campaigns keep running", "errors", err.Error())
				continue
			}
			c = next
			if sched != nil {
				sched.Reload(c.Rules)
			}
			if wk != nil {
				if err := wk.reload(ctx, c); err != nil {
					log.Error("worker reload failed", "err", err)
				}
			}
			log.Info("reloaded campaigns", "campaigns", len(c.Campaigns().Campaigns))
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

// workerRole is the worker of a serve process: the Asynq server and the
// handler, restarted when a reload brings new queues.
type workerRole struct {
	cfg    serveConfig
	store  *store.Store
	rdb    redis.UniversalClient
	log    *slog.Logger
	w      *worker.Worker
	srv    *worker.Server
	sender mail.Sender
}

func startWorker(ctx context.Context, cfg serveConfig, st *store.Store, rdb redis.UniversalClient, c *content.Content, m *metrics.Metrics, log *slog.Logger) (*workerRole, error) {
	if _, err := retry(ctx, log, "mail transport", func(ctx context.Context) (struct{}, error) {
		return struct{}{}, mail.Check(ctx, cfg.smtp)
	}); err != nil {
		return nil, err
	}
	sender, err := mail.NewSender(ctx, cfg.smtp, log)
	if err != nil {
		return nil, err
	}
	wr := &workerRole{cfg: cfg, rdb: rdb, log: log, sender: sender, store: st}
	wr.w = worker.New(worker.Config{From: cfg.from, Unsubscribe: cfg.unsubscribe}, st, sender, &worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates}, m, log)
	queues, err := wr.queues(ctx, c, nil)
	if err != nil {
		return nil, err
	}
	wr.srv = worker.NewServer(rdb, worker.ServerConfig{Concurrency: cfg.concurrency, Queues: queues}, log)
	if err := wr.srv.Start(wr.w); err != nil {
		return nil, err
	}
	log.Info("worker started", "queues", strings.Join(wr.srv.Queues(), ","), "concurrency", cfg.concurrency)
	return wr, nil
}

// reload swaps content, and restarts the Asynq server when the set of
// queues changed so that a new campaign's queue is not left unserved.
func (wr *workerRole) reload(ctx context.Context, c *content.Content) error {
	wr.w.Reload(&worker.Content{Campaigns: c.Campaigns(), Templates: c.Templates})
	queues, err := wr.queues(ctx, c, wr.srv.Queues())
	if err != nil {
		return err
	}
	if slices.Equal(queues, wr.srv.Queues()) {
		return nil
	}
	wr.srv.Shutdown()
	wr.srv = worker.NewServer(wr.rdb, worker.ServerConfig{Concurrency: wr.cfg.concurrency, Queues: queues}, wr.log)
	wr.log.Info("worker queues changed; restarted", "queues", strings.Join(queues, ","))
	return wr.srv.Start(wr.w)
}

func (wr *workerRole) stop() {
	wr.srv.Shutdown()
	wr.w.Close()
	wr.sender.Close()
}

// queues lists, sorted, what the worker serves: the queues of c, the ones
// served so far, and any that still hold unfinished deliveries. A queue is
// never dropped while tasks may wait in it: a campaign moved to another
// queue, disabled or removed leaves tasks behind that must still run (they
// are then skipped with a reason rather than stranded).
func (wr *workerRole) queues(ctx context.Context, c *content.Content, served []string) ([]string, error) {
	active, err := wr.store.ActiveQueues(ctx)
	if err != nil {
		return nil, err
	}
	return queuesOf(c, served, active), nil
}

// queuesOf lists the queues of every campaign, "default", and extra, sorted.
func queuesOf(c *content.Content, extra ...[]string) []string {
	seen := map[string]bool{"default": true}
	for _, camp := range c.Campaigns().Campaigns {
		seen[camp.Queue] = true
	}
	for _, qs := range extra {
		for _, q := range qs {
			seen[q] = true
		}
	}
	out := make([]string, 0, len(seen))
	for q := range seen {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

// httpHandler serves the Asynq dashboard, health and metrics.
func httpHandler(st *store.Store, rdb *redis.Client, sched *scheduler.Scheduler, m *metrics.Metrics, links *unsubscribe.Links, log *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	if links != nil {
		mux.Handle(unsubscribe.Path, unsubscribe.Handler(links, func(ctx context.Context, customerID string) error {
			err := st.SetSubscribed(ctx, customerID, false)
			if errors.Is(err, store.ErrNotFound) {
				return nil // deleted since: nothing left to email
			}
			return err
		}, log))
	}
	opt := rdb.Options()
	mon := asynqmon.New(asynqmon.Options{
		RootPath:     "/monitoring",
		RedisConnOpt: asynq.RedisClientOpt{Addr: opt.Addr, Username: opt.Username, Password: opt.Password, DB: opt.DB},
		ReadOnly:     false,
	})
	mux.Handle("/monitoring/", mon)
	mux.Handle("/metrics", m.Handler())
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		status := map[string]any{"postgres": "ok", "redis": "ok"}
		code := http.StatusOK
		if err := st.Ping(ctx); err != nil {
			status["postgres"], code = err.Error(), http.StatusServiceUnavailable
		}
		if err := rdb.Ping(ctx).Err(); err != nil {
			status["redis"], code = err.Error(), http.StatusServiceUnavailable
		}
		if sched != nil {
			status["scheduler_leader"] = sched.IsLeader()
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		json.NewEncoder(w).Encode(status)
	})
	return mux
}
