package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"nurture/internal/store"
	"nurture/internal/testenv"
)

// TestTriggersPlanEqualsRunOnce: plan --json at an instant lists the due
// event trigger and the stage entry its simulated sweep observes, with
// their event_id, exactly as run-once at that instant records them.
// campaignsWith makes a campaigns directory holding the fixture's
// lifecycle and files, by name.
func campaignsWith(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	lifecycle, err := os.ReadFile(testenv.Fixture("campaigns/lifecycle.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	files["lifecycle.yaml"] = string(lifecycle)
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestTriggersPlanEqualsRunOnce(t *testing.T) {
	dir := campaignsWith(t, map[string]string{
		"cart.yaml": `name: cart
trigger: {event: cart_abandoned, delay: 1h}
email: {template: nudge}
`,
		"hello.yaml": `name: hello
trigger: {entered_stage: new}
email: {template: welcome}
`,
	})
	env := fixtureEnv(t)
	env["CAMPAIGNS_DIR"] = dir
	if _, stderr, code := cli(t, env, "migrate"); code != 0 {
		t.Fatalf("migrate: %s", stderr)
	}
	importFixture(t, env)
	at, _ := time.Parse(time.RFC3339, testenv.FixtureAt)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339) }

	// The first sweep, an hour before: baselines only, nothing due.
	out, stderr, code := cli(t, env, "run-once", "--at", rfc(at.Add(-time.Hour)))
	if code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	if !strings.Contains(out, "stage sweep        customers=6 baselines=6 changes=0 entries=0\n") {
		t.Errorf("first run-once:\n%s", out)
	}
	// Then c7 signs up (new: an entry at the next sweep) and c5 abandons
	// a cart, due at at - 30m.
	if _, stderr, code := cliStdin(t, env, `{"id":"c7","email":"gus@example.com","created_at":"`+rfc(at.Add(-30*time.Minute))+`"}`+"\n",
		"import", "customers", "-"); code != 0 {
		t.Fatalf("import customers: %s", stderr)
	}
	if _, stderr, code := cliStdin(t, env, `{"id":"cart-5","customer_id":"c5","type":"cart_abandoned","occurred_at":"`+rfc(at.Add(-90*time.Minute))+`"}`+"\n",
		"import", "events", "-"); code != 0 {
		t.Fatalf("import events: %s", stderr)
	}

	out, stderr, code = cli(t, env, "plan", "--at", testenv.FixtureAt, "--json")
	if code != 0 {
		t.Fatalf("plan: %s", stderr)
	}
	want := `{"campaign":"cart","customer_id":"c5","email":"ed@example.com","stage":"active","template":"nudge","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned","event_id":"cart-5"}
{"campaign":"hello","customer_id":"c7","email":"gus@example.com","stage":"new","template":"welcome","send_at":"2026-11-24T09:00:00Z","step":1,"status":"planned"}
`
	if out != want {
		t.Errorf("plan --json:\n%s\nwant:\n%s", out, want)
	}

	out, stderr, code = cli(t, env, "run-once", "--at", testenv.FixtureAt)
	if code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	for _, w := range []string{
		"stage sweep        customers=7 baselines=0 changes=1 entries=1\n",
		"cart               candidates=1 matched=1 planned=1 enqueued=1\n",
		"hello              candidates=1 matched=1 planned=1 enqueued=1\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("run-once output lacks %q:\n%s", w, out)
		}
	}
	// What run-once recorded is, field by field, what plan showed; the
	// occurrence is the due time.
	st := openStore(t, env)
	type line struct {
		Campaign   string `json:"campaign"`
		CustomerID string `json:"customer_id"`
		Stage      string `json:"stage"`
		Template   string `json:"template"`
		SendAt     string `json:"send_at"`
		Step       int    `json:"step"`
		Status     string `json:"status"`
		EventID    string `json:"event_id,omitempty"`
	}
	var got, shown []line
	var occurrences []string
	err := st.Deliveries(context.Background(), func(d *store.DeliveryRow) error {
		got = append(got, line{d.Campaign, d.CustomerID, d.Stage, d.Template, rfc(d.SendAt.UTC()), d.Step, "planned", d.EventID})
		occurrences = append(occurrences, rfc(d.Occurrence.UTC()))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(strings.TrimSpace(want), "\n") {
		var pl line
		if err := json.Unmarshal([]byte(l), &pl); err != nil {
			t.Fatal(err)
		}
		shown = append(shown, pl)
	}
	if !slices.Equal(got, shown) {
		t.Errorf("run-once recorded\n%+v\nplan showed\n%+v", got, shown)
	}
	if w := []string{"2026-11-24T08:30:00Z", "2026-11-24T09:00:00Z"}; !slices.Equal(occurrences, w) {
		t.Errorf("occurrences %v, want %v", occurrences, w)
	}

	// Again at the same instant, and importing the event again: nothing.
	if _, stderr, code := cliStdin(t, env, `{"id":"cart-5","customer_id":"c5","type":"cart_abandoned","occurred_at":"`+rfc(at.Add(-90*time.Minute))+`"}`+"\n",
		"import", "events", "-"); code != 0 {
		t.Fatalf("import events: %s", stderr)
	}
	if out, _, _ = cli(t, env, "plan", "--at", testenv.FixtureAt, "--json"); out != "" {
		t.Errorf("plan after run-once:\n%s", out)
	}
	out, _, _ = cli(t, env, "run-once", "--at", testenv.FixtureAt)
	if strings.Contains(out, "planned=1") {
		t.Errorf("second run-once planned again:\n%s", out)
	}
	// A run-once in the past plans as before but records no stages.
	out, _, _ = cli(t, env, "run-once", "--at", rfc(at.Add(-2*time.Hour)))
	if !strings.Contains(out, "stage sweep        not recorded: stage history already runs to 2026-11-24T09:00:00Z and never moves backwards\n") {
		t.Errorf("run-once in the past:\n%s", out)
	}
}
