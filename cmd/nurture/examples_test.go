package main

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"testing"

	"nurture/internal/testenv"
)

// tutorialAt is the instant of the README's tutorial, at which examples/
// puts customers in every stage of the shipped lifecycle.
const tutorialAt = "2026-11-24T09:00:00Z"

// TestExamples imports examples/ as the README's tutorial does, with the
// shipped campaigns, and checks the stages and the plan it shows.
func TestExamples(t *testing.T) {
	t.Parallel()
	env := map[string]string{
		"DATABASE_URL":  testenv.DatabaseURL(t),
		"CAMPAIGNS_DIR": "../../campaigns",
		"TEMPLATES_DIR": "../../templates",
	}
	for _, tt := range []struct{ kind, file, want string }{
		{"customers", "../../examples/customers.jsonl", "../../examples/customers.jsonl: 36 line(s): 36 customers imported or changed, 0 unchanged, 0 bad\n"},
		{"events", "../../examples/events.jsonl", "../../examples/events.jsonl: 112 line(s): 112 events imported or changed, 0 unchanged, 0 bad\n"},
	} {
		stdout, stderr, code := cli(t, env, "import", tt.kind, tt.file, "--strict")
		if code != 0 || stderr != "" || stdout != tt.want {
			t.Fatalf("import %s: status %d\nstdout: %s\nstderr: %s\nwant stdout: %s", tt.kind, code, stdout, stderr, tt.want)
		}
	}

	stdout, stderr, code := cli(t, env, "stage", "--at", tutorialAt, "--json")
	if code != 0 {
		t.Fatalf("stage: status %d\n%s", code, stderr)
	}
	stages := map[string][]string{}
	for line := range strings.Lines(stdout) {
		var r struct {
			CustomerID string `json:"customer_id"`
			Stage      string `json:"stage"`
		}
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("stage line %q: %v", line, err)
		}
		stages[r.Stage] = append(stages[r.Stage], r.CustomerID)
	}
	wantStages := map[string][]string{
		"new":      {"c01", "c02", "c03", "c04", "c05", "c34"},
		"prospect": {"c06", "c07", "c08", "c09", "c10"},
		"lapsed":   {"c11", "c12", "c13", "c14", "c15"},
		"at_risk":  {"c16", "c17", "c18", "c19", "c20"},
		"advocate": {"c21", "c22", "c23", "c24"},
		"loyal":    {"c25", "c26", "c27", "c28", "c35"},
		"active":   {"c29", "c30", "c31", "c32", "c33", "c36"},
	}
	if !maps.EqualFunc(stages, wantStages, slices.Equal) {
		t.Errorf("stages at %s:\n got %v\nwant %v", tutorialAt, stages, wantStages)
	}

	stdout, stderr, code = cli(t, env, "plan", "--at", tutorialAt)
	if code != 0 {
		t.Fatalf("plan: status %d\n%s", code, stderr)
	}
	wantPlan := "" +
		"CAMPAIGN           CUSTOMER                 EMAIL                            STAGE      TEMPLATE\n" +
		"at-risk-nudge      c16                      priya.c16@example.com            at_risk    at-risk\n" +
		"at-risk-nudge      c17                      quinn.c17@example.com            at_risk    at-risk          send_at=2026-11-24T14:00:00Z\n" +
		"at-risk-nudge      c19                      sami.c19@example.com             at_risk    at-risk\n" +
		"at-risk-nudge      c20                      tomas.c20@example.com            at_risk    at-risk          send_at=2026-11-24T11:00:00Z\n" +
		"cart-reminder      c05                      emeka.c05@example.com            new        cart-reminder    event=c05-cart_abandoned-1\n" +
		"loyalty-reward     c25                      yara.c25@example.com             loyal      loyalty-reward   send_at=2026-11-24T13:00:00Z\n" +
		"loyalty-reward     c26                      zeynep.c26@example.com           loyal      loyalty-reward\n" +
		"loyalty-reward     c27                      aiko.c27@example.com             loyal      loyalty-reward\n" +
		"loyalty-reward     c28                      bilal.c28@example.com            loyal      loyalty-reward\n" +
		"loyalty-reward     c35                      ingrid.c35@example.com           loyal      loyalty-reward\n" +
		"referral-ask       c21                      uma.c21@example.com              advocate   referral\n" +
		"referral-ask       c22                      viktor.c22@example.com           advocate   referral\n" +
		"referral-ask       c23                      wen.c23@example.com              advocate   referral\n" +
		"referral-ask       c24                      xavier.c24@example.com           advocate   referral\n" +
		"review-request     c32                      farid.c32@example.com            active     review-request   event=c32-purchase-2\n" +
		"thank-you          c22                      viktor.c22@example.com           advocate   thank-you\n" +
		"thank-you          c26                      zeynep.c26@example.com           loyal      thank-you\n" +
		"thank-you          c29                      carmen.c29@example.com           active     thank-you\n" +
		"thank-you          c36                      jonas.c36@example.com            active     thank-you\n" +
		"welcome-series     c01                      ann.c01@example.com              new        welcome-1\n" +
		"welcome-series     c02                      bo.c02@example.com               new        welcome-1\n" +
		"welcome-series     c03                      chloe.c03@example.com            new        welcome-1\n" +
		"welcome-series     c04                      dev.c04@example.com              new        welcome-1\n" +
		"welcome-series     c05                      emeka.c05@example.com            new        welcome-1\n" +
		"welcome-series     c34                      hugo.c34@example.com             new        welcome-1        send_at=2026-11-24T21:00:00Z\n" +
		"winback            c11                      kofi.c11@example.com             lapsed     winback          variant=a\n" +
		"winback            c12                      lena.c12@example.com             lapsed     winback          variant=a\n" +
		"winback            c15                      oskar.c15@example.com            lapsed     winback-b        variant=b\n" +
		"\n" +
		"28 email(s) would be planned at 2026-11-24T09:00:00Z (dry run: nothing written)\n"
	if stdout != wantPlan {
		t.Errorf("plan --at %s:\n%s\nwant:\n%s", tutorialAt, stdout, wantPlan)
	}
}
