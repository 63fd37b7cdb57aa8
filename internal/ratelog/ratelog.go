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
	s := l.kinds[kind]
	if s == nil {
		s = &state{}
		l.kinds[kind] = s
	}
	if s.total == 0 {
		s.since = now
	}
	s.total++
	s.pending++
	if s.logged && now.Sub(s.last) < l.interval {
		return
	}
	l.log.Warn(msg, append(args, "kind", kind, "occurrences", s.pending, "err", err)...)
	s.pending, s.last, s.logged, s.reported = 0, now, true, true
}

// Recovered ends the trouble of kind: when there was any, msg is logged at
// info with its count and duration.
func (l *Limiter) Recovered(kind, msg string, args ...any) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	s := l.kinds[kind]
	if s == nil || s.total == 0 {
		return
	}
	l.log.Info(msg, append(args, "kind", kind, "occurrences", s.total, "lasted", now.Sub(s.since).Round(time.Second))...)
	// The time of the last warning stays, so trouble that comes and goes
	// is still warned about at most once per interval.
	s.total, s.pending = 0, 0
}
