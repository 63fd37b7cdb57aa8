package suggest_test

import (
	"strconv"
	"testing"

	"nurture/internal/suggest"
)

func TestDistance(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"", "", 0},
		{"", "abc", 3},
		{"abc", "", 3},
		{"plan", "plan", 0},
		{"plna", "plan", 1},    // adjacent swap
		{"lapsd", "lapsed", 1}, // insertion
		{"winbak", "winback", 1},
		{"colour", "color", 1}, // deletion
		{"stage", "stags", 1},  // substitution
		{"ca", "abc", 3},       // optimal string alignment: no edit of a swapped pair
		{"kitten", "sitting", 3},
		{"Firstname", "FirstName", 1},
		{"über", "uber", 1}, // runes, not bytes
	} {
		if got := suggest.Distance(tt.a, tt.b); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
		if got := suggest.Distance(tt.b, tt.a); got != tt.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tt.b, tt.a, got, tt.want)
		}
	}
}

func TestClosest(t *testing.T) {
	stages := []string{"new", "prospect", "lapsed", "at_risk", "loyal", "active"}
	for _, tt := range []struct {
		name       string
		candidates []string
		want       string
	}{
		{"lapsd", stages, "lapsed"},
		{"AT_RISK", stages, "at_risk"}, // case only, however far
		{"atrisk", stages, "at_risk"},
		{"loyl", stages, "loyal"},
		{"vip", stages, ""},                          // nothing close
		{"x", []string{"id"}, ""},                    // as far as it is long
		{"nw", stages, "new"},                        // distance 1 < 2 runes
		{"lapsed", stages, ""},                       // itself is no suggestion
		{"loya", []string{"loyal", "loyb"}, "loyal"}, // tie: the earlier
		{"Firstname", []string{"Email", "FirstName"}, "FirstName"},
		{"anything", nil, ""},
	} {
		if got := suggest.Closest(tt.name, tt.candidates); got != tt.want {
			t.Errorf("Closest(%q, %q) = %q, want %q", tt.name, tt.candidates, got, tt.want)
		}
	}
}

func TestHint(t *testing.T) {
	if got, want := suggest.Hint("lapsd", []string{"lapsed"}, strconv.Quote), `; did you mean "lapsed"?`; got != want {
		t.Errorf("Hint = %q, want %q", got, want)
	}
	if got := suggest.Hint("vip", []string{"lapsed"}, strconv.Quote); got != "" {
		t.Errorf("Hint = %q, want none", got)
	}
}
