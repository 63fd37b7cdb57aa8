// Package ratelog logs recurring trouble without flooding: each kind of
// trouble at most once per interval, with the number of occurrences since
// its last line, and its end once, at info.
package ratelog

import (
	"log/slog"
	"sync"
	"time"
)

// Limiter rate-limits the logging of trouble by kind.
type Limiter struct {
	now      func() time.Time
	interval time.Duration
	log      *slog.Logger

	mu    sync.Mutex
	kinds map[string]*state
}

type state struct {
	pending  int       // occurrences not yet logged
	total    int       // occurrences since the trouble began
	since    time.Time // when it began
	last     time.Time // last line logged
	reported bool      // a line was logged since the trouble began
	logged   bool      // last is set
	epoch    uint64    // counts the trouble's beginnings and ends
}

// New returns a Limiter logging to log at most once per interval per kind,
// timed by now.
func New(log *slog.Logger, interval time.Duration, now func() time.Time) *Limiter {
	return &Limiter{now: now, interval: interval, log: log, kinds: map[string]*state{}}
}

// Trouble records one occurrence of kind, and logs msg at warn with err and
// args when the kind was not logged within the interval.
func (l *Limiter) Trouble(kind, msg string, err error, args ...any) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.trouble(kind, now, msg, err, args)
}

// Recovered ends the trouble of kind: when there was any, msg is logged at
// info with its count and duration.
func (l *Limiter) Recovered(kind, msg string, args ...any) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recovered(kind, now, msg, args)
}

// An Attempt is one try at work whose failure is trouble of a kind. Its
// outcome always counts when it agrees with what is known: a failure while
// the kind is in trouble, a success while it is not. One that contradicts
// it counts only when the attempt began after the trouble last began or
// ended: otherwise it is older news. So a statement sent before a server
// restarted, failing just after a later statement found the server back,
// does not open the trouble again, and one sent before the server stopped,
// succeeding just after a later one failed, does not end it.
type Attempt struct {
	l     *Limiter
	kind  string
	epoch uint64
}

// Begin starts an attempt at work whose failure is trouble of kind. An
// attempt reports at most one outcome, by Failed or Succeeded.
func (l *Limiter) Begin(kind string) Attempt {
	l.mu.Lock()
	defer l.mu.Unlock()
	return Attempt{l: l, kind: kind, epoch: l.state(kind).epoch}
}

// Failed is Trouble for the attempt's kind, unless it is older news.
func (a Attempt) Failed(msg string, err error, args ...any) {
	now := a.l.now()
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if s := a.l.state(a.kind); s.epoch != a.epoch && s.total == 0 {
		return
	}
	a.l.trouble(a.kind, now, msg, err, args)
}

// Succeeded is Recovered for the attempt's kind, unless it is older news.
func (a Attempt) Succeeded(msg string, args ...any) {
	now := a.l.now()
	a.l.mu.Lock()
	defer a.l.mu.Unlock()
	if s := a.l.state(a.kind); s.epoch != a.epoch && s.total > 0 {
		return
	}
	a.l.recovered(a.kind, now, msg, args)
}

// state returns kind's state, made on first use. l.mu is held.
func (l *Limiter) state(kind string) *state {
	s := l.kinds[kind]
	if s == nil {
		s = &state{}
		l.kinds[kind] = s
	}
	return s
}

// trouble is Trouble with l.mu held.
func (l *Limiter) trouble(kind string, now time.Time, msg string, err error, args []any) {
	s := l.state(kind)
	if s.total == 0 {
		s.since = now
		s.epoch++
	}
	s.total++
	s.pending++
	if s.logged && now.Sub(s.last) < l.interval {
		return
	}
	l.log.Warn(msg, append(args, "kind", kind, "occurrences", s.pending, "err", err)...)
	s.pending, s.last, s.logged, s.reported = 0, now, true, true
}

// recovered is Recovered with l.mu held.
func (l *Limiter) recovered(kind string, now time.Time, msg string, args []any) {
	s := l.state(kind)
	if s.total == 0 {
		return
	}
	l.log.Info(msg, append(args, "kind", kind, "occurrences", s.total, "lasted", now.Sub(s.since).Round(time.Second))...)
	// The time of the last warning stays, so trouble that comes and goes
	// is still warned about at most once per interval.
	s.total, s.pending = 0, 0
	s.epoch++
}
