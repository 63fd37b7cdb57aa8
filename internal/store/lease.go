package store

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Lease is a PostgreSQL session advisory lock held on a connection of its
// own: it lasts until Release or until that connection breaks.
type Lease struct {
	conn    *pgx.Conn
	key     int64
	unlock  string
	lost    chan struct{}
	stop    chan struct{}
	done    chan struct{}
	release sync.Once
}

// TryLeader takes the advisory lock key if nobody holds it. It returns a
// nil Lease and no error when another session holds it.
func (s *Store) TryLeader(ctx context.Context, key int64) (*Lease, error) {
	pc, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("leader lock: %w", err)
	}
	// The lock belongs to the session, so the connection leaves the pool:
	// nobody else may use it, and closing it releases the lock.
	conn := pc.Hijack()
	var ok bool
	if err := conn.QueryRow(ctx, s.q.get(qTryLeader), key).Scan(&ok); err != nil {
		conn.Close(context.WithoutCancel(ctx))
		return nil, fmt.Errorf("leader lock: %w", err)
	}
	if !ok {
		conn.Close(context.WithoutCancel(ctx))
		return nil, nil
	}
	l := &Lease{conn: conn, key: key, unlock: s.q.get(qReleaseLeader), lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	go l.watch(s.cfg.LeaseCheck)
	return l, nil
}

// Lost is closed when the lease is lost: its connection broke, and with it
// the lock. It is not closed by Release.
func (l *Lease) Lost() <-chan struct{} { return l.lost }

// Release gives the lock up. It is safe to call more than once.
func (l *Lease) Release() {
	l.release.Do(func() {
		close(l.stop)
		<-l.done
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		// Unlock before closing: the server drops a closed session's locks
		// only when it gets to it, and the next leader may already ask.
		select {
		case <-l.lost:
		default:
			l.conn.Exec(ctx, l.unlock, l.key)
		}
		l.conn.Close(ctx)
	})
}

// watch pings the lease's connection every period until Release.
func (l *Lease) watch(period time.Duration) {
	defer close(l.done)
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), period)
		err := l.conn.Ping(ctx)
		cancel()
		if err != nil {
			close(l.lost)
			return
		}
	}
}
