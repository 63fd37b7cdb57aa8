package queue

import (
	"fmt"
	"testing"
	"time"
)

func TestBatches(t *testing.T) {
	at := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	refs := func(n int, campaign, queue string, sendAt time.Time) []Ref {
		var out []Ref
		for i := range n {
			out = append(out, Ref{ID: fmt.Sprintf("%s-%s-%d", campaign, sendAt.Format("15"), i), Queue: queue, Campaign: campaign, SendAt: sendAt})
		}
		return out
	}
	sizes := func(groups [][]Ref) []int {
		var out []int
		for _, g := range groups {
			out = append(out, len(g))
		}
		return out
	}
	for _, tc := range []struct {
		name         string
		refs         []Ref
		most, spread int
		want         string
	}{
		{"a small group: one task each", refs(5, "a", "q", at), 100, 16, "[1 1 1 1 1]"},
		{"spread over 16", refs(40, "a", "q", at), 100, 16, "[3 3 3 3 3 3 3 3 2 2 2 2 2 2 2 2]"},
		{"cut at most", refs(250, "a", "q", at), 100, 1, "[84 83 83]"},
		{"at most 100 each", refs(2000, "a", "q", at), 100, 16, "[100 100 100 100 100 100 100 100 100 100 100 100 100 100 100 100 100 100 100 100]"},
		{"campaigns, queues and send times apart", append(append(append(refs(3, "a", "q", at), refs(2, "b", "q", at)...),
			refs(2, "a", "r", at)...), refs(2, "a", "q", at.Add(time.Hour))...), 100, 1, "[3 2 2 2]"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := batches(tc.refs, tc.most, tc.spread)
			if s := fmt.Sprint(sizes(got)); s != tc.want {
				t.Fatalf("batch sizes %s, want %s", s, tc.want)
			}
			n := 0
			for _, g := range got {
				for _, r := range g {
					if r.Campaign != g[0].Campaign || r.Queue != g[0].Queue || !r.SendAt.Equal(g[0].SendAt) {
						t.Errorf("batch of %s mixes %+v", g[0].ID, r)
					}
					if r != tc.refs[n] && tc.name != "campaigns, queues and send times apart" {
						t.Errorf("order changed at %d", n)
					}
					n++
				}
			}
			if n != len(tc.refs) {
				t.Errorf("%d refs in batches, want %d", n, len(tc.refs))
			}
		})
	}
}
