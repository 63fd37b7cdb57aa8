package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"nurture/internal/smtptest"
	"nurture/internal/testenv"
)

// golden compares got with testdata/NAME, or writes it there when
// UPDATE_GOLDEN is set.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if os.Getenv("UPDATE_GOLDEN") != "" {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("%s differs:\ngot:\n%s\nwant:\n%s", name, got, want)
	}
}

// boundary matches the random MIME boundaries of internal/mail.
var boundary = regexp.MustCompile(`\b[A-Z2-7]{26}\b`)

func TestPreview(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	env["PUBLIC_URL"] = "https://mail.example.com"
	env["SECRET"] = "0123456789abcdef-secret"
	for _, tc := range []struct{ golden, customer, format string }{
		{"preview-welcome-c1.txt", "c1", "text"},
		{"preview-welcome-c6.html", "c6", "html"},
		{"preview-welcome-c1.eml", "c1", "eml"},
	} {
		out, stderr, code := cli(t, env, "preview", "welcome", "--customer", tc.customer, "--at", testenv.FixtureAt, "--format", tc.format)
		if code != 0 || stderr != "" {
			t.Fatalf("%s: status %d: %s", tc.golden, code, stderr)
		}
		golden(t, tc.golden, boundary.ReplaceAllString(strings.ReplaceAll(out, "\r\n", "\n"), "BOUNDARY"))
	}
	// A customer the worker would skip is previewed, with a note.
	out, stderr, code := cli(t, env, "preview", "nudge", "--customer", "c3", "--at", testenv.FixtureAt)
	if code != 0 || stderr != "note: customer \"c3\" is unsubscribed; a worker would skip this email\n" || !strings.HasPrefix(out, "Subject: We miss you, Cy\n\n") {
		t.Errorf("preview of an unsubscribed customer: status %d, stdout %q, stderr %q", code, out, stderr)
	}
	// Previews write nothing.
	if out, _, _ := cli(t, env, "deliveries", "--json"); out != "" {
		t.Errorf("deliveries after previews: %q", out)
	}
}

func TestPreviewErrors(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	for _, tc := range []struct {
		args []string
		code int
		want string // the last line of stderr
	}{
		{[]string{"welcom", "--customer", "c1"}, 2, `nurture: unknown campaign "welcom"; did you mean "welcome"?`},
		{[]string{"welcome", "--customer", "c99"}, 1, `nurture: no customer with id "c99"`},
		{[]string{"welcome", "--customer", "c1", "--step", "2"}, 2, `nurture: --step 2: campaign "welcome" is a single email, not a journey; leave the step out`},
		{[]string{"welcome", "--customer", "c1", "--variant", "b"}, 2, `nurture: --variant "b": campaign "welcome" has no variants`},
		{[]string{"welcome", "--customer", "c1", "--format", "pdf"}, 2, `nurture preview: --format "pdf": want text, html or eml`},
		{[]string{"welcome", "--customer", "c1", "--at", "yesterday"}, 2, `nurture preview: --at "yesterday" is not an RFC 3339 time such as 2026-11-24T09:00:00Z`},
		{[]string{"welcome"}, 2, `Usage: nurture preview CAMPAIGN --customer ID [--at TIME] [--step N] [--variant V] [--format text|html|eml]`},
	} {
		out, stderr, code := cli(t, env, append([]string{"preview"}, tc.args...)...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		got := lines[len(lines)-1]
		if strings.HasPrefix(tc.want, "Usage:") {
			got = lines[0] // the usage text follows
		}
		if code != tc.code || got != tc.want || out != "" {
			t.Errorf("preview %s: status %d, stdout %q, stderr:\n%s\nwant status %d and %q", strings.Join(tc.args, " "), code, out, stderr, tc.code, tc.want)
		}
	}
}

func TestSendTest(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	smtp := smtptest.Start(t)
	env["SMTP_URL"] = smtp.URL()
	// Links are configured, yet a test email carries none: its reader is
	// not the customer.
	env["PUBLIC_URL"] = "https://mail.example.com"
	env["SECRET"] = "0123456789abcdef-secret"
	out, stderr, code := cli(t, env, "send-test", "welcome", "--customer", "c1", "--to", "qa@example.com")
	if code != 0 {
		t.Fatalf("send-test: status %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "sent a test of welcome for customer c1 to qa@example.com, from Shop <hello@example.com>: ") {
		t.Errorf("send-test said %q", out)
	}
	msgs := smtp.Messages()
	if len(msgs) != 1 {
		t.Fatalf("SMTP server got %d messages, want 1", len(msgs))
	}
	m := msgs[0]
	if strings.Join(m.To, ",") != "qa@example.com" || m.From != "hello@example.com" || m.Subject != "[TEST] Welcome, Ann!" ||
		strings.TrimSpace(m.Text) != "Hi Ann, welcome to the shop." {
		t.Errorf("message: to %v from %s subject %q text %q", m.To, m.From, m.Subject, m.Text)
	}
	if !regexp.MustCompile(`^<test-[0-9a-f]{16}@localhost>$`).MatchString(m.MessageID) {
		t.Errorf("Message-ID %q, want one of its own", m.MessageID)
	}
	for _, h := range []string{"List-Unsubscribe", "X-Nurture-Delivery", "https://mail.example.com"} {
		if strings.Contains(string(m.Data), h) {
			t.Errorf("test email contains %q", h)
		}
	}
	if out, _, _ := cli(t, env, "deliveries", "--json"); out != "" {
		t.Errorf("deliveries after send-test: %q", out)
	}

	// Bad input sends nothing.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"welcome", "--customer", "c1", "--to", "QA <qa@example.com>"}, `nurture send-test: --to "QA <qa@example.com>" is not a bare email address such as qa@example.com`},
		{[]string{"nope", "--customer", "c1", "--to", "qa@example.com"}, `nurture: unknown campaign "nope"`},
	} {
		_, stderr, code := cli(t, env, append([]string{"send-test"}, tc.args...)...)
		if code != 2 || strings.TrimSpace(stderr) != tc.want {
			t.Errorf("send-test %s: status %d %q, want 2 %q", strings.Join(tc.args, " "), code, stderr, tc.want)
		}
	}
	if smtp.Count() != 1 {
		t.Errorf("SMTP server got %d messages, want 1", smtp.Count())
	}
}
