// Package freqcap decides the global frequency cap: at most Max emails to
// one customer within Per. The same decision serves a real tick (inside the
// store's transaction, under its lock) and a dry run (in memory), so that
// `nurture plan` shows exactly what a tick records.
package freqcap

import (
	"slices"
	"time"
)

// Reason is the skip reason of a capped delivery.
const Reason = "frequency cap"

// Cap is at most Max sends to one customer within any interval of length
// Per. The zero Cap caps nothing.
type Cap struct {
	Max int
	Per time.Duration
}

// On reports whether the cap limits anything.
func (c Cap) On() bool { return c.Max > 0 && c.Per > 0 }

// Allows reports whether one more send at `at` is allowed next to sends,
// the customer's counted send times: it is refused when Max of them lie
// less than Per away from at, before or after. Two sends exactly Per apart
// do not count against each other.
func (c Cap) Allows(sends []time.Time, at time.Time) bool {
	if !c.On() {
		return true
	}
	n := 0
	for _, s := range sends {
		if d := s.Sub(at); d < c.Per && d > -c.Per {
			n++
		}
	}
	return n < c.Max
}

// Ledger is the counted send times of some customers.
type Ledger map[string][]time.Time

// Decide applies the cap to one send of customer at `at`: when allowed, it
// records the send in the ledger and returns true.
func (l Ledger) Decide(c Cap, customer string, at time.Time) bool {
	if !c.Allows(l[customer], at) {
		return false
	}
	l[customer] = append(l[customer], at)
	return true
}

// Range is the interval of send times that can matter to sends at times:
// those less than Per before the first or after the last. It returns zero
// times for no sends.
func (c Cap) Range(times []time.Time) (from, to time.Time) {
	if len(times) == 0 {
		return time.Time{}, time.Time{}
	}
	lo, hi := slices.MinFunc(times, time.Time.Compare), slices.MaxFunc(times, time.Time.Compare)
	return lo.Add(-c.Per), hi.Add(c.Per)
}
