package worker

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

var errBatcherClosed = errors.New("worker is closed")

// batcher merges the database calls of concurrent handlers: each caller
// hands in one item and waits; a flusher takes every item waiting at that
// moment and, when the worker is busy (several were waiting, or another
// flusher holds a batch), those that arrive within linger, and runs fn
// once for all of them. Under load batches grow by themselves; the linger
// makes them larger still, trading a few milliseconds of each caller's
// wait for far fewer statements and commits.
type batcher[In, Out any] struct {
	fn      func(ctx context.Context, in []In) ([]Out, error)
	max     int
	linger  time.Duration
	timeout time.Duration
	reqs    chan batchReq[In, Out]
	stop    chan struct{}
	// active counts the flushers holding a batch, from its first request
	// until its replies are out: another one active means load.
	active atomic.Int32
	// mu orders submissions against close: a submitter holds it shared
	// from its check of closed until its request is in reqs, and close
	// takes it exclusively. Without it a submitter racing close could put
	// its request in the buffer after the flushers left, and wait forever.
	mu      sync.RWMutex
	closed  bool
	stopped sync.WaitGroup
}

type batchReq[In, Out any] struct {
	in    In
	reply chan batchReply[Out]
}

type batchReply[Out any] struct {
	out Out
	err error
}

// newBatcher starts flushers goroutines running fn over batches of at most
// max items gathered for up to linger, each call bounded by timeout. fn
// must return one Out per In, in order.
func newBatcher[In, Out any](flushers, max int, linger, timeout time.Duration, fn func(context.Context, []In) ([]Out, error)) *batcher[In, Out] {
	b := &batcher[In, Out]{fn: fn, max: max, linger: linger, timeout: timeout, reqs: make(chan batchReq[In, Out], max), stop: make(chan struct{})}
	for range flushers {
		b.stopped.Add(1)
		go b.run()
	}
	return b
}

// do submits one item and waits for its result.
func (b *batcher[In, Out]) do(ctx context.Context, in In) (Out, error) {
	var zero Out
	r := batchReq[In, Out]{in: in, reply: make(chan batchReply[Out], 1)}
	b.mu.RLock()
	if b.closed {
		b.mu.RUnlock()
		return zero, errBatcherClosed
	}
	// The flushers run until close, which waits for this lock: the send
	// below always finds a reader or room, or ctx ends.
	select {
	case b.reqs <- r:
		b.mu.RUnlock()
	case <-ctx.Done():
		b.mu.RUnlock()
		return zero, ctx.Err()
	}
	// Once submitted the item will be flushed; wait for the outcome even if
	// ctx ends, so a caller never abandons a write it cannot see the end of.
	rep := <-r.reply
	return rep.out, rep.err
}

func (b *batcher[In, Out]) run() {
	defer b.stopped.Done()
	reqs := make([]batchReq[In, Out], 0, b.max)
	ins := make([]In, 0, b.max)
	for {
		select {
		case r := <-b.reqs:
			reqs = append(reqs[:0], r)
		case <-b.stop:
			// Serve what was submitted before the stop; nothing is
			// submitted after it.
			select {
			case r := <-b.reqs:
				reqs = append(reqs[:0], r)
			default:
				return
			}
		}
		others := b.active.Add(1) > 1
		reqs = b.fill(reqs, others)
		ins = ins[:0]
		for _, r := range reqs {
			ins = append(ins, r.in)
		}
		// The flush must finish even while the process shuts down: the
		// handlers waiting on it are reporting sends that already happened.
		ctx, cancel := context.WithTimeout(context.Background(), b.timeout)
		outs, err := b.fn(ctx, ins)
		cancel()
		for i, r := range reqs {
			var rep batchReply[Out]
			if err != nil {
				rep.err = err
			} else {
				rep.out = outs[i]
			}
			r.reply <- rep
		}
		b.active.Add(-1)
	}
}

// fill adds to reqs the requests waiting now and, with a linger, those
// that arrive within it, up to max. The linger applies only under load:
// when other requests were waiting already, or another flusher (others)
// holds a batch. A request that finds the batcher idle is flushed at
// once, so that a quiet worker never waits for company that is not
// coming. A stop ends the linger at once.
func (b *batcher[In, Out]) fill(reqs []batchReq[In, Out], others bool) []batchReq[In, Out] {
waiting:
	for len(reqs) < b.max {
		select {
		case r := <-b.reqs:
			reqs = append(reqs, r)
		default:
			break waiting
		}
	}
	if b.linger <= 0 || (len(reqs) < 2 && !others) || len(reqs) >= b.max {
		return reqs
	}
	t := time.NewTimer(b.linger)
	defer t.Stop()
	for len(reqs) < b.max {
		select {
		case r := <-b.reqs:
			reqs = append(reqs, r)
		case <-t.C:
			return reqs
		case <-b.stop:
			return reqs
		}
	}
	return reqs
}

// close stops the flushers once no caller is left waiting.
func (b *batcher[In, Out]) close() {
	b.mu.Lock()
	if !b.closed {
		b.closed = true
		close(b.stop)
	}
	b.mu.Unlock()
	b.stopped.Wait()
}
