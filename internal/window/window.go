// Package window computes when a delivery may be sent under a send window:
// local wall-clock hours on allowed days of the week, in the customer's
// time zone or a fixed one, following each zone's daylight-saving rules.
package window

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Clock is a wall-clock time of day, in minutes since midnight.
type Clock int

// ParseClock parses "HH:MM" (00:00 to 24:00).
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(s, ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || len(h) != 2 || len(m) != 2 || err1 != nil || err2 != nil || hh < 0 || mm < 0 || mm > 59 || hh > 24 || (hh == 24 && mm != 0) {
		return 0, fmt.Errorf("%q is not a time of day such as 09:00", s)
	}
	return Clock(hh*60 + mm), nil
}

// String formats c as HH:MM.
func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

// Window is the part of each allowed day in which emails may be sent:
// local times in [Start, End).
type Window struct {
	Start, End Clock
	// Days are the allowed weekdays; none means every day.
	Days []time.Weekday
}

// Validate reports a window that can never open.
func (w Window) Validate() error {
	if w.Start >= w.End {
		return fmt.Errorf("start %s is not before end %s", w.Start, w.End)
	}
	return nil
}

func (w Window) allowed(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, a := range w.Days {
		if a == d {
			return true
		}
	}
	return false
}

// Contains reports whether t's wall-clock time in loc is inside w.
func (w Window) Contains(t time.Time, loc *time.Location) bool {
	l := t.In(loc)
	c := Clock(l.Hour()*60 + l.Minute())
	return w.allowed(l.Weekday()) && c >= w.Start && c < w.End
}

// Next returns t when it lies inside w in loc, and otherwise the earliest
// later instant whose wall-clock time in loc is in [Start, End) on an
// allowed day. A start time that does not exist that day (the gap of a
// spring-forward change) becomes the first instant after the gap; a start
// time that occurs twice (the repeated hour of an autumn change) is its
// first occurrence.
func (w Window) Next(t time.Time, loc *time.Location) time.Time {
	if w.Contains(t, loc) {
		return t
	}
	l := t.In(loc)
	// A week and a day covers every allowed day, and a day whose window
	// the clock change swallowed.
	for d := 0; d <= 8; d++ {
		day := time.Date(l.Year(), l.Month(), l.Day()+d, 12, 0, 0, 0, loc)
		if !w.allowed(day.Weekday()) {
			continue
		}
		for _, at := range instants(day.Year(), day.Month(), day.Day(), w.Start, loc) {
			if at.Before(t) {
				continue
			}
			if w.Contains(at, loc) {
				return at
			}
		}
	}
	return t // unreachable for a valid window
}

// instants returns, earliest first, the instants at which the wall clock in
// loc reads c on the given date: one normally, two in a repeated hour, and
// in a gap the single instant at which the gap ends.
func instants(year int, month time.Month, day int, c Clock, loc *time.Location) []time.Time {
	wall := time.Date(year, month, day, int(c)/60, int(c)%60, 0, 0, time.UTC)
	// The offsets in force 14 hours either side: no zone changes its offset
	// twice in 28 hours.
	var out []time.Time
	for _, probe := range []time.Time{wall.Add(-14 * time.Hour), wall.Add(14 * time.Hour)} {
		_, off := probe.In(loc).Zone()
		at := wall.Add(-time.Duration(off) * time.Second)
		l := at.In(loc)
		if l.Hour()*60+l.Minute() == int(c) && l.Day() == day && (len(out) == 0 || !out[0].Equal(at)) {
			out = append(out, at)
		}
	}
	if len(out) == 2 && out[1].Before(out[0]) {
		out[0], out[1] = out[1], out[0]
	}
	if len(out) > 0 {
		return out
	}
	// A gap: the wall clock jumps over c. Read with the later offset, c
	// names an instant before the change; the change is where the zone in
	// force at that instant ends.
	_, off := wall.Add(14 * time.Hour).In(loc).Zone()
	_, end := wall.Add(-time.Duration(off) * time.Second).In(loc).ZoneBounds()
	if end.IsZero() {
		return nil
	}
	return []time.Time{end}
}

// Zones loads time zones by IANA name once each; it is safe for concurrent
// use. The zero value is ready.
type Zones struct {
	m sync.Map // name → *time.Location
}

// Load returns the zone named name: UTC for "" or a name it cannot load
// (imports refuse unknown zones, so that is a customer stored before the
// check, or a zone database older than the name).
func (z *Zones) Load(name string) *time.Location {
	if name == "" || name == "UTC" {
		return time.UTC
	}
	if l, ok := z.m.Load(name); ok {
		return l.(*time.Location)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		loc = time.UTC
	}
	z.m.Store(name, loc)
	return loc
}
