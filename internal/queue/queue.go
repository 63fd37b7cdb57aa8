// Package queue is nurture's use of Asynq: one task per delivery, whose
// TaskID is the delivery id, on the campaign's queue.
package queue

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/hibiken/asynq"
	"github.com/redis/go-redis/v9"
)

// TaskSend is the type of the task that sends one delivery. Its payload is
// the delivery id.
const TaskSend = "delivery:send"

// Config configures enqueueing. Zero values take the documented defaults.
type Config struct {
	// MaxRetry is how many times a temporarily failing send is retried
	// before the delivery is recorded as failed. Default 8.
	MaxRetry int
	// Timeout bounds one send attempt. Default 2m.
	Timeout time.Duration
	// Parallel is how many enqueue calls run at once. Default 16.
	Parallel int
}

func (c Config) withDefaults() Config {
	if c.MaxRetry <= 0 {
		c.MaxRetry = 8
	}
	if c.Timeout <= 0 {
		c.Timeout = 2 * time.Minute
	}
	if c.Parallel <= 0 {
		c.Parallel = 16
	}
	return c
}

// Ref names a delivery to enqueue and the queue it belongs on.
type Ref struct {
	ID    string
	Queue string
	// SendAt, when set, is when the task may run (Asynq's ProcessAt); a
	// time in the past runs it at once.
	SendAt time.Time
}

// Client enqueues delivery tasks and inspects queues.
type Client struct {
	cfg       Config
	rdb       redis.UniversalClient
	client    *asynq.Client
	inspector *asynq.Inspector
}

// RedisOptions parses a redis:// URL (REDIS_URL).
func RedisOptions(url string) (*redis.Options, error) {
	o, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("REDIS_URL %q: %w", redactURL(url), err)
	}
	o.DialTimeout = 3 * time.Second
	return o, nil
}

// ConnOpt returns the Asynq connection options for o, with its TLS
// settings, credentials and database, for Asynq components that open
// connections of their own (the dashboard).
func ConnOpt(o *redis.Options) asynq.RedisClientOpt {
	return asynq.RedisClientOpt{
		Network:      o.Network,
		Addr:         o.Addr,
		Username:     o.Username,
		Password:     o.Password,
		DB:           o.DB,
		DialTimeout:  o.DialTimeout,
		ReadTimeout:  o.ReadTimeout,
		WriteTimeout: o.WriteTimeout,
		PoolSize:     o.PoolSize,
		TLSConfig:    o.TLSConfig,
	}
}

// Dial connects to Redis and checks it answers within timeout.
func Dial(ctx context.Context, o *redis.Options, timeout time.Duration) (*redis.Client, error) {
	// The check dials once and honours ctx's deadline, so that a refused
	// connection is reported as such rather than as the timeout that the
	// client's own dial retries would run into.
	p := *o
	p.DialerRetries, p.MaxRetries, p.ContextTimeoutEnabled = 1, -1, true
	probe := redis.NewClient(&p)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := probe.Ping(ctx).Err()
	probe.Close()
	if err != nil {
		return nil, dialError(o, err, timeout)
	}
	return redis.NewClient(o), nil
}

// dialError explains a failed first contact with Redis and says what to
// do about it. It keeps err in the chain for errors.Is.
func dialError(o *redis.Options, err error, timeout time.Duration) error {
	var (
		reason = err.Error()
		hint   = `Is Redis running? Start it with "make services", or set REDIS_URL to a server that is.`
		sysErr *os.SyscallError // "connect: connection refused"
		dnsErr *net.DNSError
		rErr   redis.Error
	)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		reason = fmt.Sprintf("no answer within %s", timeout)
	case errors.As(err, &sysErr):
		reason = sysErr.Err.Error()
	case errors.As(err, &dnsErr):
		reason = dnsErr.Error()
		hint = `Check the host in REDIS_URL, or start a local server with "make services".`
	case errors.As(err, &rErr):
		reason, hint = strings.TrimSuffix(reason, "."), ""
		if p := rErr.Error(); strings.HasPrefix(p, "WRONGPASS") || strings.HasPrefix(p, "NOAUTH") || strings.HasPrefix(p, "ERR AUTH") {
			hint = "Check the user and password in REDIS_URL."
		}
	}
	if hint != "" {
		reason += ". " + hint
	}
	return &dialErr{msg: fmt.Sprintf("connect to Redis at %s (db %d): %s", o.Addr, o.DB, reason), err: err}
}

// dialErr keeps the cause of a failed dial in the chain for errors.Is
// without repeating its text, which msg gives in plainer words.
type dialErr struct {
	msg string
	err error
}

func (e *dialErr) Error() string { return e.msg }
func (e *dialErr) Unwrap() error { return e.err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// NewClient returns a Client over rdb, which it does not close.
func NewClient(rdb redis.UniversalClient, cfg Config) *Client {
	return &Client{
		cfg:       cfg.withDefaults(),
		rdb:       rdb,
		client:    asynq.NewClientFromRedisClient(rdb),
		inspector: asynq.NewInspectorFromRedisClient(rdb),
	}
}

// NewTask returns the task that sends delivery id.
func (c *Client) NewTask(ref Ref) *asynq.Task {
	opts := []asynq.Option{
		asynq.TaskID(ref.ID),
		asynq.Queue(ref.Queue),
		asynq.MaxRetry(c.cfg.MaxRetry),
		asynq.Timeout(c.cfg.Timeout),
	}
	if !ref.SendAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(ref.SendAt))
	}
	return asynq.NewTask(TaskSend, []byte(ref.ID), opts...)
}

// Enqueue enqueues one task per ref, several at a time, and returns the ids
// that are now in Redis: newly enqueued, or already there (a TaskID
// conflict means an earlier enqueue of the same delivery is still pending,
// which is what we want). It stops at the first other error, returning the
// ids done so far along with it.
func (c *Client) Enqueue(ctx context.Context, refs []Ref) ([]string, error) {
	return c.enqueue(ctx, refs, c.enqueueOne)
}

// Requeue is Enqueue for deliveries that should have a live task but may
// not: a task Asynq archived (retries exhausted, or a lease lost on the
// last attempt) still holds its TaskID for months, so it is deleted and
// the delivery enqueued anew. Pending, active, scheduled and retrying
// tasks are left alone.
func (c *Client) Requeue(ctx context.Context, refs []Ref) ([]string, error) {
	return c.enqueue(ctx, refs, c.requeueOne)
}

func (c *Client) enqueueOne(ctx context.Context, ref Ref) error {
	_, err := c.client.EnqueueContext(ctx, c.NewTask(ref))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

func (c *Client) requeueOne(ctx context.Context, ref Ref) error {
	_, err := c.client.EnqueueContext(ctx, c.NewTask(ref))
	if !errors.Is(err, asynq.ErrTaskIDConflict) {
		return err
	}
	info, err := c.inspector.GetTaskInfo(ref.Queue, ref.ID)
	switch {
	case errors.Is(err, asynq.ErrTaskNotFound):
		// Finished in between; enqueue again, the claim sorts it out.
	case err != nil:
		return err
	case info.State == asynq.TaskStateArchived || info.State == asynq.TaskStateCompleted:
		if err := c.inspector.DeleteTask(ref.Queue, ref.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return err
		}
	default:
		return nil // a live task will run
	}
	return c.enqueueOne(ctx, ref)
}

func (c *Client) enqueue(ctx context.Context, refs []Ref, one func(context.Context, Ref) error) ([]string, error) {
	var (
		mu       sync.Mutex
		done     = make([]string, 0, len(refs))
		firstErr error
		wg       sync.WaitGroup
		next     = make(chan Ref)
	)
	workers := min(c.cfg.Parallel, len(refs))
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ref := range next {
				err := one(ctx, ref)
				mu.Lock()
				switch {
				case err == nil:
					done = append(done, ref.ID)
				case firstErr == nil:
					firstErr = fmt.Errorf("enqueue delivery %s on queue %q: %w", ref.ID, ref.Queue, err)
				}
				mu.Unlock()
			}
		}()
	}
loop:
	for _, ref := range refs {
		mu.Lock()
		failed := firstErr != nil
		mu.Unlock()
		if failed {
			break
		}
		select {
		case next <- ref:
		case <-ctx.Done():
			mu.Lock()
			if firstErr == nil {
				firstErr = ctx.Err()
			}
			mu.Unlock()
			break loop
		}
	}
	close(next)
	wg.Wait()
	return done, firstErr
}

// QueueSize is the number of tasks of a queue in each state.
type QueueSize struct {
	Queue                                                  string
	Pending, Active, Scheduled, Retry, Archived, Completed int
}

// Sizes reports every queue Asynq knows, sorted by name.
func (c *Client) Sizes(ctx context.Context) ([]QueueSize, error) {
	names, err := c.inspector.Queues()
	if err != nil {
		return nil, fmt.Errorf("list queues: %w", err)
	}
	sort.Strings(names)
	out := make([]QueueSize, 0, len(names))
	for _, q := range names {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := c.inspector.GetQueueInfo(q)
		if err != nil {
			return nil, fmt.Errorf("queue %q: %w", q, err)
		}
		out = append(out, QueueSize{Queue: q, Pending: info.Pending, Active: info.Active,
			Scheduled: info.Scheduled, Retry: info.Retry, Archived: info.Archived, Completed: info.Completed})
	}
	return out, nil
}

// Unfinished is the number of tasks still to be worked on (pending, active,
// scheduled or waiting for a retry) across all queues.
func (c *Client) Unfinished(ctx context.Context) (int, error) {
	sizes, err := c.Sizes(ctx)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, s := range sizes {
		n += s.Pending + s.Active + s.Scheduled + s.Retry
	}
	return n, nil
}

// allQueuesKey is the Redis set in which Asynq lists queue names; its
// inspector and dashboard show only the queues listed there.
const allQueuesKey = "asynq:queues"

// Register lists queues in Asynq's set of queue names. Asynq's client adds
// a queue there only on its first enqueue per process, so after Redis lost
// its data, queues with tasks re-enqueued by a long-running process would
// be missing from the dashboard and metrics until they are registered again.
func (c *Client) Register(ctx context.Context, queues []string) error {
	if len(queues) == 0 {
		return nil
	}
	members := make([]any, len(queues))
	for i, q := range queues {
		members[i] = q
	}
	if err := c.rdb.SAdd(ctx, allQueuesKey, members...).Err(); err != nil {
		return fmt.Errorf("register queues: %w", err)
	}
	return nil
}
