// Package queue is nurture's use of Asynq: one task per delivery, whose
// TaskID is the delivery id, on the campaign's queue; or, when batching is
// on, one task per batch of deliveries of one campaign, queue and send
// time.
package queue

import (
	"context"
	"encoding/json"
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

// TaskSendBatch is the type of the task that sends a batch of deliveries.
// Its payload is a Batch in JSON, and its TaskID is BatchPrefix followed
// by the first delivery id of the batch.
const TaskSendBatch = "delivery:send-batch"

// DefaultBatch is the batch size of the product's enqueues (serve and
// run-once): large enough that Redis's cost per delivery is negligible,
// small enough that a campaign of a few thousand still spreads over many
// tasks.
const DefaultBatch = 100

// BatchPrefix starts the TaskID of every batch task.
const BatchPrefix = "batch:"

// Batch is the payload of a batch task: the campaign and number of its
// deliveries, for the dashboard, and their ids.
type Batch struct {
	Campaign string   `json:"campaign"`
	Size     int      `json:"size"`
	IDs      []string `json:"ids"`
}

// DecodeBatch reads a batch task's payload.
func DecodeBatch(payload []byte) (Batch, error) {
	var b Batch
	if err := json.Unmarshal(payload, &b); err != nil {
		return b, fmt.Errorf("batch task payload: %w", err)
	}
	if len(b.IDs) == 0 {
		return b, errors.New("batch task payload: no delivery ids")
	}
	return b, nil
}

// Config configures enqueueing. Zero values take the documented defaults.
type Config struct {
	// MaxRetry is how many times a temporarily failing send is retried
	// before the delivery is recorded as failed. Default 8.
	MaxRetry int
	// Timeout bounds one send attempt. Default 2m.
	Timeout time.Duration
	// Parallel is how many enqueue calls run at once. Default 16.
	Parallel int
	// Batch is the most deliveries one task carries: Enqueue puts
	// deliveries of one campaign, queue and send time together in batch
	// tasks of up to Batch, which cost Redis one task instead of Batch.
	// 0 or 1: one task per delivery.
	Batch int
	// Spread is the fewest tasks a group of deliveries is cut into (or one
	// per delivery), so that a small group still spreads over many
	// handlers and worker processes. Default 16.
	Spread int
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
	if c.Spread <= 0 {
		c.Spread = 16
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
	// Campaign is the delivery's campaign; batches never mix campaigns.
	Campaign string
	// Task is the batch task that carries the delivery, "" for its own
	// task; Live reads it.
	Task string
}

// Queued is a delivery handed to the queue and the task that carries it:
// "" for its own task, else a batch task's id.
type Queued struct {
	ID, Task string
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

// Enqueue enqueues the refs, several tasks at a time, and returns the
// deliveries that are now in Redis: newly enqueued, or already there (a
// TaskID conflict means an earlier enqueue of the same task is still
// pending, which is what we want). With Config.Batch above 1, refs of one
// campaign, queue and send time share batch tasks; otherwise each has its
// own. It stops at the first other error, returning the deliveries done so
// far along with it.
func (c *Client) Enqueue(ctx context.Context, refs []Ref) ([]Queued, error) {
	if c.cfg.Batch <= 1 {
		ids, err := c.enqueue(ctx, refs, c.enqueueOne)
		return own(ids), err
	}
	groups := batches(refs, c.cfg.Batch, c.cfg.Spread)
	heads := make([]Ref, len(groups))
	byHead := make(map[string][]Ref, len(groups))
	for i, g := range groups {
		heads[i] = g[0]
		byHead[g[0].ID] = g
	}
	done, err := c.enqueue(ctx, heads, func(ctx context.Context, head Ref) error {
		return c.enqueueBatch(ctx, byHead[head.ID])
	})
	var out []Queued
	for _, head := range done {
		g := byHead[head]
		task := ""
		if len(g) > 1 {
			task = BatchPrefix + g[0].ID
		}
		for _, r := range g {
			out = append(out, Queued{ID: r.ID, Task: task})
		}
	}
	return out, err
}

// Assign returns the task each ref will be enqueued on by Enqueue, which
// groups refs the same way: the caller records it on the deliveries
// before enqueueing, so that a batch task that runs at once finds its
// deliveries named as its own.
func (c *Client) Assign(refs []Ref) []Queued {
	out := make([]Queued, 0, len(refs))
	if c.cfg.Batch <= 1 {
		for _, r := range refs {
			out = append(out, Queued{ID: r.ID})
		}
		return out
	}
	for _, g := range batches(refs, c.cfg.Batch, c.cfg.Spread) {
		task := ""
		if len(g) > 1 {
			task = BatchPrefix + g[0].ID
		}
		for _, r := range g {
			out = append(out, Queued{ID: r.ID, Task: task})
		}
	}
	return out
}

// own reads ids enqueued on their own tasks.
func own(ids []string) []Queued {
	out := make([]Queued, len(ids))
	for i, id := range ids {
		out[i] = Queued{ID: id}
	}
	return out
}

// batches groups refs by campaign, queue and send time, in the order of
// their first appearance, and cuts each group into batches of at most most, and
// into at least spread batches (or single deliveries).
func batches(refs []Ref, most, spread int) [][]Ref {
	type key struct {
		campaign, queue string
		at              int64
	}
	var order []key
	groups := map[key][]Ref{}
	for _, r := range refs {
		k := key{r.Campaign, r.Queue, r.SendAt.UnixNano()}
		if r.SendAt.IsZero() {
			k.at = 0
		}
		if _, ok := groups[k]; !ok {
			order = append(order, k)
		}
		groups[k] = append(groups[k], r)
	}
	var out [][]Ref
	for _, k := range order {
		g := groups[k]
		parts := max((len(g)+most-1)/most, min(len(g), spread))
		size, extra := len(g)/parts, len(g)%parts
		for i := range parts {
			n := size
			if i < extra {
				n++
			}
			out = append(out, g[:n:n])
			g = g[n:]
		}
	}
	return out
}

// enqueueBatch enqueues one batch: a single ref on its own task.
func (c *Client) enqueueBatch(ctx context.Context, g []Ref) error {
	if len(g) == 1 {
		return c.enqueueOne(ctx, g[0])
	}
	ids := make([]string, len(g))
	for i, r := range g {
		ids[i] = r.ID
	}
	payload, err := json.Marshal(Batch{Campaign: g[0].Campaign, Size: len(g), IDs: ids})
	if err != nil {
		return err
	}
	opts := []asynq.Option{
		asynq.TaskID(BatchPrefix + g[0].ID),
		asynq.Queue(g[0].Queue),
		asynq.MaxRetry(c.cfg.MaxRetry),
		// Each delivery's send is bounded on its own; the batch as a whole
		// gets the time of a send attempt per delivery, as its own tasks
		// would have had.
		asynq.Timeout(c.cfg.Timeout * time.Duration(len(g))),
	}
	if !g[0].SendAt.IsZero() {
		opts = append(opts, asynq.ProcessAt(g[0].SendAt))
	}
	_, err = c.client.EnqueueContext(ctx, asynq.NewTask(TaskSendBatch, payload, opts...))
	if errors.Is(err, asynq.ErrTaskIDConflict) {
		return nil
	}
	return err
}

// Handoff enqueues the delivery ref on its own task, to run at ref.SendAt,
// with at most maxRetry retries: a batch hands on a delivery that must be
// tried again later. A live task of the delivery counts as done; an
// archived or completed one (an earlier own task of the delivery, kept by
// Asynq) is replaced, as Requeue does.
func (c *Client) Handoff(ctx context.Context, ref Ref, maxRetry int) error {
	task := asynq.NewTask(TaskSend, []byte(ref.ID),
		asynq.TaskID(ref.ID),
		asynq.Queue(ref.Queue),
		asynq.MaxRetry(max(maxRetry, 0)),
		asynq.Timeout(c.cfg.Timeout),
		asynq.ProcessAt(ref.SendAt),
	)
	for range 2 {
		_, err := c.client.EnqueueContext(ctx, task)
		if !errors.Is(err, asynq.ErrTaskIDConflict) {
			if err != nil {
				return fmt.Errorf("enqueue delivery %s on queue %q: %w", ref.ID, ref.Queue, err)
			}
			return nil
		}
		info, err := c.inspector.GetTaskInfo(ref.Queue, ref.ID)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound):
			continue // finished in between: enqueue again
		case err != nil:
			return fmt.Errorf("enqueue delivery %s on queue %q: %w", ref.ID, ref.Queue, err)
		case info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted:
			return nil // a live task will run
		}
		if err := c.inspector.DeleteTask(ref.Queue, ref.ID); err != nil && !errors.Is(err, asynq.ErrTaskNotFound) {
			return fmt.Errorf("enqueue delivery %s on queue %q: %w", ref.ID, ref.Queue, err)
		}
	}
	return fmt.Errorf("enqueue delivery %s on queue %q: its task id stays taken", ref.ID, ref.Queue)
}

// Live reports, for each batch task named by the refs' Task, whether it
// still exists to run (pending, scheduled, active or waiting for a retry).
// A batch task that is gone (finished, lost with Redis's data, archived or
// deleted) leaves its unfinished deliveries to tasks of their own.
func (c *Client) Live(ctx context.Context, refs []Ref) (map[string]bool, error) {
	live := map[string]bool{}
	for _, r := range refs {
		if r.Task == "" {
			continue
		}
		if _, seen := live[r.Task]; seen {
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		info, err := c.inspector.GetTaskInfo(r.Queue, r.Task)
		switch {
		case errors.Is(err, asynq.ErrTaskNotFound) || errors.Is(err, asynq.ErrQueueNotFound):
			live[r.Task] = false
		case err != nil:
			return nil, fmt.Errorf("look up batch task %s on queue %q: %w", r.Task, r.Queue, err)
		default:
			live[r.Task] = info.State != asynq.TaskStateArchived && info.State != asynq.TaskStateCompleted
		}
	}
	return live, nil
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
