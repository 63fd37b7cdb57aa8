package importer

import (
	"context"
	"fmt"
	"sync"
	"time"

	"nurture/internal/store"
)

// Group writes the batches of concurrent callers together: while one
// import transaction is being written, the batches that arrive wait, and
// the next transaction takes all of them, each with its own statements
// but one commit. Imports run one at a time anyway (store.BeginImport), so
// this spends the wait on one transaction's set-up and commit instead of
// one per caller. A Group is safe for concurrent use; the zero value is
// not: use NewGroup.
type Group struct {
	st *store.Store

	mu      sync.Mutex
	pending []*groupJob
	running bool // a caller is writing a transaction
}

// groupTimeout bounds one group transaction, which no single caller's
// context may cancel: it writes the other callers' batches too.
const groupTimeout = 2 * time.Minute

type groupJob struct {
	write func(*store.Import, context.Context) (int, error)
	n     int
	err   error
	done  chan struct{}
	lead  chan struct{} // closed when this job's caller is to write the next group
}

// NewGroup returns a Group writing to st.
func NewGroup(st *store.Store) *Group { return &Group{st: st} }

// CustomerBatch is CustomerBatch, its write grouped with concurrent ones.
func (g *Group) CustomerBatch(ctx context.Context, items [][]byte, opts BatchOptions) (BatchResult, error) {
	return batch(ctx, items, opts, newCustomerParser().parse, groupWriter(g, (*store.Import).Customers))
}

// EventBatch is EventBatch, its write grouped with concurrent ones.
func (g *Group) EventBatch(ctx context.Context, items [][]byte, opts BatchOptions) (BatchResult, error) {
	return batch(ctx, items, opts, eventParserAt(opts).parse, groupWriter(g, (*store.Import).Events))
}

// groupWriter adapts a store write of records to g.
func groupWriter[T any](g *Group, write func(*store.Import, context.Context, []T) (int, error)) func(context.Context, []T) (int, error) {
	return func(ctx context.Context, recs []T) (int, error) {
		return g.do(ctx, func(im *store.Import, ctx context.Context) (int, error) { return write(im, ctx, recs) })
	}
}

// do runs write in the next group transaction and returns its result. The
// caller that finds no transaction running writes one with every job
// waiting, then hands the lead to the first job that arrived meanwhile.
func (g *Group) do(ctx context.Context, write func(*store.Import, context.Context) (int, error)) (int, error) {
	j := &groupJob{write: write, done: make(chan struct{}), lead: make(chan struct{})}
	g.mu.Lock()
	g.pending = append(g.pending, j)
	leader := !g.running
	g.running = true
	g.mu.Unlock()
	if !leader {
		select {
		case <-j.done:
			return j.n, j.err
		case <-j.lead:
		}
	}
	g.mu.Lock()
	jobs := g.pending
	g.pending = nil
	g.mu.Unlock()

	g.writeGroup(context.WithoutCancel(ctx), jobs)

	g.mu.Lock()
	if len(g.pending) > 0 {
		close(g.pending[0].lead)
	} else {
		g.running = false
	}
	g.mu.Unlock()
	<-j.done
	return j.n, j.err
}

// writeGroup writes jobs in one transaction. When it fails, each job is
// written again in a transaction of its own, so that one bad batch fails
// alone.
func (g *Group) writeGroup(ctx context.Context, jobs []*groupJob) {
	ctx, cancel := context.WithTimeout(ctx, groupTimeout)
	defer cancel()
	finish := func(js []*groupJob) {
		for _, j := range js {
			close(j.done)
		}
	}
	if len(jobs) > 1 {
		if ns, err := g.transaction(ctx, jobs); err == nil {
			for i, j := range jobs {
				j.n = ns[i]
			}
			finish(jobs)
			return
		}
	}
	for _, j := range jobs {
		ns, err := g.transaction(ctx, []*groupJob{j})
		if err == nil {
			j.n = ns[0]
		}
		j.err = err
		close(j.done)
	}
}

// transaction writes jobs in one import transaction. A panic in a write
// fails the transaction like an error, so that the callers waiting for
// the group are answered and later batches are not left waiting.
func (g *Group) transaction(ctx context.Context, jobs []*groupJob) (ns []int, err error) {
	defer func() {
		if r := recover(); r != nil {
			ns, err = nil, fmt.Errorf("import batch: panic: %v", r)
		}
	}()
	im, err := g.st.BeginImport(ctx)
	if err != nil {
		return nil, err
	}
	defer im.Rollback(context.WithoutCancel(ctx))
	ns = make([]int, len(jobs))
	for i, j := range jobs {
		if ns[i], err = j.write(im, ctx); err != nil {
			return nil, err
		}
	}
	if err := im.Commit(ctx); err != nil {
		return nil, err
	}
	return ns, nil
}
