package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"

	"nurture/internal/queue"
)

// enqueueParallel is how many enqueue calls run at once in part b, for
// Enqueue and for the baseline alike: queue.Config's default.
const enqueueParallel = 16

// enqueueing is part b: queue.Client.Enqueue of --tasks delivery tasks
// against as many plain SET commands of the same payload, issued with the
// same parallelism through go-redis.
func (b *bench) enqueueing(ctx context.Context) error {
	if err := b.flushRedis(ctx); err != nil {
		return err
	}
	defer b.flushRedis(context.WithoutCancel(ctx))
	n := b.cfg.Tasks
	refs := make([]queue.Ref, n)
	for i := range refs {
		refs[i] = queue.Ref{ID: uuid.NewString(), Queue: "default"}
	}

	b.progress("enqueue: baseline, %d SET commands, %d at a time", n, enqueueParallel)
	start := time.Now()
	err := parallel(ctx, n, enqueueParallel, func(ctx context.Context, i int) error {
		id := refs[i].ID
		return b.rdb.Set(ctx, "bench:"+id, id, 0).Err()
	})
	if err != nil {
		return fmt.Errorf("SET: %w", err)
	}
	base := time.Since(start)
	if err := b.flushRedis(ctx); err != nil {
		return err
	}

	b.progress("enqueue: %d tasks with queue.Client.Enqueue", n)
	q := queue.NewClient(b.rdb, queue.Config{Parallel: enqueueParallel})
	start = time.Now()
	done, err := q.Enqueue(ctx, refs)
	if err != nil {
		return err
	}
	elapsed := time.Since(start)
	pending, err := q.Unfinished(ctx)
	if err != nil {
		return err
	}
	if len(done) != n || pending != n {
		return fmt.Errorf("enqueued %d tasks, %d pending in Redis; want %d", len(done), pending, n)
	}
	r := rate(n, elapsed)
	b.add(result{
		name:     fmt.Sprintf("(b) Enqueue: `queue.Client.Enqueue` of %s tasks, %d at a time", count(float64(n)), enqueueParallel),
		value:    fmt.Sprintf("%s tasks/s (%s; %s pending in Redis after)", count(r), secs(elapsed), count(float64(pending))),
		baseline: fmt.Sprintf("plain SET of the same payload, same parallelism: %s/s", count(rate(n, base))),
		ratio:    elapsed.Seconds() / base.Seconds(),
		target:   "≥ 20,000 tasks/s",
		met:      met(r >= 20000),
	})
	return nil
}

// flushRedis empties the scratch Redis DB.
func (b *bench) flushRedis(ctx context.Context) error {
	if err := b.rdb.FlushDB(ctx).Err(); err != nil {
		return fmt.Errorf("flush the scratch Redis DB: %w", err)
	}
	return nil
}

// parallel calls fn for 0 ≤ i < n on workers goroutines and returns the
// first error, after which no new call starts.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		next     atomic.Int64
		wg       sync.WaitGroup
		once     sync.Once
		firstErr error
	)
	for range min(workers, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { firstErr = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return firstErr
	}
	return ctx.Err()
}
