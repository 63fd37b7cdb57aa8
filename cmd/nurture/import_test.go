package main

import (
	"os"
	"testing"

	"nurture/internal/testenv"
)

// stageJSON runs `nurture stage --at FixtureAt --json`.
func stageJSON(t *testing.T, env map[string]string) string {
	t.Helper()
	out, stderr, code := cli(t, env, "stage", "--at", testenv.FixtureAt, "--json")
	if code != 0 || stderr != "" {
		t.Fatalf("stage: status %d: %s", code, stderr)
	}
	return out
}

// The good lines of testdata/customers-mixed.jsonl at FixtureAt. a6 is
// unsubscribed but still has a stage.
const mixedStages = `{"customer_id":"a1","stage":"new","inactive_days":4}
{"customer_id":"a3","stage":"at_risk","inactive_days":54}
{"customer_id":"a6","stage":"lapsed","inactive_days":176}
`

// mixedProblems is what importing testdata/customers-mixed.jsonl under
// name prints on stderr before its last line.
func mixedProblems(name string) string {
	return name + `:2: email: "not-an-address" is not a valid address
` + name + `:5: missing "id"
` + name + `:6: timezone: unknown time zone "Mars/Olympus"
` + name + `:6: created_at: "last week" is not an RFC 3339 time
` + name + `:7: not a JSON object
`
}

func TestImportCustomersReportsBadLines(t *testing.T) {
	t.Parallel()
	env := fixtureEnv(t)
	const file = "testdata/customers-mixed.jsonl"
	out, stderr, code := cli(t, env, "import", "customers", file)
	if code != 1 {
		t.Errorf("status %d, want 1", code)
	}
	if want := mixedProblems(file) + "nurture import: 4 of 8 line(s) bad and skipped\n"; stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if want := file + ": 8 line(s): 3 customers imported or changed, 0 unchanged, 4 bad\n"; out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
	if got := stageJSON(t, env); got != mixedStages {
		t.Errorf("stage --json after the import:\n%s\nwant:\n%s", got, mixedStages)
	}
}

func TestImportStrictWritesNothing(t *testing.T) {
	t.Parallel()
	env := fixtureEnv(t)
	const file = "testdata/customers-mixed.jsonl"
	// The flag may follow the arguments, as in the README.
	out, stderr, code := cli(t, env, "import", "customers", file, "--strict")
	if code != 1 {
		t.Errorf("status %d, want 1", code)
	}
	if want := mixedProblems(file) + "nurture import: 4 of 8 line(s) bad; --strict: nothing imported\n"; stderr != want {
		t.Errorf("stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if out != "" {
		t.Errorf("stdout: %q, want nothing", out)
	}
	if got := stageJSON(t, env); got != "" {
		t.Errorf("stage --json after a refused import:\n%s\nwant nothing", got)
	}

	// The same flag on a good file imports it.
	out, stderr, code = cli(t, env, "import", "--strict", "customers", "testdata/customers-good.jsonl")
	if code != 0 || stderr != "" {
		t.Fatalf("strict import of a good file: status %d: %s", code, stderr)
	}
	if want := "testdata/customers-good.jsonl: 3 line(s): 3 customers imported or changed, 0 unchanged, 0 bad\n"; out != want {
		t.Errorf("stdout:\n%s\nwant:\n%s", out, want)
	}
}

func TestImportTwiceChangesNothing(t *testing.T) {
	t.Parallel()
	env := fixtureEnv(t)
	const file = "testdata/customers-good.jsonl"
	out, stderr, code := cli(t, env, "import", "customers", file)
	if code != 0 || stderr != "" {
		t.Fatalf("first import: status %d: %s", code, stderr)
	}
	if want := file + ": 3 line(s): 3 customers imported or changed, 0 unchanged, 0 bad\n"; out != want {
		t.Errorf("first import said:\n%s\nwant:\n%s", out, want)
	}
	stages := stageJSON(t, env)
	wantStages := `{"customer_id":"g1","stage":"new","inactive_days":4}
{"customer_id":"g2","stage":"at_risk","inactive_days":54}
{"customer_id":"g3","stage":"lapsed","inactive_days":176}
`
	if stages != wantStages {
		t.Errorf("stage --json:\n%s\nwant:\n%s", stages, wantStages)
	}
	plan, stderr, code := cli(t, env, "plan", "--at", testenv.FixtureAt, "--json")
	if code != 0 {
		t.Fatalf("plan: status %d: %s", code, stderr)
	}
	wantPlan := `{"campaign":"nudge","customer_id":"g2","email":"hal@example.com","stage":"at_risk","template":"nudge","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}
{"campaign":"welcome","customer_id":"g1","email":"gil@example.com","stage":"new","template":"welcome","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}
`
	if plan != wantPlan {
		t.Errorf("plan --json:\n%s\nwant:\n%s", plan, wantPlan)
	}

	for range 2 {
		out, stderr, code = cli(t, env, "import", "customers", file)
		if code != 0 || stderr != "" {
			t.Fatalf("re-import: status %d: %s", code, stderr)
		}
		if want := file + ": 3 line(s): 0 customers imported or changed, 3 unchanged, 0 bad\n"; out != want {
			t.Errorf("re-import said:\n%s\nwant:\n%s", out, want)
		}
	}
	if got := stageJSON(t, env); got != stages {
		t.Errorf("stage --json after re-imports:\n%s\nbefore:\n%s", got, stages)
	}
	if got, _, _ := cli(t, env, "plan", "--at", testenv.FixtureAt, "--json"); got != plan {
		t.Errorf("plan --json after re-imports:\n%s\nbefore:\n%s", got, plan)
	}
}

func TestImportFromStdin(t *testing.T) {
	t.Parallel()
	env := fixtureEnv(t)
	mixed, err := os.ReadFile("testdata/customers-mixed.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	out, stderr, code := cliStdin(t, env, string(mixed), "import", "customers", "-")
	if code != 1 {
		t.Errorf("customers from stdin: status %d, want 1", code)
	}
	if want := mixedProblems("-") + "nurture import: 4 of 8 line(s) bad and skipped\n"; stderr != want {
		t.Errorf("customers from stdin: stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if want := "-: 8 line(s): 3 customers imported or changed, 0 unchanged, 4 bad\n"; out != want {
		t.Errorf("customers from stdin: stdout:\n%s\nwant:\n%s", out, want)
	}
	if got := stageJSON(t, env); got != mixedStages {
		t.Errorf("stage --json:\n%s\nwant:\n%s", got, mixedStages)
	}

	// A purchase two days ago makes a3 active.
	events := `{"id":"e1","customer_id":"a3","type":"purchase","occurred_at":"2026-11-22T09:00:00Z","amount":10}
{"customer_id":"a1","type":"purchase","occurred_at":"2026-11-22"}
`
	out, stderr, code = cliStdin(t, env, events, "import", "events", "-")
	if code != 1 {
		t.Errorf("events from stdin: status %d, want 1", code)
	}
	if want := "-:2: occurred_at: \"2026-11-22\" is not an RFC 3339 time\nnurture import: 1 of 2 line(s) bad and skipped\n"; stderr != want {
		t.Errorf("events from stdin: stderr:\n%s\nwant:\n%s", stderr, want)
	}
	if want := "-: 2 line(s): 1 events imported or changed, 0 unchanged, 1 bad\n"; out != want {
		t.Errorf("events from stdin: stdout:\n%s\nwant:\n%s", out, want)
	}
	want := `{"customer_id":"a1","stage":"new","inactive_days":4}
{"customer_id":"a3","stage":"active","inactive_days":2}
{"customer_id":"a6","stage":"lapsed","inactive_days":176}
`
	if got := stageJSON(t, env); got != want {
		t.Errorf("stage --json after the events:\n%s\nwant:\n%s", got, want)
	}
}
