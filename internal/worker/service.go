package worker

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	nmail "nurture/internal/mail"
	"nurture/internal/metrics"
	"nurture/internal/queue"
	"nurture/internal/store"
)

// Service is the worker role of a process: a Worker and the Asynq servers
// that run it, restarted when a reload brings queues they do not serve.
type Service struct {
	cfg   ServerConfig
	store *store.Store
	rdb   redis.UniversalClient
	log   *slog.Logger
	w     *Worker

	mu  sync.Mutex // guards srv across Reload and Stop
	srv *Server
}

// NewService returns a Service sending with sender. cfg.Queues is ignored:
// the service serves the queues of content's campaigns, "default", and
// every queue that still holds unfinished deliveries.
func NewService(cfg Config, srvCfg ServerConfig, st *store.Store, rdb redis.UniversalClient, sender nmail.Sender,
	content *Content, m *metrics.Metrics, log *slog.Logger) *Service {
	d := srvCfg.withDefaults()
	if cfg.InFlight <= 0 {
		cfg.InFlight = d.Concurrency
	}
	if cfg.RetryBase <= 0 {
		cfg.RetryBase, cfg.RetryMax = d.RetryBase, d.RetryMax
	}
	return &Service{
		cfg: srvCfg, store: st, rdb: rdb, log: log,
		w: New(cfg, st, queue.NewJournal(rdb), sender, content, m, log),
	}
}

// Worker returns the service's handler, for health checks.
func (s *Service) Worker() *Worker { return s.w }

// Start begins taking tasks.
func (s *Service) Start(ctx context.Context) error {
	queues, err := s.queues(ctx, s.w.content.Load(), nil)
	if err != nil {
		return err
	}
	if err := s.w.Start(ctx); err != nil {
		return err
	}
	cfg := s.cfg
	cfg.Queues = queues
	srv := NewServer(s.rdb, cfg, s.log)
	if err := srv.Start(s.w); err != nil {
		return err
	}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	s.log.Info("worker started", "queues", strings.Join(srv.Queues(), ","), "concurrency", srv.cfg.Concurrency)
	return nil
}

// Reload swaps the campaigns and templates, and restarts the Asynq
// servers when the set of queues changed, so that a new campaign's queue
// is not left unserved.
func (s *Service) Reload(ctx context.Context, c *Content) error {
	s.w.Reload(c)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv == nil {
		return nil
	}
	queues, err := s.queues(ctx, c, s.srv.Queues())
	if err != nil {
		return err
	}
	if slices.Equal(queues, s.srv.Queues()) {
		return nil
	}
	s.srv.Shutdown()
	cfg := s.cfg
	cfg.Queues = queues
	s.srv = NewServer(s.rdb, cfg, s.log)
	s.log.Info("worker queues changed; restarted", "queues", strings.Join(queues, ","))
	if err := s.srv.Start(s.w); err != nil {
		return fmt.Errorf("restart worker: %w", err)
	}
	return nil
}

// Stop stops taking tasks, gives in-flight sends ShutdownTimeout to
// finish (unfinished tasks go back to their queue), and records their
// outcomes.
func (s *Service) Stop(context.Context) error {
	s.mu.Lock()
	if s.srv != nil {
		s.srv.Shutdown()
		s.srv = nil
	}
	s.mu.Unlock()
	s.w.Close()
	return nil
}

// queues lists, sorted, what the worker serves: the queues of c, the ones
// served so far, and any that still hold unfinished deliveries. A queue is
// never dropped while tasks may wait in it: a campaign moved to another
// queue, disabled or removed leaves tasks behind that must still run (they
// are then skipped with a reason rather than stranded).
func (s *Service) queues(ctx context.Context, c *Content, served []string) ([]string, error) {
	active, err := s.store.ActiveQueues(ctx)
	if err != nil {
		return nil, err
	}
	return Queues(c, served, active), nil
}

// Queues lists the queues of every campaign of c, "default", and extra,
// sorted.
func Queues(c *Content, extra ...[]string) []string {
	seen := map[string]bool{"default": true}
	if c != nil && c.Campaigns != nil {
		for _, camp := range c.Campaigns.Campaigns {
			seen[camp.Queue] = true
		}
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
