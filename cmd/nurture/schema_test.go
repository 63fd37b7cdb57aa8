package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestSchemaCommand checks that nurture schema prints the committed
// schemas, one kind or all, and refuses a kind it does not know.
func TestSchemaCommand(t *testing.T) {
	for _, tt := range []struct {
		args []string
		file string
	}{
		{[]string{"schema"}, "../../schema/nurture.json"},
		{[]string{"schema", "--file", "campaign"}, "../../schema/campaign.json"},
		{[]string{"schema", "--file", "lifecycle"}, "../../schema/lifecycle.json"},
		{[]string{"schema", "--file", "settings"}, "../../schema/settings.json"},
	} {
		stdout, stderr, code := cli(t, nil, tt.args...)
		if code != 0 {
			t.Fatalf("%q: status %d: %s", tt.args, code, stderr)
		}
		want, err := os.ReadFile(tt.file)
		if err != nil {
			t.Fatal(err)
		}
		if stdout != string(want) {
			t.Errorf("%q prints something other than %s", tt.args, tt.file)
		}
	}
	stdout, _, _ := cli(t, nil, "schema")
	var doc struct {
		Schema string                     `json:"$schema"`
		Defs   map[string]json.RawMessage `json:"$defs"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Schema != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %q", doc.Schema)
	}
	for _, k := range []string{"campaign", "lifecycle", "settings"} {
		if _, ok := doc.Defs[k]; !ok {
			t.Errorf("no $defs/%s", k)
		}
	}
	stdout, stderr, code := cli(t, nil, "schema", "--file", "campaigns")
	if code != 2 || stdout != "" || stderr != "nurture schema: --file \"campaigns\": want one of campaign, lifecycle, settings\n" {
		t.Errorf("--file campaigns: status %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

// TestLintToolkit lints campaigns that get every part of the marketer's
// toolkit wrong (triggers, journeys, send windows, experiments, settings,
// expressions and templates) and compares every line with want.txt.
func TestLintToolkit(t *testing.T) {
	dir := filepath.Join("testdata", "lint-toolkit")
	env := map[string]string{"CAMPAIGNS_DIR": filepath.Join(dir, "campaigns"), "TEMPLATES_DIR": filepath.Join(dir, "templates")}
	stdout, stderr, code := cli(t, env, "lint")
	if code != 1 {
		t.Fatalf("status %d, want 1\n%s", code, stderr)
	}
	got := strings.ReplaceAll(stdout, dir+string(filepath.Separator), "")
	want, err := os.ReadFile(filepath.Join(dir, "want.txt"))
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		t.Errorf("lint printed:\n%s\nwant:\n%s", got, want)
	}
	if n := strings.Count(string(want), "\n"); stderr != fmt.Sprintf("nurture lint: %d problem(s)\n", n) {
		t.Errorf("stderr %q, want the count %d", stderr, n)
	}
}
