package window_test

import (
	"testing"
	"time"

	"nurture/internal/window"
)

// The expected instants are worked out by hand from the zones' rules in
// 2026 (and checked against nothing but this code):
//   - Europe/Berlin: 29 Mar 02:00 CET → 03:00 CEST; 25 Oct 03:00 CEST → 02:00 CET.
//   - America/New_York: 8 Mar 02:00 EST → 03:00 EDT; 1 Nov 02:00 EDT → 01:00 EST.
//   - Australia/Sydney: 5 Apr 03:00 AEDT → 02:00 AEST; 4 Oct 02:00 AEST → 03:00 AEDT.
func TestNext(t *testing.T) {
	mon, fri, sat := time.Monday, time.Friday, time.Saturday
	for _, tt := range []struct {
		name       string
		zone       string
		start, end string
		days       []time.Weekday
		at, want   string
	}{
		{"inside: unchanged", "UTC", "09:00", "18:00", nil, "2026-11-24T10:00:00Z", "2026-11-24T10:00:00Z"},
		{"end is exclusive", "UTC", "09:00", "18:00", nil, "2026-11-24T18:00:00Z", "2026-11-25T09:00:00Z"},
		{"before start: today", "UTC", "09:00", "18:00", nil, "2026-11-24T08:59:59Z", "2026-11-24T09:00:00Z"},
		{"Berlin evening: next morning, already summer time", "Europe/Berlin", "09:00", "18:00", nil, "2026-03-28T20:00:00Z", "2026-03-29T07:00:00Z"},
		{"Berlin start in the spring gap: end of the gap", "Europe/Berlin", "02:30", "05:00", nil, "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z"},
		{"Berlin window inside the gap: the next day", "Europe/Berlin", "02:10", "02:50", nil, "2026-03-28T23:00:00Z", "2026-03-30T00:10:00Z"},
		{"Berlin repeated hour: first occurrence", "Europe/Berlin", "02:00", "02:45", nil, "2026-10-24T23:30:00Z", "2026-10-25T00:00:00Z"},
		{"Berlin repeated hour: after the first pass, the second", "Europe/Berlin", "02:00", "02:45", nil, "2026-10-25T00:50:00Z", "2026-10-25T01:00:00Z"},
		{"Berlin repeated hour: inside the second pass", "Europe/Berlin", "02:00", "02:45", nil, "2026-10-25T01:20:00Z", "2026-10-25T01:20:00Z"},
		{"New York Friday evening: Monday, summer time", "America/New_York", "09:00", "17:00", []time.Weekday{mon, time.Tuesday, time.Wednesday, time.Thursday, fri}, "2026-03-06T23:00:00Z", "2026-03-09T13:00:00Z"},
		{"New York start in the spring gap", "America/New_York", "02:30", "04:00", nil, "2026-03-08T05:00:00Z", "2026-03-08T07:00:00Z"},
		{"New York repeated hour: first occurrence", "America/New_York", "01:15", "01:45", nil, "2026-11-01T04:00:00Z", "2026-11-01T05:15:00Z"},
		{"New York repeated hour: second occurrence", "America/New_York", "01:15", "01:45", nil, "2026-11-01T05:50:00Z", "2026-11-01T06:15:00Z"},
		{"Sydney start in the October gap", "Australia/Sydney", "02:30", "06:00", nil, "2026-10-03T13:00:00Z", "2026-10-03T16:00:00Z"},
		{"Sydney repeated hour in April: first occurrence", "Australia/Sydney", "02:00", "02:30", nil, "2026-04-04T14:00:00Z", "2026-04-04T15:00:00Z"},
		{"Sydney repeated hour in April: second occurrence", "Australia/Sydney", "02:00", "02:30", nil, "2026-04-04T15:45:00Z", "2026-04-04T16:00:00Z"},
		{"Sydney Saturdays only", "Australia/Sydney", "09:00", "18:00", []time.Weekday{sat}, "2026-11-30T00:00:00Z", "2026-12-04T22:00:00Z"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			loc, err := time.LoadLocation(tt.zone)
			if err != nil {
				t.Fatal(err)
			}
			start, err := window.ParseClock(tt.start)
			if err != nil {
				t.Fatal(err)
			}
			end, err := window.ParseClock(tt.end)
			if err != nil {
				t.Fatal(err)
			}
			w := window.Window{Start: start, End: end, Days: tt.days}
			at, _ := time.Parse(time.RFC3339, tt.at)
			got := w.Next(at, loc).UTC().Format(time.RFC3339)
			if got != tt.want {
				t.Errorf("Next(%s) in %s = %s, want %s", tt.at, tt.zone, got, tt.want)
			}
		})
	}
}

func TestParseClock(t *testing.T) {
	for in, want := range map[string]string{"09:00": "09:00", "00:00": "00:00", "24:00": "24:00", "23:59": "23:59"} {
		c, err := window.ParseClock(in)
		if err != nil || c.String() != want {
			t.Errorf("ParseClock(%q) = %v, %v", in, c, err)
		}
	}
	for _, in := range []string{"9:00", "24:01", "12:60", "noon", "12", "-1:00", "12:5"} {
		if _, err := window.ParseClock(in); err == nil || err.Error() != `"`+in+`" is not a time of day such as 09:00` {
			t.Errorf("ParseClock(%q): %v", in, err)
		}
	}
	if err := (window.Window{Start: 600, End: 600}).Validate(); err == nil || err.Error() != "start 10:00 is not before end 10:00" {
		t.Errorf("Validate: %v", err)
	}
}
