package schema_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"
	validator "github.com/santhosh-tekuri/jsonschema/v6"

	"nurture/internal/campaign"
	"nurture/internal/schema"
)

var update = flag.Bool("update", false, "rewrite the committed schema files from the Go types")

// committed is where the repository keeps the generated schemas, which
// the shipped YAML files name on their first line.
const committed = "../../schema"

// decodeJSON reads JSON into the values the validator works on.
func decodeJSON(t *testing.T, b []byte) any {
	t.Helper()
	v, err := validator.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// objects walks a schema from node and returns, for every mapping it
// describes, the path to it (as campaign.Keys names them) and its keys.
func objects(t *testing.T, root map[string]any, node map[string]any, path string, out map[string][]string) {
	t.Helper()
	var resolve func(n map[string]any) []map[string]any
	resolve = func(n map[string]any) []map[string]any {
		if ref, ok := n["$ref"].(string); ok {
			name, ok := strings.CutPrefix(ref, "#/$defs/")
			if !ok {
				t.Fatalf("unexpected $ref %q", ref)
			}
			return resolve(root["$defs"].(map[string]any)[name].(map[string]any))
		}
		var all []map[string]any
		for _, key := range []string{"anyOf", "oneOf"} {
			if alts, ok := n[key].([]any); ok {
				for _, a := range alts {
					all = append(all, resolve(a.(map[string]any))...)
				}
			}
		}
		return append(all, n)
	}
	for _, n := range resolve(node) {
		props, ok := n["properties"].(map[string]any)
		if !ok {
			if items, ok := n["items"].(map[string]any); ok {
				objects(t, root, items, path+"[]", out)
			}
			continue
		}
		if _, dup := out[path]; dup {
			t.Fatalf("two mappings at %q", path)
		}
		var keys []string
		for k := range props {
			keys = append(keys, k)
		}
		out[path] = keys
		if n["additionalProperties"] != false {
			t.Errorf("%q allows keys beyond its properties", path)
		}
		for k, v := range props {
			p := k
			if path != "" {
				p = path + "." + k
			}
			objects(t, root, v.(map[string]any), p, out)
		}
	}
}

// TestSchemaKeysMatchDecoder checks that every mapping of every schema has
// exactly the keys campaign.Load accepts there, and that the schema has no
// mapping the decoder lacks, nor the other way round.
func TestSchemaKeysMatchDecoder(t *testing.T) {
	for _, kind := range schema.Kinds() {
		b, err := schema.JSON(kind)
		if err != nil {
			t.Fatal(err)
		}
		root := decodeJSON(t, b).(map[string]any)
		got := map[string][]string{}
		objects(t, root, root, "", got)
		want := campaign.Keys(kind)
		for path, keys := range want {
			slices.Sort(keys)
			g := got[path]
			slices.Sort(g)
			if !slices.Equal(g, keys) {
				t.Errorf("%s %q: schema keys %q, decoder keys %q", kind, path, g, keys)
			}
		}
		for path := range got {
			if _, ok := want[path]; !ok {
				t.Errorf("%s: the schema describes a mapping at %q; the decoder has none", kind, path)
			}
		}
	}
	if _, err := schema.File("campaigns"); err == nil || err.Error() != `unknown kind of file "campaigns"; the kinds are campaign, lifecycle, settings` {
		t.Errorf("File(campaigns): %v", err)
	}
}

func compile(t *testing.T, kind string) *validator.Schema {
	t.Helper()
	b, err := schema.JSON(kind)
	if err != nil {
		t.Fatal(err)
	}
	c := validator.NewCompiler()
	url := "https://nurture.example/" + kind + ".json"
	if err := c.AddResource(url, decodeJSON(t, b)); err != nil {
		t.Fatal(err)
	}
	s, err := c.Compile(url)
	if err != nil {
		t.Fatalf("%s schema does not compile: %v", kind, err)
	}
	return s
}

func kindOf(file string) string {
	switch filepath.Base(file) {
	case campaign.LifecycleFile:
		return "lifecycle"
	case campaign.SettingsFile:
		return "settings"
	}
	return "campaign"
}

// instance reads a YAML file as the JSON value the schema describes.
func instance(t *testing.T, file string) any {
	t.Helper()
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := yaml.Unmarshal(src, &v); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	return decodeJSON(t, b)
}

// TestValidFilesMatchSchema checks that every file campaign.Load accepts
// (the shipped ones and the good test cases) is valid under its schema.
func TestValidFilesMatchSchema(t *testing.T) {
	schemas := map[string]*validator.Schema{}
	for _, kind := range schema.Kinds() {
		schemas[kind] = compile(t, kind)
	}
	dirs, _ := filepath.Glob("../campaign/testdata/good/*")
	dirs = append(dirs, "../../campaigns", "../audience/testdata/toolkit", "../audience/testdata/rules")
	n := 0
	for _, dir := range dirs {
		if _, err := campaign.Load(dir); err != nil {
			t.Fatalf("%s does not load: %v", dir, err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, f := range files {
			if strings.HasPrefix(filepath.Base(f), ".") {
				continue
			}
			n++
			if err := schemas[kindOf(f)].Validate(instance(t, f)); err != nil {
				t.Errorf("%s is valid for campaign.Load but not under the %s schema:\n%v", f, kindOf(f), err)
			}
		}
	}
	if n < 20 {
		t.Errorf("checked %d files, want at least 20", n)
	}
}

// TestInvalidFilesFailSchema checks that the schema refuses what the
// decoder refuses for its shape: unknown keys, missing and conflicting
// keys, wrong types and forms.
func TestInvalidFilesFailSchema(t *testing.T) {
	tests := []struct {
		kind, yaml string
	}{
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\ncolour: red\n"},
		{"campaign", "name: a\nemail: {template: a}\n"},
		{"campaign", "name: a\nschedule: '@daily'\ntrigger: {event: x}\nemail: {template: a}\n"},
		{"campaign", "name: a\nschedule: '@daily'\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nsteps: [{template: b}]\n"},
		{"campaign", "name: a\ntrigger: {delay: 1h}\nemail: {template: a}\n"},
		{"campaign", "name: a\ntrigger: {event: x, entered_stage: y}\nemail: {template: a}\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nholdout: 10\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nvariants: [{name: holdout}]\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nvariants: [{name: a, weight: 0}]\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nsend_window: {start: '9am', end: '18:00'}\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nsend_window: {start: '09:00', end: '18:00', days: [monday]}\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nsend_window: always\n"},
		{"campaign", "name: a\nschedule: '@daily'\nemail: {template: a}\nfrequency: {cooldown: 3 days}\n"},
		{"campaign", "name: Big\nschedule: '@daily'\nemail: {template: a}\n"},
		{"lifecycle", "stages: []\n"},
		{"lifecycle", "stages:\n  - when: x\n"},
		{"settings", "send_window: any\n"},
		{"settings", "frequency_cap: {max: 0, per: 1h}\n"},
		{"settings", "frequency_cap: {max: 3}\n"},
	}
	schemas := map[string]*validator.Schema{}
	for _, kind := range schema.Kinds() {
		schemas[kind] = compile(t, kind)
	}
	dir := t.TempDir()
	for i, tt := range tests {
		f := filepath.Join(dir, "f.yaml")
		if err := os.WriteFile(f, []byte(tt.yaml), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := schemas[tt.kind].Validate(instance(t, f)); err == nil {
			t.Errorf("case %d: the %s schema accepts\n%s", i, tt.kind, tt.yaml)
		}
	}
}

// TestCommittedSchemas checks that the schema files in the repository are
// what the Go types generate, and that every shipped YAML file names its
// schema on its first line. go test -update rewrites the schema files.
func TestCommittedSchemas(t *testing.T) {
	for _, kind := range append(schema.Kinds(), "") {
		b, err := schema.JSON(kind)
		if err != nil {
			t.Fatal(err)
		}
		name := kind
		if name == "" {
			name = "nurture"
		}
		file := filepath.Join(committed, name+".json")
		if *update {
			if err := os.WriteFile(file, b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, b) {
			t.Errorf("%s differs from the generated schema; run go test ./internal/schema -update", file)
		}
	}
	files, _ := filepath.Glob("../../campaigns/*.yaml")
	if len(files) == 0 {
		t.Fatal("no shipped campaign files")
	}
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first, _, _ := strings.Cut(string(src), "\n")
		if want := "# yaml-language-server: $schema=../schema/" + kindOf(f) + ".json"; first != want {
			t.Errorf("%s starts with %q, want %q", f, first, want)
		}
	}
}
