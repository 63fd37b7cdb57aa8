package main

import (
	"strings"
	"testing"

	"nurture/internal/testenv"
)

func TestForget(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	if _, stderr, code := cli(t, env, "run-once", "--at", testenv.FixtureAt, "--campaign", "welcome"); code != 0 {
		t.Fatalf("run-once: status %d: %s", code, stderr)
	}

	// One unknown id among known ones: the known are erased, the status is 1.
	out, stderr, code := cli(t, env, "forget", "c1", "nobody", "c4")
	wantOut := `erased customer "c1": address suppressed by its hash; 1 deliveries (1 unsent, now skipped), 0 events, 0 journeys kept without them` + "\n" +
		`erased customer "c4": address suppressed by its hash; 0 deliveries (0 unsent, now skipped), 1 events, 0 journeys kept without them` + "\n"
	wantErr := `nurture forget: no customer with id "nobody" (nothing stored under it, or erased already)` + "\n" +
		"nurture forget: 1 of 3 id(s) unknown\n"
	if code != 1 || out != wantOut || stderr != wantErr {
		t.Errorf("forget c1 nobody c4: status %d\nstdout:\n%s\nstderr:\n%s\nwant 1\n%s\n%s", code, out, stderr, wantOut, wantErr)
	}
	// Twice: nothing left to erase.
	if out, stderr, code := cli(t, env, "forget", "c1"); code != 1 || out != "" ||
		stderr != `nurture forget: no customer with id "c1" (nothing stored under it, or erased already)`+"\n"+"nurture forget: 1 of 1 id(s) unknown\n" {
		t.Errorf("forget c1 again: status %d, %q %q", code, out, stderr)
	}
	if _, stderr, code := cli(t, env, "forget"); code != 2 || !strings.HasPrefix(stderr, "Usage: nurture forget ID...") {
		t.Errorf("forget without ids: status %d, %q", code, stderr)
	}
	if rows := plannedRows(t, env); strings.Contains(rows, `"c1"`) || !strings.Contains(rows, `"customer_id":"erased-`) {
		t.Errorf("deliveries after forget c1:\n%s", rows)
	}
	// The CRM sends the address again, under the old id and a new one.
	again := `{"id":"c1","email":"ann@example.com","first_name":"Ann","created_at":"2026-11-20T10:00:00Z"}` + "\n" +
		`{"id":"c99","email":"Ann@Example.com","first_name":"Ann","created_at":"2026-11-20T10:00:00Z"}` + "\n" +
		`{"id":"c98","email":"another@example.com","first_name":"Other","created_at":"2026-11-20T10:00:00Z"}` + "\n"
	if _, stderr, code := cliStdin(t, env, again, "import", "customers", "-"); code != 0 {
		t.Fatalf("re-import: status %d: %s", code, stderr)
	}
	// c98, a new address, is planned; the erased address is not.
	if out := planWelcome(t, env); strings.Contains(out, `"c1"`) || strings.Contains(out, `"c99"`) || !strings.Contains(out, `"customer_id":"c98"`) {
		t.Errorf("plan after re-importing the erased address:\n%s", out)
	}
}
