package worker

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	nmail "nurture/internal/mail"
	"nurture/internal/metrics"
)

// ErrSMTPTrouble is what Health reports while sends keep failing on the
// transport.
var ErrSMTPTrouble = errors.New("SMTP sends failing")

// trouble watches send failures so that SMTP trouble is never silent:
// every failure is counted by kind in metrics; transport trouble is logged
// at warn at most once per kind and interval, with the count since the
// last line; the first success after trouble is logged at info.
type trouble struct {
	now      func() time.Time
	interval time.Duration
	log      *slog.Logger
	metrics  *metrics.Metrics

	mu sync.Mutex
	// per kind: failures not yet reported, and when it was last reported.
	pending  map[string]int
	reported map[string]time.Time
	// run is the number of transport failures since the last success.
	run       int
	since     time.Time
	lastKind  string
	lastError string
}

func newTrouble(now func() time.Time, interval time.Duration, log *slog.Logger, m *metrics.Metrics) *trouble {
	return &trouble{now: now, interval: interval, log: log, metrics: m,
		pending: map[string]int{}, reported: map[string]time.Time{}}
}

func (t *trouble) failed(err error) {
	kind := nmail.ErrorKind(err)
	t.metrics.SendFailed(kind)
	if !nmail.IsTransport(kind) {
		return // about one message, recorded on its delivery
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run == 0 {
		t.since = now
	}
	t.run++
	t.lastKind, t.lastError = kind, err.Error()
	t.pending[kind]++
	last, seen := t.reported[kind]
	if seen && now.Sub(last) < t.interval {
		return
	}
	t.log.Warn("SMTP send failed; the delivery will be retried", "kind", kind, "failures", t.pending[kind],
		"since_last_warning", sinceText(seen, now.Sub(last)), "err", err)
	t.reported[kind] = now
	t.pending[kind] = 0
}

func (t *trouble) ok() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run == 0 {
		return
	}
	t.log.Info("SMTP sending recovered", "failures", t.run, "down_for", t.now().Sub(t.since).Round(time.Second))
	t.run = 0
	// The times of the last warnings stay: a server that flaps gets one
	// warning per kind and interval, not one per flap. Failures not yet
	// warned about are in the recovery line's count.
	clear(t.pending)
}

// health returns nil unless the latest sends failed on the transport.
func (t *trouble) health() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.run == 0 {
		return nil
	}
	return fmt.Errorf("%w: %d in a row since %s (%s: %s)", ErrSMTPTrouble, t.run,
		t.since.UTC().Format(time.RFC3339), t.lastKind, t.lastError)
}

func sinceText(seen bool, d time.Duration) string {
	if !seen {
		return "first"
	}
	return d.Round(time.Second).String()
}
