package bench

import (
	"testing"
	"time"
)

// TestFeed: every event of part g's default run lies within its span,
// each later than the one before.
func TestFeed(t *testing.T) {
	start := time.Date(2026, 11, 29, 10, 0, 0, 0, time.UTC)
	const n = 200_000
	at := feed(start, 22*time.Hour, n)
	prev := at(0)
	if !prev.Equal(start) {
		t.Fatalf("first event at %s, want %s", prev, start)
	}
	for i := 1; i < n; i++ {
		e := at(i)
		if !e.After(prev) || !e.Before(start.Add(22*time.Hour)) {
			t.Fatalf("event %d at %s, after %s: outside the span or out of order", i, e, prev)
		}
		prev = e
	}
}
