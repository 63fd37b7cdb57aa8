package ratelog_test

import (
	"bytes"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"nurture/internal/ratelog"
)

func TestLimiter(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	log := timeless(&buf)
	l := ratelog.New(log, 30*time.Second, func() time.Time { return now })
	down := errors.New("connection refused")
	step := func(d time.Duration) { now = now.Add(d) }

	l.Trouble("postgres", "PostgreSQL unavailable", down) // logged: first
	step(10 * time.Second)
	l.Trouble("postgres", "PostgreSQL unavailable", down) // within 30 s: counted
	l.Trouble("redis", "Redis unavailable", down)         // another kind: logged
	step(25 * time.Second)
	l.Trouble("postgres", "PostgreSQL unavailable", down) // 35 s after the first line: logged with 2
	step(time.Second)
	l.Recovered("postgres", "PostgreSQL available again")
	l.Recovered("postgres", "PostgreSQL available again") // nothing to end
	step(time.Second)
	l.Trouble("postgres", "PostgreSQL unavailable", down) // flapping: 2 s after the last line, counted only
	step(5 * time.Second)
	l.Recovered("postgres", "PostgreSQL available again")

	want := `level=WARN msg="PostgreSQL unavailable" kind=postgres occurrences=1 err="connection refused"
level=WARN msg="Redis unavailable" kind=redis occurrences=1 err="connection refused"
level=WARN msg="PostgreSQL unavailable" kind=postgres occurrences=2 err="connection refused"
level=INFO msg="PostgreSQL available again" kind=postgres occurrences=3 lasted=36s
level=INFO msg="PostgreSQL available again" kind=postgres occurrences=1 lasted=5s
`
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
	if strings.Count(buf.String(), "\n") != 5 {
		t.Errorf("want 5 lines")
	}
}

func TestAttemptDropsOlderNews(t *testing.T) {
	var buf bytes.Buffer
	now := time.Date(2026, 11, 24, 9, 0, 0, 0, time.UTC)
	log := timeless(&buf)
	l := ratelog.New(log, time.Nanosecond, func() time.Time { return now })
	down := errors.New("connection refused")

	inFlight, sentBefore := l.Begin("postgres"), l.Begin("postgres")
	l.Begin("postgres").Failed("PostgreSQL unavailable", down) // the server stops: trouble begins
	inFlight.Succeeded("PostgreSQL available again")           // sent before it stopped: older news
	now = now.Add(3 * time.Second)
	l.Begin("postgres").Failed("PostgreSQL unavailable", down) // still down: counted
	retrying := l.Begin("postgres")
	l.Begin("postgres").Succeeded("PostgreSQL available again") // back
	retrying.Failed("PostgreSQL unavailable", down)             // sent while down: older news
	sentBefore.Failed("PostgreSQL unavailable", down)           // older still
	l.Begin("redis").Succeeded("Redis available again")         // no trouble to end
	now = now.Add(time.Second)
	l.Begin("postgres").Failed("PostgreSQL unavailable", down) // down again: news
	now = now.Add(2 * time.Second)
	l.Begin("postgres").Succeeded("PostgreSQL available again")

	want := `level=WARN msg="PostgreSQL unavailable" kind=postgres occurrences=1 err="connection refused"
level=WARN msg="PostgreSQL unavailable" kind=postgres occurrences=1 err="connection refused"
level=INFO msg="PostgreSQL available again" kind=postgres occurrences=2 lasted=3s
level=WARN msg="PostgreSQL unavailable" kind=postgres occurrences=1 err="connection refused"
level=INFO msg="PostgreSQL available again" kind=postgres occurrences=1 lasted=2s
`
	if got := buf.String(); got != want {
		t.Errorf("log:\n%s\nwant:\n%s", got, want)
	}
}

// timeless is a text logger to buf without the time of each line.
func timeless(buf *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}}))
}
