package tracking

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"nurture/internal/metrics"
	"nurture/internal/ratelog"
	"nurture/internal/store"
)

// HitStore is where a Recorder writes hits: *store.Store.
type HitStore interface {
	RecordHits(ctx context.Context, hits []store.Hit) ([]store.HitCount, error)
}

// RecorderConfig configures a Recorder. Zero values take the documented
// defaults.
type RecorderConfig struct {
	// Backlog is how many hits wait for the database at most; beyond, hits
	// are answered but not recorded (counted, logged). Default 100000.
	Backlog int
	// Batch is the most hits written by one statement. Default 2000.
	Batch int
	// Timeout bounds one write. Default 10s.
	Timeout time.Duration
	// Now is the clock of the trouble log. Default time.Now.
	Now func() time.Time
}

func (c RecorderConfig) withDefaults() RecorderConfig {
	if c.Backlog <= 0 {
		c.Backlog = 100_000
	}
	if c.Batch <= 0 {
		c.Batch = 2000
	}
	if c.Timeout <= 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Recorder writes hits to the database in the background, in batches: a
// request never waits for PostgreSQL. Hits that find the backlog full, or
// whose write fails, are lost (best effort), and counted and logged.
type Recorder struct {
	cfg     RecorderConfig
	st      HitStore
	m       *metrics.Metrics
	log     *slog.Logger
	trouble *ratelog.Limiter

	hits    chan store.Hit
	flushes chan chan struct{}

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan struct{}
}

// NewRecorder returns a Recorder writing to st; Start it.
func NewRecorder(cfg RecorderConfig, st HitStore, m *metrics.Metrics, log *slog.Logger) *Recorder {
	cfg = cfg.withDefaults()
	return &Recorder{cfg: cfg, st: st, m: m, log: log, trouble: ratelog.New(log, 30*time.Second, cfg.Now),
		hits: make(chan store.Hit, cfg.Backlog), flushes: make(chan chan struct{})}
}

// Start begins writing hits, until Stop.
func (r *Recorder) Start(ctx context.Context) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.done != nil {
		return errors.New("tracking recorder: already started")
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	r.done = make(chan struct{})
	go r.run(ctx)
	return nil
}

// Stop writes the hits waiting, until ctx ends, and stops.
func (r *Recorder) Stop(ctx context.Context) error {
	r.mu.Lock()
	done := r.done
	r.mu.Unlock()
	if done == nil {
		return nil
	}
	if err := r.Flush(ctx); err != nil {
		r.cancel()
		<-done
		return err
	}
	r.cancel()
	<-done
	return nil
}

// Record queues one hit without waiting; false when the backlog is full
// and the hit is dropped.
func (r *Recorder) Record(h store.Hit) bool {
	select {
	case r.hits <- h:
		return true
	default:
		r.m.TrackingUnrecorded("backlog", 1)
		r.trouble.Trouble("tracking-backlog", "tracking hits dropped: the database does not keep up", errBacklog, "backlog", r.cfg.Backlog)
		return false
	}
}

var errBacklog = errors.New("recorder backlog full")

// Flush returns once every hit queued before the call has been written
// (or has failed to be), or when ctx ends.
func (r *Recorder) Flush(ctx context.Context) error {
	reply := make(chan struct{})
	select {
	case r.flushes <- reply:
	case <-ctx.Done():
		return fmt.Errorf("tracking recorder: flush: %w", ctx.Err())
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("tracking recorder: flush: %w", ctx.Err())
	}
}

func (r *Recorder) run(ctx context.Context) {
	defer close(r.done)
	batch := make([]store.Hit, 0, r.cfg.Batch)
	for {
		select {
		case <-ctx.Done():
			return
		case reply := <-r.flushes:
			for drained := false; !drained; {
				batch, drained = r.fill(batch[:0])
				r.write(ctx, batch)
			}
			close(reply)
		case h := <-r.hits:
			batch = append(batch[:0], h)
			batch, _ = r.fill(batch)
			r.write(ctx, batch)
		}
	}
}

// fill adds the hits waiting to batch, up to its size; drained says the
// backlog was emptied.
func (r *Recorder) fill(batch []store.Hit) ([]store.Hit, bool) {
	for len(batch) < r.cfg.Batch {
		select {
		case h := <-r.hits:
			batch = append(batch, h)
		default:
			return batch, true
		}
	}
	return batch, false
}

func (r *Recorder) write(ctx context.Context, batch []store.Hit) {
	if len(batch) == 0 {
		return
	}
	wctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	counts, err := r.st.RecordHits(wctx, batch)
	cancel()
	if err != nil {
		r.m.TrackingUnrecorded("database", len(batch))
		r.m.InfraError("postgres", "record_hits")
		r.trouble.Trouble("tracking-write", "recording tracking hits failed; they are lost", err, "hits", len(batch))
		return
	}
	r.trouble.Recovered("tracking-write", "recording tracking hits again")
	r.trouble.Recovered("tracking-backlog", "tracking hits no longer dropped")
	for _, c := range counts {
		kind := Open.String()
		if c.Click {
			kind = Click.String()
		}
		if c.Campaign == "" {
			r.m.TrackingUnrecorded("unknown_delivery", c.N)
			continue
		}
		r.m.TrackingHits(kind, c.Campaign, c.Machine, c.N)
	}
}
