package main

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestHelp runs every command with -h and checks that it prints its
// description and example, and lists exactly the flags it reads: those of
// its needs and its own, as the commands table says.
func TestHelp(t *testing.T) {
	common := []struct {
		need  needs
		flags []string
	}{
		{needDB, []string{"database-url"}},
		{needRedis, []string{"redis-url"}},
		{needContent, []string{"campaigns", "templates"}},
		{needLog, []string{"log-level"}},
	}
	flagLine := regexp.MustCompile(`(?m)^  -([a-z-]+)`)
	listed := map[string][]string{}
	for _, c := range commands() {
		t.Run(c.name, func(t *testing.T) {
			if c.description == "" || c.example == "" {
				t.Fatalf("%s has no description or example in commands()", c.name)
			}
			stdout, stderr, code := cli(t, nil, append(strings.Fields(c.name), "-h")...)
			if code != 0 {
				t.Errorf("status %d, want 0", code)
			}
			if stdout != "" {
				t.Errorf("stdout: %q", stdout)
			}
			head := "Usage: " + strings.TrimSpace("nurture "+c.name+" "+c.args) + "\n\n" +
				c.description + "\n\nExample:\n  " + c.example + "\n\nFlags:\n"
			if !strings.HasPrefix(stderr, head) {
				t.Errorf("-h prints:\n%s\nwant it to start with:\n%s", stderr, head)
			}
			var got []string
			for _, m := range flagLine.FindAllStringSubmatch(stderr, -1) {
				got = append(got, m[1])
			}
			want := slices.Clone(c.flags)
			for _, g := range common {
				if c.needs&g.need != 0 {
					want = append(want, g.flags...)
				}
			}
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("-h lists flags %q, want %q", got, want)
			}
			listed[c.name] = got
		})
	}
	// The commands that need no Redis or no database, spelled out.
	for _, tt := range []struct {
		command string
		without []string
	}{
		{"lint", []string{"database-url", "redis-url", "log-level"}},
		{"migrate", []string{"redis-url", "campaigns", "templates"}},
		{"import", []string{"redis-url", "campaigns", "templates"}},
		{"suppress", []string{"redis-url", "campaigns", "templates"}},
		{"subscribe", []string{"redis-url", "campaigns", "templates"}},
		{"stage", []string{"redis-url"}},
		{"plan", []string{"redis-url"}},
	} {
		for _, f := range tt.without {
			if slices.Contains(listed[tt.command], f) {
				t.Errorf("%s -h lists --%s, which it does not read", tt.command, f)
			}
		}
	}
}

// TestHelpCoversEveryCommand checks that every command of the usage text
// has its description in commands().
func TestHelpCoversEveryCommand(t *testing.T) {
	var inUsage []string
	_, rest, _ := strings.Cut(usage, "Commands:\n")
	rest, _, _ = strings.Cut(rest, "\n\n")
	for _, line := range strings.Split(rest, "\n") {
		if f := strings.Fields(line); len(line) > 2 && line[2] != ' ' && len(f) > 0 {
			inUsage = append(inUsage, f[0])
		}
	}
	var inTable []string
	for _, c := range commands() {
		if !strings.Contains(c.name, " ") {
			inTable = append(inTable, c.name)
		}
	}
	if !slices.Equal(inUsage, inTable) {
		t.Errorf("usage lists %q, commands() %q", inUsage, inTable)
	}
}

// TestUnusedCommonFlagsAreAccepted: scripts may give every command the
// common flags (DESIGN.md: every command takes --campaigns and
// --templates); a command that does not read one accepts and ignores it,
// and a malformed variable it does not read does not stop it.
func TestUnusedCommonFlagsAreAccepted(t *testing.T) {
	env := map[string]string{"DATABASE_URL": "::not a url", "REDIS_URL": "http://x"}
	stdout, stderr, code := cli(t, env, "lint", "--database-url", "postgres://nowhere/x", "--redis-url", "redis://nowhere",
		"--log-level", "loud", "--campaigns", "../../campaigns", "--templates", "../../templates")
	if code != 0 || !strings.HasPrefix(stdout, "ok: ") {
		t.Errorf("lint with ignored flags: status %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
}
