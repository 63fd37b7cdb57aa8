// Package throttle paces the emails of every worker process through Redis:
// a global send rate, a rate per recipient domain, and a backoff for a
// domain whose server answered 421 or 452.
//
// Rates are enforced with GCRA (the generic cell rate algorithm): each
// rate keeps one key, the theoretical arrival time (TAT) of the next email,
// and one Lua script per email reads and advances the global and the domain
// key together, so that processes never race. The script reserves a slot:
// it answers how long the caller must wait before sending, and the caller
// sends after that wait without booking again (after a wait it only checks
// that no backoff of the domain began meanwhile). Slots are evenly spaced (one
// email per interval, no burst), so over any period P at most P/interval+1
// emails go out, whatever the number of processes.
//
// Times come from Redis's own clock (TIME) unless Config.Now is set, so
// processes on machines whose clocks disagree still share one schedule.
//
// An email with no rate limit only needs to know that its domain is not in
// a backoff. A domain found clear is taken to stay clear for Config.Clear
// (a second) without asking Redis again, unless this process meets a 421
// or 452 from it: another process's backoff reaches this one within that
// time, and Redis is spared a script per email.
package throttle

import (
	"context"
	_ "embed"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config configures a Limiter. Zero values take the documented defaults.
type Config struct {
	// Prefix starts every key. Default "{nurture:throttle}": the braces
	// keep the keys of one check in one Redis Cluster slot.
	Prefix string
	// MaxWait is the longest wait Reserve books; a longer one is refused
	// (Slot.Reserved false) so the caller can put the email aside instead
	// of holding a worker. Default 10s.
	MaxWait time.Duration
	// BackoffBase is the first backoff of a domain after a 421 or 452
	// reply; each further such reply after the backoff ended doubles it,
	// up to BackoffMax. Defaults 30s and 10m.
	BackoffBase, BackoffMax time.Duration
	// Now, when set, is the clock of every check, for tests. Default:
	// Redis's clock, shared by every process.
	Now func() time.Time
	// Clear is how long a domain found without backoff is taken to stay
	// so by an email with no rate limit, before Redis is asked again.
	// Default 1s; negative: ask every time.
	Clear time.Duration
}

func (c Config) withDefaults() Config {
	if c.Prefix == "" {
		c.Prefix = "{nurture:throttle}"
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 10 * time.Second
	}
	if c.BackoffBase <= 0 {
		c.BackoffBase = 30 * time.Second
	}
	if c.BackoffMax <= 0 {
		c.BackoffMax = 10 * time.Minute
	}
	c.BackoffMax = max(c.BackoffMax, c.BackoffBase)
	if c.Clear == 0 {
		c.Clear = time.Second
	}
	return c
}

// Limits are the rates one email is subject to, as the least time between
// two emails; zero: no limit.
type Limits struct {
	Global time.Duration
	Domain time.Duration
}

// Limiter reserves send slots in Redis. It is safe for concurrent use.
type Limiter struct {
	cfg     Config
	rdb     redis.UniversalClient
	reserve *redis.Script
	backoff *redis.Script
	recover *redis.Script
	left    *redis.Script

	mu    sync.Mutex
	clear map[string]time.Time // domain → when it was last found clear
	// forgets counts the calls of forget: a Wait remembers a domain as
	// clear only if none happened while it asked Redis.
	forgets uint64
}

// maxClear bounds the domains remembered as clear; beyond it, expired
// entries are dropped.
const maxClear = 4096

// isClear reports whether domain was found clear within Config.Clear.
func (l *Limiter) isClear(domain string) bool {
	if l.cfg.Clear < 0 {
		return false
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	at, ok := l.clear[domain]
	return ok && time.Since(at) < l.cfg.Clear
}

// generation is the count of forgets so far, to pass to markClear.
func (l *Limiter) generation() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.forgets
}

// markClear remembers that domain is clear now, as Redis answered a Wait
// that began at generation gen: not if a domain asked to slow down since.
// Beyond maxClear fresh domains, no more are remembered.
func (l *Limiter) markClear(domain string, gen uint64) {
	if l.cfg.Clear < 0 {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.forgets != gen {
		return
	}
	if l.clear == nil {
		l.clear = map[string]time.Time{}
	}
	if _, ok := l.clear[domain]; !ok && len(l.clear) >= maxClear {
		for d, at := range l.clear {
			if time.Since(at) >= l.cfg.Clear {
				delete(l.clear, d)
			}
		}
		if len(l.clear) >= maxClear {
			return
		}
	}
	l.clear[domain] = time.Now()
}

// forget drops what is remembered of domain: it asked to slow down.
func (l *Limiter) forget(domain string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.forgets++
	delete(l.clear, domain)
}

//go:embed reserve.lua
var reserveLua string

//go:embed backoff.lua
var backoffLua string

//go:embed recover.lua
var recoverLua string

//go:embed left.lua
var leftLua string

// New returns a Limiter using rdb.
func New(rdb redis.UniversalClient, cfg Config) *Limiter {
	return &Limiter{cfg: cfg.withDefaults(), rdb: rdb,
		reserve: redis.NewScript(reserveLua), backoff: redis.NewScript(backoffLua),
		recover: redis.NewScript(recoverLua), left: redis.NewScript(leftLua)}
}

// Config returns the limiter's configuration with its defaults applied.
func (l *Limiter) Config() Config { return l.cfg }

func (l *Limiter) globalKey() string          { return l.cfg.Prefix + ":global" }
func (l *Limiter) domainKey(d string) string  { return l.cfg.Prefix + ":domain:" + d }
func (l *Limiter) backoffKey(d string) string { return l.cfg.Prefix + ":backoff:" + d }

// now is the clock argument of the scripts: microseconds, or "" for
// Redis's clock.
func (l *Limiter) now() string {
	if l.cfg.Now == nil {
		return ""
	}
	return strconv.FormatInt(l.cfg.Now().UnixMicro(), 10)
}

func micros(d time.Duration) string { return strconv.FormatInt(d.Microseconds(), 10) }

// intervalMicros rounds an interval up to the microsecond, so that
// rounding never lets a rate through faster than it is written (1/3 s is
// 333334µs).
func intervalMicros(d time.Duration) string {
	return strconv.FormatInt(int64((d+time.Microsecond-1)/time.Microsecond), 10)
}

// Slot is the answer of Reserve.
type Slot struct {
	// Wait is how long the email must wait before it goes; 0: at once.
	Wait time.Duration
	// Reserved is true when the slot is booked: send after Wait. False
	// when Wait is more than MaxWait: nothing is booked; come back later.
	Reserved bool
	// Episode is true while the domain is in a backoff episode: in a
	// backoff, or after one with no success since. The first success in
	// an episode should call Recover.
	Episode bool
}

// Reserve books the next slot for one email to domain (lower case) under
// lim, also waiting out the domain's backoff.
func (l *Limiter) Reserve(ctx context.Context, domain string, lim Limits) (Slot, error) {
	keys := []string{l.globalKey(), l.domainKey(domain), l.backoffKey(domain)}
	v, err := l.reserve.Run(ctx, l.rdb, keys, l.now(), intervalMicros(lim.Global), intervalMicros(lim.Domain), micros(l.cfg.MaxWait)).Int64Slice()
	if err != nil {
		return Slot{}, fmt.Errorf("throttle reserve for %s: %w", domain, err)
	}
	if len(v) != 3 {
		return Slot{}, fmt.Errorf("throttle reserve for %s: script answered %v", domain, v)
	}
	return Slot{Reserved: v[0] == 1, Wait: time.Duration(v[1]) * time.Microsecond, Episode: v[2] == 1}, nil
}

// BackoffLeft is how long the domain's backoff still runs; 0: none.
func (l *Limiter) BackoffLeft(ctx context.Context, domain string) (time.Duration, error) {
	v, err := l.left.Run(ctx, l.rdb, []string{l.backoffKey(domain)}, l.now()).Int64()
	if err != nil {
		return 0, fmt.Errorf("throttle backoff of %s: %w", domain, err)
	}
	return time.Duration(v) * time.Microsecond, nil
}

// Backoff is the answer of SlowDown.
type Backoff struct {
	// Started is true for the reply that began the episode: exactly one
	// caller among all processes sees it, and logs it.
	Started bool
	// Extended is true when this reply lengthened the backoff (the
	// first reply, or one after the previous backoff ended); false for a
	// reply to an email that was under way when the backoff began.
	Extended bool
	// For is the length of the backoff now running, Level its rank in the
	// episode (1 for the first).
	For   time.Duration
	Level int
}

// SlowDown records a 421 or 452 reply from domain's server: every email to
// domain waits until the backoff ends.
func (l *Limiter) SlowDown(ctx context.Context, domain string) (Backoff, error) {
	// Once the backoff is in Redis: a Wait that asked before then does not
	// remember the domain clear either.
	defer l.forget(domain)
	v, err := l.backoff.Run(ctx, l.rdb, []string{l.backoffKey(domain)}, l.now(),
		micros(l.cfg.BackoffBase), micros(l.cfg.BackoffMax)).Int64Slice()
	if err != nil {
		return Backoff{}, fmt.Errorf("throttle backoff for %s: %w", domain, err)
	}
	if len(v) != 4 {
		return Backoff{}, fmt.Errorf("throttle backoff for %s: script answered %v", domain, v)
	}
	return Backoff{Started: v[0] == 1, Extended: v[1] == 1, For: time.Duration(v[2]) * time.Microsecond, Level: int(v[3])}, nil
}

// Recover ends domain's backoff episode after an email was accepted, once
// the backoff is over. It reports whether this call ended the episode.
func (l *Limiter) Recover(ctx context.Context, domain string) (bool, error) {
	v, err := l.recover.Run(ctx, l.rdb, []string{l.backoffKey(domain)}, l.now()).Int64()
	if err != nil {
		return false, fmt.Errorf("throttle recover %s: %w", domain, err)
	}
	return v == 1, nil
}

// TooLong is the error of Wait when the email would wait more than
// MaxWait: nothing is booked, and the email should try again after Wait.
type TooLong struct {
	Wait time.Duration
}

func (e *TooLong) Error() string {
	return fmt.Sprintf("send slot more than the longest wait away (%s)", e.Wait.Round(time.Millisecond))
}

// Ticket is what Wait reports of a slot it waited for.
type Ticket struct {
	// Waited is the time spent waiting.
	Waited time.Duration
	// Episode: see Slot.
	Episode bool
	// Asked says Redis was asked. It is not for a domain without limits
	// known to have no backoff.
	Asked bool
}

// Wait books a slot for one email to domain and waits for it, honouring
// ctx. A backoff begun during the wait is waited out too. It returns a
// *TooLong error when the slot is more than MaxWait away, and ctx's error
// when ctx ends first; the email must not be sent then.
func (l *Limiter) Wait(ctx context.Context, domain string, lim Limits) (Ticket, error) {
	var t Ticket
	unlimited := lim == Limits{}
	if unlimited && l.isClear(domain) {
		return t, nil
	}
	for {
		gen := l.generation()
		s, err := l.Reserve(ctx, domain, lim)
		if err != nil {
			return t, err
		}
		t.Asked = true
		if unlimited && s.Reserved && s.Wait <= 0 && !s.Episode && !t.Episode {
			l.markClear(domain, gen)
		}
		t.Episode = t.Episode || s.Episode
		if !s.Reserved {
			return t, &TooLong{Wait: s.Wait}
		}
		if s.Wait <= 0 {
			return t, nil
		}
		if err := sleep(ctx, s.Wait); err != nil {
			return t, err
		}
		t.Waited += s.Wait
		// A 421 met by another email while this one waited must hold it
		// back too; the slot booked is given up (it only lowers the rate).
		left, err := l.BackoffLeft(ctx, domain)
		if err != nil {
			return t, err
		}
		if left <= 0 {
			return t, nil
		}
		t.Episode = true
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}
