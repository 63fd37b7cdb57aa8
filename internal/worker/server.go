package worker

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"

	"nurture/internal/queue"
)

// ServerConfig configures the Asynq server that runs a Worker.
type ServerConfig struct {
	// Concurrency is how many deliveries are processed at once. Default 64:
	// sends wait on the network, not the CPU.
	Concurrency int
	// Queues are the queues to take tasks from, all with equal priority.
	// Default ["default"].
	Queues []string
	// RetryBase is the delay before the first retry of a temporary
	// failure; each further retry doubles it, up to RetryMax, with up to
	// 25% jitter. Defaults 15s and 1h.
	RetryBase, RetryMax time.Duration
	// ShutdownTimeout is how long a stopping worker lets in-flight sends
	// finish before returning their tasks to the queue. Default 25s.
	ShutdownTimeout time.Duration
	// PollInterval is how often idle workers look for new tasks. Default 1s.
	PollInterval time.Duration
	// Shards is how many Asynq servers share Concurrency, each taking tasks
	// from Redis in its own loop. Default: one per 16 of Concurrency, at
	// most 8.
	Shards int
}

func (c ServerConfig) withDefaults() ServerConfig {
	if c.Concurrency <= 0 {
		c.Concurrency = 64
	}
	if len(c.Queues) == 0 {
		c.Queues = []string{"default"}
	}
	if c.RetryBase <= 0 {
		c.RetryBase = 15 * time.Second
	}
	if c.RetryMax <= 0 {
		c.RetryMax = time.Hour
	}
	if c.ShutdownTimeout <= 0 {
		c.ShutdownTimeout = 25 * time.Second
	}
	if c.PollInterval <= 0 {
		c.PollInterval = time.Second
	}
	if c.Shards <= 0 {
		c.Shards = min(max(c.Concurrency/16, 1), 8)
	}
	c.Shards = min(c.Shards, c.Concurrency)
	return c
}

// Backoff is the delay before retry n (1-based) of a temporary failure.
func Backoff(base, max time.Duration, n int) time.Duration {
	d := base
	for i := 1; i < n && d < max; i++ {
		d *= 2
	}
	d = min(d, max)
	return d + time.Duration(rand.Int64N(int64(d)/4+1))
}

// Server runs a Worker under Asynq.
type Server struct {
	cfg  ServerConfig
	srvs []*asynq.Server
	// stopping is closed when Shutdown begins: batch tasks then start no
	// more deliveries, so that they end within the shutdown's grace.
	stopping chan struct{}
	stopOnce sync.Once
}

// NewServer returns a Server taking tasks from rdb.
//
// An Asynq server takes tasks from Redis one at a time, in a single loop,
// so one server caps a process at one Redis round trip per task whatever
// its concurrency. The Server therefore runs Shards Asynq servers that
// share the concurrency, each taking tasks in its own loop.
func NewServer(rdb redis.UniversalClient, cfg ServerConfig, log *slog.Logger) *Server {
	cfg = cfg.withDefaults()
	queues := make(map[string]int, len(cfg.Queues))
	for _, q := range cfg.Queues {
		queues[q] = 1
	}
	s := &Server{cfg: cfg, stopping: make(chan struct{})}
	for i := range cfg.Shards {
		concurrency := cfg.Concurrency / cfg.Shards
		if i < cfg.Concurrency%cfg.Shards {
			concurrency++
		}
		s.srvs = append(s.srvs, asynq.NewServerFromRedisClient(rdb, asynq.Config{
			Concurrency: concurrency,
			Queues:      queues,
			// Asynq passes the number of retries so far: 0 before the first.
			// A deferred delivery runs again when its send window opens.
			RetryDelayFunc: func(n int, err error, _ *asynq.Task) time.Duration {
				return retryDelay(cfg.RetryBase, cfg.RetryMax, n+1, err)
			},
			// A database outage is not the delivery's fault, and a deferral
			// is no attempt: retry without using up the task's retries, so
			// no outage and no wait for a window can exhaust them.
			IsFailure:                isFailure,
			ShutdownTimeout:          cfg.ShutdownTimeout,
			TaskCheckInterval:        cfg.PollInterval,
			DelayedTaskCheckInterval: min(cfg.RetryBase, 5*time.Second),
			Logger:                   asynqLogger{log.With("component", "asynq")},
			LogLevel:                 asynq.WarnLevel,
		}))
	}
	return s
}

// Queues returns the queues the server takes tasks from, sorted.
func (s *Server) Queues() []string {
	q := append([]string(nil), s.cfg.Queues...)
	sort.Strings(q)
	return q
}

// Start begins processing tasks with w.
func (s *Server) Start(w *Worker) error {
	mux := asynq.NewServeMux()
	mux.Handle(queue.TaskSend, w)
	mux.HandleFunc(queue.TaskSendBatch, func(ctx context.Context, t *asynq.Task) error {
		return w.processBatch(ctx, t, s.stopping)
	})
	for i, srv := range s.srvs {
		if err := srv.Start(mux); err != nil {
			for _, started := range s.srvs[:i] {
				started.Shutdown()
			}
			return fmt.Errorf("start worker: %w", err)
		}
	}
	return nil
}

// Shutdown stops taking tasks, waits up to ShutdownTimeout for in-flight
// sends, and returns unfinished tasks to their queue.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() { close(s.stopping) })
	var wg sync.WaitGroup
	for _, srv := range s.srvs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Shutdown()
		}()
	}
	wg.Wait()
}

// asynqLogger routes Asynq's own logs to slog.
type asynqLogger struct{ l *slog.Logger }

func (a asynqLogger) Debug(args ...any) { a.l.Debug(fmt.Sprint(args...)) }
func (a asynqLogger) Info(args ...any)  { a.l.Info(fmt.Sprint(args...)) }
func (a asynqLogger) Warn(args ...any)  { a.l.Warn(fmt.Sprint(args...)) }
func (a asynqLogger) Error(args ...any) { a.l.Error(fmt.Sprint(args...)) }
func (a asynqLogger) Fatal(args ...any) { a.l.Error(fmt.Sprint(args...)) }
