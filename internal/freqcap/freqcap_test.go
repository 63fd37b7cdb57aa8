package freqcap

import (
	"testing"
	"time"
)

func TestAllows(t *testing.T) {
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	week := 168 * time.Hour
	c := Cap{Max: 2, Per: week}
	tests := []struct {
		name  string
		sends []time.Time
		at    time.Time
		want  bool
	}{
		{"none yet", nil, base, true},
		{"one within", []time.Time{base.Add(-time.Hour)}, base, true},
		{"two within, before and after", []time.Time{base.Add(-time.Hour), base.Add(6 * 24 * time.Hour)}, base, false},
		{"exactly per before does not count", []time.Time{base.Add(-week), base.Add(-time.Hour)}, base, true},
		{"exactly per after does not count", []time.Time{base.Add(week), base.Add(time.Hour)}, base, true},
		{"just inside per counts", []time.Time{base.Add(-week + time.Second), base.Add(time.Hour)}, base, false},
		{"same instant counts", []time.Time{base, base}, base, false},
	}
	for _, tt := range tests {
		if got := c.Allows(tt.sends, tt.at); got != tt.want {
			t.Errorf("%s: Allows = %v, want %v", tt.name, got, tt.want)
		}
	}
	if !(Cap{}).Allows([]time.Time{base, base, base}, base) {
		t.Error("the zero cap refused a send")
	}
}

func TestLedgerDecide(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	c := Cap{Max: 1, Per: 24 * time.Hour}
	l := Ledger{}
	if !l.Decide(c, "c1", at) {
		t.Fatal("first send refused")
	}
	if l.Decide(c, "c1", at.Add(23*time.Hour)) {
		t.Fatal("second send within a day allowed")
	}
	if !l.Decide(c, "c1", at.Add(24*time.Hour)) {
		t.Fatal("send exactly a day later refused")
	}
	if !l.Decide(c, "c2", at) {
		t.Fatal("another customer's send refused")
	}
	if got := len(l["c1"]); got != 2 {
		t.Fatalf("ledger holds %d sends of c1, want 2", got)
	}
}
