package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// cli runs the command line in-process with the given environment and
// returns stdout, stderr and the exit status.
func cli(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	return cliStdin(t, env, "", args...)
}

// cliStdin is cli with stdin.
func cliStdin(t *testing.T, env map[string]string, stdin string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	err := run(context.Background(), args, strings.NewReader(stdin), &out, &errb, func(k string) string { return env[k] })
	if err != nil {
		code = 1
		var ex exitError
		if errors.As(err, &ex) {
			code = ex.code
			if ex.msg != "" {
				errb.WriteString(ex.msg + "\n")
			}
		} else {
			errb.WriteString("nurture: " + err.Error() + "\n")
		}
	}
	return out.String(), errb.String(), code
}

// fixtureEnv is an environment with a fresh migrated database holding the
// shared fixture, a Redis database, and the fixture's campaigns.
func fixtureEnv(t *testing.T) map[string]string {
	t.Helper()
	url := testenv.DatabaseURL(t)
	return map[string]string{
		"DATABASE_URL":  url,
		"REDIS_URL":     testenv.RedisURL(t),
		"CAMPAIGNS_DIR": testenv.Fixture("campaigns"),
		"TEMPLATES_DIR": testenv.Fixture("templates"),
	}
}

// openStore opens the store of env's database for the test to read,
// closed when the test ends.
func openStore(t *testing.T, env map[string]string) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), env["DATABASE_URL"], store.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	return st
}

func importFixture(t *testing.T, env map[string]string) {
	t.Helper()
	for _, kind := range []string{"customers", "events"} {
		_, stderr, code := cli(t, env, "import", kind, testenv.Fixture(kind+".jsonl"))
		if code != 0 {
			t.Fatalf("import %s: status %d: %s", kind, code, stderr)
		}
	}
}

func TestLintShipped(t *testing.T) {
	out, stderr, code := cli(t, map[string]string{"CAMPAIGNS_DIR": "../../campaigns", "TEMPLATES_DIR": "../../templates"}, "lint")
	if code != 0 {
		t.Fatalf("lint of the shipped campaigns: status %d\n%s%s", code, out, stderr)
	}
	if !strings.HasPrefix(out, "ok: 7 stages, 10 campaigns, 13 templates") {
		t.Errorf("lint said %q", out)
	}
}

func TestLintReportsEveryProblem(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("lifecycle.yaml", "stages:\n  - name: new\n    when: orders_count == 0\n  - name: active\n")
	write("a.yaml", "name: a\nschedule: \"61 * * * *\"\nemail:\n  template: nope\n")
	write("b.yaml", "name: b\nschedule: \"@daily\"\naudience:\n  stages: [new, vip]\n  where: orders_count > \"x\" ||\nemail:\n  template: welcome\n  colour: red\n")
	out, _, code := cli(t, map[string]string{"CAMPAIGNS_DIR": dir, "TEMPLATES_DIR": testenv.Fixture("templates")}, "lint")
	if code != 1 {
		t.Fatalf("status %d, want 1", code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wantPrefixes := []string{
		filepath.Join(dir, "a.yaml") + ":2:12: schedule: invalid cron expression: end of range (61) above maximum (59): 61",
		filepath.Join(dir, "a.yaml") + ":4:13: template \"nope\" not found",
		filepath.Join(dir, "b.yaml") + ":4:17: unknown stage \"vip\"",
		filepath.Join(dir, "b.yaml") + ":5:",
		filepath.Join(dir, "b.yaml") + ":8:3: unknown key \"colour\"",
	}
	if len(lines) != len(wantPrefixes) {
		t.Fatalf("got %d problems, want %d:\n%s", len(lines), len(wantPrefixes), out)
	}
	for i, p := range wantPrefixes {
		if !strings.HasPrefix(lines[i], p) {
			t.Errorf("problem %d: %q, want prefix %q", i+1, lines[i], p)
		}
	}
}

func TestPlanAndStageDryRun(t *testing.T) {
	env := fixtureEnv(t)
	if _, stderr, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	importFixture(t, env)

	out, stderr, code := cli(t, env, "plan", "--at", testenv.FixtureAt, "--json")
	if code != 0 {
		t.Fatalf("plan: status %d: %s", code, stderr)
	}
	want := `{"campaign":"nudge","customer_id":"c2","email":"bo@example.com","stage":"at_risk","template":"nudge","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}
{"campaign":"welcome","customer_id":"c1","email":"ann@example.com","stage":"new","template":"welcome","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}
{"campaign":"welcome","customer_id":"c6","email":"flo@example.com","stage":"new","template":"welcome","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}
`
	if out != want {
		t.Errorf("plan --json:\n%s\nwant:\n%s", out, want)
	}
	out, _, _ = cli(t, env, "plan", "--at", testenv.FixtureAt, "--json", "--campaign", "nudge")
	if !strings.HasPrefix(out, `{"campaign":"nudge","customer_id":"c2"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("plan --campaign nudge: %q", out)
	}
	if _, stderr, code := cli(t, env, "plan", "--at", "yesterday"); code == 0 || !strings.Contains(stderr, `--at "yesterday" is not an RFC 3339 time`) {
		t.Errorf("plan --at yesterday: status %d, %q", code, stderr)
	}

	out, stderr, code = cli(t, env, "stage", "--at", testenv.FixtureAt, "--json")
	if code != 0 {
		t.Fatalf("stage: %s", stderr)
	}
	wantStages := `{"customer_id":"c1","stage":"new","inactive_days":3}
{"customer_id":"c2","stage":"at_risk","inactive_days":35}
{"customer_id":"c3","stage":"at_risk","inactive_days":35}
{"customer_id":"c4","stage":"lapsed","inactive_days":146}
{"customer_id":"c5","stage":"active","inactive_days":1}
{"customer_id":"c6","stage":"new","inactive_days":1}
`
	if out != wantStages {
		t.Errorf("stage --json:\n%s\nwant:\n%s", out, wantStages)
	}

	// The dry run wrote nothing; run-once then plans exactly what plan showed.
	out, stderr, code = cli(t, env, "run-once", "--at", testenv.FixtureAt)
	if code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	for _, w := range []string{"nudge              candidates=1 matched=1 planned=1 enqueued=1", "welcome            candidates=5 matched=2 planned=2 enqueued=2"} {
		if !strings.Contains(out, w) {
			t.Errorf("run-once output lacks %q:\n%s", w, out)
		}
	}
	// Row by row: what run-once wrote is what plan --json showed.
	if got := plannedRows(t, env); got != projectPlan(t, want) {
		t.Errorf("rows written by run-once:\n%s\nplan --json showed:\n%s", got, projectPlan(t, want))
	}
	out, _, _ = cli(t, env, "run-once", "--at", testenv.FixtureAt)
	if !strings.Contains(out, "planned=0") || strings.Contains(out, "planned=1") || strings.Contains(out, "planned=2") {
		t.Errorf("second run-once planned again:\n%s", out)
	}
}

func TestCommandsRefusePendingMigrations(t *testing.T) {
	env := fixtureEnv(t)
	ctx := context.Background()
	name := fmt.Sprintf("nurture_test_empty_%d", time.Now().UnixNano())
	if err := store.CreateDatabase(ctx, testenv.DatabaseBaseURL(), name); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.DropDatabase(context.Background(), testenv.DatabaseBaseURL(), name) })
	u, err := url.Parse(testenv.DatabaseBaseURL())
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	env["DATABASE_URL"] = u.String()
	_, stderr, code := cli(t, env, "plan", "--at", testenv.FixtureAt)
	if code == 0 || !strings.Contains(stderr, "nurture migrate") {
		t.Fatalf("plan on an unmigrated database: status %d, %q", code, stderr)
	}
}

func TestSuppress(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	out, stderr, code := cli(t, env, "suppress", "--reason", "complaint", "ANN@example.com")
	if code != 0 || out != "suppressed 1 address(es): no email will be planned or sent to them\n" {
		t.Fatalf("suppress: status %d, %q %q", code, out, stderr)
	}
	out, _, _ = cli(t, env, "plan", "--at", testenv.FixtureAt, "--json", "--campaign", "welcome")
	if strings.Contains(out, `"c1"`) || !strings.Contains(out, `"c6"`) {
		t.Errorf("plan after suppressing ann@example.com:\n%s", out)
	}
	if _, stderr, code := cli(t, env, "suppress", "Ann <ann@example.com>"); code != 1 || !strings.Contains(stderr, `"Ann <ann@example.com>" is not a bare email address`) {
		t.Errorf("suppress of a display-name address: status %d, %q", code, stderr)
	}
}

// planLine is what a delivery row and a plan --json line have in common.
type planLine struct {
	Campaign   string `json:"campaign"`
	CustomerID string `json:"customer_id"`
	Stage      string `json:"stage"`
	Template   string `json:"template"`
	SendAt     string `json:"send_at"`
}

// projectPlan keeps of each plan --json line the fields a delivery row has.
func projectPlan(t *testing.T, plan string) string {
	t.Helper()
	var b strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(plan), "\n") {
		var l planLine
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("plan line %q: %v", line, err)
		}
		out, _ := json.Marshal(l)
		b.Write(append(out, '\n'))
	}
	return b.String()
}

// plannedRows prints every delivery row as a planLine, in plan's order.
func plannedRows(t *testing.T, env map[string]string) string {
	t.Helper()
	st := openStore(t, env)
	var b strings.Builder
	err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		out, _ := json.Marshal(planLine{d.Campaign, d.CustomerID, d.Stage, d.Template, d.Occurrence.Format(time.RFC3339)})
		b.Write(append(out, '\n'))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}
