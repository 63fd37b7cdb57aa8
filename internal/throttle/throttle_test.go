package throttle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"nurture/internal/testenv"
	"nurture/internal/throttle"
)

// clock is a settable time source.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newLimiter(t testing.TB, cfg throttle.Config) (*throttle.Limiter, *redis.Client) {
	t.Helper()
	rdb := redis.NewClient(testenv.Redis(t))
	t.Cleanup(func() { rdb.Close() })
	return throttle.New(rdb, cfg), rdb
}

func fakeClock() *clock {
	return &clock{t: time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)}
}

// reserveWaits books n slots and returns their waits.
func reserveWaits(t *testing.T, l *throttle.Limiter, domain string, lim throttle.Limits, n int) []time.Duration {
	t.Helper()
	var out []time.Duration
	for range n {
		s, err := l.Reserve(context.Background(), domain, lim)
		if err != nil {
			t.Fatal(err)
		}
		if !s.Reserved {
			t.Fatalf("slot not booked: %+v", s)
		}
		out = append(out, s.Wait)
	}
	return out
}

func equalDurations(t *testing.T, what string, got, want []time.Duration) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: %v, want %v", what, got, want)
		}
	}
}

const ms = time.Millisecond

func TestReserveSpacesSlots(t *testing.T) {
	c := fakeClock()
	l, _ := newLimiter(t, throttle.Config{Now: c.now, MaxWait: time.Minute})
	gmail := throttle.Limits{Domain: 100 * ms}
	equalDurations(t, "five at once", reserveWaits(t, l, "gmail.com", gmail, 5), []time.Duration{0, 100 * ms, 200 * ms, 300 * ms, 400 * ms})
	c.add(250 * ms)
	equalDurations(t, "250ms later", reserveWaits(t, l, "gmail.com", gmail, 1), []time.Duration{250 * ms})
	// Another domain is not held back by gmail.com's rate.
	equalDurations(t, "other domain", reserveWaits(t, l, "example.org", gmail, 2), []time.Duration{0, 100 * ms})
	// Once the booked slots are past, the next email goes at once.
	c.add(time.Second)
	equalDurations(t, "after a pause", reserveWaits(t, l, "gmail.com", gmail, 2), []time.Duration{0, 100 * ms})
}

func TestReserveRoundsIntervalsUp(t *testing.T) {
	c := fakeClock()
	l, _ := newLimiter(t, throttle.Config{Now: c.now, MaxWait: time.Minute})
	// 3/s: never faster than written, so 333334µs apart, not 333333µs.
	third := time.Second / 3
	equalDurations(t, "3/s", reserveWaits(t, l, "gmail.com", throttle.Limits{Domain: third}, 4),
		[]time.Duration{0, 333334 * time.Microsecond, 666668 * time.Microsecond, 1000002 * time.Microsecond})
}

func TestReserveGlobalAndDomain(t *testing.T) {
	c := fakeClock()
	l, _ := newLimiter(t, throttle.Config{Now: c.now, MaxWait: time.Minute})
	both := throttle.Limits{Global: 30 * ms, Domain: 100 * ms}
	global := throttle.Limits{Global: 30 * ms}
	// gmail.com at 0 and 100ms; other domains fill the global slots
	// between, every 30ms after the last booked one.
	equalDurations(t, "gmail", reserveWaits(t, l, "gmail.com", both, 1), []time.Duration{0})
	equalDurations(t, "others", reserveWaits(t, l, "example.org", global, 2), []time.Duration{30 * ms, 60 * ms})
	equalDurations(t, "gmail again", reserveWaits(t, l, "gmail.com", both, 1), []time.Duration{100 * ms})
	equalDurations(t, "others again", reserveWaits(t, l, "example.org", global, 1), []time.Duration{130 * ms})
	// A domain's own rate alone, with no global one, leaves the global key alone.
	equalDurations(t, "no limit", reserveWaits(t, l, "example.net", throttle.Limits{}, 2), []time.Duration{0, 0})
}

func TestReserveRefusesLongWaits(t *testing.T) {
	c := fakeClock()
	l, _ := newLimiter(t, throttle.Config{Now: c.now, MaxWait: 250 * ms})
	lim := throttle.Limits{Domain: 100 * ms}
	equalDurations(t, "booked", reserveWaits(t, l, "gmail.com", lim, 3), []time.Duration{0, 100 * ms, 200 * ms})
	for range 2 {
		s, err := l.Reserve(context.Background(), "gmail.com", lim)
		if err != nil {
			t.Fatal(err)
		}
		// Nothing is booked: asking again gets the same answer.
		if s.Reserved || s.Wait != 300*ms {
			t.Fatalf("slot %+v, want refused with a wait of 300ms", s)
		}
	}
	c.add(100 * ms)
	equalDurations(t, "100ms later", reserveWaits(t, l, "gmail.com", lim, 1), []time.Duration{200 * ms})
}

func TestBackoffEpisode(t *testing.T) {
	c := fakeClock()
	l, _ := newLimiter(t, throttle.Config{Now: c.now, MaxWait: time.Hour, BackoffBase: time.Second, BackoffMax: 5 * time.Second})
	ctx := context.Background()
	lim := throttle.Limits{Domain: 100 * ms}
	slowDown := func(want throttle.Backoff) {
		t.Helper()
		b, err := l.SlowDown(ctx, "gmail.com")
		if err != nil {
			t.Fatal(err)
		}
		if b != want {
			t.Fatalf("SlowDown = %+v, want %+v", b, want)
		}
	}
	reserve := func(want throttle.Slot) {
		t.Helper()
		s, err := l.Reserve(ctx, "gmail.com", lim)
		if err != nil {
			t.Fatal(err)
		}
		if s != want {
			t.Fatalf("Reserve = %+v, want %+v", s, want)
		}
	}
	recover := func(want bool) {
		t.Helper()
		ok, err := l.Recover(ctx, "gmail.com")
		if err != nil {
			t.Fatal(err)
		}
		if ok != want {
			t.Fatalf("Recover = %v, want %v", ok, want)
		}
	}

	reserve(throttle.Slot{Reserved: true})
	slowDown(throttle.Backoff{Started: true, Extended: true, For: time.Second, Level: 1})
	// Every email to the domain waits for the backoff's end; slots are
	// spaced after it.
	reserve(throttle.Slot{Reserved: true, Wait: time.Second, Episode: true})
	reserve(throttle.Slot{Reserved: true, Wait: time.Second + 100*ms, Episode: true})
	// Other domains go on.
	if s, err := l.Reserve(ctx, "example.org", lim); err != nil || s != (throttle.Slot{Reserved: true}) {
		t.Fatalf("other domain: %+v, %v", s, err)
	}
	// A second reply during the backoff is the same trouble.
	c.add(500 * ms)
	slowDown(throttle.Backoff{For: time.Second, Level: 1})
	if left, err := l.BackoffLeft(ctx, "gmail.com"); err != nil || left != 500*ms {
		t.Fatalf("BackoffLeft = %v, %v; want 500ms", left, err)
	}
	// A success during the backoff (an email under way before it) does
	// not end the episode.
	recover(false)
	// A reply after the backoff doubles it, up to the cap.
	c.add(500 * ms)
	slowDown(throttle.Backoff{Extended: true, For: 2 * time.Second, Level: 2})
	c.add(2 * time.Second)
	slowDown(throttle.Backoff{Extended: true, For: 4 * time.Second, Level: 3})
	c.add(4 * time.Second)
	slowDown(throttle.Backoff{Extended: true, For: 5 * time.Second, Level: 4})
	c.add(5 * time.Second)
	if left, err := l.BackoffLeft(ctx, "gmail.com"); err != nil || left != 0 {
		t.Fatalf("BackoffLeft after the backoff = %v, %v; want 0", left, err)
	}
	// The episode lasts until a success; the first ends it, once.
	reserve(throttle.Slot{Reserved: true, Episode: true})
	recover(true)
	recover(false)
	reserve(throttle.Slot{Reserved: true, Wait: 100 * ms})
	// The next reply starts a new episode at the first backoff.
	slowDown(throttle.Backoff{Started: true, Extended: true, For: time.Second, Level: 1})
}

func TestWaitSleepsAndHonoursBackoff(t *testing.T) {
	// Wait sleeps for real, so it runs on Redis's clock.
	l, _ := newLimiter(t, throttle.Config{BackoffBase: 300 * ms, MaxWait: time.Minute})
	ctx := context.Background()
	lim := throttle.Limits{Domain: 50 * ms}
	if tk, err := l.Wait(ctx, "gmail.com", lim); err != nil || tk.Waited != 0 || tk.Episode {
		t.Fatalf("first Wait = %+v, %v; want no wait", tk, err)
	}
	done := make(chan throttle.Ticket)
	errs := make(chan error, 1)
	go func() {
		tk, err := l.Wait(ctx, "gmail.com", lim)
		errs <- err
		done <- tk
	}()
	// Whether the reply comes before the second email booked its slot or
	// while it waits, the email waits the backoff out.
	b, err := l.SlowDown(ctx, "gmail.com")
	if err != nil || !b.Started {
		t.Fatalf("SlowDown = %+v, %v", b, err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	tk := <-done
	if !tk.Episode {
		t.Errorf("ticket %+v, want Episode", tk)
	}
	left, err := l.BackoffLeft(ctx, "gmail.com")
	if err != nil || left != 0 {
		t.Errorf("BackoffLeft when Wait returned = %v, %v; want 0", left, err)
	}
}

func TestWaitTooLongAndCancel(t *testing.T) {
	l, _ := newLimiter(t, throttle.Config{MaxWait: 150 * ms})
	ctx := context.Background()
	lim := throttle.Limits{Global: 100 * ms}
	for range 2 {
		if _, err := l.Wait(ctx, "a.example", lim); err != nil {
			t.Fatal(err)
		}
	}
	// Booked: the slot 100ms after the last, at most 100ms away now; the
	// one after is 200ms away, more than MaxWait.
	if s, err := l.Reserve(ctx, "b.example", lim); err != nil || !s.Reserved {
		t.Fatalf("Reserve = %+v, %v", s, err)
	}
	_, err := l.Wait(ctx, "c.example", lim)
	var tl *throttle.TooLong
	if !errors.As(err, &tl) || tl.Wait <= 100*ms || tl.Wait > 200*ms {
		t.Fatalf("Wait = %v, want *TooLong with a wait in (100ms, 200ms]", err)
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	l2, _ := newLimiter(t, throttle.Config{MaxWait: time.Hour})
	if _, err := l2.SlowDown(ctx, "d.example"); err != nil {
		t.Fatal(err)
	}
	if _, err := l2.Wait(cctx, "d.example", lim); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait with a cancelled context = %v, want context.Canceled", err)
	}
}

func TestRedisDown(t *testing.T) {
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * ms})
	defer rdb.Close()
	l := throttle.New(rdb, throttle.Config{})
	_, err := l.Wait(context.Background(), "gmail.com", throttle.Limits{Domain: ms})
	want := "throttle reserve for gmail.com: dial tcp 127.0.0.1:1: connect: connection refused"
	if err == nil || err.Error() != want {
		t.Fatalf("Wait with Redis down = %v, want %q", err, want)
	}
}

// BenchmarkReserve measures one check against the real Redis: one Lua
// script call per email.
func BenchmarkReserve(b *testing.B) {
	l, rdb := newLimiter(b, throttle.Config{MaxWait: time.Hour})
	ctx := context.Background()
	// A 1µs interval: the check does all its work, and no email would wait.
	lim := throttle.Limits{Global: time.Microsecond, Domain: time.Microsecond}
	b.Run("serial", func(b *testing.B) {
		for b.Loop() {
			if _, err := l.Reserve(ctx, "gmail.com", lim); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("ping", func(b *testing.B) {
		// The bare round trip, to compare the script with.
		for b.Loop() {
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("no-limits", func(b *testing.B) {
		// Without rate_limits a send still asks for its domain's backoff.
		for b.Loop() {
			if _, err := l.Reserve(ctx, "gmail.com", throttle.Limits{}); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
	b.Run("parallel", func(b *testing.B) {
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := l.Reserve(ctx, "gmail.com", lim); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "checks/s")
	})
}

func TestClearDomainsSkipRedis(t *testing.T) {
	ctx := context.Background()
	// a remembers a clear domain for an hour, b is another process, c asks
	// Redis every time and d remembers for a nanosecond.
	a, rdb := newLimiter(t, throttle.Config{Clear: time.Hour, MaxWait: 100 * ms, BackoffBase: time.Minute})
	b := throttle.New(rdb, throttle.Config{BackoffBase: time.Minute})
	c := throttle.New(rdb, throttle.Config{Clear: -1, MaxWait: 100 * ms})
	d := throttle.New(rdb, throttle.Config{Clear: time.Nanosecond, MaxWait: 100 * ms})
	none := throttle.Limits{}
	for _, l := range []*throttle.Limiter{a, c, d} {
		if tk, err := l.Wait(ctx, "x.com", none); err != nil || tk != (throttle.Ticket{Asked: true}) {
			t.Fatalf("Wait before any backoff = %+v, %v; want Redis asked, no wait", tk, err)
		}
	}
	if _, err := b.SlowDown(ctx, "x.com"); err != nil {
		t.Fatal(err)
	}
	// a found x.com clear and does not ask again within the hour.
	if tk, err := a.Wait(ctx, "x.com", none); err != nil || tk != (throttle.Ticket{}) {
		t.Errorf("Wait of a limiter that found the domain clear = %+v, %v; want no wait, Redis not asked", tk, err)
	}
	// The others ask, and meet the minute of backoff.
	var tooLong *throttle.TooLong
	for name, l := range map[string]*throttle.Limiter{"asking every time": c, "remembering a nanosecond": d} {
		if _, err := l.Wait(ctx, "x.com", none); !errors.As(err, &tooLong) {
			t.Errorf("Wait of the limiter %s = %v, want TooLong", name, err)
		}
	}
	// A limit still asks Redis every time.
	if _, err := a.Wait(ctx, "x.com", throttle.Limits{Domain: ms}); !errors.As(err, &tooLong) {
		t.Errorf("Wait with a rate limit = %v, want TooLong", err)
	}
	// A 421 met by a itself makes it ask again at once.
	if _, err := a.SlowDown(ctx, "x.com"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Wait(ctx, "x.com", none); !errors.As(err, &tooLong) {
		t.Errorf("Wait after the limiter's own SlowDown = %v, want TooLong", err)
	}
}
