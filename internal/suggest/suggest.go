// Package suggest finds the name someone probably meant when they wrote
// one that does not exist, for "did you mean" hints in error messages.
package suggest

import "strings"

// Closest returns the candidate name most likely meant, or "" when none is
// close. A candidate that differs only in case wins; otherwise the one at
// the smallest Distance, at most 2 and at most a third of the length of
// name, but 1 for any name (so that "foo" does not suggest "not"). Ties go
// to the earlier candidate.
func Closest(name string, candidates []string) string {
	for _, c := range candidates {
		if c != name && strings.EqualFold(c, name) {
			return c
		}
	}
	best, bestDist := "", 3
	limit := max(1, len([]rune(name))/3)
	for _, c := range candidates {
		if c == name {
			continue
		}
		if d := Distance(name, c); d < bestDist && d <= limit {
			best, bestDist = c, d
		}
	}
	return best
}

// Hint is "; did you mean X?" for the Closest candidate, with X quoted
// by quote, or "" when none is close.
func Hint(name string, candidates []string, quote func(string) string) string {
	c := Closest(name, candidates)
	if c == "" {
		return ""
	}
	return "; did you mean " + quote(c) + "?"
}

// Distance is the optimal string alignment distance between a and b: the
// fewest insertions, deletions, substitutions of one rune and swaps of two
// adjacent runes that turn a into b.
func Distance(a, b string) int {
	s, t := []rune(a), []rune(b)
	// d[i][j] is the distance between s[:i] and t[:j]; three rows suffice.
	prev2 := make([]int, len(t)+1)
	prev := make([]int, len(t)+1)
	cur := make([]int, len(t)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(s); i++ {
		cur[0] = i
		for j := 1; j <= len(t); j++ {
			cost := 1
			if s[i-1] == t[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && s[i-1] == t[j-2] && s[i-2] == t[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(t)]
}
