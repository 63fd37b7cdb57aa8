package main

import (
	"encoding/json"
	"strings"
	"testing"

	"nurture/internal/testenv"
)

// TestExplain asks why customers of examples/ would or would not get each
// shipped campaign at the tutorial's instant, before and after a tick.
func TestExplain(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATABASE_URL":  testenv.DatabaseURL(t),
		"REDIS_URL":     testenv.RedisURL(t),
		"CAMPAIGNS_DIR": "../../campaigns",
		"TEMPLATES_DIR": "../../templates",
	}
	for _, kind := range []string{"customers", "events"} {
		if _, stderr, code := cli(t, env, "import", kind, "../../examples/"+kind+".jsonl", "--strict"); code != 0 {
			t.Fatalf("import %s: %s", kind, stderr)
		}
	}
	stdout, stderr, code := cli(t, env, "explain", "c18", "--at", tutorialAt)
	want := "customer c18 <rosa.c18@example.com> at 2026-11-24T09:00:00Z\n" +
		"  stage at_risk, inactive 70 days, 2 order(s), 84.00 spent, subscribed true, suppressed false\n" +
		"\n" +
		"CAMPAIGN           PLANNED  WHY\n" +
		"at-risk-nudge      no       inactive_days: inactive for 70 days; the campaign wants 30..59\n" +
		"cart-reminder      no       not due: no entry by event cart_abandoned is due in (2026-11-23T09:00:00Z, 2026-11-24T09:00:00Z]\n" +
		"loyalty-club       no       not due: no entry by entering stage loyal is due in (2026-11-21T09:00:00Z, 2026-11-24T09:00:00Z]\n" +
		"loyalty-reward     no       stage: stage is at_risk; the campaign targets loyal\n" +
		"onboarding         no       disabled: the campaign is disabled\n" +
		"referral-ask       no       stage: stage is at_risk; the campaign targets advocate\n" +
		"review-request     no       not due: no entry by event purchase is due in (2026-11-22T09:00:00Z, 2026-11-24T09:00:00Z]\n" +
		"thank-you          no       stage: stage is at_risk; the campaign targets active, loyal, advocate\n" +
		"welcome-series     no       stage: stage is at_risk; the campaign targets new\n" +
		"winback            no       stage: stage is at_risk; the campaign targets lapsed\n"
	if code != 0 || stdout != want {
		t.Errorf("explain c18: status %d\n%s\nwant:\n%s\nstderr: %s", code, stdout, want, stderr)
	}

	verdict := func(customer, at, campaign string) (planned bool, rule string) {
		t.Helper()
		stdout, stderr, code := cli(t, env, "explain", customer, "--at", at, "--json")
		if code != 0 {
			t.Fatalf("explain %s --json: status %d: %s", customer, code, stderr)
		}
		var ex struct {
			Stage     string `json:"stage"`
			Campaigns []struct {
				Campaign string `json:"campaign"`
				Planned  bool   `json:"planned"`
				Rule     string `json:"rule"`
			} `json:"campaigns"`
		}
		if err := json.Unmarshal([]byte(stdout), &ex); err != nil {
			t.Fatalf("explain %s --json: %v\n%s", customer, err, stdout)
		}
		for _, v := range ex.Campaigns {
			if v.Campaign == campaign {
				return v.Planned, v.Rule
			}
		}
		t.Fatalf("explain %s: no campaign %s in %s", customer, campaign, stdout)
		return false, ""
	}
	if planned, rule := verdict("c11", tutorialAt, "winback"); !planned || rule != "" {
		t.Errorf("c11 winback before the tick: planned %v, rule %q; want planned", planned, rule)
	}
	if _, stderr, code := cli(t, env, "run-once", "--at", tutorialAt); code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	if planned, rule := verdict("c11", tutorialAt, "winback"); planned || rule != "already planned" {
		t.Errorf("c11 winback at the tick's instant: planned %v, rule %q; want already planned", planned, rule)
	}
	if planned, rule := verdict("c11", "2026-11-25T09:00:00Z", "winback"); planned || rule != "cooldown" {
		t.Errorf("c11 winback a day later: planned %v, rule %q; want cooldown", planned, rule)
	}
	if _, stderr, code := cli(t, env, "suppress", "add", "kofi.c11@example.com"); code != 0 {
		t.Fatal(stderr)
	}
	if planned, rule := verdict("c11", "2026-11-25T09:00:00Z", "winback"); planned || rule != "suppressed" {
		t.Errorf("c11 winback once suppressed: planned %v, rule %q; want suppressed", planned, rule)
	}

	_, stderr, code = cli(t, env, "explain", "nobody", "--at", tutorialAt)
	if code != 1 || !strings.Contains(stderr, `explain: no customer with id "nobody"`) {
		t.Errorf("explain of an unknown customer: status %d, stderr %q", code, stderr)
	}
	if _, _, code := cli(t, env, "explain", "--at", tutorialAt); code != 2 {
		t.Errorf("explain without a customer: status %d, want 2", code)
	}
}
