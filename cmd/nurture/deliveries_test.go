package main

import (
	"regexp"
	"strings"
	"testing"

	"nurture/internal/testenv"
)

func TestDeliveries(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	if out, stderr, code := cli(t, env, "deliveries"); code != 0 || !strings.HasSuffix(out, "(no deliveries)\n") {
		t.Fatalf("deliveries before any tick: status %d\n%s%s", code, out, stderr)
	}
	if _, stderr, code := cli(t, env, "run-once", "--at", testenv.FixtureAt); code != 0 {
		t.Fatalf("run-once: %s", stderr)
	}
	out, stderr, code := cli(t, env, "deliveries", "--json", "--campaign", "welcome")
	if code != 0 {
		t.Fatalf("deliveries: status %d: %s", code, stderr)
	}
	// Ids are random: replace them, then compare whole lines.
	uuid := regexp.MustCompile(`"id":"[0-9a-f-]{36}"`)
	got := uuid.ReplaceAllString(out, `"id":"ID"`)
	want := `{"id":"ID","campaign":"welcome","customer_id":"c1","occurrence":"2026-11-24T09:00:00Z","step":1,"send_at":"2026-11-24T09:00:00Z","status":"queued","reason":"","attempts":0,"message_id":""}
{"id":"ID","campaign":"welcome","customer_id":"c6","occurrence":"2026-11-24T09:00:00Z","step":1,"send_at":"2026-11-24T09:00:00Z","status":"queued","reason":"","attempts":0,"message_id":""}
`
	if got != want {
		t.Errorf("deliveries --json --campaign welcome:\n%s\nwant:\n%s", got, want)
	}
	if out, _, _ := cli(t, env, "deliveries", "--json", "--customer", "c2"); strings.Count(out, "\n") != 1 || !strings.Contains(out, `"campaign":"nudge"`) {
		t.Errorf("deliveries --customer c2: %q", out)
	}
	if out, _, _ := cli(t, env, "deliveries", "--json", "--status", "sent"); out != "" {
		t.Errorf("deliveries --status sent: %q, want nothing", out)
	}
	_, stderr, code = cli(t, env, "deliveries", "--status", "done")
	if want := `nurture deliveries: --status "done": want one of planned, queued, sending, sent, failed, skipped`; code != 2 || !strings.Contains(stderr, want) {
		t.Errorf("--status done: status %d, %q; want 2 and %q", code, stderr, want)
	}
}

func TestSuppressAddListRemove(t *testing.T) {
	env := fixtureEnv(t)
	for _, args := range [][]string{
		{"suppress", "add", "--reason", "bounce", "--source", "postmaster", "Bo@Example.com"},
		{"suppress", "--reason", "complaint", "ann@example.com"}, // the old form: add, source cli
	} {
		if out, stderr, code := cli(t, env, args...); code != 0 || out != "suppressed 1 address(es): no email will be planned or sent to them\n" {
			t.Fatalf("%v: status %d, %q %q", args, code, out, stderr)
		}
	}
	out, stderr, code := cli(t, env, "suppress", "list", "--json")
	if code != 0 {
		t.Fatalf("list: %s", stderr)
	}
	since := regexp.MustCompile(`"created_at":"[^"]+"`)
	want := `{"email":"ann@example.com","reason":"complaint","source":"cli","created_at":"T"}
{"email":"bo@example.com","reason":"bounce","source":"postmaster","created_at":"T"}
`
	if got := since.ReplaceAllString(out, `"created_at":"T"`); got != want {
		t.Errorf("suppress list --json:\n%s\nwant:\n%s", got, want)
	}
	out, _, code = cli(t, env, "suppress", "remove", "BO@example.com", "cy@example.com")
	if want := "cy@example.com was not suppressed\nremoved 1 address(es) from the suppression list\n"; code != 0 || out != want {
		t.Errorf("remove: status %d, %q, want %q", code, out, want)
	}
	if out, _, _ := cli(t, env, "suppress", "list", "--json"); !strings.HasPrefix(out, `{"email":"ann@example.com"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("list after remove: %q", out)
	}
	if _, _, code := cli(t, env, "suppress", "list", "x@example.com"); code != 2 {
		t.Errorf("list with an address: status %d, want 2", code)
	}
	if _, _, code := cli(t, env, "suppress", "remove"); code != 2 {
		t.Errorf("remove without an address: status %d, want 2", code)
	}
}
