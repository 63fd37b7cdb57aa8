package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"nurture/internal/unsubscribe"
)

func TestBouncesImport(t *testing.T) {
	env := fixtureEnv(t)
	importFixture(t, env)
	env["SECRET"] = "0123456789abcdef-secret"
	tokens, err := unsubscribe.NewTokens(env["SECRET"], 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	mailto := filepath.Join(dir, "mailto.eml")
	junk := filepath.Join(dir, "junk.eml")
	write := func(name, text string) {
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(mailto, "From: ann@example.com\nTo: unsubscribe@mail.example.com\nSubject: unsubscribe-"+tokens.Token("c1", "welcome")+"\n\nsent by my mail program\n")
	write(junk, "From: someone@example.com\nSubject: hello\n\nhi\n")
	postfix := "../../internal/bounce/testdata/dsn-postfix.eml"

	stdout, stderr, code := cli(t, env, "bounces", "import", postfix, mailto, junk)
	want := postfix + ": 1 messages: 1 hard bounces, 0 soft bounces, 0 already recorded, 0 delivered, 0 unsubscribed, 0 already unsubscribed, 0 not processed\n" +
		mailto + ": 1 messages: 0 hard bounces, 0 soft bounces, 0 already recorded, 0 delivered, 1 unsubscribed, 0 already unsubscribed, 0 not processed\n" +
		junk + ": 1 messages: 0 hard bounces, 0 soft bounces, 0 already recorded, 0 delivered, 0 unsubscribed, 0 already unsubscribed, 1 not processed\n" +
		junk + `: message 1 (line 1): neither a delivery status notification nor an unsubscribe request (Content-Type text/plain, Subject "hello")` + "\n" +
		"total: 3 messages: 1 hard bounces, 0 soft bounces, 0 already recorded, 0 delivered, 1 unsubscribed, 0 already unsubscribed, 1 not processed\n"
	if code != 1 || stdout != want || !strings.HasSuffix(stderr, "nurture bounces import: 1 message(s) not processed; the others were\n") {
		t.Fatalf("status %d\nstdout:\n%s\nwant:\n%s\nstderr:\n%s", code, stdout, want, stderr)
	}
	h := consentHistory(t, env, "c1")
	if len(h) != 1 || h[0].Subscribed || h[0].Source != "mailto" || h[0].Campaign != "welcome" {
		t.Errorf("consent history of c1: %+v", h)
	}
	st := openStore(t, env)
	list, err := st.Suppressions(context.Background())
	if err != nil || len(list) != 1 || list[0].Email != "ann@example.net" || list[0].Reason != "bounce" || list[0].Source != "dsn" {
		t.Errorf("suppressions %+v, %v", list, err)
	}

	// Again: nothing twice.
	stdout, _, code = cli(t, env, "bounces", "import", postfix, mailto)
	want = postfix + ": 1 messages: 0 hard bounces, 0 soft bounces, 1 already recorded, 0 delivered, 0 unsubscribed, 0 already unsubscribed, 0 not processed\n" +
		mailto + ": 1 messages: 0 hard bounces, 0 soft bounces, 0 already recorded, 0 delivered, 0 unsubscribed, 1 already unsubscribed, 0 not processed\n" +
		"total: 2 messages: 0 hard bounces, 0 soft bounces, 1 already recorded, 0 delivered, 0 unsubscribed, 1 already unsubscribed, 0 not processed\n"
	if code != 0 || stdout != want {
		t.Errorf("again: status %d\n%s\nwant:\n%s", code, stdout, want)
	}
	if h := consentHistory(t, env, "c1"); len(h) != 1 {
		t.Errorf("consent history of c1 after a second import: %+v", h)
	}

	// A file that cannot be read, and no file at all.
	if _, stderr, code := cli(t, env, "bounces", "import", filepath.Join(dir, "missing.mbox")); code != 1 || !strings.Contains(stderr, "missing.mbox: no such file or directory") {
		t.Errorf("missing file: %d %s", code, stderr)
	}
	if _, _, code := cli(t, env, "bounces", "import"); code != 2 {
		t.Errorf("no file: status %d, want 2", code)
	}
}
