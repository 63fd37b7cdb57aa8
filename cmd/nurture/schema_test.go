package main

import (
	"encoding/json"
	"os"
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
