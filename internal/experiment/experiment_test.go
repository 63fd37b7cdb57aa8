package experiment_test

import (
	"fmt"
	"testing"

	"nurture/internal/experiment"
)

func TestAssignIsDeterministicAndFollowsShares(t *testing.T) {
	p := experiment.Plan{Campaign: "winback", HoldoutBasisPoints: 1000,
		Variants: []experiment.Variant{{Name: "a", Weight: 1}, {Name: "b", Weight: 3}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	const n = 10000
	count := map[string]int{}
	for i := range n {
		id := fmt.Sprintf("c%05d", i)
		g := p.Assign(id)
		if again := p.Assign(id); again != g {
			t.Fatalf("%s: %s then %s", id, g, again)
		}
		count[g]++
	}
	// Expected 1000 held out, then 2250 and 6750; three standard
	// deviations of a binomial are about 90, 125 and 130.
	for g, want := range map[string][2]int{"holdout": {910, 1090}, "a": {2125, 2375}, "b": {6620, 6880}} {
		if c := count[g]; c < want[0] || c > want[1] {
			t.Errorf("%s: %d of %d, want %d..%d (all: %v)", g, c, n, want[0], want[1], count)
		}
	}
	// Another campaign assigns independently.
	q := p
	q.Campaign = "welcome"
	same := 0
	for i := range n {
		id := fmt.Sprintf("c%05d", i)
		if p.Assign(id) == experiment.Holdout && q.Assign(id) == experiment.Holdout {
			same++
		}
	}
	if same < 60 || same > 140 { // 1% of 10000 expected
		t.Errorf("%d customers held out of both campaigns, want about 100", same)
	}
}

func TestAssignWithoutExperiment(t *testing.T) {
	if g := (experiment.Plan{Campaign: "x"}).Assign("c1"); g != "" {
		t.Errorf("got %q, want no group", g)
	}
	all := experiment.Plan{Campaign: "x", HoldoutBasisPoints: 10000}
	if g := all.Assign("c1"); g != experiment.Holdout {
		t.Errorf("100%% holdout gave %q", g)
	}
}

func TestValidate(t *testing.T) {
	for _, tt := range []struct {
		p    experiment.Plan
		want string
	}{
		{experiment.Plan{Variants: []experiment.Variant{{Name: "holdout", Weight: 1}}}, `variant name "holdout" is reserved`},
		{experiment.Plan{Variants: []experiment.Variant{{Name: "a", Weight: 1}, {Name: "a", Weight: 1}}}, `variant "a" is named twice`},
		{experiment.Plan{Variants: []experiment.Variant{{Name: "a"}}}, `variant "a": weight must be at least 1`},
		{experiment.Plan{HoldoutBasisPoints: 10001}, `holdout must be between 0% and 100%`},
	} {
		if err := tt.p.Validate(); err == nil || err.Error() != tt.want {
			t.Errorf("Validate(%+v) = %v, want %s", tt.p, err, tt.want)
		}
	}
}
